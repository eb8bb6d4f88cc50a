"""The official `openai` package against a real gateway process, unchanged but for `base_url` and
`api_key` (it sends `Authorization: Bearer <key>`): completions streamed and not, sync and async,
the models list, its typed errors, and OpenAI's request fields reaching the provider as sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway

Upstreams = tuple[FakeUpstream, FakeUpstream]

HELLO = [{"role": "user", "content": "Hello!"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


def connect(gateway: Gateway, key: str, **options: Any) -> OpenAI:
    return OpenAI(base_url=gateway.url + "/v1", api_key=key, **options)


def aconnect(gateway: Gateway, key: str, **options: Any) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, **options)


@pytest.fixture()
def client(gateway: Gateway, key: str) -> Iterator[OpenAI]:
    with connect(gateway, key) as c:
        yield c


def sent(upstream: FakeUpstream) -> dict[str, Any]:
    """The body of the last request `upstream` received."""
    body: dict[str, Any] = upstream.requests()[-1]["body"]
    return body


# --- Completions -----------------------------------------------------------------------------------


def test_chat(client: OpenAI, fresh: Upstreams, key: str) -> None:
    r = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, max_tokens=100, temperature=0.7)
    assert r.object == "chat.completion" and r.model == "gpt-4o-mini"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "Hello from A: Hello!"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and (r.usage.prompt_tokens, r.usage.completion_tokens) == (4, 4)
    extra = r.usage.model_extra or {}
    assert extra["total_cost_usd"] > 0 and extra["latency_ms"] > 0  # our fields ride along
    request = fresh[0].requests()[-1]
    assert request["body"]["max_tokens"] == 100 and request["body"]["temperature"] == 0.7
    assert key not in json.dumps(request)  # our key stays with us
    assert request["headers"]["authorization"] == "Bearer sk-openai-Xy7Qw2"


def test_chat_raw_response_carries_our_headers(client: OpenAI, fresh: Upstreams) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)
    assert raw.headers["x-pureai-model"] == "gpt-4o-mini"
    assert raw.headers["x-pureai-provider"] == "openai"
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().choices[0].message.content == "Hello from A: Hello!"


def test_chat_streamed(client: OpenAI, fresh: Upstreams) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o-mini" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from A: Hello!"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert sum(c.choices[0].finish_reason is not None for c in chunks) == 1


def test_chat_streamed_with_include_usage(client: OpenAI, fresh: Upstreams) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.total_tokens == 8
    assert (last.usage.model_extra or {})["total_cost_usd"] > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == "Hello from A: Hello!"


def test_text_completion(client: OpenAI, fresh: Upstreams) -> None:
    r = client.completions.create(model="gpt-4o-mini", prompt="The capital of France is", max_tokens=50)
    assert r.object == "text_completion" and r.model == "gpt-4o-mini"
    assert r.choices[0].text == "Hello from A: The capital of France is"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.total_tokens > 0


def test_text_completion_streamed(client: OpenAI, fresh: Upstreams) -> None:
    chunks = list(client.completions.create(model="pureai/gemma-3-4b-it", prompt="Hello", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == "Hello from A: Hello"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert sent(fresh[0])["prompt"] == "Hello"


def test_models_list(client: OpenAI) -> None:
    models = list(client.models.list())
    ids = [m.id for m in models]
    assert ids[:4] == ["gpt-4o-mini", "codestral-latest", "gpt-4o", "claude-3-haiku"]
    assert "disabled-model" not in ids
    assert all(m.object == "model" and m.owned_by for m in models)
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"


def test_async_chat(gateway: Gateway, fresh: Upstreams, key: str) -> None:
    async def main() -> tuple[str | None, str]:
        async with aconnect(gateway, key) as client:
            plain = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            stream = await client.chat.completions.create(
                model="claude-3-haiku", messages=[{"role": "user", "content": "Stream me"}], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            return plain.choices[0].message.content, text

    plain, streamed = asyncio.run(main())
    assert plain == "Hello from A: Hello!"
    assert streamed == "Hello from B: Stream me"


def test_async_concurrent_calls(gateway: Gateway, fresh: Upstreams, key: str) -> None:
    async def main() -> list[str | None]:
        async with aconnect(gateway, key) as client:
            calls = [
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"n{i}"}]
                )
                for i in range(8)
            ]
            return [r.choices[0].message.content for r in await asyncio.gather(*calls)]

    assert asyncio.run(main()) == [f"Hello from A: n{i}" for i in range(8)]


# --- Typed errors ----------------------------------------------------------------------------------


def test_unknown_model_is_not_found(client: OpenAI, fresh: Upstreams) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=HELLO)
    assert caught.value.status_code == 404
    assert (caught.value.code, caught.value.param) == ("model_not_found", "model")
    assert "gpt-9" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=HELLO, stream=True)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="disabled-model", prompt="Hi")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")
    assert fresh[0].requests() == [] and fresh[1].requests() == []


def test_bad_key_is_authentication_error(gateway: Gateway) -> None:
    for bad in ("pk-000000000000-AAAAAAAAAAAAAAAAAAAAAAAA", "sk-not-ours"):
        with connect(gateway, bad) as client:
            with pytest.raises(openai.AuthenticationError) as caught:
                client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            assert caught.value.code == "invalid_api_key"
            with pytest.raises(openai.AuthenticationError):
                client.models.list()


def test_limited_key_is_rate_limit_error(gateway: Gateway, fresh: Upstreams) -> None:
    limited = gateway.new_key(tenant="t-openai", rpm=1)
    with connect(gateway, limited, max_retries=0) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert caught.value.code == "rate_limit_exceeded"
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert isinstance(caught.value.body, dict) and caught.value.body["retry_after"] > 0
    assert len(fresh[0].requests()) == 1


def test_async_rate_limit_error(gateway: Gateway, fresh: Upstreams) -> None:
    limited = gateway.new_key(tenant="t-openai", rpm=1)

    async def main() -> None:
        async with aconnect(gateway, limited, max_retries=0) as client:
            await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            with pytest.raises(openai.RateLimitError):
                await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "Hi"}]}, "messages.0.role"),
    ],
)
def test_bad_input_is_bad_request(
    client: OpenAI, fresh: Upstreams, fields: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HELLO, **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**body)
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"
    assert fresh[0].requests() == []


def test_forbidden_model_is_permission_denied(gateway: Gateway) -> None:
    restricted = gateway.new_key(tenant="t-openai", models=["gpt-4o-mini"])
    with connect(gateway, restricted) as client, pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "model_not_allowed"


def test_upstream_failure_is_an_api_status_error(gateway: Gateway, fresh: Upstreams, key: str) -> None:
    a, b = fresh
    a.script({"status": 500, "model": "gpt-4o-mini"})
    b.script({"status": 503, "model": "gpt-4o-mini"})
    with connect(gateway, key, max_retries=0) as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert caught.value.status_code == 502 and caught.value.code == "upstream_error"


# --- What reaches the provider ---------------------------------------------------------------------


def test_tools_pass_through_and_tool_calls_come_back(client: OpenAI, fresh: Upstreams) -> None:
    a = fresh[0]
    a.script({"tool_call": True})
    choice = {"type": "function", "function": {"name": "get_weather"}}
    r = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[TIME, WEATHER],  # type: ignore[list-item]
        tool_choice=choice,  # type: ignore[arg-type]
        parallel_tool_calls=False,
    )
    body = sent(a)
    assert body["tools"] == [TIME, WEATHER]
    assert body["tool_choice"] == choice
    assert body["parallel_tool_calls"] is False
    message = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Weather in Paris?", "unit": "c"}  # type: ignore[union-attr]

    # The result goes back as a tool message, and the conversation reaches the provider as sent.
    follow_up: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    r2 = client.chat.completions.create(model="gpt-4o-mini", messages=follow_up, tools=[WEATHER])  # type: ignore[list-item]
    assert r2.choices[0].message.content is not None
    messages = sent(a)["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.id
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[2] == {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'}


def test_tool_calls_streamed(client: OpenAI, fresh: Upstreams) -> None:
    fresh[0].script({"tool_call": True})
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        stream=True,
    )
    names, arguments, ids, finish = [], [], [], []
    for chunk in stream:
        for c in chunk.choices:
            finish.append(c.finish_reason)
            for call in c.delta.tool_calls or []:
                ids.append(call.id)
                if call.function is not None:
                    names.append(call.function.name or "")
                    arguments.append(call.function.arguments or "")
    assert "".join(names) == "get_weather"
    assert [i for i in ids if i] and all(i.startswith("call_") for i in ids if i)
    assert json.loads("".join(arguments)) == {"city": "Weather in Oslo?", "unit": "c"}
    assert [f for f in finish if f] == ["tool_calls"]


def test_response_format_reaches_the_provider(client: OpenAI, fresh: Upstreams) -> None:
    fresh[0].script({"content": '{"answer": 42}'})
    r = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Answer in JSON"}],
        response_format={"type": "json_object"},
        seed=7,
        user="end-user-1",
    )
    assert json.loads(r.choices[0].message.content or "") == {"answer": 42}
    body = sent(fresh[0])
    assert body["response_format"] == {"type": "json_object"}
    assert (body["seed"], body["user"]) == (7, "end-user-1")


def test_json_schema_response_format_reaches_the_provider(client: OpenAI, fresh: Upstreams) -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "required": ["n"],
                "additionalProperties": False,
            },
        },
    }
    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, response_format=schema)  # type: ignore[arg-type]
    assert sent(fresh[0])["response_format"] == schema


def test_content_parts_reach_the_provider(client: OpenAI, fresh: Upstreams) -> None:
    parts = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": parts}])  # type: ignore[misc, list-item]
    assert r.choices[0].message.content == "Hello from A: What is in this image?"
    assert sent(fresh[0])["messages"] == [{"role": "user", "content": parts}]


def test_unknown_fields_are_not_forwarded(client: OpenAI, fresh: Upstreams) -> None:
    smuggled = {
        "api_base": "http://evil.invalid/v1",
        "base_url": "http://evil.invalid/v1",
        "api_key": "sk-evil",
        "mock_response": "pwned",
        "custom_llm_provider": "anthropic",
        "extra_headers": {"x-evil": "1"},
        "metadata": {"tenant": "someone-else"},
    }
    r = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, extra_body=smuggled)
    assert r.choices[0].message.content == "Hello from A: Hello!"  # the real provider answered
    request = fresh[0].requests()[-1]
    assert not set(smuggled) & set(request["body"])
    assert "evil" not in json.dumps(request) and "pwned" not in json.dumps(request)
    assert request["headers"]["authorization"] == "Bearer sk-openai-Xy7Qw2"


def test_sampling_parameters_reach_the_provider(client: OpenAI, fresh: Upstreams) -> None:
    params: dict[str, Any] = {
        "max_completion_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["\n\n", "END"],
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "logit_bias": {"50256": -100},
    }
    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, **params)
    body = sent(fresh[0])
    assert {k: body.get(k) for k in params} == params

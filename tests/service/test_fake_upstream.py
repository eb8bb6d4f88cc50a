"""The fake upstream speaks OpenAI's wire format to real clients and does what each fault step says.

One server process serves the module; each test starts from an empty queue and log. The `openai`
client and litellm talk to it over loopback exactly as they would talk to a provider.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletionContentPartParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from tests.service.fake_upstream import FakeUpstream, split_point, sse

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]
Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream.start("A") as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def clean(fake: FakeUpstream) -> None:
    fake.reset()


@pytest.fixture
def client(fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.url, api_key="sk-test", max_retries=0, timeout=5.0) as c:
        yield c


@pytest.fixture
def raw(fake: FakeUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5.0, trust_env=False) as c:
        yield c


@pytest.fixture(scope="module")
def litellm() -> Iterator[ModuleType]:
    """litellm with the bundled price map (no network) and without its help banner on stdout."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        patch.setattr(litellm, "suppress_debug_info", True)
        yield litellm


@pytest.fixture(scope="module")
def run(litellm: ModuleType) -> Iterator[Run]:
    """One event loop for the module's async calls; litellm's cached clients are closed on it."""
    from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

    with asyncio.Runner() as runner:
        yield runner.run
        runner.run(close_litellm_async_clients())


def sse_payloads(body: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, frame by frame."""
    frames = body.decode("utf-8").split("\n\n")
    return [
        line[len("data: ") :] for frame in frames for line in frame.split("\n") if line.startswith("data: ")
    ]


# --- Running it ------------------------------------------------------------------------------------


def test_the_command_prints_one_ready_line_and_nothing_else() -> None:
    script = Path(__file__).with_name("fake_upstream.py")
    command = [sys.executable, str(script), "--name", "B", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        port = int(process.stdout.readline().decode().removeprefix("READY "))
        health = httpx.get(f"http://127.0.0.1:{port}/_control/health", trust_env=False)
        process.terminate()
        rest = process.stdout.read()
    assert health.json() == {"ok": True}
    assert rest == b""


def test_start_raises_a_clear_error_when_the_server_cannot_listen(fake: FakeUpstream) -> None:
    with pytest.raises(RuntimeError, match="(?is)did not print READY.*address already in use"):
        FakeUpstream.start("B", port=fake.port)


# --- The wire format, through the openai client ----------------------------------------------------


def test_chat_completion(fake: FakeUpstream, client: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": "Be brief"}, *HI]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert reply.id.startswith("chatcmpl-")
    assert (reply.object, reply.model) == ("chat.completion", "gpt-4o-mini")
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "Hello from A: hi there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (10, 5, 15)
    assert reply.usage.prompt_tokens_details is None
    [entry] = fake.requests()
    assert entry["path"] == "/v1/chat/completions"
    assert entry["model"] == "gpt-4o-mini"
    assert entry["body"] == {"model": "gpt-4o-mini", "messages": messages}
    assert entry["headers"]["authorization"] == "Bearer sk-test"
    assert (entry["stream"], entry["finished"], entry["disconnected"]) == (False, True, False)


def test_chat_stream_with_usage(fake: FakeUpstream, client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    first, *middle, end, last = chunks
    assert (first.choices[0].delta.role, first.choices[0].delta.content) == ("assistant", "")
    assert [c.choices[0].delta.content for c in middle] == ["Hello", " from", " A:", " hi", " there"]
    assert end.choices[0].finish_reason == "stop"
    assert end.choices[0].delta.content is None
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (5, 5)
    assert all(c.usage is None for c in chunks[:-1])
    assert fake.requests()[0]["stream"] is True
    assert fake.requests()[0]["finished"] is True


def test_chat_stream_without_usage_ends_with_the_finish_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.choices for c in chunks)


def test_text_completion(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say it")
    assert reply.id.startswith("cmpl-")
    assert (reply.object, reply.model) == ("text_completion", "gpt-3.5-turbo-instruct")
    assert reply.choices[0].text == "Hello from A: say it"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 5)


def test_text_completion_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="say it",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {c.object for c in chunks} == {"text_completion"}
    *texts, end, last = chunks
    assert [c.choices[0].text for c in texts] == ["Hello", " from", " A:", " say", " it"]
    assert [c.choices[0].finish_reason for c in texts] == [None] * 5
    assert (end.choices[0].text, end.choices[0].finish_reason) == ("", "stop")
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == 7


def test_max_tokens_cuts_the_reply(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=2)
    assert (reply.choices[0].message.content, reply.choices[0].finish_reason) == ("Hello from", "length")
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 2
    text = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", max_tokens=1, stream=True)
    assert [(c.choices[0].text, c.choices[0].finish_reason) for c in text] == [
        ("Hello", None),
        ("", "length"),
    ]


def test_content_parts_scripted_content_and_cached_tokens(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.script({"content": "Scripted reply here", "cached_tokens": 4})
    parts: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "what is"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "in this picture"},
    ]
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": parts}]
    reply = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert reply.choices[0].message.content == "Scripted reply here"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (5 + 3, 3)
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 4
    assert fake.requests()[0]["step"] == {"content": "Scripted reply here", "cached_tokens": 4}


def test_tool_calls(fake: FakeUpstream, client: openai.OpenAI) -> None:
    tools: list[ChatCompletionFunctionToolParam] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "weather in Paris"}]
    fake.script({"tool_call": True}, {"tool_call": True})
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.choices[0].message.content is None
    [call] = reply.choices[0].message.tool_calls or []
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "weather in Paris"}

    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools, stream=True)
    )
    calls = [c.choices[0].delta.tool_calls[0].function for c in chunks if c.choices[0].delta.tool_calls]
    functions = [f for f in calls if f is not None]
    assert functions[0].name == "get_weather"
    assert json.loads("".join(f.arguments or "" for f in functions)) == {"city": "weather in Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_models_list(client: openai.OpenAI) -> None:
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]


def test_unicode_round_trips_byte_exact(fake: FakeUpstream, client: openai.OpenAI, raw: httpx.Client) -> None:
    text = "héllo 😀 👩‍👩‍👧 مرحبا بالعالم e\u0301 \u200f ß 𝄞 中文"
    fake.script({"content": text}, {"content": text}, {"content": text})
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert reply.choices[0].message.content == text
    streamed = client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == text
    body = raw.post("/chat/completions", json={"model": "m", "messages": HI}).content
    assert text.encode("utf-8") in body
    echo = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "👋🏽 שלום"}]
    )
    assert echo.choices[0].message.content == "Hello from A: 👋🏽 שלום"


def test_a_lone_surrogate_comes_back_escaped(raw: httpx.Client) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"\\ud800"}]}'
    reply = raw.post("/chat/completions", content=body, headers={"content-type": "application/json"})
    assert reply.json()["choices"][0]["message"]["content"] == "Hello from A: \ud800"


def test_openai_rejections_are_400s(fake: FakeUpstream, raw: httpx.Client) -> None:
    usage_without_stream = {"model": "m", "messages": HI, "stream_options": {"include_usage": True}}
    for body in ({"messages": HI}, {"model": "m", "messages": []}, usage_without_stream):
        reply = raw.post("/chat/completions", json=body)
        assert reply.status_code == 400
        assert reply.json()["error"]["type"] == "invalid_request_error"
    assert [e["finished"] for e in fake.requests()] == [True, True, True]


# --- Fault steps -----------------------------------------------------------------------------------


def test_error_status_with_headers(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.script({"status": 429, "headers": {"retry-after": "1"}})
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.body == {
        "message": "Rate limit reached for requests.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


def test_error_body_given_whole_or_as_fields(fake: FakeUpstream, raw: httpx.Client) -> None:
    whole = {"error": {"message": "custom", "type": "x", "param": None, "code": None}, "extra": 1}
    fake.script(
        {"status": 503, "error": whole}, {"status": 400, "error": {"message": "bad", "param": "messages"}}
    )
    first = raw.post("/chat/completions", json={"model": "m", "messages": HI, "stream": True})
    assert (first.status_code, first.json()) == (503, whole)
    second = raw.post("/completions", json={"model": "m", "prompt": "x"})
    assert second.status_code == 400
    assert second.json()["error"] == {
        "message": "bad",
        "type": "invalid_request_error",
        "param": "messages",
        "code": None,
    }


def test_reset_is_a_connection_error(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.script({"reset": True})
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    [entry] = fake.requests()
    assert (entry["finished"], entry["disconnected"]) == (False, False)


def test_headers_delay_times_the_client_out(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.script({"headers_delay_ms": 5000})
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, timeout=0.3)
    [entry] = fake.wait_for(lambda log: log[0]["disconnected"])
    assert entry["finished"] is False


@pytest.mark.parametrize(
    ("stream", "step"), [(False, {"delay_ms": 5000}), (True, {"first_chunk_delay_ms": 5000})]
)
def test_body_delays_come_after_the_headers(fake: FakeUpstream, stream: bool, step: dict[str, Any]) -> None:
    fake.script(step)
    timeout = httpx.Timeout(5.0, read=0.3)
    with httpx.Client(base_url=fake.url, timeout=timeout, trust_env=False) as slow:
        body = {"model": "m", "messages": HI, "stream": stream}
        with slow.stream("POST", "/chat/completions", json=body) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                response.read()
    fake.wait_for(lambda log: log[0]["disconnected"])


def test_closing_mid_stream_is_logged_as_a_disconnect(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.script({"chunk_delay_ms": 5000})
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    first = next(iter(stream))
    stream.close()
    assert first.choices[0].delta.role == "assistant"
    [entry] = fake.wait_for(lambda log: log[0]["disconnected"])
    assert entry["finished"] is False


def test_drop_after_chunks(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.script({"drop_after_chunks": 2})
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Hello"]
    assert fake.requests()[0]["finished"] is False


def test_error_after_chunks(fake: FakeUpstream, client: openai.OpenAI, raw: httpx.Client) -> None:
    fake.script(
        {"error_after_chunks": 2, "error": {"message": "overloaded mid-stream"}}, {"error_after_chunks": 1}
    )
    received = []
    with pytest.raises(openai.APIError, match="overloaded mid-stream"):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Hello"]
    payloads = sse_payloads(
        raw.post("/completions", json={"model": "m", "prompt": "x", "stream": True}).content
    )
    assert len(payloads) == 2
    assert json.loads(payloads[1])["error"]["type"] == "server_error"


def test_no_done(fake: FakeUpstream, client: openai.OpenAI, raw: httpx.Client) -> None:
    fake.script({"no_done": True}, {"no_done": True})
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    payloads = sse_payloads(
        raw.post("/chat/completions", json={"model": "m", "messages": HI, "stream": True}).content
    )
    assert payloads[-1] != "[DONE]"
    assert json.loads(payloads[-1])["choices"][0]["finish_reason"] == "stop"


def test_malformed_stream_still_parses(fake: FakeUpstream, client: openai.OpenAI, raw: httpx.Client) -> None:
    fake.script({"malformed": True, "content": "é😀 done"}, {"malformed": True})
    streamed = client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == "é😀 done"
    body = raw.post("/chat/completions", json={"model": "m", "messages": HI, "stream": True}).content
    assert b"\n: keep-alive\n\n" in body
    assert sse_payloads(body)[-1] == "[DONE]"


def test_the_malformed_split_falls_inside_a_multi_byte_character() -> None:
    frames = [sse({"content": "plain"}), sse({"content": "é😀"})]
    index, cut = split_point(frames)
    assert index == 1
    with pytest.raises(UnicodeDecodeError):
        frames[index][:cut].decode("utf-8")
    assert (frames[index][:cut] + frames[index][cut:]).decode("utf-8").endswith('"é😀"}\n\n')


def test_steps_are_taken_in_order_and_by_model(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.script({"model": "gpt-4o", "status": 503}, {"content": "one"}, {"content": "two"})

    def ask(model: str) -> str | None:
        return client.chat.completions.create(model=model, messages=HI).choices[0].message.content

    assert ask("gpt-4o-mini") == "one"
    assert ask("gpt-4o-mini") == "two"
    assert ask("gpt-4o-mini") == "Hello from A: hi there"
    with pytest.raises(openai.InternalServerError):
        ask("gpt-4o")
    assert ask("gpt-4o") == "Hello from A: hi there"


def test_control_rejects_bad_steps_and_reset_clears_everything(
    fake: FakeUpstream, client: openai.OpenAI
) -> None:
    with pytest.raises(RuntimeError, match="unknown step key 'stauts'"):
        fake.script({"stauts": 500})
    with pytest.raises(RuntimeError, match="wrong type"):
        fake.script({"reset": 1})
    fake.script({"status": 500})
    client.models.list()
    fake.reset()
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert reply.choices[0].message.content == "Hello from A: hi there"
    assert len(fake.requests()) == 1


# --- litellm -------------------------------------------------------------------------------------------


def test_litellm_streams_chat_with_usage(fake: FakeUpstream, litellm: ModuleType, run: Run) -> None:
    async def chat() -> list[Any]:
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            api_base=fake.url,
            api_key="sk-test",
            messages=HI,
            stream=True,
            stream_options={"include_usage": True},
        )
        return [chunk async for chunk in stream]

    chunks = run(chat())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from A: hi there"
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 5)
    [entry] = fake.requests()
    assert entry["body"]["stream_options"] == {"include_usage": True}
    assert entry["headers"]["authorization"] == "Bearer sk-test"
    assert entry["finished"] is True


def test_litellm_closing_a_stream_disconnects_upstream(
    fake: FakeUpstream, litellm: ModuleType, run: Run
) -> None:
    async def first_chunk_then_close() -> list[dict[str, Any]]:
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini", api_base=fake.url, api_key="sk-test", messages=HI, stream=True
        )
        await anext(stream)
        await stream.aclose()
        return await fake.wait_for_async(lambda log: log[0]["disconnected"])

    fake.script({"chunk_delay_ms": 5000})
    [entry] = run(first_chunk_then_close())
    assert entry["finished"] is False


def test_litellm_text_completion(
    fake: FakeUpstream, litellm: ModuleType, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a shared httpx client: litellm builds a new client (and aiohttp session) for every
    text completion and never closes it, which the unclosed-resource warnings would flag."""

    async def complete() -> Any:
        async with httpx.AsyncClient(trust_env=False) as http:
            monkeypatch.setattr(litellm, "aclient_session", http)
            return await litellm.atext_completion(
                model="openai/gpt-3.5-turbo-instruct", api_base=fake.url, api_key="sk-test", prompt="say it"
            )

    reply = run(complete())
    assert reply.choices[0].text == "Hello from A: say it"
    assert reply.usage.completion_tokens == 5
    assert fake.requests()[0]["path"] == "/v1/completions"


def test_litellm_error_classes(fake: FakeUpstream, litellm: ModuleType, run: Run) -> None:
    """How litellm surfaces each fault, with the openai client's own retries turned off."""
    from litellm.exceptions import MidStreamFallbackError

    async def chat(stream: bool) -> None:
        reply = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            api_base=fake.url,
            api_key="sk-test",
            messages=HI,
            stream=stream,
            max_retries=0,
            timeout=0.3,
        )
        if stream:
            async for _ in reply:
                pass

    cases: list[tuple[dict[str, Any], bool, type[Exception]]] = [
        ({"status": 429, "headers": {"retry-after": "1"}}, False, litellm.RateLimitError),
        ({"reset": True}, False, litellm.InternalServerError),  # "Connection error.", status_code 500
        ({"headers_delay_ms": 5000}, True, litellm.Timeout),
        ({"drop_after_chunks": 2}, True, MidStreamFallbackError),
        ({"error_after_chunks": 2}, True, MidStreamFallbackError),
    ]
    for step, stream, error in cases:
        fake.script(step)
        with pytest.raises(error):
            run(chat(stream))
    assert len(fake.requests()) == len(cases)


def test_litellm_retries_inside_the_openai_client_by_default(
    fake: FakeUpstream, litellm: ModuleType, run: Run
) -> None:
    fake.script({"status": 429, "headers": {"retry-after-ms": "10"}})
    reply = run(
        litellm.acompletion(model="openai/gpt-4o-mini", api_base=fake.url, api_key="sk-test", messages=HI)
    )
    assert reply.choices[0].message.content == "Hello from A: hi there"
    log = fake.requests()
    assert [e["finished"] for e in log] == [True, True]
    assert [e["headers"]["x-stainless-retry-count"] for e in log] == ["0", "1"]

"""Each resource of the client, sync and async, against a real gateway process and the fake
upstreams (A serves gpt-4o-mini's primary provider and pureai/gemma-3-4b-it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import lunar
from lunar import AsyncLunar, Lunar
from tests.service.gateway_server import Gateway

HELLO = [{"role": "user", "content": "Hello!"}]
COST_FIELDS = ("input_cost_usd", "output_cost_usd", "cache_input_cost_usd", "total_cost_usd")


def check_usage(usage: lunar.Usage | None, input_per_mtok: float, output_per_mtok: float) -> None:
    """Every token, cost and latency field of the reference's usage object, with consistent values."""
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    for name in (*COST_FIELDS, "latency_ms", "ttft_ms"):
        assert isinstance(getattr(usage, name), float | int), name
    assert usage.input_cost_usd == pytest.approx(usage.prompt_tokens * input_per_mtok / 1e6)
    assert usage.output_cost_usd == pytest.approx(usage.completion_tokens * output_per_mtok / 1e6)
    assert usage.cache_input_cost_usd == 0
    assert usage.total_cost_usd == pytest.approx(usage.input_cost_usd + usage.output_cost_usd)
    assert usage.latency_ms is not None and usage.ttft_ms is not None
    assert 0 < usage.ttft_ms <= usage.latency_ms


# -- chat.completions -----------------------------------------------------------------------------


def test_chat_completion(client: Lunar, fresh: Any) -> None:
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You are helpful."}, *HELLO],
        max_tokens=100,
        temperature=0.7,
    )
    assert isinstance(response, lunar.ChatCompletion)
    assert response.object == "chat.completion" and response.model == "gpt-4o-mini"
    assert response.id.startswith("req_") and isinstance(response.created, int)
    choice = response.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == "Hello from A: Hello!"
    assert choice.finish_reason == "stop"
    assert (response.usage and response.usage.prompt_tokens, response.usage.completion_tokens) == (10, 4)
    check_usage(response.usage, 0.15, 0.60)
    sent = fresh[0].requests()[-1]["body"]
    assert sent["max_tokens"] == 100 and sent["temperature"] == 0.7


def test_chat_completion_streamed(client: Lunar, fresh: Any) -> None:
    with client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True) as stream:
        assert isinstance(stream, lunar.Stream)
        chunks = list(stream)
    assert all(isinstance(c, lunar.ChatCompletionChunk) for c in chunks)
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from A: Hello!"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    check_usage(last.usage, 0.15, 0.60)
    assert all(c.usage is None and c.routing is None for c in chunks[:-1])
    assert stream.response.is_closed


def test_chat_stream_with_include_usage_ends_with_a_usage_chunk(client: Lunar, fresh: Any) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    check_usage(chunks[-1].usage, 0.15, 0.60)
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_extra_body_and_openai_fields_reach_the_provider(client: Lunar, fresh: Any) -> None:
    client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, seed=7, top_p=None, extra_body={"presence_penalty": 0.5}
    )
    sent = fresh[0].requests()[-1]["body"]
    assert sent["seed"] == 7 and sent["presence_penalty"] == 0.5 and "top_p" not in sent


def test_messages_may_be_any_iterable(client: Lunar, fresh: Any) -> None:
    response = client.chat.completions.create(model="gpt-4o-mini", messages=(m for m in HELLO))
    assert response.choices[0].message.content == "Hello from A: Hello!"


# -- completions ------------------------------------------------------------------------------------


def test_text_completion(client: Lunar, fresh: Any) -> None:
    response = client.completions.create(
        model="gpt-4o-mini", prompt="The capital of France is", max_tokens=50
    )
    assert isinstance(response, lunar.Completion) and response.object == "text_completion"
    assert response.choices[0].text == "Hello from A: The capital of France is"
    check_usage(response.usage, 0.15, 0.60)


def test_text_completion_streamed_on_a_deployed_model(client: Lunar, fresh: Any) -> None:
    with client.completions.create(
        model="pureai/gemma-3-4b-it", prompt="Hello", max_tokens=1024, temperature=0.7, stream=True
    ) as stream:
        chunks = list(stream)
    assert all(isinstance(c, lunar.CompletionChunk) for c in chunks)
    assert "".join(c.choices[0].text for c in chunks) == "Hello from A: Hello"
    check_usage(chunks[-1].usage, 0.02, 0.04)
    assert fresh[0].requests()[-1]["body"]["prompt"] == "Hello"


# -- models and providers ---------------------------------------------------------------------------


def test_models(client: Lunar) -> None:
    models = client.models.list()
    assert models.object == "list" and len(models) == len(models.data) > 0
    assert models.ids()[:4] == ["gpt-4o-mini", "codestral-latest", "gpt-4o", "claude-3-haiku"]
    assert models[0] == lunar.Model(id="gpt-4o-mini", object="model", created=1699000000, owned_by="openai")
    assert client.models.retrieve("pureai/gemma-3-4b-it").owned_by == "pureai"  # a "/" in the id
    with pytest.raises(lunar.NotFoundError):
        client.models.retrieve("disabled-model")


def test_models_lists_only_what_the_key_may_use(gateway: Gateway) -> None:
    limited = gateway.new_key(tenant="t-limited", models=["claude-3-haiku", "gpt-4o-mini"])
    with Lunar(api_key=limited, base_url=gateway.url) as client:
        assert client.models.list().ids() == ["gpt-4o-mini", "claude-3-haiku"]


def test_providers(client: Lunar) -> None:
    providers = client.providers.list(model="gpt-4o-mini")
    reference = ("id", "type", "enabled", "params")
    assert [{k: v for k, v in p.model_dump().items() if k in reference} for p in providers] == [
        {"id": "openai", "type": "primary", "enabled": True, "params": {}},
        {"id": "groq", "type": "backup", "enabled": True, "params": {}},
    ]
    assert len(providers) == 2 and providers[0].id == "openai"
    assert providers[0].configured is True and providers[0].missing is None
    assert providers[0].features is not None and providers[0].features["vision"] is True
    with pytest.raises(lunar.NotFoundError) as info:
        client.providers.list(model="gpt-9")
    assert info.value.code == "model_not_found"


# -- router -----------------------------------------------------------------------------------------


def test_router_decision_only(client: Lunar, fresh: Any) -> None:
    decision = client.router.route(
        messages=[{"role": "user", "content": "Write Python code to sort a list"}],
        models=["gpt-4o-mini", "codestral-latest"],
        cost_weight=0.5,
        execute=False,
    )
    assert isinstance(decision, lunar.RoutingDecision)
    assert decision.selected_model in ("gpt-4o-mini", "codestral-latest")
    assert decision.reasoning and decision.confidence is not None and 0 < decision.confidence <= 1
    assert decision.cost_weight == 0.5 and decision.complexity is not None
    assert decision.capabilities is not None and decision.capabilities["code"] == max(
        decision.capabilities.values()
    )
    assert decision.candidates is not None
    assert sorted(c.model for c in decision.candidates) == ["codestral-latest", "gpt-4o-mini"]
    assert decision.candidates[0].model == decision.selected_model
    assert fresh[0].requests() == [] and fresh[1].requests() == []


def test_router_cost_weight_moves_the_choice(client: Lunar) -> None:
    def choose(w: float) -> str:
        messages = [{"role": "user", "content": "Prove that the square root of 2 is irrational."}]
        d = client.router.route(
            messages=messages, models=["gpt-4o", "gpt-4o-mini"], cost_weight=w, execute=False
        )
        return d.selected_model

    assert (choose(0.0), choose(1.0)) == ("gpt-4o", "gpt-4o-mini")


def test_router_executes(client: Lunar, fresh: Any) -> None:
    response = client.router.route(messages=[{"role": "user", "content": "Write a haiku about programming"}])
    assert isinstance(response, lunar.RoutedCompletion) and isinstance(response, lunar.ChatCompletion)
    assert response.model == response.routing.selected_model
    assert response.routing.reasoning and response.routing.candidates is None
    assert (response.choices[0].message.content or "").endswith("Write a haiku about programming")
    assert response.usage is not None and (response.usage.total_cost_usd or 0) > 0


def test_router_streams_with_the_decision_on_the_first_chunk(client: Lunar, fresh: Any) -> None:
    with client.router.route(messages=[{"role": "user", "content": "Tell me a joke"}], stream=True) as stream:
        chunks = list(stream)
    first = chunks[0]
    assert first.routing is not None and first.model == first.routing.selected_model
    assert all(c.routing is None for c in chunks[1:])
    assert "".join(c.choices[0].delta.content or "" for c in chunks).endswith("Tell me a joke")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_router_decision_ignores_stream(client: Lunar, fresh: Any) -> None:
    decision = client.router.route(messages=HELLO, execute=False, stream=True)
    assert isinstance(decision, lunar.RoutingDecision)


# -- the async client -------------------------------------------------------------------------------


def test_async_client_covers_every_resource(gateway: Gateway, key: str, fresh: Any) -> None:
    async def main() -> None:
        async with AsyncLunar(api_key=key, base_url=gateway.url) as client:
            chat = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            assert chat.choices[0].message.content == "Hello from A: Hello!"
            check_usage(chat.usage, 0.15, 0.60)

            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
            assert isinstance(stream, lunar.AsyncStream)
            async with stream:
                chunks = [c async for c in stream]
            assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from A: Hello!"
            check_usage(chunks[-1].usage, 0.15, 0.60)

            text = await client.completions.create(model="gpt-4o-mini", prompt="Hello")
            assert text.choices[0].text == "Hello from A: Hello"
            pieces = [
                c.choices[0].text
                async for c in await client.completions.create(
                    model="pureai/DeepSeek-R1-Distill-Llama-8B",
                    prompt="Explain quantum computing",
                    stream=True,
                )
            ]
            assert "".join(pieces) == "Hello from B: Explain quantum computing"

            models = await client.models.list()
            assert "gpt-4o-mini" in models.ids()
            assert (await client.models.retrieve("gpt-4o")).owned_by == "openai"
            providers = await client.providers.list(model="gpt-4o-mini")
            assert [p.type for p in providers] == ["primary", "backup"]

            decision = await client.router.route(messages=HELLO, models=["gpt-4o-mini"], execute=False)
            assert decision.selected_model == "gpt-4o-mini"
            routed = await client.router.route(messages=HELLO, models=["gpt-4o-mini"], cost_weight=1.0)
            assert routed.routing.selected_model == "gpt-4o-mini"
            routed_stream = await client.router.route(messages=HELLO, models=["gpt-4o-mini"], stream=True)
            routed_chunks = [c async for c in routed_stream]
            assert (
                routed_chunks[0].routing is not None
                and routed_chunks[0].routing.selected_model == "gpt-4o-mini"
            )

    asyncio.run(main())


def test_async_requests_run_concurrently_on_one_client(gateway: Gateway, key: str, fresh: Any) -> None:
    async def main() -> list[str | None]:
        async with AsyncLunar(api_key=key, base_url=gateway.url) as client:
            answers = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": f"n{i}"}]
                    )
                    for i in range(8)
                )
            )
        return [a.choices[0].message.content for a in answers]

    assert asyncio.run(main()) == [f"Hello from A: n{i}" for i in range(8)]

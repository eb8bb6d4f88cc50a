"""Every curl example of the API reference (../shared/spec/api-reference.txt), as a test against a
real gateway process and the fake upstreams, reached through litellm for real."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from tests.service.conftest import RELAY
from tests.service.gateway_server import Gateway
from tests.service.sse import stream

USAGE_FIELDS = {
    "prompt_tokens", "completion_tokens", "total_tokens", "input_cost_usd", "output_cost_usd",
    "cache_input_cost_usd", "total_cost_usd", "latency_ms", "ttft_ms",
}  # fmt: skip


def h(key: str) -> dict[str, str]:
    return {"x-api-key": key, "Content-Type": "application/json"}


def check_usage(usage: dict[str, Any], input_per_mtok: float, output_per_mtok: float) -> None:
    assert set(usage) >= USAGE_FIELDS
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["input_cost_usd"] == pytest.approx(usage["prompt_tokens"] * input_per_mtok / 1e6)
    assert usage["output_cost_usd"] == pytest.approx(usage["completion_tokens"] * output_per_mtok / 1e6)
    assert usage["total_cost_usd"] == pytest.approx(usage["input_cost_usd"] + usage["output_cost_usd"])
    assert usage["latency_ms"] > 0
    assert 0 < usage["ttft_ms"] <= usage["latency_ms"]


def test_chat_completion(gateway: Gateway, fresh: Any, key: str) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Hello!"},
        ],
        "max_tokens": 100,
        "temperature": 0.7,
        "stream": False,
    }
    r = gateway.http.post("/v1/chat/completions", headers=h(key), json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion" and data["model"] == "gpt-4o-mini"
    assert data["id"] == r.headers["x-request-id"] and isinstance(data["created"], int)  # for /v1/feedback
    choice = data["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "Hello from A: Hello!"}
    # the fake counts words + 3 per message: 3 + 3 + 1 + 3
    assert (data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"]) == (10, 4)
    check_usage(data["usage"], 0.15, 0.60)
    sent = fresh[0].requests()[-1]
    assert sent["body"]["max_tokens"] == 100 and sent["body"]["temperature"] == 0.7
    assert sent["body"]["messages"] == body["messages"]
    assert sent["headers"]["authorization"] == "Bearer sk-openai-Xy7Qw2"  # the provider key, not ours
    assert r.headers["x-request-id"].startswith("req_")


def test_chat_completion_streamed(gateway: Gateway, fresh: Any, key: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}],
            "max_tokens": 100, "temperature": 0.7, "stream": True}  # fmt: skip
    r, events = stream(gateway.http, "/v1/chat/completions", h(key), body)
    assert r.status_code == 200
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-4o-mini" for c in chunks)
    assert {c["id"] for c in chunks} == {r.headers["x-request-id"]}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Hello from A: Hello!"
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"] == {}
    check_usage(last["usage"], 0.15, 0.60)
    assert last["usage"]["completion_tokens"] == 4
    assert fresh[0].requests()[-1]["body"]["stream_options"] == {"include_usage": True}


def test_chat_stream_with_include_usage_gets_openais_usage_chunk(
    gateway: Gateway, fresh: Any, key: str
) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    _, events = stream(gateway.http, "/v1/chat/completions", h(key), body)
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] > 0
    assert events[-3]["choices"][0]["finish_reason"] == "stop"


def test_text_completion(gateway: Gateway, fresh: Any, key: str) -> None:
    body = {"model": "gpt-4o-mini", "prompt": "The capital of France is", "max_tokens": 50,
            "temperature": 0.7, "stream": False}  # fmt: skip
    r = gateway.http.post("/v1/completions", headers=h(key), json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "text_completion" and data["model"] == "gpt-4o-mini"
    assert data["choices"][0]["text"] == "Hello from A: The capital of France is"
    assert data["choices"][0]["finish_reason"] == "stop"
    check_usage(data["usage"], 0.15, 0.60)
    # gpt-4o-mini is a chat model: litellm sends the prompt as one user message
    assert fresh[0].requests()[-1]["body"]["messages"] == [
        {"role": "user", "content": "The capital of France is"}
    ]


def test_text_completion_streamed(gateway: Gateway, fresh: Any, key: str) -> None:
    body = {"model": "gpt-4o-mini", "prompt": "Hello", "max_tokens": 1024, "temperature": 0.7, "stream": True}
    r, events = stream(gateway.http, "/v1/completions", h(key), body)
    assert r.status_code == 200 and events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "text_completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello from A: Hello"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    check_usage(chunks[-1]["usage"], 0.15, 0.60)


def test_models(gateway: Gateway, key: str) -> None:
    r = gateway.http.get("/v1/models", headers=h(key))
    assert r.status_code == 200
    data = r.json()
    assert data["object"] == "list"
    ids = [m["id"] for m in data["data"]]
    assert ids[:4] == ["gpt-4o-mini", "codestral-latest", "gpt-4o", "claude-3-haiku"]
    assert "disabled-model" not in ids
    assert data["data"][0] == {
        "id": "gpt-4o-mini",
        "object": "model",
        "created": 1699000000,
        "owned_by": "openai",
    }


def test_models_lists_only_what_the_key_may_use(gateway: Gateway) -> None:
    limited = gateway.new_key(tenant="t-limited", models=["claude-3-haiku", "gpt-4o-mini"])
    ids = [m["id"] for m in gateway.http.get("/v1/models", headers=h(limited)).json()["data"]]
    assert ids == ["gpt-4o-mini", "claude-3-haiku"]


def test_providers(gateway: Gateway, key: str) -> None:
    r = gateway.http.get("/v1/providers", params={"model": "gpt-4o-mini"}, headers=h(key))
    assert r.status_code == 200
    reference = ("id", "type", "enabled", "params")
    providers = r.json()["providers"]
    assert [{k: p[k] for k in reference} for p in providers] == [
        {"id": "openai", "type": "primary", "enabled": True, "params": {}},
        {"id": "groq", "type": "backup", "enabled": True, "params": {}},
    ]
    # beyond the reference: whether this gateway can call each, and what the model takes there
    assert [p["configured"] for p in providers] == [True, True]
    assert providers[0]["features"]["vision"] is True  # litellm's map for gpt-4o-mini
    unset = gateway.http.get("/v1/providers", params={"model": "unconfigured-model"}, headers=h(key))
    assert unset.json()["providers"][0]["configured"] is False
    assert unset.json()["providers"][0]["missing"] == ["TEST_UNSET_KEY_NOBODY_SETS"]
    missing = gateway.http.get("/v1/providers", headers=h(key))
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"
    unknown = gateway.http.get("/v1/providers", params={"model": "gpt-9"}, headers=h(key))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


def test_router_auto_mode_executes(gateway: Gateway, fresh: Any, key: str) -> None:
    body = {"messages": [{"role": "user", "content": "Write a haiku about programming"}], "execute": True}
    r = gateway.http.post("/v1/router", headers=h(key), json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    routing = data["routing"]
    assert set(routing) == {"selected_model", "reasoning", "confidence"}
    assert data["model"] == routing["selected_model"]
    assert data["object"] == "chat.completion" and 0 < routing["confidence"] <= 1
    assert data["choices"][0]["message"]["content"].endswith("Write a haiku about programming")
    assert data["usage"]["total_cost_usd"] > 0
    served = [req["model"] for u in fresh for req in u.requests()]
    assert served == [routing["selected_model"].removeprefix("pureai/")]


def test_router_restricted_mode(gateway: Gateway, fresh: Any, key: str) -> None:
    body = {"messages": [{"role": "user", "content": "Write Python code to sort a list"}],
            "models": ["gpt-4o-mini", "codestral-latest"], "cost_weight": 0.5, "execute": True}  # fmt: skip
    r = gateway.http.post("/v1/router", headers=h(key), json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["routing"]["selected_model"] in ("gpt-4o-mini", "codestral-latest")
    assert data["model"] == data["routing"]["selected_model"]


def test_router_decision_only_calls_no_provider(gateway: Gateway, fresh: Any, key: str) -> None:
    body = {"messages": [{"role": "user", "content": "What is the capital of Brazil?"}], "execute": False}
    r = gateway.http.post("/v1/router", headers=h(key), json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert {"selected_model", "reasoning", "confidence"} <= set(data)
    assert isinstance(data["reasoning"], str) and data["reasoning"]
    enabled = [m["id"] for m in gateway.http.get("/v1/models", headers=h(key)).json()["data"]]
    assert data["selected_model"] in enabled
    assert sorted(c["model"] for c in data["candidates"]) == sorted(enabled)
    assert data["capabilities"]["knowledge"] == max(data["capabilities"].values())
    assert fresh[0].requests() == [] and fresh[1].requests() == []
    # the router's own time, as a Server-Timing metric: positive, and less than the whole request
    name, dur = r.headers["server-timing"].split(";")
    assert name == "decide" and dur.startswith("dur=")
    assert 0 < float(dur[4:]) < r.elapsed.total_seconds() * 1000


def test_a_decision_beside_an_open_stream_is_the_one_made_alone(
    gateway: Gateway, fresh: Any, key: str
) -> None:
    """A worker alone decides on its event loop, and with other requests in flight on its decision
    thread (Gateway._deciding): the same decision either way."""
    body = {"messages": [{"role": "user", "content": "Prove that there are infinitely many primes."}],
            "models": ["gpt-4o", "gpt-4o-mini", "codestral-latest"], "cost_weight": 0.3, "execute": False}  # fmt: skip

    def decide() -> dict[str, Any]:
        r = gateway.http.post("/v1/router", headers=h(key), json=body)
        assert r.status_code == 200, r.text
        return {k: v for k, v in r.json().items() if k != "id"}

    alone = decide()
    for upstream in fresh:
        upstream.script({"first_chunk_delay_ms": 30_000})  # a stream that stays open
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.Client(base_url=gateway.url, timeout=30, trust_env=False) as other:
        held = threading.Thread(
            target=other.post, args=("/v1/chat/completions",), kwargs={"headers": h(key), "json": chat}
        )
        held.start()  # its answer waits for the upstream's first chunk: in flight until the timeout
        try:
            deadline = time.monotonic() + 10
            while not any(u.requests() for u in fresh):  # the stream is in flight in the gateway
                assert time.monotonic() < deadline, "the stream never reached the upstream"
                time.sleep(0.01)  # polling a bounded loop
            beside = decide()
            assert held.is_alive()  # still in flight after the decision
        finally:
            held.join()
    assert beside == alone
    assert decide() == alone


def test_router_cost_weight_moves_the_choice_to_cheaper_models(gateway: Gateway, key: str) -> None:
    def choose(w: float) -> dict[str, Any]:
        body = {"messages": [{"role": "user", "content": "Prove that the square root of 2 is irrational."}],
                "models": ["gpt-4o", "gpt-4o-mini"], "cost_weight": w, "execute": False}  # fmt: skip
        return dict(gateway.http.post("/v1/router", headers=h(key), json=body).json())

    best, cheap = choose(0.0), choose(1.0)
    assert best["selected_model"] == "gpt-4o"
    assert cheap["selected_model"] == "gpt-4o-mini"


def test_router_streamed(gateway: Gateway, fresh: Any, key: str) -> None:
    body = {"messages": [{"role": "user", "content": "Tell me a joke"}], "stream": True, "execute": True}
    r, events = stream(gateway.http, "/v1/router", h(key), body)
    assert r.status_code == 200 and events[-1] == "[DONE]"
    first = events[0]
    assert set(first["routing"]) == {"selected_model", "reasoning", "confidence"}
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert first["model"] == first["routing"]["selected_model"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in events[:-1])
    assert text.endswith("Tell me a joke")
    assert events[-2]["usage"]["completion_tokens"] > 0
    assert sum("role" in c["choices"][0]["delta"] for c in events[:-1]) == 1


@pytest.mark.parametrize("stream_it", [False, True])
def test_custom_deployment_text_completion(gateway: Gateway, fresh: Any, key: str, stream_it: bool) -> None:
    body = {"model": "pureai/gemma-3-4b-it", "prompt": "Hello", "max_tokens": 1024, "temperature": 0.7,
            "stream": stream_it}  # fmt: skip
    if stream_it:
        r, events = stream(gateway.http, "/v1/completions", h(key), body)
        text = "".join(c["choices"][0]["text"] for c in events[:-1])
        assert events[-1] == "[DONE]"
        usage = events[-2]["usage"]
    else:
        r = gateway.http.post("/v1/completions", headers=h(key), json=body)
        text = r.json()["choices"][0]["text"]
        usage = r.json()["usage"]
    assert r.status_code == 200
    assert text == "Hello from A: Hello"
    check_usage(usage, 0.02, 0.04)
    sent = fresh[0].requests()[-1]
    assert sent["model"] == "gemma-3-4b-it"
    assert (
        sent["path"] == "/v1/completions" and sent["body"]["prompt"] == "Hello"
    )  # raw prompt, no chat template


def test_custom_deployment_chat(gateway: Gateway, fresh: Any, key: str) -> None:
    body = {"model": "pureai/gemma-3-4b-it", "messages": [{"role": "user", "content": "Hello!"}],
            "max_tokens": 1024, "temperature": 0.7}  # fmt: skip
    r = gateway.http.post("/v1/chat/completions", headers=h(key), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "pureai/gemma-3-4b-it"
    assert r.json()["choices"][0]["message"]["content"] == "Hello from A: Hello!"


def test_text_completions_on_a_deployment_send_the_raw_prompt(gateway: Gateway, fresh: Any, key: str) -> None:
    # A deployment's /v1/completions goes through the relay (one aiohttp session, its pool shared by
    # every call; test_relay.py shows sequential calls on one kept-alive connection). Through the
    # gateway, the pool may hold idle connections from earlier tests, which aiohttp hands out in
    # turn, so distinct peers here do not mean new connections: the raw prompt and the path are
    # what is checked, and /ready names the relay (litellm's transport when the relay is off).
    body = {"model": "pureai/gemma-3-4b-it", "prompt": "Hello", "max_tokens": 5}
    for stream_it in (False, True, False, True):
        if stream_it:
            r, _ = stream(gateway.http, "/v1/completions", h(key), {**body, "stream": True})
        else:
            r = gateway.http.post("/v1/completions", headers=h(key), json=body)
        assert r.status_code == 200
    sent = fresh[0].requests()
    assert [(req["path"], req["body"]["prompt"]) for req in sent] == [("/v1/completions", "Hello")] * 4
    via = "relay (aiohttp)" if RELAY else "LiteLLMAiohttpTransport"
    assert via in gateway.http.get("/ready").json()["upstream_transports"]


def test_auto_routing_leaves_out_models_without_a_configured_provider(gateway: Gateway, fresh: Any) -> None:
    key = gateway.new_key(tenant="t-unconfigured", models=["unconfigured-model", "gpt-4o"])
    body = {"messages": [{"role": "user", "content": "Say hi"}], "cost_weight": 1.0}
    decision = gateway.http.post("/v1/router", headers=h(key), json={**body, "execute": False}).json()
    # the cheaper one cannot run here: a decision names only what an execution could run
    assert decision["selected_model"] == "gpt-4o"
    [left_out] = [c for c in decision["candidates"] if not c["eligible"]]
    assert (left_out["model"], left_out["reason"]) == ("unconfigured-model", "no_credentials")
    assert "TEST_UNSET_KEY_NOBODY_SETS" in left_out["detail"]
    executed = gateway.http.post("/v1/router", headers=h(key), json=body)
    assert executed.status_code == 200, executed.text
    assert executed.json()["routing"]["selected_model"] == "gpt-4o"

"""GET /v1/usage: the ledger read back, and the transport litellm uses upstream."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.service.gateway_server import Gateway
from tests.service.sse import stream


def h(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def rows_of(gateway: Gateway, key: str, want: int, **params: Any) -> dict[str, Any]:
    """The key's usage once it holds `want` rows (refused requests are written in the background)."""
    deadline = time.monotonic() + 5
    while True:
        body: dict[str, Any] = gateway.http.get("/v1/usage", headers=h(key), params=params).json()
        if len(body["data"]) >= want or time.monotonic() > deadline:
            return body
        time.sleep(0.02)  # polling a background write, bounded by the deadline


def test_every_request_has_a_ledger_row_matching_its_usage(gateway: Gateway, fresh: Any, key: str) -> None:
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]}
    plain = gateway.http.post("/v1/chat/completions", headers=h(key), json=chat).json()
    _, events = stream(gateway.http, "/v1/chat/completions", h(key), {**chat, "stream": True})
    streamed = events[-2]["usage"]
    gateway.http.post("/v1/router", headers=h(key), json={"messages": chat["messages"], "execute": False})
    refused = gateway.http.post("/v1/chat/completions", headers=h(key), json={**chat, "model": "gpt-9"})
    assert refused.status_code == 404

    body = rows_of(gateway, key, 4)
    rows = sorted(body["data"], key=lambda r: r["created"])
    assert [(r["endpoint"], r["status"], r["stream"]) for r in rows] == [
        ("chat.completions", 200, False),
        ("chat.completions", 200, True),
        ("router", 200, False),
        ("chat.completions", 404, False),
    ]
    first, second, decision, missing = rows
    for row, usage in ((first, plain["usage"]), (second, streamed)):
        for field in ("prompt_tokens", "completion_tokens", "total_cost_usd", "latency_ms", "ttft_ms"):
            assert row[field] == pytest.approx(usage[field]), field
        assert (row["model"], row["provider"], row["attempts"], row["error"]) == (
            "gpt-4o-mini",
            "openai",
            1,
            None,
        )
    assert decision["routed"] and decision["total_cost_usd"] == 0 and decision["model"]
    assert (missing["model"], missing["error"]) == ("gpt-9", "model_not_found")
    assert body["totals"]["requests"] == 4
    assert body["totals"]["total_cost_usd"] == pytest.approx(
        plain["usage"]["total_cost_usd"] + streamed["total_cost_usd"]
    )


def test_usage_filters_by_time_and_limit(gateway: Gateway, fresh: Any, key: str) -> None:
    chat = {"model": "claude-3-haiku", "messages": [{"role": "user", "content": "x"}]}
    before = time.time()
    for _ in range(3):
        assert gateway.http.post("/v1/chat/completions", headers=h(key), json=chat).status_code == 200
    after = time.time()
    assert len(rows_of(gateway, key, 3, start=before, end=after)["data"]) == 3
    assert rows_of(gateway, key, 0, start=after + 1)["data"] == []
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(before - 1))
    assert len(rows_of(gateway, key, 3, start=iso)["data"]) == 3
    assert len(rows_of(gateway, key, 1, limit=1)["data"]) == 1
    bad = gateway.http.get("/v1/usage", headers=h(key), params={"start": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "start"
    assert gateway.http.get("/v1/usage", headers=h(key), params={"limit": "0"}).status_code == 400


def test_totals_cover_every_matching_row_not_only_the_page(gateway: Gateway, fresh: Any) -> None:
    key = gateway.new_key(tenant="t-totals")
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "count me"}]}
    usages = [
        gateway.http.post("/v1/chat/completions", headers=h(key), json=chat).json()["usage"] for _ in range(3)
    ]
    whole = rows_of(gateway, key, 3)
    assert len(whole["data"]) == 3
    for limit in (1, 2, 3):
        page = gateway.http.get("/v1/usage", headers=h(key), params={"limit": limit}).json()
        assert len(page["data"]) == limit
        assert page["totals"] == whole["totals"]
    totals = whole["totals"]
    assert totals["requests"] == 3
    assert totals["prompt_tokens"] == sum(u["prompt_tokens"] for u in usages)
    assert totals["completion_tokens"] == sum(u["completion_tokens"] for u in usages)
    assert totals["total_cost_usd"] == pytest.approx(sum(u["total_cost_usd"] for u in usages))
    later = gateway.http.get("/v1/usage", headers=h(key), params={"start": time.time() + 60}).json()
    assert later["data"] == [] and later["totals"]["requests"] == 0  # filters still apply


def test_a_key_reads_only_its_own_rows_an_admin_reads_any(gateway: Gateway, fresh: Any) -> None:
    mine = gateway.new_key(tenant="t-mine")
    theirs = gateway.new_key(tenant="t-theirs")
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    gateway.http.post("/v1/chat/completions", headers=h(theirs), json=chat)
    assert gateway.http.get("/v1/usage", headers=h(mine)).json()["data"] == []
    own = gateway.http.get("/v1/usage", headers=h(mine), params={"tenant": "t-theirs"}).json()
    assert own["data"] == []  # a tenant key cannot widen its view
    admin = gateway.http.get("/v1/usage", headers=gateway.admin(), params={"tenant": "t-theirs"}).json()
    assert len(admin["data"]) == 1 and admin["data"][0]["tenant"] == "t-theirs"


def test_ready_reports_the_relay_and_litellms_aiohttp_transport(
    gateway: Gateway, fresh: Any, key: str
) -> None:
    # a chat to an OpenAI-compatible api_base goes through the relay; a text completion of a chat
    # model goes through litellm (which makes the prompt a message), on its aiohttp transport
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    assert gateway.http.post("/v1/chat/completions", headers=h(key), json=chat).status_code == 200
    text = {"model": "gpt-4o-mini", "prompt": "x"}
    assert gateway.http.post("/v1/completions", headers=h(key), json=text).status_code == 200
    ready = gateway.http.get("/ready").json()
    assert ready["status"] == "ready"
    assert {"relay (aiohttp)", "LiteLLMAiohttpTransport"} <= set(ready["upstream_transports"])


def test_tokens_per_minute_refuse_once_the_window_holds_the_limit(gateway: Gateway, fresh: Any) -> None:
    """Each request reserves its worst case (prompt + max_tokens) in the window: the key is refused
    before the tokens it used would pass its tpm, never after (test_tpm.py: under concurrency)."""
    key = gateway.new_key(tenant="t-tpm", tpm=60)
    chat = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "one two three"}],
        "max_tokens": 5,
    }
    calls = []
    for _ in range(60):
        calls.append(gateway.http.post("/v1/chat/completions", headers=h(key), json=chat))
        if calls[-1].status_code != 200:
            break
    refused, answered = calls[-1], calls[:-1]
    assert len(answered) >= 2 and all(c.status_code == 200 for c in answered)
    assert answered[0].headers["x-ratelimit-limit-tokens"] == "60"
    used = sum(c.json()["usage"]["total_tokens"] for c in answered)
    assert 0 < used <= 60
    assert refused.status_code == 429
    assert (
        refused.json()["error"]["type"] == "tokens"
        and refused.json()["error"]["code"] == "rate_limit_exceeded"
    )
    assert int(refused.headers["x-ratelimit-remaining-tokens"]) < 60 - used + 1
    assert int(refused.headers["retry-after"]) >= 1

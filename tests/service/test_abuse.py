"""Hostile bodies (issue 20, item 3), against a real gateway process with the circuit breaker on:
a refused request (400, 404 for an unknown model, 413) uses the key's requests per minute like any
other and never touches a provider's breaker; every identifier a client sends is capped (a 400
naming it beyond); nothing a client sends reaches the ledger, an error or a log line unbounded.

The report this answers: a key at rpm 10 sent 30 requests naming a 9 MB model, got 30 x 404 and no
429, and the store grew 334 MB in 2.3 s, with 1 MB access lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.protocol import (
    MAX_ID_CHARS,
    MAX_METRIC_CHARS,
    MAX_MODEL_CHARS,
    MAX_NAME_CHARS,
    MAX_STOP_CHARS,
    MAX_USER_CHARS,
)
from tests.service.calls import h, ledger
from tests.service.conftest import TEST_STORE, gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway

Upstreams = tuple[FakeUpstream, FakeUpstream]

CHAT, TEXT, ROUTER, FEEDBACK = "/v1/chat/completions", "/v1/completions", "/v1/router", "/v1/feedback"
MAX_BODY = 2 * 1024 * 1024  # PUREAI_MAX_BODY_BYTES: a 1 MB model name fits, a 413 is cheap to send
MB = 1024 * 1024
HI = [{"role": "user", "content": "Hi"}]
LINE_BOUND = 4096  # characters: the longest log line a flood of 1 MB names may produce
ROW_BOUND = 2048  # characters: the longest ledger row (as GET /v1/usage returns it)
STORE_BOUND = 1 * MB  # bytes the SQLite files may grow by for 30 refused requests


@pytest.fixture(scope="module")
def guarded(catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with the circuit breaker on (2 failures open a provider for a minute: a refusal
    counted as a failure would send the next request to the backup), logging text lines (where a
    newline in a client's string would start a line of its own; JSON escapes it anyway)."""
    data = tmp_path_factory.mktemp("abuse")
    env = gateway_env(
        catalogue_file,
        data,
        PUREAI_MAX_BODY_BYTES=str(MAX_BODY),
        PUREAI_BREAKER_FAILURES="2",
        PUREAI_BREAKER_WINDOW_S="60",
        PUREAI_BREAKER_COOLDOWN_S="60",
        PUREAI_LOG_FORMAT="text",
    )
    with Gateway.start(env) as gw:
        gw.data = data  # type: ignore[attr-defined]
        yield gw


def chat(content: str = "Hi", model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def store_bytes(gw: Gateway) -> int:
    """The size of the SQLite files (database, WAL) under the gateway's data directory."""
    data: Path = gw.data  # type: ignore[attr-defined]
    return sum(p.stat().st_size for p in data.iterdir() if p.name.startswith("pureai.db"))


def rows_of(gw: Gateway, key: str, count: int) -> list[dict[str, Any]]:
    """The key's `count` ledger rows, polled: a refusal's row is written after its response."""
    deadline = time.monotonic() + 10.0
    while True:
        rows = ledger(gw, key)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)  # polling a bounded loop, as calls.wait_row does


def new_lines(gw: Gateway, since: int, until: str) -> list[str]:
    """The gateway's log lines after the first `since` characters, polled until one holds `until`
    (the access line is written once the response has been sent)."""
    deadline = time.monotonic() + 10.0
    while True:
        lines = gw.logs()[since:].splitlines()
        if any(until in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)  # polling a bounded loop, as calls.wait_row does


def err(r: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text[:500]
    body = r.json()
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])
    if param is not None:
        assert body["error"]["param"] == param, body
    return dict(body["error"])


# -- (1) the amplifier --------------------------------------------------------------------------


def test_a_flood_of_huge_model_names_is_rate_limited_and_writes_almost_nothing(
    guarded: Gateway, fresh: Upstreams
) -> None:
    key = guarded.new_key(tenant="t-abuse", rpm=10)
    huge = "m" * MB
    long_unknown = "u" * MAX_MODEL_CHARS  # as long as a name may be, and no model's
    bodies = [
        (CHAT, {"model": huge, "messages": HI}, 400, "model"),
        (TEXT, {"model": long_unknown, "prompt": "Hi"}, 404, "model"),
        (ROUTER, {"messages": HI, "models": [huge]}, 400, "models.0"),
    ]
    logged = len(guarded.logs())
    stored = store_bytes(guarded) if TEST_STORE == "sqlite" else 0
    answers = []
    for i in range(30):
        path, body, _, _ = bodies[i % 3]
        answers.append(guarded.http.post(path, headers=h(key), json=body))
    for i, r in enumerate(answers[:10]):
        _, _, status, param = bodies[i % 3]
        e = err(r, status, param)
        assert len(r.text) < 1000 and "m" * 200 not in r.text
        if status == 404:  # names the first 100 characters, and says it cut them
            assert e["code"] == "model_not_found" and f"'{'u' * 100}…'" in e["message"]
        assert r.headers["x-ratelimit-remaining-requests"] == str(9 - i)
    for r in answers[10:]:
        assert err(r, 429)["code"] == "rate_limit_exceeded"
    assert fresh[0].requests() == [] and fresh[1].requests() == []

    rows = rows_of(guarded, key, 30)
    assert len(rows) == 30
    assert sorted(row["status"] for row in rows) == [400] * 7 + [404] * 3 + [429] * 20
    for row in rows:
        assert len(json.dumps(row)) < ROW_BOUND, row
        assert row["model"] in (None, long_unknown), row["model"][:100]
    if TEST_STORE == "sqlite":
        assert store_bytes(guarded) - stored < STORE_BOUND
    last = answers[-1].headers["x-request-id"]
    lines = new_lines(guarded, logged, last)
    ids = {r.headers["x-request-id"] for r in answers}
    access = [line for line in lines if "pureai.access" in line and line.split("[", 1)[1][:28] in ids]
    assert len(access) == 30  # one line each, none split by what a client sent
    assert max(len(line) for line in lines) < LINE_BOUND
    assert "m" * 1000 not in "".join(lines)


# -- (2) refusals count toward rpm ----------------------------------------------------------------


def oversized(body: dict[str, Any]) -> bytes:
    """`body` padded past the body limit (an unknown field, dropped were it read)."""
    return json.dumps({**body, "pad": "x" * MAX_BODY}).encode()


@pytest.mark.parametrize(
    ("path", "unknown", "valid"),
    [
        (CHAT, chat(model="gpt-9"), chat()),
        (TEXT, {"model": "gpt-9", "prompt": "Hi"}, {"model": "gpt-4o-mini", "prompt": "Hi"}),
        (ROUTER, {"messages": HI, "models": ["gpt-9"]}, {"messages": HI, "models": ["gpt-4o-mini"]}),
        (FEEDBACK, {"request_id": "req_" + "0" * 24, "score": 1.0}, None),
    ],
    ids=["chat", "text", "router", "feedback"],
)
def test_unknown_models_bad_bodies_and_413s_count_toward_rpm(
    guarded: Gateway, fresh: Upstreams, path: str, unknown: dict[str, Any], valid: dict[str, Any] | None
) -> None:
    key = guarded.new_key(tenant="t-abuse", rpm=4)
    post = guarded.http.post
    refusals = [
        (post(path, headers=h(key), json=unknown), 404),
        (post(path, headers=h(key), content=b'{"model": "gpt-4o-mini", "messages": ['), 400),
        (post(path, headers=h(key), content=oversized(unknown)), 413),  # by its Content-Length
    ]

    def chunked() -> Iterator[bytes]:
        raw = oversized(unknown)
        for i in range(0, len(raw), 65536):
            yield raw[i : i + 65536]

    r = post(path, headers=h(key), content=chunked())
    assert r.request.headers.get("transfer-encoding") == "chunked"
    refusals.append((r, 413))
    for i, (r, status) in enumerate(refusals):
        e = err(r, status)
        assert status != 413 or e["code"] == "request_too_large"
        if path != FEEDBACK:  # a refusal says what is left, as an answer does (feedback: no ledger)
            assert r.headers["x-ratelimit-remaining-requests"] == str(3 - i)
    refused = post(path, headers=h(key), json=valid or unknown)
    assert err(refused, 429)["code"] == "rate_limit_exceeded"
    assert fresh[0].requests() == [] and fresh[1].requests() == []


def test_a_request_refused_for_its_body_before_admission_is_not_counted_twice(
    guarded: Gateway, fresh: Upstreams
) -> None:
    """rpm 2: one refusal, one answer, then the limit: each request counted once."""
    key = guarded.new_key(tenant="t-abuse", rpm=2)
    err(guarded.http.post(CHAT, headers=h(key), json=chat(model="gpt-9")), 404)
    ok = guarded.http.post(CHAT, headers=h(key), json=chat())
    assert ok.status_code == 200, ok.text
    assert ok.headers["x-ratelimit-remaining-requests"] == "0"
    err(guarded.http.post(CHAT, headers=h(key), json=chat()), 429)
    assert len(fresh[0].requests()) == 1


# -- (3) the breaker --------------------------------------------------------------------------------


def test_refusals_never_trip_a_providers_breaker(guarded: Gateway, fresh: Upstreams) -> None:
    key = guarded.new_key(tenant="t-abuse")
    a, b = fresh
    bad_tools = chat(tools=[{"type": "function", "function": {"name": "f" * (MAX_NAME_CHARS + 1)}}])
    too_long = chat("word " * 170_000)  # surely past gpt-4o-mini's 128k tokens, under the body limit
    refusals = [
        (CHAT, {"json": chat(model="gpt-9")}, 404),
        (CHAT, {"json": bad_tools}, 400),
        (CHAT, {"json": chat(temperature=9)}, 400),
        (CHAT, {"content": b'{"model": "gpt-4o-mini"'}, 400),
        (CHAT, {"content": oversized(chat())}, 413),
        (CHAT, {"json": too_long}, 400),
        (TEXT, {"json": {"model": "gpt-4o-mini", "prompt": "Hi", "stop": ["s" * 300]}}, 400),
        (ROUTER, {"json": {"messages": HI, "models": ["gpt-4o-mini"], "user": "u" * 300}}, 400),
    ]
    for _ in range(3):  # each more often than the 2 failures that open a circuit
        for path, kw, status in refusals:
            err(guarded.http.post(path, headers=h(key), **kw), status)
    assert a.requests() == [] and b.requests() == []
    ready = guarded.http.get("/ready").json()
    assert ready["providers"] == {}, ready["providers"]  # no circuit open or half-open
    r = guarded.http.post(CHAT, headers=h(key), json=chat())
    assert r.status_code == 200, r.text
    assert r.headers["x-pureai-provider"] == "openai"  # the primary, not the backup
    assert len(a.requests()) == 1 and b.requests() == []


# -- (4) every cap is a 400 naming its field ------------------------------------------------------


def function(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


OVER = MAX_NAME_CHARS + 1
CAPS = [
    (CHAT, chat(model="m" * (MAX_MODEL_CHARS + 1)), "model"),
    (TEXT, {"model": "m" * (MAX_MODEL_CHARS + 1), "prompt": "Hi"}, "model"),
    (ROUTER, {"messages": HI, "models": ["gpt-4o-mini", "m" * (MAX_MODEL_CHARS + 1)]}, "models.1"),
    (CHAT, chat(user="u" * (MAX_USER_CHARS + 1)), "user"),
    (ROUTER, {"messages": HI, "user": "u" * (MAX_USER_CHARS + 1)}, "user"),
    (CHAT, chat(tools=[function("f"), function("f" * OVER)]), "tools"),
    (CHAT, chat(tools=[function("f")], tool_choice={"type": "function", "function": {"name": "f" * OVER}}), "tool_choice"),
    (CHAT, chat(functions=[{"name": "f" * OVER}]), "functions"),
    (CHAT, chat(function_call={"name": "f" * OVER}), "function_call"),
    (CHAT, chat(response_format={"type": "json_schema", "json_schema": {"name": "s" * OVER}}), "response_format"),
    (
        CHAT,
        chat(
            messages=[
                *HI,
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f" * OVER, "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ]
        ),
        "messages.1.tool_calls",
    ),
    (CHAT, chat(stop="s" * (MAX_STOP_CHARS + 1)), "stop"),
    (TEXT, {"model": "gpt-4o-mini", "prompt": "Hi", "stop": ["a", "s" * (MAX_STOP_CHARS + 1)]}, "stop"),
    (FEEDBACK, {"request_id": "r" * (MAX_ID_CHARS + 1), "score": 1.0}, "request_id"),
    (FEEDBACK, {"request_id": "req_x", "score": 1.0, "metric": "m" * (MAX_METRIC_CHARS + 1)}, "metric"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "param"), CAPS, ids=[f"{p}:{param}" for p, _, param in CAPS])
def test_each_cap_is_a_400_naming_its_field(
    guarded: Gateway, fresh: Upstreams, path: str, body: dict[str, Any], param: str
) -> None:
    key = guarded.new_key(tenant="t-abuse")
    e = err(guarded.http.post(path, headers=h(key), json=body), 400, param)
    assert e["type"] == "invalid_request_error" and e["code"] == "invalid_value"
    assert len(e["message"]) < 300, e["message"]
    assert fresh[0].requests() == [] and fresh[1].requests() == []


def test_identifiers_at_their_caps_are_served_and_forwarded(guarded: Gateway, fresh: Upstreams) -> None:
    key = guarded.new_key(tenant="t-abuse")
    name, user, stop = "f" * MAX_NAME_CHARS, "u" * MAX_USER_CHARS, "s" * MAX_STOP_CHARS
    body = chat(tools=[function(name)], tool_choice="auto", user=user, stop=[stop])
    r = guarded.http.post(CHAT, headers=h(key), json=body)
    assert r.status_code == 200, r.text
    sent = fresh[0].requests()[-1]["body"]
    assert sent["user"] == user and sent["stop"] == [stop]
    assert sent["tools"][0]["function"]["name"] == name
    legacy = chat(functions=[{"name": name, "parameters": {"type": "object"}}], function_call={"name": name})
    r = guarded.http.post(CHAT, headers=h(key), json=legacy)
    assert r.status_code == 200, r.text
    sent = fresh[0].requests()[-1]["body"]
    assert sent["functions"][0]["name"] == name and sent["function_call"] == {"name": name}
    # a name as long as a name may be is looked up, and not found
    err(guarded.http.post(CHAT, headers=h(key), json=chat(model="m" * MAX_MODEL_CHARS)), 404, "model")


def test_feedback_ids_and_unknown_fields_are_capped(guarded: Gateway, fresh: Upstreams) -> None:
    key = guarded.new_key(tenant="t-abuse")
    r = guarded.http.get(FEEDBACK, headers=h(key), params={"request_id": "r" * (MAX_ID_CHARS + 1)})
    err(r, 400, "request_id")
    unknown = "k" * MB
    e = err(guarded.http.post(FEEDBACK, headers=h(key), json={"request_id": "req_x", unknown: 1}), 400)
    assert len(e["param"]) <= 256 and len(e["message"]) < 1100
    missing = "r" * MAX_ID_CHARS
    e = err(guarded.http.post(FEEDBACK, headers=h(key), json={"request_id": missing, "score": 1.0}), 404)
    assert f"'{'r' * 100}…'" in e["message"] and len(e["message"]) < 200


def test_a_path_holding_control_characters_stays_one_log_line(guarded: Gateway) -> None:
    logged = len(guarded.logs())
    r = guarded.http.get("/v1/nope%0Aforged%20line%1B[31m" + "p" * 5000)
    err(r, 404)
    assert len(r.json()["error"]["message"]) < 200
    lines = new_lines(guarded, logged, r.headers["x-request-id"])
    access = [line for line in lines if "/v1/nope" in line]
    assert len(access) == 1 and len(access[0]) < LINE_BOUND, lines
    assert not any(line.startswith("forged") for line in lines)
    assert "\x1b" not in access[0]

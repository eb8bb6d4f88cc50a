"""Streams under faults (reliability cases 7-9, 12-14): an upstream breaking after the first chunk,
malformed SSE, a missing [DONE], slow streams, clients that go away, and many streams at once,
against a real gateway process and the fake upstreams (A serves gpt-4o-mini's primary provider).

Faults that need a short per-event timeout run on a gateway of this module with QUICK_S.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service.calls import ask, chat, frames, h, text_of, wait_row
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway

SESSION_TIMEOUT_S = 3.0  # PUREAI_REQUEST_TIMEOUT_S of the session gateway (conftest.gateway_env)
QUICK_S = 0.5
SLACK_S = 1.0
LONG = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"  # 12 pieces
ERROR_FIELDS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def quick(
    upstreams: tuple[FakeUpstream, FakeUpstream],
    catalogue_file: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    """A gateway whose upstream waits (for headers, or between stream events) time out after QUICK_S."""
    env = gateway_env(
        catalogue_file, tmp_path_factory.mktemp("streaming"), PUREAI_REQUEST_TIMEOUT_S=str(QUICK_S)
    )
    with Gateway.start(env) as gw:
        yield gw


def assert_error_event(event: Any, code: str) -> None:
    assert isinstance(event, dict) and set(event) == {"error"}, event
    assert set(event["error"]) == ERROR_FIELDS and event["error"]["code"] == code


# -- an upstream breaking after the first chunk (case 7) ----------------------------------------


# The frames come 20 ms apart, as a model's do, and the fault waits (`hold`) until the client has
# the first three pieces: a reset that reached the gateway before it had read the frames would
# overtake them (Linux discards unread data on a reset), and then no byte was sent yet, so
# failing over to the backup would be right.
@pytest.mark.parametrize(
    "fault",
    [{"error_after_chunks": 4, "chunk_delay_ms": 20}, {"drop_after_chunks": 4, "chunk_delay_ms": 20}],
    ids=["error-event", "dropped"],
)
def test_a_stream_breaking_mid_way_ends_with_an_error_event_and_no_done(
    gateway: Gateway, fresh: Any, key: str, fault: dict[str, Any]
) -> None:
    a, b = fresh
    full = gateway.new_key(tenant="t-stream", name="full")  # the same reply, unbroken, for reference
    a.script({"content": LONG}, {"content": LONG, "hold": True, **fault})
    _, whole, _ = ask(gateway, full, chat(stream=True))
    assert whole == LONG
    whole_row = wait_row(gateway, full)

    started = time.monotonic()
    raw = b""
    with gateway.http.stream("POST", "/v1/chat/completions", headers=h(key), json=chat(stream=True)) as r:
        for piece in r.iter_raw():
            held = b"gamma" not in raw
            raw += piece
            if held and b"gamma" in raw:
                a.release()
    elapsed = time.monotonic() - started
    events = frames(raw)
    text = text_of(events)
    assert r.status_code == 200
    assert elapsed < SESSION_TIMEOUT_S  # ended by the fault, not by waiting out a timeout
    assert "[DONE]" not in events
    assert_error_event(events[-1], "upstream_error")
    # frames 0-3 were sent: the role, then three pieces; what reached the client is intact
    assert text == "alpha beta gamma"
    assert all("error" not in e for e in events[:-1])
    assert b.requests() == []  # no silent switch to the backup once bytes were sent
    row = wait_row(gateway, key)
    assert (row["status"], row["error"], row["provider"]) == (200, "upstream_error", "openai")
    assert 0 < row["completion_tokens"] < whole_row["completion_tokens"]  # the partial answer is billed
    assert row["prompt_tokens"] > 0 and row["total_cost_usd"] > 0


def test_text_completion_stream_breaking_mid_way_ends_with_an_error_event(
    gateway: Gateway, fresh: Any, key: str
) -> None:
    a, _ = fresh
    a.script({"content": LONG, "error_after_chunks": 3})
    body = {"model": "gpt-4o-mini", "prompt": "Hello", "stream": True}
    with gateway.http.stream("POST", "/v1/completions", headers=h(key), json=body) as r:
        events = frames(r.read())
    assert r.status_code == 200 and "[DONE]" not in events
    assert_error_event(events[-1], "upstream_error")
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == "alpha beta"


def test_a_silence_longer_than_the_timeout_ends_the_stream_with_an_error_event(
    quick: Gateway, fresh: Any
) -> None:
    a, _ = fresh
    key = quick.new_key(tenant="t-stream", name="quick")
    a.script({"content": LONG, "chunk_delay_ms": 4000})  # the role chunk at once, then silence
    started = time.monotonic()
    r, text, events = ask(quick, key, chat(stream=True))
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and r.headers["x-pureai-provider"] == "openai"
    assert elapsed < QUICK_S * 2 + SLACK_S
    assert "[DONE]" not in events
    assert_error_event(events[-1], "upstream_timeout")
    assert events[0]["choices"][0]["delta"]["role"] == "assistant" and text == ""
    a.wait_for(lambda reqs: bool(reqs) and reqs[-1]["disconnected"], timeout=2)  # the upstream is closed
    row = wait_row(quick, key)
    assert (row["status"], row["error"]) == (200, "upstream_timeout")


def test_a_slow_stream_with_gaps_below_the_timeout_survives(quick: Gateway, fresh: Any) -> None:
    a, _ = fresh
    key = quick.new_key(tenant="t-stream", name="slow")
    a.script({"content": "one two three four five six", "chunk_delay_ms": QUICK_S * 1000 * 0.5})
    started = time.monotonic()
    r, text, events = ask(quick, key, chat(stream=True))
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and events[-1] == "[DONE]"
    assert text == "one two three four five six"
    assert elapsed > QUICK_S  # longer than one timeout in all: the timeout bounds each gap, not the stream
    row = wait_row(quick, key)
    assert (row["status"], row["error"], row["completion_tokens"]) == (200, None, 6)


# -- malformed upstream SSE (case 8) ------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    ["Grüße aus Köln: 日本語のテキスト, emoji 🙂🚀 and ñ at the end", "plain ascii words only here"],
    ids=["utf8-split", "ascii-split"],
)
def test_malformed_upstream_sse_reaches_the_client_whole(
    gateway: Gateway, fresh: Any, key: str, content: str
) -> None:
    a, _ = fresh
    a.script({"content": content}, {"content": content, "malformed": True})
    r1, clean, clean_events = ask(gateway, key, chat(stream=True))
    r2, text, events = ask(gateway, key, chat(stream=True))  # `ask` parses frame by frame, strictly
    assert r1.status_code == r2.status_code == 200
    assert a.requests()[1]["step"]["malformed"] is True
    assert clean == content and text == content
    assert events[-1] == "[DONE]"

    def pieces(evs: list[Any]) -> list[str]:
        return [e["choices"][0]["delta"].get("content", "") for e in evs if isinstance(e, dict)]

    assert pieces(events) == pieces(clean_events)  # frames 1:1 with the unbroken reply


def test_an_upstream_without_done_still_ends_our_stream_with_done(
    gateway: Gateway, fresh: Any, key: str
) -> None:
    a, _ = fresh
    a.script({"no_done": True})
    r, text, events = ask(gateway, key, chat(stream=True))
    assert r.status_code == 200
    # the upstream's finish_reason and usage chunk arrived, so the stream is complete: we end it
    # the ordinary way, with the finish chunk (usage attached) and [DONE]
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    assert text == "Hello from A: Hello!"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["usage"]["completion_tokens"] == 4
    row = wait_row(gateway, key)
    assert (row["status"], row["error"]) == (200, None)


# -- clients that go away (cases 12-14) -----------------------------------------------------------


def raw_request(gw: Gateway, key: str, body: dict[str, Any]) -> socket.socket:
    """Send a POST /v1/chat/completions on a socket of our own, to close whenever we like."""
    data = json.dumps(body).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"x-api-key: {key}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    sock.sendall(head.encode() + data)
    return sock


def test_a_client_leaving_mid_stream_cancels_the_upstream(gateway: Gateway, fresh: Any, key: str) -> None:
    a, _ = fresh
    a.script({"content": " ".join(["word"] * 200), "chunk_delay_ms": 200})
    client = httpx.Client(base_url=gateway.url, timeout=10, trust_env=False)  # a connection of our own
    with client, client.stream("POST", "/v1/chat/completions", headers=h(key), json=chat(stream=True)) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data:") and json.loads(line[5:])["choices"][0]["delta"].get("content"):
                break  # the first token has arrived; now go away
    started = time.monotonic()
    reqs = a.wait_for(lambda reqs: bool(reqs) and reqs[-1]["disconnected"], timeout=2)
    assert time.monotonic() - started < 1.5
    assert not reqs[-1]["finished"]
    row = wait_row(gateway, key, lambda row: row["error"] is not None)
    assert row["error"] == "client_disconnected" and row["stream"] is True
    assert row["completion_tokens"] > 0  # the tokens sent before the client left are billed


def test_a_client_leaving_before_the_first_token_cancels_the_upstream(
    gateway: Gateway, fresh: Any, key: str
) -> None:
    a, b = fresh
    a.script({"first_chunk_delay_ms": 10_000})
    sock = raw_request(gateway, key, chat(stream=True))
    try:
        a.wait_for(lambda reqs: bool(reqs), timeout=5)  # the gateway is waiting for the first token
    finally:
        sock.close()
    a.wait_for(lambda reqs: reqs[-1]["disconnected"], timeout=2)
    row = wait_row(gateway, key)
    assert (row["status"], row["error"]) == (499, "client_disconnected")
    assert b.requests() == []  # and it did not go on to the backup for a client that is gone


def test_a_client_leaving_a_non_streamed_request_cancels_the_upstream(
    gateway: Gateway, fresh: Any, key: str
) -> None:
    a, b = fresh
    a.script({"headers_delay_ms": 10_000})
    sock = raw_request(gateway, key, chat())
    try:
        a.wait_for(lambda reqs: bool(reqs), timeout=5)
    finally:
        sock.close()
    a.wait_for(lambda reqs: reqs[-1]["disconnected"], timeout=2)
    row = wait_row(gateway, key)
    assert (row["status"], row["error"], row["stream"]) == (499, "client_disconnected", False)
    assert b.requests() == []


# -- many streams at once -------------------------------------------------------------------------


def test_twenty_concurrent_streams_all_complete(gateway: Gateway, fresh: Any, key: str) -> None:
    a, _ = fresh
    n = 20
    a.script(*({"chunk_delay_ms": 30} for _ in range(n)))  # long enough for the streams to overlap

    async def one(client: httpx.AsyncClient, i: int) -> tuple[int, list[Any]]:
        body = chat(f"stream number {i}", stream=True)
        async with client.stream("POST", "/v1/chat/completions", headers=h(key), json=body) as r:
            return r.status_code, frames(await r.aread())

    async def all_of_them() -> list[tuple[int, list[Any]]]:
        limits = httpx.Limits(max_connections=n)
        client = httpx.AsyncClient(base_url=gateway.url, timeout=30, limits=limits, trust_env=False)
        async with client:
            return await asyncio.gather(*(one(client, i) for i in range(n)))

    results = asyncio.run(all_of_them())
    for i, (status, events) in enumerate(results):
        assert status == 200
        assert events[-1] == "[DONE]"
        assert text_of(events) == f"Hello from A: stream number {i}"
    reqs = a.requests()
    assert len(reqs) == n and all(r["finished"] for r in reqs)
    assert all(r["step"] == {"chunk_delay_ms": 30} for r in reqs)

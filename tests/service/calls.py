"""Calls the failover and streaming tests share: a chat request (streamed or not) with its text, a
strict reader of SSE frames, and the usage ledger of a key (polled where the row is written after
the response: failed requests, disconnected streams)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.service.gateway_server import Gateway

JSON = dict[str, Any]


def h(key: str) -> dict[str, str]:
    return {"x-api-key": key, "Content-Type": "application/json"}


def chat(content: str = "Hello!", *, stream: bool = False, model: str = "gpt-4o-mini") -> JSON:
    return {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}


def frames(raw: bytes) -> list[Any]:
    """Every event of an SSE body, parsed one frame at a time: each frame must be whole UTF-8 and a
    `data:` line of JSON (or `[DONE]`); a partial last frame fails."""
    out: list[Any] = []
    parts = raw.split(b"\n\n")
    assert parts[-1] == b"", f"unterminated frame: {parts[-1]!r}"
    for part in parts[:-1]:
        text = part.decode("utf-8")  # strict: a frame never ends inside a character
        lines = text.split("\n")
        assert all(line.startswith("data: ") for line in lines), f"not a data frame: {text!r}"
        data = "\n".join(line[len("data: ") :] for line in lines)
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def text_of(events: list[Any]) -> str:
    """The text the chunks of a chat stream carry."""
    return "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in events
        if isinstance(c, dict) and c.get("choices")
    )


def ask(gw: Gateway, key: str, body: JSON) -> tuple[httpx.Response, str | None, list[Any]]:
    """POST /v1/chat/completions: the response, the answer's text (None on an error status) and,
    streamed, every event."""
    if not body.get("stream"):
        r = gw.http.post("/v1/chat/completions", headers=h(key), json=body)
        text = r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else None
        return r, text, []
    with gw.http.stream("POST", "/v1/chat/completions", headers=h(key), json=body) as r:
        raw = r.read()
    if r.status_code != 200:
        return r, None, []
    assert r.headers["content-type"].startswith("text/event-stream")
    events = frames(raw)
    return r, text_of(events), events


def ledger(gw: Gateway, key: str) -> list[JSON]:
    """The key's ledger rows, newest first."""
    r = gw.http.get("/v1/usage", headers=h(key))
    assert r.status_code == 200, r.text
    rows: list[JSON] = r.json()["data"]
    return rows


def wait_row(
    gw: Gateway, key: str, predicate: Callable[[JSON], bool] = lambda row: True, timeout: float = 5.0
) -> JSON:
    """The newest ledger row of `key` that satisfies `predicate`, polling until one is written."""
    deadline = time.monotonic() + timeout
    while True:
        rows = ledger(gw, key)
        found = [row for row in rows if predicate(row)]
        if found:
            return found[0]
        if time.monotonic() >= deadline:
            raise AssertionError(f"no matching ledger row within {timeout}s; rows: {rows}")
        time.sleep(0.05)  # polling a bounded loop, as FakeUpstream.wait_for does

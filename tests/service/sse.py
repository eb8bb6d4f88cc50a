"""Reading a server-sent event stream in tests: the `data:` payloads, in order."""

from __future__ import annotations

import json
from typing import Any

import httpx


def events(response: httpx.Response) -> list[Any]:
    """Every `data:` payload of a streamed response: parsed JSON, or the string "[DONE]"."""
    out: list[Any] = []
    buffer = ""
    for text in response.iter_text():
        buffer += text
        while "\n\n" in buffer:
            frame, buffer = buffer.split("\n\n", 1)
            data = "\n".join(line[5:].lstrip() for line in frame.split("\n") if line.startswith("data:"))
            if data:
                out.append(data if data == "[DONE]" else json.loads(data))
    assert buffer.strip() == "", f"unterminated frame: {buffer!r}"
    return out


def stream(
    client: httpx.Client, path: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[httpx.Response, list[Any]]:
    with client.stream("POST", path, headers=headers, json=body) as r:
        if r.status_code != 200:
            r.read()
            return r, []
        assert r.headers["content-type"].startswith("text/event-stream")
        return r, events(r)

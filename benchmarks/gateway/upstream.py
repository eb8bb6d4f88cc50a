"""A fast fake OpenAI-compatible upstream for the gateway benchmark: raw asyncio on uvloop, HTTP/1.1
keep-alive, canned replies with usage.

    python benchmarks/gateway/upstream.py --port 8700

POST /v1/chat/completions answers a chat.completion (JSON) or, with `"stream": true`, an SSE stream
(chunked): a role chunk, `events` one-word content chunks, a finish chunk, a usage-only chunk and
`[DONE]`. The last message's text may carry `events=N` (default 20) and `pace=MS` (the gap between
content chunks; default 0): both gateways forward the messages unchanged, so the load generator steers
the upstream through them. GET anything answers 200 `{}`. The reply bytes are built once per
(events) and cached, so the upstream spends next to no CPU of the shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time

EVENTS = re.compile(rb"events=(\d+)")
PACE = re.compile(rb"pace=(\d+)")
STREAM = re.compile(rb'"stream"\s*:\s*true')
MODEL = re.compile(rb'"model"\s*:\s*"([^"]*)"')

_json_cache: dict[bytes, bytes] = {}
_sse_cache: dict[tuple[bytes, int], list[bytes]] = {}


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def json_reply(model: bytes) -> bytes:
    reply = _json_cache.get(model)
    if reply is None:
        body = json.dumps({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
            "model": model.decode(), "system_fingerprint": "fp_bench",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": "Hello! This is a canned reply."}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
        }, separators=(",", ":")).encode()  # fmt: skip
        reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )
        _json_cache[model] = reply
    return reply


def sse_events(model: bytes, events: int) -> list[bytes]:
    """The chunked-encoded frames of one stream: head + role, `events` content frames, the tail."""
    key = (model, events)
    frames = _sse_cache.get(key)
    if frames is None:
        base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model.decode(), "system_fingerprint": "fp_bench"}  # fmt: skip

        def ev(choices: list[dict[str, object]], **extra: object) -> bytes:
            data = json.dumps({**base, "choices": choices, **extra}, separators=(",", ":"))
            return _chunk(b"data: " + data.encode() + b"\n\n")

        head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        role = ev([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        body = [
            ev([{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]) for i in range(events)
        ]
        tail = (
            ev([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            + ev([], usage={"prompt_tokens": 12, "completion_tokens": events, "total_tokens": 12 + events})
            + _chunk(b"data: [DONE]\n\n")
            + b"0\r\n\r\n"
        )
        frames = [head + role, *body, tail]
        _sse_cache[key] = frames
    return frames


class Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy is not None:
            self.busy.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.busy is None:
            self.serve()

    def serve(self) -> None:
        """Answer every complete request in the buffer (in order; a paced stream defers the rest)."""
        while self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            length = 0
            i = head.find(b"content-length:")
            if i >= 0:
                length = int(head[i + 15 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None])
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            if not head.startswith(b"post"):
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
                )
                continue
            m = MODEL.search(body)
            model = m.group(1) if m else b"bench"
            if not STREAM.search(body):
                self.transport.write(json_reply(model))
                continue
            e, p = EVENTS.search(body), PACE.search(body)
            frames = sse_events(model, int(e.group(1)) if e else 20)
            pace = int(p.group(1)) / 1000 if p else 0.0
            if pace <= 0:
                self.transport.write(b"".join(frames))
                continue
            self.busy = asyncio.ensure_future(self.paced(frames, pace))
            return

    async def paced(self, frames: list[bytes], pace: float) -> None:
        try:
            assert self.transport is not None
            self.transport.write(frames[0])
            for frame in frames[1:]:
                await asyncio.sleep(pace)
                if self.transport is None:
                    return
                self.transport.write(frame)
        finally:
            self.busy = None
        self.serve()


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, host, port, backlog=4096, reuse_address=True)
    print(f"ready {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.host, args.port))

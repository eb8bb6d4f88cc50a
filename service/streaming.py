"""`Stream`: the SSE response of a relayed completion, and `Tally`, what the relay has sent so far.

A stream can end four ways: its relay finishes (it wrote the ledger row itself, before `[DONE]`),
the client goes away, uvicorn's graceful-shutdown deadline cancels it, or a bug raises. Whatever
happens, `Stream` closes the relay (which closes the upstream response) and then calls `ended(why)`,
so the gateway can bill what the `Tally` holds: "client_disconnected" when the client went away,
"shutdown" when the server cut the stream, "internal_error" otherwise. A relay suspended in a `send`
(a slow reader's full socket) when it was cut would otherwise stay open until the garbage collector
found it, and its row would be lost. While it runs, a future of its own sits in `open_streams`, the
set the gateway's `stop()` waits on.

A stream cut at the shutdown deadline ends with an SSE error event, `{"error": {"code": "shutdown",
...}}` in place of `[DONE]`, and a complete chunked body, so that a client can tell a deliberate stop
from a broken network. The cut comes between two frames: uvicorn writes each frame whole, and a
`send` waiting for a slow reader's socket has written nothing yet. A reader so slow that the event
cannot be written within `FAREWELL_S` is cut without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from .errors import Unavailable
from .shaping import Tokens, sse

__all__ = ["Stream", "Tally"]

FAREWELL_S = 0.1
"""At the shutdown deadline, how long a stream may wait for its client's socket to take its last
event (every cut stream at once: this is added to the exit once, not per stream)."""

SHUTDOWN = sse(
    Unavailable(
        "the gateway is shutting down and this stream was cut at the end of its grace period; retry",
        code="shutdown",
    ).body()
)


@dataclass
class Tally:
    """What one stream has relayed: enough to bill it whenever it ends."""

    chars: int = 0  # of text sent (a count, not the text: a stream's memory stays flat)
    reported: Tokens | None = None  # the usage upstream reported, if it did
    ttft_ms: float | None = None
    billed: bool = False  # its ledger row is written (or being written)


class Stream(StreamingResponse):
    def __init__(
        self,
        relay: AsyncGenerator[bytes, None],
        ended: Callable[[str], None],
        headers: dict[str, str],
        open_streams: set[asyncio.Future[Any]],
    ) -> None:
        super().__init__(relay, media_type="text/event-stream", headers=headers)
        self._relay = relay
        self._ended = ended
        self._open = open_streams
        self._started = False  # the response's head is sent
        self._closing = False  # the relay is done: the body's end is being sent

    async def stream_response(self, send: Send) -> None:
        """Starlette's, noting how far the response has gone (for `_farewell`)."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        self._started = True
        async for chunk in self._relay:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        self._closing = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _farewell(self, send: Send) -> bool:
        """After the cut: end the body with the `shutdown` event (just the body's end if the relay had
        finished); False if it cannot be sent in time (or the response had not started)."""
        if not self._started:
            return False
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # uvicorn's one cancel, taken: the last event may still be sent
        body = b"" if self._closing else SHUTDOWN
        try:
            async with asyncio.timeout(FAREWELL_S):
                await send({"type": "http.response.body", "body": body, "more_body": False})
        except (TimeoutError, OSError):
            return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = False

        async def watched() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        done = asyncio.get_running_loop().create_future()
        self._open.add(done)  # the gateway's stop() waits for it
        why = "internal_error"
        try:
            await super().__call__(scope, watched, send)
        except asyncio.CancelledError:
            why = "shutdown"  # uvicorn cancels a request only at its graceful-shutdown deadline
            if gone or not await self._farewell(send):
                raise
        finally:
            try:
                await self._relay.aclose()
            finally:
                try:
                    self._ended("client_disconnected" if gone else why)
                finally:
                    done.set_result(None)
                    self._open.discard(done)

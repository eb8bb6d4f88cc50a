"""`Stream`: the SSE response of a relayed completion, and `Tally`, what the relay has sent so far.

A stream can end four ways: its relay finishes (it wrote the ledger row itself, before `[DONE]`),
the client goes away, uvicorn's graceful-shutdown deadline cancels it, or a bug raises. Whatever
happens, `Stream` closes the relay (which closes the upstream response) and then calls `ended(why)`,
so the gateway can bill what the `Tally` holds: "client_disconnected" when the client went away,
"shutdown" when the server cut the stream, "internal_error" otherwise. A relay suspended in a `send`
(a slow reader's full socket) when it was cut would otherwise stay open until the garbage collector
found it, and its row would be lost. While it runs, a future of its own sits in `open_streams`, the
set the gateway's `stop()` waits on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from .shaping import Tokens

__all__ = ["Stream", "Tally"]


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

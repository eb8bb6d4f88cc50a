"""`Capacity`: a bound on the requests one worker has in flight, past which it refuses at once.

Past the bound a request gets 503 `overloaded` with `Retry-After: 1` before anything else is done for
it (no key check, no body read): a counter, never a queue, so an overloaded gateway answers in
microseconds instead of letting latency grow without bound (uvicorn's `--limit-concurrency` does the
same, but answers in plain text and counts idle keep-alive connections). A stream counts until its
last byte is sent. /health and /ready are neither counted nor refused, so probes see an overloaded
worker as alive and ready.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import Unavailable

__all__ = ["Capacity"]

EXEMPT = frozenset({"/health", "/ready"})


class Capacity:
    def __init__(self, app: ASGIApp, max_concurrency: int) -> None:
        self.app = app
        self.limit = max_concurrency
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            refusal = Unavailable(
                f"the gateway is at capacity ({self.limit} requests in flight); retry shortly",
                code="overloaded",
                headers={"retry-after": "1"},
            )
            await refusal.response()(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

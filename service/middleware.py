"""`Edge`: the one ASGI middleware in front of the routes, doing in one layer what five did.

For every HTTP request, in this order:

- **id**: a request id (`request.state.request_id`, the `x-request-id` response header and the
  `request_id` of every log line written for it); on /v1/router, a `Server-Timing` header on every
  response, errors included (`total;dur=` where the app set no `decide;dur=`, see `TIMED`);
- **capacity**: past `max_concurrency` requests in flight in this worker, 503 `overloaded` with
  `Retry-After: 1` at once, before anything else is done for it (a counter, never a queue, so an
  overloaded gateway answers in microseconds instead of letting latency grow without bound; uvicorn's
  `--limit-concurrency` does the same, but answers in plain text and counts idle keep-alive
  connections). A stream counts until its last byte is sent. /health and /ready are neither counted
  nor refused, so probes see an overloaded worker as alive and ready;
- **body limit**: bodies over `max_body_bytes` get 413, at once when Content-Length says so, else as
  soon as the streamed body passes the limit; a malformed Content-Length gets 400. On the paths whose
  routes admit the key first (`ADMITTED`), the Content-Length 413 comes when the route reads the
  body, not a byte of it read: after authentication and the rate limit, so it counts toward the
  key's requests per minute like any refusal;
- **a client that leaves** before its whole body is read: status 499 in the metrics and the access
  line, an INFO line, nothing sent and nothing raised (it used to reach uvicorn as a traceback);
- **unexpected errors**: an exception no handler mapped becomes a 500 `internal_error` naming the
  request id (never a traceback), logged with its traceback, then re-raised for the server;
- **observation**: the request counted in the metrics (requests, latency, TTFT, in flight) and its one
  access line at INFO, with what the pipeline noted (`logs.note`: model, provider, key id, tenant).
  Only the path is logged, never the query string, a header or a body; every string of the line
  is cut to `logs.ACCESS_CHARS` with its control characters escaped (`logs.clip`).

It replaces Starlette's ServerErrorMiddleware, FastAPI's telemetry and body-limit layers and the
three of ours that were stacked around the routes: each layer wrapped `send`, so every streamed
event went through five Python calls before reaching the socket; now one.
"""

from __future__ import annotations

import logging
import secrets
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import logs
from .errors import APIError, BadRequest, PayloadTooLarge, Unavailable
from .metrics import Metrics

__all__ = ["Edge"]

log = logging.getLogger("pureai.service")
access_log = logging.getLogger("pureai.access")
EXEMPT = frozenset({"/health", "/ready"})
"""Paths outside the concurrency bound (probes)."""
ADMITTED = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/router", "/v1/feedback"})
"""Paths whose routes authenticate and rate-limit before reading the body: a Content-Length over
the limit is refused there, by the body's first read (a 413 that counts toward the key's rpm)."""
TIMED = frozenset({"/v1/router"})
"""Paths whose every response has a Server-Timing header: the router's `decide;dur=` when the app
set one (a decision ran), else `total;dur=`, the milliseconds until the response started."""
_NOTED = ("ttft_ms", "model", "provider", "key_id", "tenant")


class Edge:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, max_concurrency: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.limit = max_concurrency
        self.in_flight = 0  # counted requests (not /health, /ready) in this worker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        # left set when the request ends: the server runs each request in a task of its own, whose
        # context ends with it, and the server's own error log still carries the id
        info = logs.begin(request_id)
        header = (b"x-request-id", request_id.encode())
        status = 500  # if the app fails before it answers
        started = time.perf_counter()
        response_started = False

        timed = scope["path"] in TIMED

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [*message.get("headers", ()), header]
                if timed and not any(name.lower() == b"server-timing" for name, _ in headers):
                    took = (time.perf_counter() - started) * 1000.0
                    headers.append((b"server-timing", f"total;dur={took:.3f}".encode()))
                message["headers"] = headers
            await send(message)

        counted = scope["path"] not in EXEMPT
        self.metrics.in_flight.inc()
        try:
            length = _content_length(scope)
            refusal = self._refusal(scope, counted, length)
            if refusal is not None:
                await refusal.response()(scope, receive, send_with_id)
                return
            if counted:
                self.in_flight += 1
            try:
                await self.app(scope, _limited(receive, self.max_body, length), send_with_id)
            except ClientDisconnect:  # the client left before its request body was read
                status = 499 if not response_started else status  # nginx's "client closed request"
                log.info("the client closed the connection before sending its whole request")
            except Exception:
                log.exception(
                    "unexpected error on %s %s",
                    logs.clip(scope.get("method", "")),
                    logs.clip(scope.get("path", "")),
                )
                if not response_started:
                    error = APIError(f"internal error (request {request_id})", code="internal_error")
                    await error.response()(scope, receive, send_with_id)
                raise
            finally:
                if counted:
                    self.in_flight -= 1
        finally:
            self.metrics.in_flight.dec()
            self._observe(scope, info, status, time.perf_counter() - started)

    def _refusal(self, scope: Scope, counted: bool, length: int | None) -> APIError | None:
        """The error that answers the request before the app sees it, if any (`length`: the
        Content-Length, -1 when malformed)."""
        if counted and self.in_flight >= self.limit:
            return Unavailable(
                f"the gateway is at capacity ({self.limit} requests in flight); retry shortly",
                code="overloaded",
                headers={"retry-after": "1"},
            )
        if length == -1:
            return BadRequest("invalid Content-Length header", code="invalid_header")
        if length is not None and length > self.max_body and scope["path"] not in ADMITTED:
            return PayloadTooLarge(_too_large(self.max_body), code="request_too_large")
        return None

    def _observe(self, scope: Scope, info: logs.RequestInfo, status: int, elapsed: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        self.metrics.request(endpoint, status, elapsed, info.model, info.ttft_ms)
        if not access_log.isEnabledFor(logging.INFO):
            return
        method, path = logs.clip(scope.get("method", "")), logs.clip(scope.get("path", ""))
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": round(elapsed * 1000, 1),
        }
        for name in _NOTED:
            value = getattr(info, name)
            if value is not None:
                fields[name] = logs.clip(value) if isinstance(value, str) else value
        access_log.info("%s %s %d", method, path, status, extra=fields)


def _limited(receive: Receive, limit: int, length: int | None = None) -> Receive:
    """`receive`, raising PayloadTooLarge once the body passes `limit`: at the first call, before a
    byte is read, when its Content-Length (`length`) says it will."""
    seen = 0

    async def receive_limited() -> Message:
        nonlocal seen
        if length is not None and length > limit:
            raise PayloadTooLarge(_too_large(limit), code="request_too_large")
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(_too_large(limit), code="request_too_large")
        return message

    return receive_limited


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                n = int(value)
            except ValueError:
                return -1
            return n if n >= 0 else -1
    return None


def _too_large(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"

"""ASGI middleware: a request id on every response, the body-size limit enforced before parsing, and
every request counted in the metrics and written to the access log."""

from __future__ import annotations

import logging
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import logs
from .errors import BadRequest, PayloadTooLarge
from .metrics import Metrics

__all__ = ["Guard", "Observe"]

access_log = logging.getLogger("pureai.access")
MAX_LOGGED_PATH = 300


class Guard:
    """Sets `request.state.request_id` (also the `x-request-id` response header) and refuses bodies
    over `max_body_bytes` with 413: at once when Content-Length says so, else as soon as the
    streamed body passes the limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = state.get("request_id") or "req_" + secrets.token_hex(12)  # Observe's, if first
        state["request_id"] = request_id
        header = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", header)]
            await send(message)

        length = _content_length(scope)
        error: BadRequest | PayloadTooLarge | None = None
        if length == -1:
            error = BadRequest("invalid Content-Length header", code="invalid_header")
        elif length is not None and length > self.max_body:
            error = PayloadTooLarge(_too_large(self.max_body), code="request_too_large")
        if error is not None:
            await error.response()(scope, receive, send_with_id)
            return
        await self.app(scope, _limited(receive, self.max_body), send_with_id)


class Observe:
    """The outermost layer: gives the request its id (the logs' `request_id`, then Guard's
    `x-request-id`), counts it in the metrics (requests, latency, TTFT, in flight) and writes its one
    access line at INFO, with what the pipeline noted (`logs.note`: model, provider, key id, tenant).
    Only the path is logged, never the query string, a header or a body."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        # left set when the request ends: the server runs each request in a task of its own, whose
        # context ends with it, and the handler of unexpected errors (outside) still logs with it
        info = logs.begin(request_id)
        status = 500  # if the app fails before it answers
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.request(endpoint, status, elapsed, info.model, info.ttft_ms)
            path = scope.get("path", "")[:MAX_LOGGED_PATH]
            fields = {
                "method": scope.get("method"),
                "path": path,
                "status": status,
                "latency_ms": round(elapsed * 1000, 1),
                **{
                    name: getattr(info, name)
                    for name in ("ttft_ms", "model", "provider", "key_id", "tenant")
                    if getattr(info, name) is not None
                },
            }
            access_log.info("%s %s %d", scope.get("method"), path, status, extra=fields)


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def receive_limited() -> Message:
        nonlocal seen
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

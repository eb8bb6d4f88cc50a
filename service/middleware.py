"""ASGI middleware: a request id on every response, and the body-size limit enforced before parsing."""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BadRequest, PayloadTooLarge

__all__ = ["Guard"]


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
        request_id = "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
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

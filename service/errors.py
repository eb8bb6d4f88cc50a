"""Errors the gateway returns, all in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.

    APIError                    base: status, message, type, param, code, headers
    ├── BadRequest              400 invalid_request_error (names the field in `param`)
    ├── Unauthorized            401 invalid_api_key
    ├── Forbidden               403 model_not_allowed / admin_only
    ├── NotFound                404 model_not_found / not_found
    ├── Conflict                409 deployment_exists / model_exists
    ├── PayloadTooLarge         413 request_too_large
    ├── RateLimited             429 rate_limit_exceeded (+ retry_after, Retry-After)
    ├── Unavailable             503 service_unavailable (+ Retry-After)
    └── UpstreamError           502 upstream_error / 504 upstream_timeout / upstream status

`shown(value)` is how a message quotes a client's string: its first `SHOWN_CHARS` characters,
escaped as Python's repr escapes them, and "…" when cut (a 1 MB model name must not come back
1 MB long, nor a control character raw).

`install(app)` maps these, the router's, the registry's and the store's errors (503
`store_unavailable`) and FastAPI's validation errors to JSON responses in one place; anything
unexpected becomes a 500 `internal_error` without a traceback in the one middleware
(`middleware.Edge`).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .shaping import JSON

log = logging.getLogger("pureai.service")


class APIError(Exception):
    status = 500
    type = "api_error"
    attempts = 0  # upstream attempts made before the error (0: none)
    tried: tuple[Any, ...] = ()  # those attempts (executor.Attempted: provider, error), for the metrics
    recorded = False  # a ledger row was written for it

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        if type is not None:
            self.type = type
        if status is not None:
            self.status = status
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSON(self.body(), status_code=self.status, headers=self.headers)


SHOWN_CHARS = 100
"""How much of a client's string an error message quotes (`shown`)."""
PARAM_CHARS = 256
"""How long a `param` naming a client's own field (an unknown key) can be."""
MESSAGE_CHARS = 1024
"""How long a 400 built from a validation error can be."""


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """`value` quoted for a message: repr of its first `limit` characters, "…" after them when cut."""
    return repr(value[:limit] + "…") if len(value) > limit else repr(value)


def clipped(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, the last one "…" when cut."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


class BadRequest(APIError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(APIError):
    status = 401
    type = "invalid_request_error"


class Forbidden(APIError):
    status = 403
    type = "permission_error"


class NotFound(APIError):
    status = 404
    type = "invalid_request_error"


class Conflict(APIError):
    status = 409
    type = "invalid_request_error"


class PayloadTooLarge(APIError):
    status = 413
    type = "invalid_request_error"


class RateLimited(APIError):
    status = 429
    type = "requests"

    def __init__(self, message: str, retry_after_s: float, **kw: Any) -> None:
        headers = {"retry-after": str(max(1, math.ceil(retry_after_s))), **kw.pop("headers", {})}
        super().__init__(message, headers=headers, **kw)
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["retry_after"] = round(self.retry_after_s, 3)
        return body


class Unavailable(APIError):
    status = 503
    type = "service_unavailable"


class UpstreamError(APIError):
    status = 502
    type = "upstream_error"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the OpenAI shape."""
    from models_registry import CatalogueError
    from router.errors import InputError, RouterError
    from router.errors import UnknownModelError as UnknownRoutedModel

    from .store import StoreError

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RouterError)
    async def router_error(request: Request, exc: RouterError) -> JSONResponse:
        if isinstance(exc, UnknownRoutedModel):
            return NotFound(str(exc), code="model_not_found", param="models").response()
        if isinstance(exc, InputError):
            return BadRequest(str(exc), param=exc.param or "messages", code=exc.code).response()
        log.error("router failure: %s", exc)
        return Unavailable("the router is not available", code="router_unavailable").response()

    @app.exception_handler(CatalogueError)
    async def catalogue_error(request: Request, exc: CatalogueError) -> JSONResponse:
        log.error("catalogue failure: %s", exc)
        return Unavailable("the model catalogue is not available", code="catalogue_unavailable").response()

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store failure: %s", exc)  # StoreError messages never hold a password
        return Unavailable(
            "the key and usage store is unavailable; retry shortly",
            code="store_unavailable",
            headers={"retry-after": "1"},
        ).response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_to_bad_request(exc.errors()).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        path = clipped(request.url.path, SHOWN_CHARS)
        message = {404: f"no route {path}", 405: f"{request.method} is not allowed here"}
        err = APIError(
            message.get(exc.status_code, str(exc.detail)),
            status=exc.status_code,
            type="invalid_request_error",
            code=code,
        )
        return err.response()


# pydantic names the member of a union that failed in `loc` ("content.str", "stop.list[str]"): a
# Python type, not a field of the request.
_UNION_TAG = re.compile(r"(str|int|float|bool|none|bytes|list|dict)(\[.*\])?|[a-z]+(-[a-z]+)+\[.*\]")


def validation_to_bad_request(errors: Any) -> BadRequest:
    """pydantic errors -> one 400 naming the first bad field, without pydantic's internals."""
    first = next(iter(errors), None) or {}
    loc = [
        str(part) for part in first.get("loc", ()) if part != "body" and not _UNION_TAG.fullmatch(str(part))
    ]
    param = clipped(".".join(loc), PARAM_CHARS) or None  # a key of the client's (unknown field)
    kind = str(first.get("type", ""))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind == "missing":
        why = "" if message == "Field required" else f": {message}"  # pydantic's own says nothing more
        message = f"missing required field {param!r}{why}"
    elif kind == "extra_forbidden":
        message = f"unknown field {param!r}"
    elif param:
        message = f"invalid {param!r}: {message}"
    return BadRequest(
        clipped(message, MESSAGE_CHARS),
        param=param,
        code="invalid_value" if kind != "missing" else "missing_field",
    )

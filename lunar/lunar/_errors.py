"""Everything the SDK raises, and the one mapper from an HTTP error response to an exception.

    LunarError                      base; also raised for bad configuration (no API key)
    └── APIError                    message, code, type, param, body, request
        ├── APIConnectionError      no response: refused, reset, dropped mid-stream
        │   └── APITimeoutError     a connect, read, write or pool timeout
        ├── APIResponseValidationError  a 2xx answer the SDK cannot read (not JSON, wrong shape)
        ├── APIStreamError          an `error` event ended a stream (the HTTP status was 200)
        └── APIStatusError          status_code, response, headers
            ├── BadRequestError         400, 413, 422
            ├── AuthenticationError     401
            ├── PermissionDeniedError   403
            ├── NotFoundError           404
            ├── RateLimitError          429 (+ retry_after, seconds)
            └── InternalServerError     500 and above

`message`, `code`, `type` and `param` come from the server's error body
`{"error": {"message", "type", "param", "code"}}` when it sent one.
"""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "InternalServerError",
    "LunarError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "error_from_event",
    "error_from_response",
    "retry_after_s",
]


class LunarError(Exception):
    """The base of every exception the SDK raises."""


class APIError(LunarError):
    """A call to the API failed. `body` is the server's `error` object (or whatever it sent)."""

    def __init__(
        self,
        message: str,
        *,
        request: httpx.Request | None = None,
        body: object | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body
        error = body if isinstance(body, dict) else {}
        self.code: str | None = _str_or_none(error.get("code"))
        self.type: str | None = _str_or_none(error.get("type"))
        self.param: str | None = _str_or_none(error.get("param"))


class APIConnectionError(APIError):
    """No (complete) response: the connection was refused, reset, or dropped mid-stream."""

    def __init__(self, message: str = "Connection error.", *, request: httpx.Request | None = None) -> None:
        super().__init__(message, request=request)


class APITimeoutError(APIConnectionError):
    """The request timed out (see the client's `timeout`)."""

    def __init__(self, message: str = "Request timed out.", *, request: httpx.Request | None = None) -> None:
        super().__init__(message, request=request)


class APIResponseValidationError(APIError):
    """A successful response whose body is not what the endpoint promises."""

    def __init__(self, message: str, *, response: httpx.Response, body: object | None = None) -> None:
        super().__init__(message, request=response.request, body=body)
        self.response = response
        self.status_code = response.status_code


class APIStreamError(APIError):
    """The server ended a stream with an error event (`data: {"error": {...}}`).

    The stream's HTTP status was 200, so there is no status code: `code` says what went wrong
    (our gateway sends "upstream_error" or "upstream_timeout"). An error event that names an HTTP
    status (a numeric `code` or `status`) raises the matching `APIStatusError` subclass instead.
    """

    def __init__(self, message: str, *, response: httpx.Response, body: object | None = None) -> None:
        super().__init__(message, request=response.request, body=body)
        self.response = response


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status."""

    def __init__(
        self, message: str, *, response: httpx.Response, body: object | None, status_code: int | None = None
    ) -> None:
        super().__init__(message, request=response.request, body=body)
        self.response = response
        self.status_code = status_code if status_code is not None else response.status_code
        self.headers = response.headers
        self.request_id: str | None = response.headers.get("x-request-id")

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"{self.status_code}{code}: {self.message}"


class BadRequestError(APIStatusError):
    """400, 413 or 422: the request is wrong; `param` names the field when the server said."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, unknown or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: this key may not do that (use that model, call the admin API)."""


class NotFoundError(APIStatusError):
    """404: no such model, key or route."""


class RateLimitError(APIStatusError):
    """429: a rate limit of this key (or of every provider), or its budget (`code` "insufficient_quota").

    `retry_after` is how many seconds to wait before the window allows another request (None when
    the server did not say, as for a spent budget, which waiting does not cure).
    """

    def __init__(
        self, message: str, *, response: httpx.Response, body: object | None, status_code: int | None = None
    ) -> None:
        super().__init__(message, response=response, body=body, status_code=status_code)
        self.retry_after: float | None = _body_retry_after(body)
        if self.retry_after is None:
            self.retry_after = _header_retry_after(response.headers)


class InternalServerError(APIStatusError):
    """500 and above: the gateway or every provider behind it failed."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_from_response(response: httpx.Response) -> APIStatusError:
    """The exception for an error response (its body must have been read)."""
    body = _json_or_none(response)
    error = _error_object(body)
    if error is not None:
        message = _str_or_none(error.get("message")) or f"HTTP {response.status_code}"
        return _status_error(response.status_code, message, response, error)
    try:
        text = response.text.strip()
    except httpx.ResponseNotRead:  # reading the body failed
        text = ""
    message = f"HTTP {response.status_code}" + (f": {text[:500]}" if text else "")
    return _status_error(response.status_code, message, response, body if body is not None else text or None)


def error_from_event(data: object, response: httpx.Response) -> APIError:
    """The exception for an error event in a stream (`data` is the event's parsed JSON)."""
    error = _error_object(data) or {}
    message = _str_or_none(error.get("message")) or "the server ended the stream with an error"
    status = _status_of(error)
    if status is not None:
        return _status_error(status, message, response, error)
    return APIStreamError(message, response=response, body=error or data)


def retry_after_s(response: httpx.Response | None) -> float | None:
    """Seconds the server asked to wait: the body's `error.retry_after` (precise), else the
    `retry-after-ms` or `Retry-After` header (seconds or an HTTP date); None when it did not say."""
    if response is None:
        return None
    seconds = _body_retry_after(_error_object(_json_or_none(response)))
    return seconds if seconds is not None else _header_retry_after(response.headers)


def _body_retry_after(error: object) -> float | None:
    value = error.get("retry_after") if isinstance(error, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _header_retry_after(headers: httpx.Headers) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            seconds: float | None = float(raw) * scale
        except ValueError:
            seconds = _http_date_delay(raw) if scale == 1.0 else None
        if seconds is not None and seconds >= 0:
            return seconds
    return None


def _status_error(status: int, message: str, response: httpx.Response, body: object) -> APIStatusError:
    kind = _BY_STATUS.get(status, InternalServerError if status >= 500 else APIStatusError)
    return kind(message, response=response, body=body, status_code=status)


def _json_or_none(response: httpx.Response) -> Any:
    """The parsed body, or None when it is not JSON (or was not read: a stream's)."""
    try:
        return json.loads(response.content)
    except (ValueError, httpx.ResponseNotRead):
        return None


def _error_object(body: object) -> dict[str, Any] | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return error
        if isinstance(error, str):  # {"error": "text"}, as some servers send
            return {"message": error}
    return None


def _status_of(error: dict[str, Any]) -> int | None:
    for name in ("status", "code"):
        value = error.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
            return value
        if isinstance(value, str) and value.isdigit() and 400 <= int(value) <= 599:
            return int(value)
    return None


def _str_or_none(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _http_date_delay(raw: str) -> float | None:
    import time

    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())

"""The request loop under both clients: build the request, send it (retrying as `_retry` says),
map an error response to its exception (`_errors`), and read the body into its type.

`SyncRequester` and `AsyncRequester` are the same loop over `httpx.Client` and
`httpx.AsyncClient`; each owns one connection pool (unless handed an httpx client by the caller,
who then closes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    LunarError,
    error_from_response,
)
from ._params import RequestOptions
from ._retry import should_retry, wait_s
from ._streaming import AsyncStream, Stream
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "AsyncRequester",
    "Config",
    "SyncRequester",
    "resolve",
]

log = logging.getLogger("lunar")

T = TypeVar("T", bound=BaseModel)

DEFAULT_BASE_URL = "https://api.pureai-api.com"
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
DEFAULT_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


@dataclass(frozen=True)
class Config:
    api_key: str
    base_url: str  # without a trailing "/" or "/v1"
    timeout: httpx.Timeout
    max_retries: int
    headers: dict[str, str]

    def __repr__(self) -> str:  # never the key
        return f"Config(base_url={self.base_url!r}, timeout={self.timeout!r}, max_retries={self.max_retries})"


def resolve(
    api_key: str | None,
    base_url: str | httpx.URL | None,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
    default_headers: Mapping[str, str] | None,
) -> Config:
    """The client's configuration from its arguments, else PUREAI_API_KEY / PUREAI_BASE_URL."""
    key = api_key if api_key is not None else os.environ.get("PUREAI_API_KEY") or None
    if not key:
        raise LunarError(
            "no API key: pass api_key=... to the client or set the PUREAI_API_KEY environment variable"
        )
    url = str(base_url) if base_url is not None else os.environ.get("PUREAI_BASE_URL") or DEFAULT_BASE_URL
    url = url.strip().rstrip("/").removesuffix("/v1").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise LunarError(f"the base URL must start with http:// or https://, got {url!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise LunarError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    headers = {
        "x-api-key": key,
        "accept": "application/json",
        "user-agent": f"lunar-python/{__version__}",
        **(default_headers or {}),
    }
    return Config(key, url, _timeout(timeout), max_retries, headers)


def _timeout(value: float | httpx.Timeout | None) -> httpx.Timeout:
    return value if isinstance(value, httpx.Timeout) else httpx.Timeout(value)


class _Requests:
    """What both loops share: building requests and reading answers."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def build(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None,
        params: Mapping[str, Any] | None,
        options: RequestOptions,
        stream: bool,
    ) -> httpx.Request:
        headers = httpx.Headers(self.config.headers)
        headers.update(options.get("extra_headers") or {})  # a name in any case replaces ours
        if stream:
            headers["accept"] = "text/event-stream"
        query = {
            k: v for k, v in {**(params or {}), **(options.get("extra_query") or {})}.items() if v is not None
        }
        content = None
        if body is not None:
            headers["content-type"] = "application/json"
            try:
                content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            except ValueError as exc:  # NaN or Infinity: not JSON
                raise LunarError(f"the request cannot be sent as JSON: {exc}") from None
        timeout = options.get("timeout")
        return http.build_request(
            method,
            self.config.base_url + path,
            content=content.encode("utf-8") if content is not None else None,
            params=query or None,
            headers=headers,
            timeout=_timeout(timeout) if timeout is not None else self.config.timeout,
        )

    @staticmethod
    def parse(response: httpx.Response, cast_to: type[T]) -> T:
        try:
            data = json.loads(response.content)
        except ValueError:
            text = response.text[:200]
            raise APIResponseValidationError(
                f"the server's answer is not JSON: {text!r}", response=response, body=text
            ) from None
        try:
            return cast_to.model_validate(data)
        except ValidationError as exc:
            raise APIResponseValidationError(
                f"the server's answer is not a {cast_to.__name__}: {exc}", response=response, body=data
            ) from None

    def failed(self, request: httpx.Request, exc: httpx.RequestError) -> APIConnectionError:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"Request timed out: {type(exc).__name__}", request=request)
        return APIConnectionError(f"Connection error: {exc or type(exc).__name__}", request=request)

    def retrying(self, request: httpx.Request, retry: int, wait: float, why: str) -> None:
        log.info(
            "retrying %s %s in %.2fs (attempt %d of %d): %s",
            request.method,
            request.url.path,
            wait,
            retry + 2,
            self.config.max_retries + 1,
            why,
        )


class SyncRequester(_Requests):
    def __init__(self, config: Config, http: httpx.Client | None = None) -> None:
        super().__init__(config)
        self._owns = http is None
        self.http = http if http is not None else httpx.Client(limits=DEFAULT_LIMITS, timeout=config.timeout)

    def close(self) -> None:
        if self._owns:
            self.http.close()

    def __del__(self) -> None:  # a client dropped without close() still closes its own sockets
        with contextlib.suppress(Exception):  # nothing to report to during garbage collection
            self.close()

    def request(
        self,
        method: str,
        path: str,
        cast_to: type[T],
        *,
        body: dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        options: RequestOptions | None = None,
    ) -> T:
        request = self.build(
            self.http, method, path, body=body, params=params, options=options or {}, stream=False
        )
        return self.parse(self._send(request, stream=False), cast_to)

    def stream(
        self, path: str, chunk_type: type[T], *, body: dict[str, Any], options: RequestOptions
    ) -> Stream[T]:
        request = self.build(self.http, "POST", path, body=body, params=None, options=options, stream=True)
        return Stream(self._send(request, stream=True), chunk_type, self)

    def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        retry = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self.http.send(request, stream=stream)
            except httpx.RequestError as exc:
                error: APIError = self.failed(request, exc)
                cause: BaseException | None = exc
                retryable = True
            else:
                if response.is_success:
                    return response
                try:
                    response.read()
                except httpx.RequestError:
                    pass  # the status says enough
                finally:
                    response.close()
                error, cause, retryable = error_from_response(response), None, should_retry(response)
            if not retryable or retry >= self.config.max_retries:
                raise error from cause
            wait = wait_s(retry, response)
            self.retrying(request, retry, wait, str(error))
            time.sleep(wait)
            retry += 1


class AsyncRequester(_Requests):
    def __init__(self, config: Config, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(config)
        self._owns = http is None
        self.http = (
            http if http is not None else httpx.AsyncClient(limits=DEFAULT_LIMITS, timeout=config.timeout)
        )

    async def close(self) -> None:
        if self._owns:
            await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        cast_to: type[T],
        *,
        body: dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        options: RequestOptions | None = None,
    ) -> T:
        request = self.build(
            self.http, method, path, body=body, params=params, options=options or {}, stream=False
        )
        return self.parse(await self._send(request, stream=False), cast_to)

    async def stream(
        self, path: str, chunk_type: type[T], *, body: dict[str, Any], options: RequestOptions
    ) -> AsyncStream[T]:
        request = self.build(self.http, "POST", path, body=body, params=None, options=options, stream=True)
        return AsyncStream(await self._send(request, stream=True), chunk_type, self)

    async def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        retry = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self.http.send(request, stream=stream)
            except httpx.RequestError as exc:
                error: APIError = self.failed(request, exc)
                cause: BaseException | None = exc
                retryable = True
            else:
                if response.is_success:
                    return response
                try:
                    await response.aread()
                except httpx.RequestError:
                    pass  # the status says enough
                finally:
                    await response.aclose()
                error, cause, retryable = error_from_response(response), None, should_retry(response)
            if not retryable or retry >= self.config.max_retries:
                raise error from cause
            wait = wait_s(retry, response)
            self.retrying(request, retry, wait, str(error))
            await asyncio.sleep(wait)
            retry += 1

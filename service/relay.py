"""`Relay`: calls to OpenAI-compatible servers straight over one shared aiohttp session.

The executor sends here the targets for which litellm would only forward the request anyway
(`Target.relayed`: an `openai/` model with an `api_base` of its own, such as a `pureai/` deployment,
vLLM, or any provider whose endpoint speaks OpenAI's protocol); every other provider goes through
litellm, which translates.

The request body (the client's messages or a deployment's raw prompt, and passed-through fields) is
sent as it is. A non-streamed answer is read as one JSON object. A stream is read as SSE frames:
each `data:` payload is decoded once, as a plain dict (no pydantic object per chunk, no re-assembly
of the whole stream at its end, which is where litellm spends most of a stream's CPU), and `[DONE]`
ends it. The executor sees the same things from both paths (a response, an async iterator of chunks,
exceptions with `status_code`), so failover, retries, the breaker, the first-token deadline and the
error mapping are the same code.

Errors: an HTTP error status raises `UpstreamStatus` (`status_code`, the provider's `message`,
`response_headers`; `ContextWindowExceeded` for a 400 about the context length); an `error` frame
mid-stream raises `UpstreamStatus` too; connection failures are aiohttp's `ClientError`s, and a
read that waits longer than the timeout raises `TimeoutError` (aiohttp's `ServerTimeoutError`).

SSRF (service/ssrf.py), with `upstreams` given: a URL is checked before its first call (no
`user:password@`, no refused literal address: aiohttp resolves no literal), and the session's
resolver checks every address a host name resolves to before it is connected to (`ssrf.Refused`
inside aiohttp's `ClientConnectorDNSError`), so a name re-pointed after registration is refused
at connect time. Redirects are not followed: a 3xx is an `UpstreamStatus`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from .shaping import dumps, loads
from .ssrf import Refused, Upstreams

__all__ = ["ContextWindowExceeded", "Relay", "UpstreamStatus"]

MAX_ERROR_BYTES = 64 * 1024
FINISH_S = 0.5
"""How long a stream's end (after [DONE]) may take to arrive before its connection is closed."""
_CONTEXT_HINTS = ("context_length_exceeded", "maximum context length", "context window")

log = logging.getLogger("pureai.relay")


class UpstreamStatus(Exception):
    """The provider answered with an error status (or sent an error frame mid-stream)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"status {status}: {message}")
        self.status_code = status
        self.message = message
        self.response_headers = {k.lower(): v for k, v in (headers or {}).items()}


class ContextWindowExceeded(UpstreamStatus):
    """A 400 saying the prompt is over the model's context window."""


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing a host whose addresses `upstreams` does not allow."""

    def __init__(self, upstreams: Upstreams) -> None:
        self.upstreams = upstreams
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        try:
            self.upstreams.check_addresses(host, port, [r["host"] for r in results])
        except Refused as exc:
            log.warning("refused to connect to %s:%d: %s", host, port, exc.reason)
            raise
        return results

    async def close(self) -> None:
        await self._inner.close()


class Relay:
    def __init__(self, timeout_s: float, upstreams: Upstreams | None = None) -> None:
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        self.upstreams = upstreams
        """The SSRF policy (None: every address is called; set before the first call)."""
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._checked: set[str] = set()  # URLs that passed `Upstreams.check_url`
        self.used = False  # it has made a call (for /ready's `upstream_transports`)

    async def close(self) -> None:
        session, self._session = self._session, None
        resolver, self._resolver = self._resolver, None
        if session is not None:
            await session.close()
        if resolver is not None:
            await resolver.close()

    def _ready(self) -> aiohttp.ClientSession:
        self.used = True
        if self._session is None or self._session.closed:
            if self.upstreams is not None and self._resolver is None:
                self._resolver = GuardedResolver(self.upstreams)
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, resolver=self._resolver)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        return self._session

    def _check(self, url: str) -> None:
        if self.upstreams is not None and url not in self._checked:
            try:
                self.upstreams.check_url(url)
            except Refused as exc:
                log.warning("refused to call %s: %s", exc.host, exc.reason)
                raise
            self._checked.add(url)

    async def send(self, url: str, api_key: str, body: dict[str, Any]) -> dict[str, Any] | Frames:
        """POST `body` to `url`: the answer (a dict), or, when `body` asks for a stream, an async
        iterator of its chunks (dicts) once the response headers are in; its `aclose()` closes
        the upstream response."""
        headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
        self._check(url)
        response = await self._ready().post(url, data=dumps(body), headers=headers, allow_redirects=False)
        stream = bool(body.get("stream"))
        try:
            if response.status >= 300:  # a redirect is not followed: it could lead anywhere
                raise await _status_error(response)
            if not stream:
                answer: dict[str, Any] = loads(await response.read())
                return answer
        except BaseException:
            response.close()
            raise
        return Frames(response)


class Frames:
    """The chunks of a streamed answer; `aclose()` closes the upstream response, whether or not
    iteration began (a generator not yet started would skip its `finally`)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._frames = _frames(response)

    def __aiter__(self) -> Frames:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await anext(self._frames)

    async def aclose(self) -> None:
        await self._frames.aclose()
        if not self._response.closed:
            self._response.close()


async def _frames(response: aiohttp.ClientResponse) -> AsyncGenerator[dict[str, Any], None]:
    """The `data:` payloads of an SSE response, decoded, until `[DONE]` or the end of the body; a
    body that ends before any finish_reason was cut (aiohttp may see a connection closed mid-way as
    the end of the body), and raises `ClientPayloadError` as a broken stream."""
    done = finished = False
    try:
        buffer = b""
        async for data in response.content.iter_any():
            buffer += data
            if b"\r" in buffer:
                buffer = buffer.replace(b"\r\n", b"\n")  # a lone \r at the end waits for its \n
            while (end := buffer.find(b"\n\n")) != -1:
                frame, buffer = buffer[:end], buffer[end + 2 :]
                payload = _data(frame)
                if payload is None:
                    continue
                if payload == b"[DONE]":
                    done = await _finish(response)
                    return
                chunk = loads(payload)
                if not isinstance(chunk, dict):
                    raise ValueError("an SSE frame that is not a JSON object")
                if chunk.get("error") is not None and "choices" not in chunk:
                    raise _frame_error(chunk["error"])
                finished = finished or any(c.get("finish_reason") for c in chunk.get("choices") or ())
                yield chunk
        if not finished:  # the body ended (a connection closed mid-way) before the answer did
            raise aiohttp.ClientPayloadError("the stream ended before its finish_reason and [DONE]")
    finally:
        if done:
            response.release()  # read to its end: the connection goes back to the pool
        else:
            response.close()  # cut short: the connection is closed, and the upstream sees it


async def _finish(response: aiohttp.ClientResponse) -> bool:
    """Read what follows [DONE] (the chunked body's last, empty chunk), so that the connection can go
    back to the pool; False if it does not come within `FINISH_S` (the connection is then closed)."""
    try:
        async with asyncio.timeout(FINISH_S):
            await response.content.read()
    except TimeoutError:
        return False
    return True


def _data(frame: bytes) -> bytes | None:
    """The data of one SSE event (its `data:` lines joined), None for comments and other fields."""
    if frame.startswith(b"data: ") and b"\n" not in frame:
        return frame[6:]
    lines = [line for line in frame.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    return b"\n".join(line[6:] if line.startswith(b"data: ") else line[5:] for line in lines)


async def _status_error(response: aiohttp.ClientResponse) -> UpstreamStatus:
    if response.status < 400:
        return UpstreamStatus(response.status, "the provider redirected; the gateway follows no redirects")
    raw = await response.content.read(MAX_ERROR_BYTES)
    message = raw.decode("utf-8", "replace").strip() or response.reason or f"status {response.status}"
    code = None
    try:
        error = loads(raw).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        message, code = str(error.get("message") or message), error.get("code")
    elif isinstance(error, str):
        message = error
    cls = UpstreamStatus
    if response.status == 400 and any(h in f"{code} {message}".lower() for h in _CONTEXT_HINTS):
        cls = ContextWindowExceeded
    return cls(response.status, message, response.headers)


def _frame_error(error: Any) -> UpstreamStatus:
    message = str(error.get("message") if isinstance(error, dict) else error)
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and code >= 400 else 500
    return UpstreamStatus(status, message)

"""`Stream` and `AsyncStream`: the chunks of a streamed completion, read from server-sent events.

Iterating parses each `data:` event into the chunk type and stops at `data: [DONE]` (or at the end
of the body, for servers that do not send it). An event carrying `{"error": {...}}` (or named
`error`) ends the stream with an exception (see `error_from_event`); a connection that drops raises
`APIConnectionError` (`APITimeoutError` when a read times out). Events with another `event:` name
(pings and the like) are skipped. A stream is never retried: the server may already have produced
(and billed) what was sent. Close a stream you leave early: `with`, or `close()`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from types import TracebackType
from typing import Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    error_from_event,
)
from ._sse import ServerSentEvent, SSEDecoder, TruncatedStream

__all__ = ["AsyncStream", "Stream"]

T = TypeVar("T", bound=BaseModel)


class Stream(Generic[T]):
    """The chunks of a streamed response, as an iterator (and a context manager that closes it)."""

    def __init__(self, response: httpx.Response, chunk_type: type[T], owner: object = None) -> None:
        self.response = response
        self._chunk_type = chunk_type
        self._owner = owner  # the client whose pool serves the stream stays alive while it is read
        self._iterator = self._chunks()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._iterator)

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and give the connection back (iterating afterwards yields nothing)."""
        self._iterator.close()
        self.response.close()

    def _chunks(self) -> Generator[T, None, None]:
        decoder = SSEDecoder()
        try:
            for raw in _read(self.response):
                for event in decoder.feed(raw):
                    if _is_done(event):
                        return
                    chunk = _chunk(event, self.response, self._chunk_type)
                    if chunk is not None:
                        yield chunk
            for event in _end(decoder, self.response):
                if _is_done(event):
                    return
                chunk = _chunk(event, self.response, self._chunk_type)
                if chunk is not None:
                    yield chunk
        finally:
            self.response.close()


class AsyncStream(Generic[T]):
    """The chunks of a streamed response, as an async iterator (and an async context manager)."""

    def __init__(self, response: httpx.Response, chunk_type: type[T], owner: object = None) -> None:
        self.response = response
        self._chunk_type = chunk_type
        self._owner = owner  # the client whose pool serves the stream stays alive while it is read
        self._iterator = self._chunks()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reading and give the connection back (iterating afterwards yields nothing)."""
        await self._iterator.aclose()
        await self.response.aclose()

    async def _chunks(self) -> AsyncGenerator[T, None]:
        decoder = SSEDecoder()
        try:
            async for raw in _aread(self.response):
                for event in decoder.feed(raw):
                    if _is_done(event):
                        return
                    chunk = _chunk(event, self.response, self._chunk_type)
                    if chunk is not None:
                        yield chunk
            for event in _end(decoder, self.response):
                if _is_done(event):
                    return
                chunk = _chunk(event, self.response, self._chunk_type)
                if chunk is not None:
                    yield chunk
        finally:
            await self.response.aclose()


def _read(response: httpx.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_raw()
    except httpx.TimeoutException as exc:
        raise APITimeoutError("the stream timed out", request=response.request) from exc
    except httpx.TransportError as exc:
        raise APIConnectionError(f"the stream broke: {exc}", request=response.request) from exc


async def _aread(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for raw in response.aiter_raw():
            yield raw
    except httpx.TimeoutException as exc:
        raise APITimeoutError("the stream timed out", request=response.request) from exc
    except httpx.TransportError as exc:
        raise APIConnectionError(f"the stream broke: {exc}", request=response.request) from exc


def _end(decoder: SSEDecoder, response: httpx.Response) -> list[ServerSentEvent]:
    try:
        return decoder.end()
    except TruncatedStream as exc:
        raise APIConnectionError(f"the stream broke: {exc}", request=response.request) from None


def _is_done(event: ServerSentEvent) -> bool:
    return event.data.strip() == "[DONE]"


def _chunk(event: ServerSentEvent, response: httpx.Response, chunk_type: type[T]) -> T | None:
    """The event as a chunk; None for events of another kind; raises for an error event."""
    if event.event not in (None, "message", "error"):
        return None
    try:
        data = json.loads(event.data)
    except ValueError:
        if event.event == "error":
            raise error_from_event({"error": {"message": event.data}}, response) from None
        raise APIResponseValidationError(
            f"the server sent an event that is not JSON: {event.data[:200]!r}", response=response
        ) from None
    if event.event == "error" and not (isinstance(data, dict) and "error" in data):
        raise error_from_event(
            {"error": data if isinstance(data, dict) else {"message": str(data)}}, response
        )
    if event.event == "error" or (isinstance(data, dict) and data.get("error")):
        raise error_from_event(data, response)
    try:
        return chunk_type.model_validate(data)
    except ValidationError as exc:
        raise APIResponseValidationError(
            f"the server sent a chunk that is not a {chunk_type.__name__}: {exc}",
            response=response,
            body=data,
        ) from None

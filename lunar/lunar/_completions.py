"""`client.completions`: POST /v1/completions (text completions)."""

from __future__ import annotations

from typing import Literal, Unpack, overload

from ._http import AsyncRequester, SyncRequester
from ._params import CompletionParams, split
from ._streaming import AsyncStream, Stream
from ._types import Completion, CompletionChunk

__all__ = ["AsyncCompletions", "Completions"]

PATH = "/v1/completions"


class Completions:
    def __init__(self, requester: SyncRequester) -> None:
        self._requester = requester

    @overload
    def create(self, *, stream: Literal[False] = False, **params: Unpack[CompletionParams]) -> Completion: ...
    @overload
    def create(
        self, *, stream: Literal[True], **params: Unpack[CompletionParams]
    ) -> Stream[CompletionChunk]: ...
    @overload
    def create(
        self, *, stream: bool, **params: Unpack[CompletionParams]
    ) -> Completion | Stream[CompletionChunk]: ...

    def create(
        self, *, stream: bool = False, **params: Unpack[CompletionParams]
    ) -> Completion | Stream[CompletionChunk]:
        """A completion of `prompt` by `model`; with `stream=True`, a `Stream` of chunks.

        Besides `model` and `prompt`: `max_tokens`, `temperature`, `top_p`, `stop`,
        `stream_options`, OpenAI's other sampling fields, and the call options `timeout`,
        `extra_headers`, `extra_query`, `extra_body`.
        """
        body, options = split("create", CompletionParams, params)
        if stream:
            return self._requester.stream(
                PATH, CompletionChunk, body={**body, "stream": True}, options=options
            )
        return self._requester.request("POST", PATH, Completion, body=body, options=options)


class AsyncCompletions:
    def __init__(self, requester: AsyncRequester) -> None:
        self._requester = requester

    @overload
    async def create(
        self, *, stream: Literal[False] = False, **params: Unpack[CompletionParams]
    ) -> Completion: ...
    @overload
    async def create(
        self, *, stream: Literal[True], **params: Unpack[CompletionParams]
    ) -> AsyncStream[CompletionChunk]: ...
    @overload
    async def create(
        self, *, stream: bool, **params: Unpack[CompletionParams]
    ) -> Completion | AsyncStream[CompletionChunk]: ...

    async def create(
        self, *, stream: bool = False, **params: Unpack[CompletionParams]
    ) -> Completion | AsyncStream[CompletionChunk]:
        """`Completions.create`, awaited; with `stream=True`, an `AsyncStream` of chunks."""
        body, options = split("create", CompletionParams, params)
        if stream:
            return await self._requester.stream(
                PATH, CompletionChunk, body={**body, "stream": True}, options=options
            )
        return await self._requester.request("POST", PATH, Completion, body=body, options=options)

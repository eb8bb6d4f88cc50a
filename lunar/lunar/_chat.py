"""`client.chat.completions`: POST /v1/chat/completions."""

from __future__ import annotations

from typing import Literal, Unpack, overload

from ._http import AsyncRequester, SyncRequester
from ._params import ChatCompletionParams, split
from ._streaming import AsyncStream, Stream
from ._types import ChatCompletion, ChatCompletionChunk

__all__ = ["AsyncChat", "AsyncChatCompletions", "Chat", "ChatCompletions"]

PATH = "/v1/chat/completions"


class ChatCompletions:
    def __init__(self, requester: SyncRequester) -> None:
        self._requester = requester

    @overload
    def create(
        self, *, stream: Literal[False] = False, **params: Unpack[ChatCompletionParams]
    ) -> ChatCompletion: ...
    @overload
    def create(
        self, *, stream: Literal[True], **params: Unpack[ChatCompletionParams]
    ) -> Stream[ChatCompletionChunk]: ...
    @overload
    def create(
        self, *, stream: bool, **params: Unpack[ChatCompletionParams]
    ) -> ChatCompletion | Stream[ChatCompletionChunk]: ...

    def create(
        self, *, stream: bool = False, **params: Unpack[ChatCompletionParams]
    ) -> ChatCompletion | Stream[ChatCompletionChunk]:
        """A chat completion of `messages` by `model`; with `stream=True`, a `Stream` of chunks.

        Besides `model` and `messages`: `max_tokens`, `temperature`, `top_p`, `stop`,
        `stream_options`, OpenAI's other sampling and tool fields, and the call options `timeout`,
        `extra_headers`, `extra_query`, `extra_body`.
        """
        body, options = split("create", ChatCompletionParams, params)
        if stream:
            return self._requester.stream(
                PATH, ChatCompletionChunk, body={**body, "stream": True}, options=options
            )
        return self._requester.request("POST", PATH, ChatCompletion, body=body, options=options)


class AsyncChatCompletions:
    def __init__(self, requester: AsyncRequester) -> None:
        self._requester = requester

    @overload
    async def create(
        self, *, stream: Literal[False] = False, **params: Unpack[ChatCompletionParams]
    ) -> ChatCompletion: ...
    @overload
    async def create(
        self, *, stream: Literal[True], **params: Unpack[ChatCompletionParams]
    ) -> AsyncStream[ChatCompletionChunk]: ...
    @overload
    async def create(
        self, *, stream: bool, **params: Unpack[ChatCompletionParams]
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]: ...

    async def create(
        self, *, stream: bool = False, **params: Unpack[ChatCompletionParams]
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]:
        """`ChatCompletions.create`, awaited; with `stream=True`, an `AsyncStream` of chunks."""
        body, options = split("create", ChatCompletionParams, params)
        if stream:
            return await self._requester.stream(
                PATH, ChatCompletionChunk, body={**body, "stream": True}, options=options
            )
        return await self._requester.request("POST", PATH, ChatCompletion, body=body, options=options)


class Chat:
    """`client.chat`: holds `completions`."""

    def __init__(self, requester: SyncRequester) -> None:
        self.completions = ChatCompletions(requester)


class AsyncChat:
    """`client.chat` of `AsyncLunar`: holds `completions`."""

    def __init__(self, requester: AsyncRequester) -> None:
        self.completions = AsyncChatCompletions(requester)

"""`client.router.route`: POST /v1/router, the routing decision and (by default) its completion."""

from __future__ import annotations

from typing import Literal, Unpack, overload

from ._http import AsyncRequester, SyncRequester
from ._params import RouteParams, split
from ._streaming import AsyncStream, Stream
from ._types import ChatCompletionChunk, RoutedCompletion, RoutingDecision

__all__ = ["AsyncRouter", "Router"]

PATH = "/v1/router"


class Router:
    def __init__(self, requester: SyncRequester) -> None:
        self._requester = requester

    @overload
    def route(
        self, *, execute: Literal[False], stream: bool = False, **params: Unpack[RouteParams]
    ) -> RoutingDecision: ...
    @overload
    def route(
        self, *, execute: Literal[True] = True, stream: Literal[False] = False, **params: Unpack[RouteParams]
    ) -> RoutedCompletion: ...
    @overload
    def route(
        self, *, execute: Literal[True] = True, stream: Literal[True], **params: Unpack[RouteParams]
    ) -> Stream[ChatCompletionChunk]: ...
    @overload
    def route(
        self, *, execute: bool = True, stream: bool = False, **params: Unpack[RouteParams]
    ) -> RoutingDecision | RoutedCompletion | Stream[ChatCompletionChunk]: ...

    def route(
        self, *, execute: bool = True, stream: bool = False, **params: Unpack[RouteParams]
    ) -> RoutingDecision | RoutedCompletion | Stream[ChatCompletionChunk]:
        """Let the router choose a model for `messages` (among `models`, weighing cost by
        `cost_weight`: 0 = quality ... 1 = cost).

        `execute=False`: the `RoutingDecision` only (no model runs; `stream` is ignored).
        `execute=True` (the default): the `RoutedCompletion`, whose `routing` is the decision;
        with `stream=True` a `Stream` of chunks, the first of which carries `routing`.
        """
        body, options = split("route", RouteParams, params)
        body["execute"] = execute
        if not execute:
            return self._requester.request("POST", PATH, RoutingDecision, body=body, options=options)
        if stream:
            return self._requester.stream(
                PATH, ChatCompletionChunk, body={**body, "stream": True}, options=options
            )
        return self._requester.request("POST", PATH, RoutedCompletion, body=body, options=options)


class AsyncRouter:
    def __init__(self, requester: AsyncRequester) -> None:
        self._requester = requester

    @overload
    async def route(
        self, *, execute: Literal[False], stream: bool = False, **params: Unpack[RouteParams]
    ) -> RoutingDecision: ...
    @overload
    async def route(
        self, *, execute: Literal[True] = True, stream: Literal[False] = False, **params: Unpack[RouteParams]
    ) -> RoutedCompletion: ...
    @overload
    async def route(
        self, *, execute: Literal[True] = True, stream: Literal[True], **params: Unpack[RouteParams]
    ) -> AsyncStream[ChatCompletionChunk]: ...
    @overload
    async def route(
        self, *, execute: bool = True, stream: bool = False, **params: Unpack[RouteParams]
    ) -> RoutingDecision | RoutedCompletion | AsyncStream[ChatCompletionChunk]: ...

    async def route(
        self, *, execute: bool = True, stream: bool = False, **params: Unpack[RouteParams]
    ) -> RoutingDecision | RoutedCompletion | AsyncStream[ChatCompletionChunk]:
        """`Router.route`, awaited; with `stream=True`, an `AsyncStream` of chunks."""
        body, options = split("route", RouteParams, params)
        body["execute"] = execute
        if not execute:
            return await self._requester.request("POST", PATH, RoutingDecision, body=body, options=options)
        if stream:
            return await self._requester.stream(
                PATH, ChatCompletionChunk, body={**body, "stream": True}, options=options
            )
        return await self._requester.request("POST", PATH, RoutedCompletion, body=body, options=options)

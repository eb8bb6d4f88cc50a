"""`client.feedback`: POST /v1/feedback (score an answer) and GET /v1/feedback (this key's scores)."""

from __future__ import annotations

from typing import Unpack

from ._http import AsyncRequester, SyncRequester
from ._params import FeedbackParams, RequestOptions, split
from ._types import Feedback, FeedbackList

__all__ = ["AsyncFeedbackResource", "FeedbackResource"]

PATH = "/v1/feedback"


class FeedbackResource:
    def __init__(self, requester: SyncRequester) -> None:
        self._requester = requester

    def create(self, **params: Unpack[FeedbackParams]) -> Feedback:
        """Score the answer of request `request_id` (a completion's `id`) with `score` in [0, 1] or
        `thumbs` "up"/"down", under `metric`. Sending it again replaces it (safe to retry);
        NotFoundError for a request this key did not make."""
        body, options = split("create", FeedbackParams, params)
        return self._requester.request("POST", PATH, Feedback, body=body, options=options)

    def list(self, *, request_id: str | None = None, **options: Unpack[RequestOptions]) -> FeedbackList:
        """This key's feedback, newest first; only `request_id`'s when given."""
        _, opts = split("list", RequestOptions, options)
        params = {"request_id": request_id} if request_id else None
        return self._requester.request("GET", PATH, FeedbackList, params=params, options=opts)


class AsyncFeedbackResource:
    def __init__(self, requester: AsyncRequester) -> None:
        self._requester = requester

    async def create(self, **params: Unpack[FeedbackParams]) -> Feedback:
        """`FeedbackResource.create`, awaited."""
        body, options = split("create", FeedbackParams, params)
        return await self._requester.request("POST", PATH, Feedback, body=body, options=options)

    async def list(self, *, request_id: str | None = None, **options: Unpack[RequestOptions]) -> FeedbackList:
        """`FeedbackResource.list`, awaited."""
        _, opts = split("list", RequestOptions, options)
        params = {"request_id": request_id} if request_id else None
        return await self._requester.request("GET", PATH, FeedbackList, params=params, options=opts)

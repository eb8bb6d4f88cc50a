"""`Lunar` and `AsyncLunar`: the configuration, one connection pool, and the resource tree.

client.chat.completions.create(...)    POST /v1/chat/completions
client.completions.create(...)         POST /v1/completions
client.models.list() / .retrieve(id)   GET  /v1/models, /v1/models/{id}
client.providers.list(model=...)       GET  /v1/providers?model=
client.router.route(...)               POST /v1/router
client.feedback.create(...) / .list()  POST /v1/feedback, GET /v1/feedback
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

import httpx

from ._chat import AsyncChat, Chat
from ._completions import AsyncCompletions, Completions
from ._feedback import AsyncFeedbackResource, FeedbackResource
from ._http import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, AsyncRequester, SyncRequester, resolve
from ._models import AsyncModels, AsyncProviders, Models, Providers
from ._router import AsyncRouter, Router

__all__ = ["AsyncLunar", "Lunar"]


class Lunar:
    """A client of the pureai gateway.

    api_key      sent as `x-api-key`; default: the PUREAI_API_KEY environment variable (LunarError
                 when neither is set)
    base_url     default: PUREAI_BASE_URL, else https://api.pureai-api.com (a trailing /v1 is fine)
    timeout      seconds (or an httpx.Timeout) for each attempt; default 600 s, 5 s to connect; None:
                 no timeout. Each method takes `timeout=` for one call.
    max_retries  retries of a failed attempt (connection errors, timeouts, 408, 409, 429, 5xx), with
                 exponential backoff or as long as the server asks; 0 turns them off. Default 2.
    default_headers  sent with every request
    http_client  an httpx.Client to send through (yours to close); default: one of the client's own

    Close it when done (`close()`, or use it as a context manager): that closes its connection pool.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        config = resolve(api_key, base_url, timeout, max_retries, default_headers)
        self._requester = SyncRequester(config, http_client)
        self.api_key = config.api_key
        self.base_url = config.base_url
        self.timeout = config.timeout
        self.max_retries = config.max_retries
        self.chat = Chat(self._requester)
        self.completions = Completions(self._requester)
        self.models = Models(self._requester)
        self.providers = Providers(self._requester)
        self.router = Router(self._requester)
        self.feedback = FeedbackResource(self._requester)

    def close(self) -> None:
        """Close the connection pool (not an `http_client` you passed in)."""
        self._requester.close()

    def __enter__(self) -> Lunar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lunar(base_url={self.base_url!r}, max_retries={self.max_retries})"


class AsyncLunar:
    """`Lunar` for asyncio: the same arguments (`http_client` an httpx.AsyncClient), every method
    awaited, streams iterated with `async for`, and `await client.close()` / `async with`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        config = resolve(api_key, base_url, timeout, max_retries, default_headers)
        self._requester = AsyncRequester(config, http_client)
        self.api_key = config.api_key
        self.base_url = config.base_url
        self.timeout = config.timeout
        self.max_retries = config.max_retries
        self.chat = AsyncChat(self._requester)
        self.completions = AsyncCompletions(self._requester)
        self.models = AsyncModels(self._requester)
        self.providers = AsyncProviders(self._requester)
        self.router = AsyncRouter(self._requester)
        self.feedback = AsyncFeedbackResource(self._requester)

    async def close(self) -> None:
        """Close the connection pool (not an `http_client` you passed in)."""
        await self._requester.close()

    async def __aenter__(self) -> AsyncLunar:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncLunar(base_url={self.base_url!r}, max_retries={self.max_retries})"

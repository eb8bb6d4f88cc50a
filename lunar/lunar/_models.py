"""`client.models` (GET /v1/models, GET /v1/models/{id}) and `client.providers` (GET /v1/providers)."""

from __future__ import annotations

from typing import Unpack
from urllib.parse import quote

from ._http import AsyncRequester, SyncRequester
from ._params import RequestOptions, split
from ._types import Model, ModelList, ProviderList

__all__ = ["AsyncModels", "AsyncProviders", "Models", "Providers"]


class Models:
    def __init__(self, requester: SyncRequester) -> None:
        self._requester = requester

    def list(self, **options: Unpack[RequestOptions]) -> ModelList:
        """The models this key may use."""
        _, opts = split("list", RequestOptions, options)
        return self._requester.request("GET", "/v1/models", ModelList, options=opts)

    def retrieve(self, model: str, **options: Unpack[RequestOptions]) -> Model:
        """One model; NotFoundError when it does not exist, PermissionDeniedError when the key may not use it."""
        _, opts = split("retrieve", RequestOptions, options)
        return self._requester.request("GET", "/v1/models/" + quote(model, safe="/"), Model, options=opts)


class AsyncModels:
    def __init__(self, requester: AsyncRequester) -> None:
        self._requester = requester

    async def list(self, **options: Unpack[RequestOptions]) -> ModelList:
        """The models this key may use."""
        _, opts = split("list", RequestOptions, options)
        return await self._requester.request("GET", "/v1/models", ModelList, options=opts)

    async def retrieve(self, model: str, **options: Unpack[RequestOptions]) -> Model:
        """One model; NotFoundError when it does not exist, PermissionDeniedError when the key may not use it."""
        _, opts = split("retrieve", RequestOptions, options)
        return await self._requester.request(
            "GET", "/v1/models/" + quote(model, safe="/"), Model, options=opts
        )


class Providers:
    def __init__(self, requester: SyncRequester) -> None:
        self._requester = requester

    def list(self, *, model: str, **options: Unpack[RequestOptions]) -> ProviderList:
        """The providers of `model`, the primary first, then the backups the gateway fails over to."""
        _, opts = split("list", RequestOptions, options)
        return self._requester.request(
            "GET", "/v1/providers", ProviderList, params={"model": model}, options=opts
        )


class AsyncProviders:
    def __init__(self, requester: AsyncRequester) -> None:
        self._requester = requester

    async def list(self, *, model: str, **options: Unpack[RequestOptions]) -> ProviderList:
        """The providers of `model`, the primary first, then the backups the gateway fails over to."""
        _, opts = split("list", RequestOptions, options)
        return await self._requester.request(
            "GET", "/v1/providers", ProviderList, params={"model": model}, options=opts
        )

"""GET /v1/models (the models this key may use) and GET /v1/providers?model= (with whether each
provider is configured here)."""

from typing import Any

from fastapi import APIRouter, Request

from models_registry import ModelEntry, Provider

from ..errors import BadRequest
from ..gateway import Gateway
from . import gateway

router = APIRouter(tags=["models"])

CREATED = 1699000000  # the catalogue has no dates; a fixed time keeps responses stable


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    gw = gateway(request)
    ctx = await gw.authenticate(request, "models")
    data = [
        {"id": m.id, "object": "model", "created": CREATED, "owned_by": m.owned_by}
        for m in gw.allowed(ctx.key)
    ]
    return {"object": "list", "data": data}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    gw = gateway(request)
    ctx = await gw.authenticate(request, "models")
    entry = gw.resolve(model_id, ctx.key)
    return {"id": entry.id, "object": "model", "created": CREATED, "owned_by": entry.owned_by}


@router.get("/v1/providers")
async def list_providers(request: Request) -> dict[str, Any]:
    gw = gateway(request)
    ctx = await gw.authenticate(request, "providers")
    model = request.query_params.get("model")
    if not model:
        raise BadRequest("the query parameter 'model' is required", param="model", code="missing_field")
    entry = gw.resolve(model, ctx.key)
    ordered = sorted(entry.providers, key=lambda p: p.type != "primary")
    return {"providers": [_provider(gw, entry, p) for p in ordered]}


def _provider(gw: Gateway, entry: ModelEntry, provider: Provider) -> dict[str, Any]:
    """The reference's `{"id", "type", "enabled", "params"}`, and whether this gateway can call it
    (`configured`; else `missing`: the environment variables to set) and what it accepts there."""
    missing = gw.executor.missing(entry, provider)
    item = {**provider.to_api(), "configured": provider.enabled and not missing}
    if missing:
        item["missing"] = missing
    item["features"] = provider.features.to_api()
    return item

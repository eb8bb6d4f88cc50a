"""GET /v1/models (the models this key may use) and GET /v1/providers?model=."""

from typing import Any

from fastapi import APIRouter, Request

from ..errors import BadRequest
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
    return {"providers": [p.to_api() for p in ordered]}

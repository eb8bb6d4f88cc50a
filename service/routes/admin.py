"""The admin API (admin keys only): create, list and revoke API keys.

POST   /v1/admin/keys        {"tenant", "name", "models", "rpm", "tpm", "budget_usd", "admin"}
GET    /v1/admin/keys        ?tenant=
DELETE /v1/admin/keys/{id}
"""

import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ..errors import NotFound
from ..keys import new_key
from ..protocol import parse_body
from ..shaping import JSON
from ..store import KeyRecord
from . import gateway

router = APIRouter(tags=["admin"])


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field("default", min_length=1, max_length=200)
    name: str = Field("", max_length=200)
    models: list[str] | None = Field(None, min_length=1)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    budget_usd: float | None = Field(None, ge=0)
    admin: bool = False


def key_json(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "api_key",
        "tenant": record.tenant,
        "name": record.name,
        "admin": record.admin,
        "models": list(record.allowed_models) if record.allowed_models is not None else None,
        "rpm": record.rpm,
        "tpm": record.tpm,
        "budget_usd": record.budget_usd,
        "created": int(record.created),
        "revoked": None if record.revoked is None else int(record.revoked),
    }


@router.post("/v1/admin/keys")
async def create_key(request: Request) -> Response:
    gw = gateway(request)
    assert gw.keys is not None and gw.store is not None
    await gw.keys.check_admin(_key(request))
    spec = parse_body(await request.body(), NewKey)
    models = None
    if spec.models is not None:
        models = tuple(
            dict.fromkeys(
                gw.resolve(m, KeyRecord(id="", tenant="", name=""), "models").id for m in spec.models
            )
        )
    record, secret = new_key(
        gw.settings, tenant=spec.tenant, name=spec.name, admin=spec.admin, models=models,
        rpm=spec.rpm, tpm=spec.tpm, budget_usd=spec.budget_usd,
    )  # fmt: skip
    await gw.store.add_key(record)
    return JSON({**key_json(record), "key": secret}, status_code=201)


@router.get("/v1/admin/keys")
async def list_keys(request: Request) -> dict[str, Any]:
    gw = gateway(request)
    assert gw.keys is not None and gw.store is not None
    await gw.keys.check_admin(_key(request))
    records = await gw.store.list_keys(request.query_params.get("tenant") or None)
    return {"object": "list", "data": [key_json(r) for r in records]}


@router.delete("/v1/admin/keys/{key_id}")
async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
    gw = gateway(request)
    assert gw.keys is not None and gw.store is not None
    await gw.keys.check_admin(_key(request))
    if not await gw.store.revoke_key(key_id, time.time()):
        raise NotFound(f"no live key {key_id!r}", code="key_not_found", param="key_id")
    gw.keys.forget(key_id)
    return {"id": key_id, "object": "api_key", "revoked": True}


def _key(request: Request) -> str | None:
    from ..keys import presented_key

    return presented_key(request)

"""Router roll-out (admin keys only): reload, roll back, shadow; see `service/rollout.py`.

POST   /v1/admin/router/reload    {"artifacts": "/abs/path"}  (no body: PUREAI_ARTIFACTS again)
POST   /v1/admin/router/rollback
POST   /v1/admin/router/shadow    {"artifacts": "/abs/path"}
DELETE /v1/admin/router/shadow
GET    /v1/admin/router           {"version", "previous", "shadow", "learning"}
GET    /v1/admin/router/stats     ?start=&end=   routed requests and mean "score" per version and model
"""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from ..errors import BadRequest
from ..gateway import Gateway
from ..protocol import parse_body
from ..rollout import Loaded, Rollout
from . import gateway
from .usage import time_param

router = APIRouter(tags=["admin"])


class Artifacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifacts: str | None = None


@router.get("/v1/admin/router")
async def state(request: Request) -> dict[str, Any]:
    """The versions, what the current router fits its cost_weight scale on (`traffic` or
    `reference`, PUREAI_ROUTER_CALIBRATION), and per model what this worker's feedback taught
    (service/learning.py)."""
    rollout = await _admin(request)
    calibration = rollout.current.router.calibration if rollout.current else None
    return {**rollout.state(), "calibration": calibration, "learning": gateway(request).learner.state()}


@router.get("/v1/admin/router/stats")
async def stats(request: Request) -> dict[str, Any]:
    """From the ledger (every worker's, across restarts): per router version and model, the routed
    requests, their share of the version's traffic, how many got a "score" and its mean."""
    rollout = await _admin(request)
    q = request.query_params
    since, until = time_param(q.get("start"), "start"), time_param(q.get("end"), "end")
    store = gateway(request).store
    assert store is not None
    rows = await store.router_stats(since, until)
    per_version: dict[str | None, int] = {}
    for r in rows:
        per_version[r.version] = per_version.get(r.version, 0) + r.requests
    data = [
        {
            "version": r.version,
            "model": r.model,
            "requests": r.requests,
            "share": round(r.requests / per_version[r.version], 4),
            "feedback_count": r.scored,
            "mean_score": None if r.mean_score is None else round(r.mean_score, 4),
        }
        for r in rows
    ]
    return {"object": "list", "current": rollout.state()["version"], "data": data}


@router.post("/v1/admin/router/reload")
async def reload(request: Request) -> dict[str, Any]:
    rollout = await _admin(request)
    path = await _path(request, gateway(request))
    await _loading(rollout.reload(path))
    return rollout.state()


@router.post("/v1/admin/router/rollback")
async def rollback(request: Request) -> dict[str, Any]:
    rollout = await _admin(request)
    if await rollout.rollback() is None:
        raise BadRequest("there is no previous router to roll back to", code="no_previous_router")
    return rollout.state()


@router.post("/v1/admin/router/shadow")
async def shadow(request: Request) -> dict[str, Any]:
    rollout = await _admin(request)
    path = await _path(request, gateway(request))
    await _loading(rollout.set_shadow(path))
    return rollout.state()


@router.delete("/v1/admin/router/shadow")
async def stop_shadow(request: Request) -> dict[str, Any]:
    rollout = await _admin(request)
    rollout.clear_shadow()
    return rollout.state()


async def _admin(request: Request) -> Rollout:
    from ..keys import presented_key

    gw = gateway(request)
    assert gw.keys is not None and gw.rollout is not None
    await gw.keys.check_admin(presented_key(request))
    return gw.rollout


async def _path(request: Request, gw: Gateway) -> Path | None:
    """The body's `artifacts` (an absolute path), or the configured artifacts for no body."""
    raw = await request.body()
    spec = parse_body(raw, Artifacts) if raw.strip() else Artifacts()
    if spec.artifacts is None:
        return gw.settings.artifacts
    path = Path(spec.artifacts)
    if not path.is_absolute():
        raise BadRequest(f"artifacts must be an absolute path, got {spec.artifacts!r}", param="artifacts")
    return path


async def _loading(load: Any) -> Loaded:
    """Await a router load; bad artifacts are a 400 that names the problem (the router stays)."""
    from router.errors import RouterError

    try:
        loaded: Loaded = await load
    except RouterError as exc:
        raise BadRequest(
            f"cannot load the router: {exc}", code="invalid_artifacts", param="artifacts"
        ) from None
    return loaded

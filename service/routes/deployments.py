"""The admin API for `pureai/<id>` deployments (admin keys only; see service/deployments.py).

POST   /v1/admin/deployments        {"id", "api_base", "api_key", "owned_by", "context_window", ...}
GET    /v1/admin/deployments
GET    /v1/admin/deployments/{id}
DELETE /v1/admin/deployments/{id}

`{id}` is the deployment's name with or without its prefix: `gemma-3-4b-it` and
`pureai/gemma-3-4b-it` name the same deployment, as in the POST body.
"""

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from models_registry import CUSTOM_PREFIX

from ..deployments import Deployments, NewDeployment, deployment_json
from ..errors import Conflict, NotFound
from ..keys import presented_key
from ..protocol import parse_body
from ..shaping import JSON
from . import gateway

router = APIRouter(tags=["admin"])


async def _admin(request: Request) -> Deployments:
    gw = gateway(request)
    assert gw.keys is not None and gw.deployments is not None
    await gw.keys.check_admin(presented_key(request))
    return gw.deployments


@router.post("/v1/admin/deployments")
async def register(request: Request) -> Response:
    deployments = await _admin(request)
    spec = parse_body(await request.body(), NewDeployment)
    deployment, entry = deployments.build(spec)
    await deployments.check_endpoints(spec)  # the SSRF policy's DNS look-ups
    if not await deployments.store.add_deployment(deployment):
        raise Conflict(
            f"a deployment {deployment.id!r} is registered already; delete it first to replace it",
            code="deployment_exists",
            param="id",
        )
    await deployments.refresh(force=True)  # this worker serves it at once, the others within the cache period
    return JSON(deployment_json(deployment, entry), status_code=201)


@router.get("/v1/admin/deployments")
async def list_deployments(request: Request) -> dict[str, Any]:
    deployments = await _admin(request)
    registered = await deployments.store.list_deployments()
    return {"object": "list", "data": deployments.listing(registered)}


# `:path`, since the prefixed form holds a slash ("pureai/gemma-3-4b-it").
@router.get("/v1/admin/deployments/{deployment_id:path}")
async def get_deployment(deployment_id: str, request: Request) -> dict[str, Any]:
    deployments = await _admin(request)
    model_id = _model_id(deployment_id)
    for deployment in await deployments.store.list_deployments():
        if deployment.id == model_id:
            return deployment_json(deployment, deployments.entry(deployment))
    raise _not_found(deployments, deployment_id, model_id)


@router.delete("/v1/admin/deployments/{deployment_id:path}")
async def remove(deployment_id: str, request: Request) -> dict[str, Any]:
    deployments = await _admin(request)
    model_id = _model_id(deployment_id)
    if not await deployments.store.remove_deployment(model_id):
        raise _not_found(deployments, deployment_id, model_id)
    await deployments.refresh(force=True)
    return {"id": model_id.removeprefix(CUSTOM_PREFIX), "object": "deployment", "deleted": True}


def _model_id(deployment_id: str) -> str:
    """ "gemma" and "pureai/gemma" -> "pureai/gemma"."""
    return CUSTOM_PREFIX + deployment_id.removeprefix(CUSTOM_PREFIX)


def _not_found(deployments: Deployments, deployment_id: str, model_id: str) -> NotFound:
    hint = " (it is in the catalogue file)" if model_id in deployments.base.models else ""
    return NotFound(
        f"no registered deployment {deployment_id!r}{hint}", code="deployment_not_found", param="id"
    )

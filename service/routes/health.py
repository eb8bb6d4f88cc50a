"""GET /health (the process answers) and GET /ready (router loaded, store and limiter reachable)."""

from typing import Any

from fastapi import APIRouter, Request

from . import gateway

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> dict[str, Any]:
    return await gateway(request).ready()

"""One APIRouter per resource; each route is thin: parse, call the gateway, return."""

from fastapi import Request

from ..gateway import Gateway


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw

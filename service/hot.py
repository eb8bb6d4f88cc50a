"""`Hot`: the completion and router routes called straight from `Edge`, past FastAPI's routing.

POST /v1/chat/completions, /v1/completions and /v1/router are nearly all of a gateway's traffic.
FastAPI reaches their handlers through Starlette's exception layer (which wraps `send`), its
exit-stack layer, a match against every route, the dependency solver (these handlers take only the
`Request`) and a response wrapper: about a sixth of a relayed request's CPU (benchmarks/gateway/cpu.py:
1.04 -> 0.85 ms a request with `Hot`). `Hot` matches the three paths
with one dict lookup, calls the same handler functions, maps their errors with the handlers of
`errors.install`, and sends the response. Every other request (and these paths with another method)
goes down FastAPI's stack as before; `scope["route"]` is set as FastAPI's routing sets it, so the
metrics and access log name the endpoint the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HOT_PATHS", "Hot"]

HOT_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/router")

Handler = Callable[[Request, Exception], Awaitable[Response]]


class Hot:
    def __init__(self, app: ASGIApp, routes: list[BaseRoute], handlers: Mapping[Any, Any]) -> None:
        self.app = app
        self.routes = {
            r.path: r
            for r in routes
            if isinstance(r, APIRoute) and r.path in HOT_PATHS and r.methods == {"POST"}
        }
        self.handlers = {k: v for k, v in handlers.items() if isinstance(k, type)}
        missing = set(HOT_PATHS) - set(self.routes)
        if missing:  # a route renamed or moved: fail at start, not silently slower
            raise RuntimeError(f"Hot: no POST route for {', '.join(sorted(missing))}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(_route_path(scope)) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            if cls in self.handlers:
                handler: Handler = self.handlers[cls]
                return handler
        return None


def _route_path(scope: Scope) -> str:
    """The path as the routes see it: without the server's `root_path` (behind a path prefix)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path

"""`Hot` (service/hot.py): POSTs to the completion and router paths go straight to their handlers,
with the app's error handlers; everything else goes down FastAPI's stack. The routes' behaviour over
HTTP is what the rest of tests/service checks; here, the dispatch itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.app import create_app
from service.errors import APIError, NotFound
from service.hot import HOT_PATHS, Hot
from service.settings import Settings


def call(app: Any, method: str, path: str, root_path: str = "") -> tuple[int, bytes, dict[str, Any]]:
    scope = {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": [],
             "query_string": b""}  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), scope


async def answer(request: Request) -> Response:
    return JSONResponse({"hot": request.url.path})


async def refuse(request: Request) -> Response:
    raise NotFound("no such model", code="model_not_found")


async def inner(scope: Any, receive: Any, send: Any) -> None:
    await JSONResponse({"inner": scope["path"]}, status_code=299)(scope, receive, send)


def hot(endpoint: Any = answer) -> Hot:
    routes = [APIRoute(p, endpoint, methods=["POST"]) for p in HOT_PATHS]
    return Hot(inner, routes, {APIError: lambda request, exc: _async(exc.response())})


async def _async(value: Any) -> Any:
    return value


def test_posts_to_the_hot_paths_skip_the_inner_stack() -> None:
    for path in HOT_PATHS:
        status, body, scope = call(hot(), "POST", path)
        assert (status, body) == (200, b'{"hot":"%s"}' % path.encode())
        assert scope["route"].path == path  # the metrics and access log name the endpoint by it


def test_other_methods_and_paths_go_down_the_stack() -> None:
    assert call(hot(), "GET", "/v1/chat/completions")[:2] == (299, b'{"inner":"/v1/chat/completions"}')
    assert call(hot(), "POST", "/v1/models")[0] == 299
    assert call(hot(), "POST", "/v1/chat/completions/")[0] == 299


def test_behind_a_path_prefix() -> None:
    assert call(hot(), "POST", "/api/v1/router", root_path="/api")[0] == 200
    assert call(hot(), "POST", "/apiv1/router", root_path="/api")[0] == 299


def test_errors_get_the_apps_handlers_and_the_rest_propagate() -> None:
    status, body, _ = call(hot(refuse), "POST", "/v1/router")
    assert status == 404 and b'"code":"model_not_found"' in body.replace(b" ", b"")

    async def broken(request: Request) -> Response:
        raise KeyError("bug")

    with pytest.raises(KeyError):  # unmapped: for Edge, which answers 500 and logs it
        call(hot(broken), "POST", "/v1/router")


def test_the_app_routes_its_hot_paths_through_hot(tmp_path: Any) -> None:
    app = create_app(Settings(database_url=str(tmp_path / "g.db")))
    stack = app.build_middleware_stack()
    assert isinstance(stack.app, Hot) and set(stack.app.routes) == set(HOT_PATHS)


def test_a_hot_path_without_its_route_fails_at_start() -> None:
    routes = [APIRoute(p, answer, methods=["POST"]) for p in HOT_PATHS[1:]]
    with pytest.raises(RuntimeError, match=HOT_PATHS[0]):
        Hot(inner, routes, {})

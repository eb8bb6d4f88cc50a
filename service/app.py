"""`create_app(settings)`: the FastAPI application, built from one Settings object."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from . import errors, logs
from .gateway import Gateway
from .hot import Hot
from .middleware import Edge
from .routes import (
    admin,
    completions,
    deployments,
    feedback,
    health,
    metrics,
    models,
    rollout,
    routing,
    usage,
)
from .settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("pureai.service")

CONSOLE = Path(__file__).parent / "console"  # the web console's built files (console/build.mjs)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logs.install(settings)  # after uvicorn's own logging set-up, which it replaces
    gw = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        gw.metrics.frozen.set(_set_aside())
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, _reload, gw)  # uvicorn handles SIGINT/SIGTERM only
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            await gw.stop()

    app = App(title="pureai-router gateway", version="0.1.0", lifespan=lifespan, telemetry=_telemetry())
    app.state.gateway = gw
    app.edge = {
        "metrics": gw.metrics,
        "max_body_bytes": settings.max_body_bytes,
        "max_concurrency": settings.max_concurrency,
    }
    errors.install(app)
    app.hot = [*completions.router.routes, *routing.router.routes]  # see service/hot.py
    for module in (health, models, completions, routing, usage, feedback, admin, deployments, rollout, metrics):
        app.include_router(module.router)
    # The web console: static files that call the documented API above with the key they are given.
    app.add_api_route("/ui", _to_console, include_in_schema=False)
    app.mount("/ui", ConsoleFiles(directory=CONSOLE, html=True), name="console")
    return app


class App(FastAPI):
    """FastAPI with a short middleware stack: `Edge` (ours: request id, capacity, body limit,
    unexpected errors, metrics and access log) -> `Hot` (the completion and router routes, called
    at once) -> Starlette's ExceptionMiddleware (the handlers of `errors.install`) -> FastAPI's
    AsyncExitStackMiddleware (which its routes require) -> the routes.
    FastAPI's default stack put ServerErrorMiddleware and its telemetry and body-limit layers in front
    of ours, each wrapping every `send` of every streamed event. `add_middleware` is not used here."""

    edge: dict[str, Any]
    hot: list[BaseRoute]

    def build_middleware_stack(self) -> ASGIApp:
        handlers = {k: v for k, v in self.exception_handlers.items() if k not in (500, Exception)}
        inner = ExceptionMiddleware(
            AsyncExitStackMiddleware(self.router), handlers=handlers, debug=self.debug
        )
        edge = Edge(Hot(inner, self.hot, handlers), **self.edge)
        self.state.gateway.in_flight = lambda: edge.in_flight  # where decisions run: Gateway._deciding
        return edge


class ConsoleFiles(StaticFiles):
    """The console's files with `Cache-Control: no-cache`: a browser keeps them but asks again each
    time, with the ETag (and Last-Modified) it has, and gets a body-less 304 while a file is the
    same. Their names carry no hash, so an upgraded gateway's console must never be mixed with
    an older one's files from a cache."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "no-cache"
        return response


def _telemetry() -> TelemetryConfig | None:
    """FastAPI's own OpenTelemetry instrumentation asks on every request whether a tracer, meter or
    logger provider has been set up (~25 us of a request's ~0.6 ms of Python). It stays on when the
    process is set up for OpenTelemetry (an OTEL_* variable, as `opentelemetry-instrument` and the
    SDK's configuration use) and is off otherwise."""
    if any(name.startswith("OTEL_") for name in os.environ):
        return None
    return {"tracing": False, "metrics": False, "logs": False}


def _set_aside() -> int:
    """Move every object alive now (litellm, the router, the catalogue: ~460,000 once started) to
    the collector's permanent generation, and return how many there are. The cyclic garbage
    collector's full (generation 2) pass walks every tracked object: with these in it, each pass
    held the event loop for 200-300 ms, every few seconds under load, which set requests/s at p99 <=
    50 ms; without them a pass takes about 1 ms. Objects set aside are still freed by reference
    counting when dropped; only a cycle among them would stay (a reloaded router's, at most)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _reload(gw: Gateway) -> None:
    """SIGHUP: load the router again from PUREAI_ARTIFACTS (replaced on disk) and swap it in."""
    assert gw.rollout is not None
    gw._later(_reloading(gw))


async def _reloading(gw: Gateway) -> None:
    from router.errors import RouterError

    assert gw.rollout is not None
    try:
        await gw.rollout.reload(gw.settings.artifacts)
    except RouterError as exc:
        log.error("SIGHUP: the router was not reloaded (%s); %s stays", exc, gw.rollout.state()["version"])
        return
    gw.metrics.frozen.set(_set_aside())  # the new router's objects too


async def _to_console() -> RedirectResponse:
    return RedirectResponse("ui/")  # relative: /ui -> /ui/, behind any path prefix

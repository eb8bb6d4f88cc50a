"""Router roll-out: the versioned router in service, the one before it, and a shadow.

    POST   /v1/admin/router/reload    {"artifacts": "/abs/path"}  load, warm, swap; keep the old one
    POST   /v1/admin/router/rollback                              swap back to the previous router
    POST   /v1/admin/router/shadow    {"artifacts": "/abs/path"}  decide with it too, log both
    DELETE /v1/admin/router/shadow
    GET    /v1/admin/router           {"version", "previous", "shadow", "calibration", "learning"}

A router's version is the first 12 hex digits of the sha256 of its `manifest.json` (canonical
JSON): the manifest holds the sha256 of every other file, so it names the whole artifact set.
A load happens in a worker thread (ONNX sessions, the warm-up decision) and the swap is one
assignment, so decisions in flight finish on the router they started with.

Each routed request's ledger row keeps the version that decided it, so that its feedback counts
toward that version's mean (`pureai_router_feedback_score`, `GET /v1/admin/router/stats`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from models_registry import Catalogue

__all__ = ["Loaded", "Rollout", "version_of"]

log = logging.getLogger("pureai.service")
shadow_log = logging.getLogger("pureai.shadow")


def version_of(manifest: dict[str, Any]) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Loaded:
    router: Any  # router.Router
    version: str
    path: str


class Rollout:
    """The current router, the previous one (for rollback) and an optional shadow."""

    def __init__(self, catalogue: Catalogue, threads: int, calibration: str = "traffic") -> None:
        self.catalogue = catalogue
        self.threads = threads
        self.calibration = calibration
        self.current: Loaded | None = None
        self.previous: Loaded | None = None
        self.shadow: Loaded | None = None
        self._lock = asyncio.Lock()  # one load or swap at a time

    async def load(self, path: Path | str | None) -> Loaded:
        """Load and warm a router off the event loop; `router.ArtifactError` if the artifacts are bad."""
        return await asyncio.to_thread(self._load, path)

    def _load(self, path: Path | str | None) -> Loaded:
        from router import Router

        router = Router.load(path, self.catalogue, threads=self.threads, calibration=self.calibration)
        router.select("warm up", None, 0.5)  # builds the reference tables
        return Loaded(router, version_of(router.artifacts.manifest), str(router.artifacts.root))

    async def start(self, path: Path | str | None) -> None:
        self.current = await self.load(path)

    def use_catalogue(self, catalogue: Catalogue) -> None:
        """Decide over `catalogue` from now on (deployments registered or removed): every router
        held is rebound to it, without loading anything again (`Router.with_catalogue`)."""
        self.catalogue = catalogue
        self.current, self.previous, self.shadow = (
            None if held is None else self._rebound(held) for held in (self.current, self.previous, self.shadow)
        )

    def _rebound(self, loaded: Loaded) -> Loaded:
        """`loaded` over the current catalogue (a load that began before the catalogue changed)."""
        if loaded.router.catalogue is self.catalogue:
            return loaded
        return replace(loaded, router=loaded.router.with_catalogue(self.catalogue))

    async def reload(self, path: Path | str | None) -> Loaded:
        async with self._lock:
            new = await self.load(path)
            new = self._rebound(new)
            self.previous, self.current = self.current, new
            log.info("router %s loaded from %s (previous %s)", new.version, new.path, _v(self.previous))
            return new

    async def rollback(self) -> Loaded | None:
        """Back to the previous router (which becomes the previous one in turn); None if there is none."""
        async with self._lock:
            if self.previous is None:
                return None
            back = self.previous
            self.previous, self.current = self.current, back
            log.info("router rolled back to %s (previous %s)", back.version, _v(self.previous))
            return back

    async def set_shadow(self, path: Path | str | None) -> Loaded:
        async with self._lock:
            self.shadow = self._rebound(await self.load(path))
            log.info("shadow router %s loaded from %s", self.shadow.version, self.shadow.path)
            return self.shadow

    def clear_shadow(self) -> None:
        self.shadow = None

    def state(self) -> dict[str, str | None]:
        return {"version": _v(self.current), "previous": _v(self.previous), "shadow": _v(self.shadow)}

    async def compare(
        self,
        shadow: Loaded,
        request_id: str,
        version: str,
        selected: str,
        messages: list[dict[str, Any]],
        pool: list[str],
        cost_weight: float,
    ) -> bool | None:
        """Decide with the shadow too and log both decisions (one line); None if the shadow failed."""
        try:
            decision = await asyncio.to_thread(shadow.router.select, messages, pool, cost_weight)
        except Exception as exc:  # a shadow must never fail the request it watches
            log.warning("shadow router %s failed: %s", shadow.version, type(exc).__name__)
            return None
        agree = decision.selected_model == selected
        shadow_log.info(
            "shadow decision",
            extra={
                "request_id": request_id,
                "version": version,
                "selected_model": selected,
                "shadow_version": shadow.version,
                "shadow_selected_model": decision.selected_model,
                "agree": agree,
            },
        )
        return agree


def _v(loaded: Loaded | None) -> str | None:
    return loaded.version if loaded else None

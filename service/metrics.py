"""The gateway's Prometheus metrics, served as text by `GET /metrics` (prometheus-client).

    pureai_requests_total{endpoint,status}              every request (endpoint: the route's template)
    pureai_request_duration_seconds{endpoint,model}     to the last byte sent
    pureai_ttft_seconds{endpoint,model}                 to the first content token (whole answer if not streamed)
    pureai_requests_in_flight                           being handled now
    pureai_upstream_errors_total{model,provider,code}   failed upstream attempts, and streams broken midway
    pureai_fallbacks_total{model}                       requests that took more than one upstream attempt
    pureai_routing_decisions_total{model,version}       /v1/router decisions, by the model selected and
                                                        the router version that chose it
    pureai_routing_explored_total{model}                the decisions among them taken on an exploration
                                                        sample (service/learning.py)
    pureai_router_quality_shift{model}                  what feedback has taught: added to the model's
                                                        predicted quality (several workers: the latest set)
    pureai_shadow_agreement_total{agree}                shadow-router decisions: same model or not
    pureai_rate_limit_rejections_total{reason,tenant}   per-key limits: requests, tokens, limiter_unavailable
    pureai_budget_rejections_total{tenant}              429 insufficient_quota
    pureai_key_lookups_total{source}                    key checks answered by the cache or the store
    pureai_feedback_score{model}                        POST /v1/feedback scores of the "score" metric
                                                        (a summary: _sum / _count is the mean feedback)
    pureai_router_feedback_score{model,version}         the same, for routed requests, by the version of
                                                        the router that chose the model
    pureai_gc_frozen_objects                            objects set aside from the garbage collector at
                                                        start-up (service/app.py; the largest worker's)

Labels never hold a key, a secret, a prompt or a raw path: a key is at most its tenant.

One worker: a registry in the process. Several uvicorn workers: prometheus-client's multiprocess
mode, on when `PROMETHEUS_MULTIPROC_DIR` is set (`pureai serve --workers N` sets it to a temporary
directory it removes on exit): each worker writes its samples to files there, and any worker's
/metrics adds up all of them. prometheus-client reads the variable when it is first imported, so it
is imported here lazily, in `Metrics()`, never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .store import UsageRow

__all__ = ["ENV", "Metrics"]

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
STREAM_ERRORS = frozenset({"upstream_error", "upstream_timeout"})


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            Summary,
            disable_created_metrics,
        )

        disable_created_metrics()  # no `_created` series beside each counter (process-wide)
        self.multiprocess = ENV in os.environ
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.models: frozenset[str] = frozenset()
        """The catalogue's model ids (the gateway sets them): the only `model` label values. A name a
        client made up (a 404) would otherwise add a series, ~4 KiB that is never freed, per name."""
        # multiprocess: samples go to files whatever the registry; /metrics reads them all
        self.registry: Any = None if self.multiprocess else CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "pureai_requests", "Requests by endpoint and status.", ["endpoint", "status"], registry=reg
        )
        self.latency = Histogram(
            "pureai_request_duration_seconds",
            "Request latency to the last byte, by endpoint and model.",
            ["endpoint", "model"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.ttft = Histogram(
            "pureai_ttft_seconds",
            "Time to the first content token (whole answer when not streamed), by endpoint and model.",
            ["endpoint", "model"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.in_flight = Gauge(
            "pureai_requests_in_flight", "Requests being handled.", registry=reg, multiprocess_mode="livesum"
        )
        self.frozen = Gauge(
            "pureai_gc_frozen_objects",
            "Objects alive after start-up, set aside from the garbage collector's full passes.",
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.upstream_errors = Counter(
            "pureai_upstream_errors",
            "Failed upstream attempts and streams broken midway, by model, provider and code.",
            ["model", "provider", "code"],
            registry=reg,
        )
        self.fallbacks = Counter(
            "pureai_fallbacks", "Requests that took more than one upstream attempt.", ["model"], registry=reg
        )
        self.decisions = Counter(
            "pureai_routing_decisions",
            "Routing decisions by the model selected and the router version.",
            ["model", "version"],
            registry=reg,
        )
        self.explored = Counter(
            "pureai_routing_explored",
            "Routing decisions taken on an exploration (Thompson) sample, by the model selected.",
            ["model"],
            registry=reg,
        )
        self.quality_shift = Gauge(
            "pureai_router_quality_shift",
            "Shift of each model's predicted quality learned from feedback in this process.",
            ["model"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.shadow_agreement = Counter(
            "pureai_shadow_agreement",
            "Shadow-router decisions, by whether they chose the current router's model.",
            ["agree"],
            registry=reg,
        )
        self.rate_limited = Counter(
            "pureai_rate_limit_rejections",
            "Requests refused by the per-key rate limits (or an unreachable limiter), by reason and tenant.",
            ["reason", "tenant"],
            registry=reg,
        )
        self.budget_refused = Counter(
            "pureai_budget_rejections",
            "Requests refused for a spent budget, by tenant.",
            ["tenant"],
            registry=reg,
        )
        self.key_lookups = Counter(
            "pureai_key_lookups", "Key checks by where the key's record came from.", ["source"], registry=reg
        )
        for source in ("cache", "store"):
            self._of(self.key_lookups, source)  # both series exist from the start
        self.feedback_scores = Summary(
            "pureai_feedback_score",
            'Feedback scores (metric "score", thumbs included) by the model that answered.',
            ["model"],
            registry=reg,
        )

        self.router_feedback_scores = Summary(
            "pureai_router_feedback_score",
            'Feedback scores (metric "score") of routed requests, by model and router version.',
            ["model", "version"],
            registry=reg,
        )

    # -- observations ---------------------------------------------------------------------------
    def request(
        self, endpoint: str, status: int, seconds: float, model: str | None, ttft_ms: float | None
    ) -> None:
        """One finished request (the middleware)."""
        self._of(self.requests, endpoint, str(status)).inc()
        model = model if model in self.models else ""
        self._of(self.latency, endpoint, model).observe(seconds)
        if ttft_ms is not None and status == 200:
            self._of(self.ttft, endpoint, model).observe(ttft_ms / 1000.0)

    def outcome(self, row: UsageRow, tried: Sequence[Any] = ()) -> None:
        """A ledger row and the upstream attempts behind it (`Attempted`: provider, error)."""
        model = row.model or ""
        for attempt in tried:
            if attempt.error:
                self._of(self.upstream_errors, model, attempt.provider, _code(attempt.error)).inc()
        if row.stream and row.status == 200 and row.error in STREAM_ERRORS:
            self._of(self.upstream_errors, model, row.provider or "", f"stream_{row.error}").inc()
        if row.attempts > 1:
            self._of(self.fallbacks, model).inc()

    def decision(self, model: str, version: str, explored: bool = False) -> None:
        self._of(self.decisions, model, version).inc()
        if explored:
            self._of(self.explored, model).inc()

    def learned(self, model: str, shift: float) -> None:
        if model in self.models:
            self._of(self.quality_shift, model).set(shift)

    def shadow(self, agree: bool) -> None:
        self._of(self.shadow_agreement, "true" if agree else "false").inc()

    def rate_limit(self, reason: str, tenant: str) -> None:
        self._of(self.rate_limited, reason, tenant).inc()

    def budget(self, tenant: str) -> None:
        self._of(self.budget_refused, tenant).inc()

    def key_lookup(self, source: str) -> None:
        self._of(self.key_lookups, source).inc()

    def feedback(self, model: str | None, metric: str, score: float, version: str | None = None) -> None:
        """A score received; other metrics are named by clients, so they never become labels.
        `version`: of the router that chose the model, when the request was routed."""
        if metric == "score":
            model = model if model in self.models else ""
            self._of(self.feedback_scores, model).observe(score)
            if version is not None:
                self._of(self.router_feedback_scores, model, version).observe(score)

    def _of(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, kept: prometheus-client's `labels()` validates and looks the
        child up under a lock on every call (~2 us, several times a request); the children it
        returns live as long as the metric anyway (none is ever removed)."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # -- exposition -----------------------------------------------------------------------------
    def render(self) -> tuple[bytes, str]:
        """(the text exposition format, its content type), over every worker in multiprocess mode."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = self.registry
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """At worker exit: drop this process's in-flight gauge (its counters stay, as they should)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


def _code(error: str) -> str:
    """An attempt's error as a label: "status 503" -> "503"; "timeout", "APIConnectionError" as is."""
    return error.removeprefix("status ")

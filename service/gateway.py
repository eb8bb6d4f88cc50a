"""`Gateway`: the parts of a running service (catalogue, router, store, limiter, executor) and the
request pipeline they form: authenticate -> admit (rate limit) -> read and check the body ->
resolve the model -> budget -> execute upstream -> shape the answer -> write the ledger row.

Admission comes right after authentication, before the body is judged: a request refused for what
it holds (400, 404 for an unknown model, 413) has used one of the key's requests per minute like
any other, so refusals cannot be sent faster than answers. None reaches a provider, so none counts
toward a provider's circuit breaker."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import Request
from starlette.responses import Response
from starlette.types import Receive

from models_registry import Catalogue, ModelEntry, load_catalogue

from . import eligibility, logs, shaping, window
from .breaker import Breaker
from .budget import Budgets, BudgetUnavailable, Hold, TokenReservations, WorstCase, make_budgets, worst_case
from .deployments import Deployments
from .errors import APIError, Forbidden, NotFound, RateLimited, Unavailable, clipped, shown
from .executor import Attempted, Executor, Opened
from .keys import KeyRing, presented_key
from .learning import Learner
from .limits import Limiter, LimiterUnavailable, LimitResult, RedisLimiter, RedisPolicy, make_limiter
from .metrics import Metrics
from .protocol import MAX_MODEL_CHARS
from .rollout import Rollout
from .server import Grace
from .settings import Settings
from .store import KeyRecord, SQLiteStore, Store, StoreError, UsageRow, open_store
from .streaming import Stream, Tally

__all__ = ["Context", "Gateway"]

log = logging.getLogger("pureai.service")

Kind = Literal["chat", "text"]
T = TypeVar("T")


@dataclass
class Context:
    """One request on its way through the pipeline."""

    request_id: str
    key: KeyRecord
    endpoint: str
    arrived: float  # unix time
    started: float  # perf_counter
    limit: LimitResult | None = None
    model: str | None = None  # the model asked for (capped), for the ledger row of a refused request
    receive: Receive | None = None  # the request's ASGI receive, to notice the client going away
    prompt: str | None = None  # kept with the ledger row when prompt logging is on (`note_prompt`)
    router_version: str | None = None  # of the router that decided (/v1/router)
    predicted_quality: float | None = None  # its prediction for the chosen model, before feedback
    decide_ms: float | None = None  # the router's own time on this request (/v1/router)
    hold: Hold | None = None  # its reservation of budget (keys with a budget), until settled
    tokens: Hold | None = None  # its reservation of tokens per minute (keys with a tpm), until settled

    def elapsed_ms(self, now: float | None = None) -> float:
        return ((now or time.perf_counter()) - self.started) * 1000.0

    def headers(self) -> dict[str, str]:
        headers = self.limit.headers() if self.limit else {}
        if self.router_version is not None:
            headers["x-pureai-router-version"] = self.router_version
        if self.decide_ms is not None:
            headers["server-timing"] = f"decide;dur={self.decide_ms:.3f}"
        if self.hold is not None:  # what the budget keeps should this request cost its worst case
            headers["x-pureai-budget-remaining-usd"] = f"{max(self.hold.left - self.hold.amount, 0.0):.6g}"
        return headers


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalogue: Catalogue | None = None
        self.rollout: Rollout | None = None  # the router in service, the previous one, a shadow
        self.store: Store | None = None
        self.limiter: Limiter | None = None
        self.budgets: Budgets | None = None  # reservations against keys' budgets
        self.tokens: TokenReservations | None = None  # ... and against their tokens per minute
        self.keys: KeyRing | None = None
        self.deployments: Deployments | None = None  # registered through the admin API
        self.executor = Executor(
            settings.request_timeout_s,
            retries=settings.retries_per_provider,
            backoff_s=settings.retry_backoff_s,
            first_token_timeout_s=settings.first_token_timeout_s,
            breaker=Breaker(
                settings.breaker_failures,
                settings.breaker_window_s,
                settings.breaker_cooldown_s,
                settings.rate_limit_cooldown_max_s,
            ),
            relay=settings.relay,
        )
        self._tasks: set[asyncio.Future[Any]] = set()  # ledger writes, open requests and streams
        self._prompts_purged = 0.0  # monotonic time of the last deletion of expired prompts
        self._learning_read = -float("inf")  # monotonic time the feedback tallies were rebuilt
        self._learning_reading = False
        self.metrics = Metrics()
        # Decisions run on a thread of their own, the same one each time: on whichever thread of
        # asyncio's default pool was free (the one that had just committed a ledger batch, say), the
        # embedder ran ~0.3 ms slower (3.75 vs 3.46 ms p50), its caches and allocator arenas cold.
        self._deciders = ThreadPoolExecutor(DECIDERS, thread_name_prefix="pureai-router")
        self.in_flight: Callable[[], int] = lambda: DECIDERS + 1
        """Requests in flight in this worker, this one included (the app sets it to Edge's count)."""
        self.learner = Learner(
            settings.feedback_prior,
            settings.feedback_half_life,
            settings.explore_share if settings.feedback_learning else 0.0,
            settings.explore_seed,
        )

    @property
    def router(self) -> Any:
        """The router in service (router.Router), None until loaded."""
        current = self.rollout.current if self.rollout else None
        return current.router if current else None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        self.catalogue = load_catalogue(s.catalogue)
        self.metrics.models = frozenset(self.catalogue.models)
        self.rollout = Rollout(self.catalogue, s.router_threads, s.router_calibration)
        await self.rollout.start(s.artifacts)  # loads and warms it in a worker thread
        self.store = open_store(s.store_url())
        if isinstance(self.store, SQLiteStore):  # its calls run on the loop when nothing else waits
            self.store.alone = lambda: self.in_flight() <= 1
        await self.store.open()
        redis_url = s.redis_url.get_secret_value() if s.redis_url else None
        policy = RedisPolicy(timeout_s=s.redis_timeout_s, cooldown_s=s.redis_cooldown_s)
        self.limiter = make_limiter(redis_url, fail_open=s.rate_limit_fail_open, policy=policy)
        ttl = s.request_timeout_s + HOLD_MARGIN_S
        self.tokens = TokenReservations(self.limiter, ttl_s=ttl)
        link = self.limiter.link if isinstance(self.limiter, RedisLimiter) else None  # one breaker
        self.budgets = make_budgets(self.store, link, ttl_s=ttl, fail_open=s.rate_limit_fail_open)
        admin = s.admin_key.get_secret_value() if s.admin_key else None
        self.keys = KeyRing(self.store, admin, s.key_cache_s, self.metrics.key_lookup)
        self.deployments = Deployments.from_settings(self.catalogue, self.store, s, self._use_catalogue)
        self.executor.upstreams = self.deployments.upstreams  # the SSRF policy (service/ssrf.py)
        await self.deployments.refresh()
        await self._purge_prompts()
        if admin is None and await self.store.count_admin_keys() == 0:
            log.warning("no admin key: set PUREAI_ADMIN_KEY or run `pureai keys create --admin`")
        self.executor.start()
        await self.executor.warm()

    async def stop(self) -> None:
        """Drain, then close, each within its share of the graceful period (service/server.py
        `Grace`), so that the process exits within PUREAI_GRACEFUL_TIMEOUT_S of SIGTERM."""
        grace = Grace(self.settings.graceful_timeout_s)
        await self._drain(grace.drain_s)
        try:
            async with asyncio.timeout(grace.close_s):
                await self.executor.close()
                if self.tokens is not None:
                    await self.tokens.close()
                if self.limiter is not None:
                    await self.limiter.close()
                if self.budgets is not None:
                    await self.budgets.close()
                if self.store is not None:
                    await self.store.close()
        except TimeoutError:
            log.error("closing the upstream clients and the store took over %.2f s; exiting", grace.close_s)
        self._deciders.shutdown(wait=False)
        self.metrics.close()

    async def _drain(self, within_s: float) -> None:
        """Wait for open streams and background ledger writes. uvicorn calls the lifespan's shutdown
        after its graceful deadline has cancelled the requests still open: those are ending now, each
        billing what it sent (`Stream`), and their rows must be written before the store closes."""
        deadline = time.monotonic() + within_s
        while self._tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("%d streams or ledger writes still pending at shutdown", len(self._tasks))
                return
            await asyncio.wait(set(self._tasks), timeout=left)

    async def ready(self) -> dict[str, Any]:
        """What /ready reports; raises Unavailable when a part is down."""
        checks: dict[str, str] = {}
        checks["router"] = "ok" if self.router is not None else "loading"
        checks["executor"] = "ok" if self.executor.ready else "loading"
        try:
            assert self.store is not None
            await self.store.ping()
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"down: {exc}"
        try:
            assert self.limiter is not None
            await self.limiter.ping()
            checks["limiter"] = "ok"
        except Exception:
            checks["limiter"] = "degraded (fail-open)" if self.settings.rate_limit_fail_open else "down"
        ok = all(v == "ok" or v.startswith("degraded") for v in checks.values())
        if not ok:
            raise Unavailable(f"not ready: {checks}", code="not_ready", headers={"retry-after": "1"})
        return {
            "status": "ready",
            "checks": checks,
            "router_version": self.rollout.state()["version"] if self.rollout else None,
            "upstream_transports": self.executor.transports(),
            "providers": self.executor.breaker.snapshot(),  # the ones cooling down (this process)
            **self.configured(),
        }

    def configured(self) -> dict[str, Any]:
        """Which providers of the enabled models this gateway can call (`configured_providers`),
        the ones it cannot with the variables they miss (`unconfigured_providers`), and how many
        enabled models have at least one configured provider (`runnable_models`)."""
        assert self.catalogue is not None
        ready: set[str] = set()
        missing: dict[str, set[str]] = {}
        runnable = 0
        for entry in self.catalogue.enabled():
            runnable += bool(self.executor.targets(entry))
            for provider in entry.providers:
                if not provider.enabled:
                    continue
                names = self.executor.missing(entry, provider)
                if names:
                    missing.setdefault(provider.id, set()).update(names)
                else:
                    ready.add(provider.id)
        return {
            "configured_providers": sorted(ready),
            "unconfigured_providers": {p: sorted(n) for p, n in sorted(missing.items()) if p not in ready},
            "runnable_models": runnable,
        }

    def _use_catalogue(self, catalogue: Catalogue, credentials: dict[str, str]) -> None:
        """Serve `catalogue` from now on: the file's models and the registered deployments."""
        assert self.rollout is not None
        self.catalogue = catalogue
        self.metrics.models = frozenset(catalogue.models)
        self.executor.credentials = credentials
        self.rollout.use_catalogue(catalogue)
        current = self.rollout.current
        if current is not None:  # the new pool's reference tables, built before a request needs them
            self._later(self._deciding(current.router.select, "warm up", None, 0.5))

    # -- pipeline: who and how much -------------------------------------------------------------
    async def authenticate(self, request: Request, endpoint: str) -> Context:
        assert self.keys is not None
        key = await self.keys.check(presented_key(request))
        logs.note(key_id=key.id, tenant=key.tenant)
        assert self.deployments is not None
        await self.deployments.refresh()  # when this worker's view is older than the cache period
        request_id = getattr(request.state, "request_id", None) or "req_" + secrets.token_hex(12)
        return Context(request_id, key, endpoint, time.time(), time.perf_counter(), receive=request.receive)

    @asynccontextmanager
    async def recorded(self, ctx: Context) -> AsyncIterator[Context]:
        """Writes a ledger row for an error raised inside (a refused or failed request), its model
        and error cut to MAX_MODEL_CHARS, and gives the error the rate-limit headers once the request
        has been admitted. A request
        that uvicorn cancels (it does only at its graceful-shutdown deadline) becomes a 503
        `shutdown` rather than uvicorn's bare 500; until it is answered, stop() waits for it."""
        inside = asyncio.get_running_loop().create_future()
        self._tasks.add(inside)
        try:
            try:
                yield ctx
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                raise Unavailable(
                    "the gateway is shutting down; retry", code="shutdown", headers={"retry-after": "1"}
                ) from None
        except APIError as exc:
            if ctx.limit is not None:  # a refusal after admission shows what is left, as an answer does
                exc.headers = {**ctx.limit.headers(), **exc.headers}
            if not exc.recorded:
                exc.recorded = True
                self._later(
                    self._write(
                        self._row(
                            ctx,
                            None,
                            exc.status,
                            exc.code and clipped(exc.code, MAX_MODEL_CHARS),
                            model=ctx.model and clipped(ctx.model, MAX_MODEL_CHARS),
                            latency_ms=round(ctx.elapsed_ms(), 1),
                        )
                    )
                )
            raise
        finally:
            inside.set_result(None)
            self._tasks.discard(inside)

    async def admit(self, ctx: Context) -> None:
        """The key's rate limits, right after `authenticate` and before the body is read: RateLimited
        (429) or Unavailable (503, limiter down, fail-closed). Every request admitted counts toward
        the key's requests per minute, whatever becomes of it."""
        assert self.limiter is not None
        key = ctx.key
        try:
            ctx.limit = await self.limiter.acquire(key.id, key.rpm, key.tpm)
        except LimiterUnavailable:
            self.metrics.rate_limit("limiter_unavailable", key.tenant)
            raise Unavailable(
                "rate limiting is unavailable; try again shortly",
                code="limiter_unavailable",
                headers={"retry-after": "1"},
            ) from None
        if not ctx.limit.allowed:
            what = "tokens" if ctx.limit.reason == "tokens" else "requests"
            self.metrics.rate_limit(what, key.tenant)
            raise RateLimited(
                f"rate limit reached for {what} per minute on this key; retry in {ctx.limit.retry_after_s:.1f}s",
                ctx.limit.retry_after_s,
                code="rate_limit_exceeded",
                type=what,
                headers=ctx.limit.headers(),
            )

    async def affordable(self, ctx: Context) -> None:
        """429 `insufficient_quota` when the key's budget is spent (once the model is known, so that
        the refusal's ledger row names it)."""
        assert self.store is not None
        key = ctx.key
        if key.budget_usd is not None:
            spent = await self.store.spend_usd(key.id)
            if spent >= key.budget_usd:
                self.metrics.budget(key.tenant)
                raise APIError(
                    f"this key's budget of ${key.budget_usd:g} is spent",
                    status=429,
                    type="insufficient_quota",
                    code="insufficient_quota",
                )

    def allowed(self, key: KeyRecord) -> list[ModelEntry]:
        """The enabled models this key may use, in catalogue order."""
        assert self.catalogue is not None
        allowed = None if key.allowed_models is None else set(key.allowed_models)
        return [m for m in self.catalogue.enabled() if allowed is None or m.id in allowed]

    def resolve(self, model: str, key: KeyRecord, param: str = "model") -> ModelEntry:
        """The entry of `model`: NotFound (404) unknown or disabled, Forbidden (403) not allowed;
        either quotes at most the name's first 100 characters."""
        assert self.catalogue is not None
        entry = self.catalogue.models.get(model)
        if entry is None:
            model_id = self.catalogue.by_alias(model)
            entry = self.catalogue.models.get(model_id) if model_id else None
        if entry is None or not entry.enabled:
            why = "is disabled" if entry is not None else "does not exist"
            raise NotFound(f"the model {shown(model)} {why}", code="model_not_found", param=param)
        if key.allowed_models is not None and entry.id not in key.allowed_models:
            raise Forbidden(
                f"this key may not use the model {shown(model)}", code="model_not_allowed", param=param
            )
        return entry

    def note_prompt(self, ctx: Context, messages: list[dict[str, Any]] | None, prompt: Any = None) -> None:
        """With prompt logging on, remember the request's prompt (the last user turn of `messages`,
        or a text completion's `prompt`) to keep beside its ledger row."""
        if self.settings.log_prompts:
            ctx.prompt = prompt_text(messages, prompt)

    # -- pipeline: routing ----------------------------------------------------------------------
    async def decide(
        self,
        payload: dict[str, Any],
        models: list[str] | None,
        cost_weight: float,
        key: KeyRecord,
        ctx: Context | None = None,
    ) -> tuple[Any, list[eligibility.Refusal]]:
        """The router's decision over the eligible models among `models` or, in auto mode, every
        model the key may use, and the candidates left out with why (`eligible`). Decision-only and
        executed requests decide among the same candidates. `ctx` learns the deciding router's
        version. With a shadow router set, it decides too, in the background, and one
        `pureai.shadow` line logs both decisions."""
        asked = [self.resolve(m, key, "models") for m in models] if models else self.allowed(key)
        if not asked:
            raise Forbidden(
                "this key may not use any enabled model", code="model_not_allowed", param="models"
            )
        messages = payload["messages"]
        entries, refusals = self.eligible(list({e.id: e for e in asked}.values()), payload)
        pool = [e.id for e in entries]
        assert self.rollout is not None and self.rollout.current is not None
        current, shadow = self.rollout.current, self.rollout.shadow  # one version per decision
        await self._learned(current.version)
        choice = await self._deciding(
            self.learner.decide,
            current.router,
            current.version,
            messages,
            pool,
            cost_weight,
            key.budget_usd is not None,
        )
        decision = choice.decision
        self.metrics.decision(decision.selected_model, current.version, choice.explored)
        if ctx is not None:
            ctx.router_version = current.version
            ctx.predicted_quality = choice.predicted
            ctx.decide_ms = choice.seconds * 1000.0
        if shadow is not None:
            request_id = ctx.request_id if ctx else ""
            compared = self.rollout.compare(
                shadow, request_id, current.version, decision.selected_model, messages, pool, cost_weight
            )
            self._later(self._shadowed(compared))
        return decision, refusals

    def eligible(
        self, entries: list[ModelEntry], payload: dict[str, Any]
    ) -> tuple[list[ModelEntry], list[eligibility.Refusal]]:
        """`entries` split into the ones this gateway can run for this request (in order) and the
        ones it cannot, with why; the error `no_eligible_model` when none is left."""
        needs = eligibility.Needs.of(payload)
        kept: list[ModelEntry] = []
        refusals: list[eligibility.Refusal] = []

        def refuse(entry: ModelEntry, reason: str, missing: Sequence[str] = ()) -> None:
            detail = eligibility.detail(reason, entry, needs, missing)
            refusals.append(eligibility.Refusal(entry.id, reason, detail))

        for entry in entries:
            if not entry.priced:
                refuse(entry, "unpriced")
                continue
            configured = self.executor.targets(entry)
            if not configured:
                hint = self.executor.missing_hint(entry)
                refuse(entry, "no_credentials", [hint] if hint else [])
                continue
            reasons = [eligibility.lacks(t.features, needs, strict=True) for t in configured]
            if all(reasons):
                refuse(entry, str(reasons[0]))
                continue
            kept.append(entry)
        too_long: APIError | None = None
        if kept:
            try:
                fitting = window.fitting(kept, window.prompt_chars(payload))
            except APIError as exc:  # context_length_exceeded, naming the widest window
                fitting, too_long = [], exc
            for entry in kept:
                if entry not in fitting:
                    refuse(entry, "context_window")
            kept = fitting
        if not kept:
            raise too_long or eligibility.no_eligible_model(refusals)
        return kept, refusals

    async def _deciding(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args): on the event loop when this request is the worker's only one, else on the
        decision thread. Alone, nothing waits for the loop, and the two thread hops (~0.25 ms at
        p50, a third of /v1/router's time beside the model) are saved; with other requests or
        streams in flight, the loop keeps serving them while the decision runs (onnxruntime releases
        the GIL). A request that arrives during an inline decision waits for it (3-7 ms)."""
        if self.in_flight() <= 1:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._deciders, fn, *args)

    async def _learned(self, version: str) -> None:
        """Rebuild the feedback tallies from the store when they are older than the refresh interval
        or measure another version (one rebuild at a time; the others decide on the tallies there
        are). A store that cannot answer leaves the tallies as they were."""
        s = self.settings
        learner, now = self.learner, time.monotonic()
        fresh = now - self._learning_read < s.feedback_refresh_s and learner.version == version
        if not s.feedback_learning or fresh or self._learning_reading:
            return
        assert self.store is not None
        self._learning_reading = True
        try:
            scored = await self.store.scored(version, learner.remembered())
            learner.rebuild(reversed(scored), version)
            self._learning_read = now
            for model, state in learner.state().items():  # /metrics shows what decisions now use
                self.metrics.learned(model, state["quality_shift"])
        except StoreError as exc:
            log.warning("feedback not re-read from the store: %s", exc)
        finally:
            self._learning_reading = False

    async def _shadowed(self, compared: Coroutine[Any, Any, bool | None]) -> None:
        agree = await compared
        if agree is not None:
            self.metrics.shadow(agree)

    # -- pipeline: execution --------------------------------------------------------------------
    async def run(
        self,
        ctx: Context,
        kind: Kind,
        entry: ModelEntry,
        payload: dict[str, Any],
        stream: bool,
        *,
        usage_chunk: bool = False,
        routing: dict[str, Any] | None = None,
    ) -> Response:
        """Execute on `entry`'s providers; a JSON response or an SSE stream. A routed request
        (`routing` given) only goes to providers known to take what it needs; a model the client
        named is refused (400) only for what it is known not to take."""
        needs = eligibility.Needs.of(payload)
        routed = routing is not None
        try:
            window.refuse_if_over(
                entry, window.prompt_chars(payload), "messages" if kind == "chat" else "prompt"
            )
            if not routed:
                configured = self.executor.targets(entry)
                eligibility.refuse_named(entry, needs, [t.features for t in configured], payload)
            await self._reserve(ctx, entry, payload)
            opened = await self._open(ctx, kind, entry, payload, stream, needs, routed)
        except APIError as exc:
            self._failed(ctx, entry, exc)
            exc.recorded = True
            await self._settle(ctx, None)  # no answer: nothing spent (before the client hears so)
            raise
        except BaseException:  # cancelled at the shutdown deadline, or a bug: no answer
            self._later(self._settle(ctx, None))
            raise
        headers = {
            **ctx.headers(),
            "x-pureai-model": entry.id,
            "x-pureai-provider": opened.target.provider.id,
        }
        if stream:
            tally = Tally()
            relay = self._relay(ctx, kind, entry, opened, payload, usage_chunk, routing, tally)
            headers.update({"cache-control": "no-cache", "x-accel-buffering": "no"})
            return Stream(
                relay,
                lambda why: self._cut(ctx, kind, entry, opened, payload, tally, why),
                headers,
                self._tasks,
            )
        now = time.perf_counter()
        body = shaping.completion_body(opened.response, kind, entry.id)
        body["id"] = ctx.request_id  # our id (also x-request-id), the one POST /v1/feedback takes
        tokens = shaping.Tokens.of(opened.response) or self._estimate(payload, body, kind)
        latency = ctx.elapsed_ms(now)
        body["usage"] = shaping.usage_body(entry, tokens, latency, latency)
        if routing is not None:
            body = {
                "id": body["id"],
                "object": body["object"],
                "created": body["created"],
                "model": body["model"],
                "routing": routing,
                "choices": body["choices"],
                "usage": body["usage"],
            }
        if not await self._ledger(ctx, entry, opened, body["usage"], 200, None, stream=False):
            raise _unbilled()  # an answer is never acknowledged without its row
        await self._tokens(ctx, tokens)
        return shaping.JSON(body, headers=headers)

    async def _open(
        self,
        ctx: Context,
        kind: Kind,
        entry: ModelEntry,
        payload: dict[str, Any],
        stream: bool,
        needs: eligibility.Needs | None = None,
        strict: bool = False,
    ) -> Opened:
        """`executor.open`, cancelled (and with it the upstream call) if the client goes away first:
        no response has started yet, so nothing else would notice until the upstream answered."""
        opening = asyncio.ensure_future(
            self.executor.open(kind, entry, payload, stream, ctx.started, needs, strict)
        )
        if ctx.receive is None:
            return await opening
        gone = asyncio.ensure_future(_disconnect(ctx.receive))
        try:
            await asyncio.wait((opening, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not opening.done():
                opening.cancel()
                await asyncio.gather(opening, return_exceptions=True)
        if opening.cancelled():
            raise APIError("the client closed the connection", status=499, code="client_disconnected")
        return opening.result()

    async def _relay(
        self,
        ctx: Context,
        kind: Kind,
        entry: ModelEntry,
        opened: Opened,
        payload: dict[str, Any],
        usage_chunk: bool,
        routing: dict[str, Any] | None,
        tally: Tally,
    ) -> AsyncGenerator[bytes, None]:
        """The stream's frames. Its ledger row is written before its last frames: the finish chunk
        with the usage and [DONE], or the error event of an upstream that broke. If the row cannot be
        written, an error event `ledger_unavailable` replaces [DONE]. A stream cut before that is
        billed by `_cut`."""
        shape = shaping.chat_chunk if kind == "chat" else shaping.text_chunk
        stream_id = ctx.request_id  # every chunk's id: the request's, as for a whole answer
        created = int(time.time())
        held: dict[str, Any] | None = None  # the finish chunk, held back to carry the usage
        broke: APIError | None = None
        chain = self._chain(opened)
        try:
            if routing is not None:
                first = {
                    "id": stream_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": entry.id,
                    "routing": routing,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
                }
                yield shaping.sse(first)
            async for raw in chain:
                tally.reported = shaping.Tokens.of(raw) or tally.reported
                chunk = shape(raw, entry.id, stream_id, created)
                if chunk is None:
                    continue
                if tally.ttft_ms is None and shaping.chunk_text(chunk):
                    tally.ttft_ms = ctx.elapsed_ms()
                if routing is not None and kind == "chat":
                    for choice in chunk["choices"]:
                        choice["delta"].pop("role", None)
                    if not any(c["delta"] or c.get("finish_reason") for c in chunk["choices"]):
                        continue
                tally.chars += len(shaping.chunk_text(chunk))
                if held is not None:
                    yield shaping.sse(held)
                    held = None
                if any(c.get("finish_reason") for c in chunk["choices"]):
                    held = chunk
                    continue
                yield shaping.sse(chunk)
        except Exception as exc:
            broke = self.executor.stream_error(exc)
            log.warning(
                "%s: stream from %s broke: %s", entry.id, opened.target.provider.id, type(exc).__name__
            )
        finally:
            await chain.aclose()  # closes the upstream response when the stream was cut at a yield
        tokens = tally.reported or self._estimate_stream(payload, tally.chars)
        usage = shaping.usage_body(entry, tokens, ctx.elapsed_ms(), tally.ttft_ms)
        tally.billed = True
        billed = await self._ledger(
            ctx, entry, opened, usage, 200, broke.code if broke else None, stream=True
        )
        await self._tokens(ctx, tokens)
        if broke is not None:
            if held is not None:
                yield shaping.sse(held)
            yield shaping.sse(broke.body())
            return
        if held is None:
            empty: dict[str, Any] = {"index": 0, "delta": {}} if kind == "chat" else {"index": 0, "text": ""}
            held = {
                "id": stream_id,
                "object": "chat.completion.chunk" if kind == "chat" else "text_completion.chunk",
                "created": created,
                "model": entry.id,
                "choices": [{**empty, "finish_reason": "stop"}],
            }
        if usage_chunk:
            yield shaping.sse(held)
            yield shaping.sse(
                {**{k: held[k] for k in ("id", "object", "created", "model")}, "choices": [], "usage": usage}
            )
        else:
            held["usage"] = usage
            yield shaping.sse(held)
        yield shaping.sse_done() if billed else shaping.sse(_unbilled().body())

    def _cut(
        self,
        ctx: Context,
        kind: Kind,
        entry: ModelEntry,
        opened: Opened,
        payload: dict[str, Any],
        tally: Tally,
        why: str,
    ) -> None:
        """Bill a stream that ended before its relay wrote its row: what it sent, in the background
        (the request's task may be cancelled); `why` is the row's error."""
        if tally.billed:
            return
        tally.billed = True
        tokens = tally.reported or self._estimate_stream(payload, tally.chars)
        usage = shaping.usage_body(entry, tokens, ctx.elapsed_ms(), tally.ttft_ms)
        self._later(self._ledger(ctx, entry, opened, usage, 200, why, stream=True))
        self._later(self._tokens(ctx, tokens))

    async def _chain(self, opened: Opened) -> AsyncGenerator[Any, None]:
        if opened.first is not None:
            yield opened.first
        chunks = self.executor.chunks(opened)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    # -- accounting -----------------------------------------------------------------------------
    def _estimate(self, payload: dict[str, Any], body: dict[str, Any], kind: Kind) -> shaping.Tokens:
        out = "".join(
            str((c.get("message") or {}).get("content") or "") if kind == "chat" else str(c.get("text") or "")
            for c in body.get("choices", [])
        )
        return shaping.Tokens(_prompt_tokens(payload), max(1, len(out) // 4) if out else 0)

    def _estimate_stream(self, payload: dict[str, Any], chars: int) -> shaping.Tokens:
        """An estimate for a stream that sent `chars` characters of text."""
        return shaping.Tokens(_prompt_tokens(payload), max(1, chars // 4) if chars else 0)

    async def _tokens(self, ctx: Context, tokens: shaping.Tokens) -> None:
        """Settle the request's tokens-per-minute reservation to the tokens it used. `_billed` does
        so with the ledger row; this covers a caller that knows the tokens first (a reservation is
        settled once: the second call does nothing)."""
        hold, ctx.tokens = ctx.tokens, None
        if hold is not None and self.tokens is not None:
            await self.tokens.settle(hold, tokens.prompt + tokens.completion)

    async def _reserve(self, ctx: Context, entry: ModelEntry, payload: dict[str, Any]) -> None:
        """Reserve the request's worst case on `entry` (`worst_case`), one mechanism for both limits
        (service/budget.py): its tokens against the key's tpm (`ctx.tokens`, and the x-ratelimit-
        *-tokens headers say what is left after it), then its cost against the key's budget
        (`ctx.hold`). 403 `model_unpriced` for a budgeted key and a model without a price; 429
        `rate_limit_exceeded` (type tokens) when the tokens do not fit in what the window has
        left, 429 `insufficient_quota` when the cost does not fit in the budget; 503
        `limiter_unavailable` or `budget_unavailable` (Redis down, fail-closed). On a refusal,
        `run` releases what was reserved (`_settle`)."""
        key = ctx.key
        if key.budget_usd is not None and not entry.priced:
            raise Forbidden(
                f"the model {entry.id!r} has no known price and this key has a budget of "
                f"${key.budget_usd:g}: what it spends could not be counted; use a priced model",
                code="model_unpriced",
                param="model",
            )
        if key.tpm is None and key.budget_usd is None:
            return
        worst = worst_case(entry, payload)
        if key.tpm is not None:
            await self._reserve_tokens(ctx, entry, worst, key.tpm)
        if key.budget_usd is None or worst.usd <= 0:  # a free model: no budget to hold
            return
        assert self.budgets is not None
        try:
            hold = await self.budgets.reserve(key.id, ctx.request_id, key.budget_usd, worst.usd)
        except BudgetUnavailable:
            raise Unavailable(
                "budget accounting is unavailable; try again shortly",
                code="budget_unavailable",
                headers={"retry-after": "1"},
            ) from None
        if not hold.admitted:
            self.metrics.budget(key.tenant)
            held = f" (${hold.held:.6g} more is held by requests in flight)" if hold.held > 0 else ""
            raise APIError(
                f"this key's budget of ${key.budget_usd:g} has ${hold.left:.6g} left{held}, and this "
                f"request may cost up to ${worst.usd:.6g} on {entry.id} (~{worst.prompt_tokens} prompt "
                f"tokens, {worst.output_tokens} output tokens at most): lower max_tokens or use a "
                "cheaper model",
                status=429,
                type="insufficient_quota",
                code="insufficient_quota",
                # the worst case would fit once the requests in flight have settled: worth a retry
                headers={"retry-after": "1"} if hold.limit - hold.spent >= worst.usd else None,
            )
        ctx.hold = hold

    async def _reserve_tokens(self, ctx: Context, entry: ModelEntry, worst: WorstCase, tpm: int) -> None:
        """Hold the worst case's tokens against the key's tpm (`_reserve`)."""
        key = ctx.key
        assert self.tokens is not None
        try:
            hold = await self.tokens.reserve(key.id, ctx.request_id, tpm, worst.tokens)
        except LimiterUnavailable:
            self.metrics.rate_limit("limiter_unavailable", key.tenant)
            raise Unavailable(
                "rate limiting is unavailable; try again shortly",
                code="limiter_unavailable",
                headers={"retry-after": "1"},
            ) from None
        if not hold.reserved:  # Redis unreachable, fail-open: admitted, the window's state unknown
            return
        left = round(hold.left - (hold.amount if hold.admitted else 0))
        if ctx.limit is not None:
            ctx.limit = ctx.limit.tokens_reserved(left, hold.reset_s)
        if hold.admitted:
            ctx.tokens = hold
            return
        self.metrics.rate_limit("tokens", key.tenant)
        headers = ctx.limit.headers() if ctx.limit is not None else None
        asked = (
            f"this request may use up to {worst.tokens} tokens on {entry.id} (~{worst.prompt_tokens} "
            f"prompt, {worst.output_tokens} output at most)"
        )
        if hold.retry_s is None:  # more than the whole limit: no wait helps
            raise APIError(
                f"{asked}, more than this key's limit of {tpm} tokens per minute: lower max_tokens",
                status=429,
                type="tokens",
                code="rate_limit_exceeded",
                headers=headers,
            )
        held = f" ({hold.held:.0f} more are held by requests in flight)" if hold.held > 0 else ""
        raise RateLimited(
            f"rate limit reached for tokens per minute on this key: {left} of {tpm} left{held}, and "
            f"{asked}; lower max_tokens or retry in {hold.retry_s:.1f}s",
            hold.retry_s,
            code="rate_limit_exceeded",
            type="tokens",
            headers=headers,
        )

    async def _settle(self, ctx: Context, cost_usd: float | None, tokens: int | None = None) -> None:
        """Settle the request's reservations to what it used: its budget to `cost_usd` (its
        committed ledger row's) and its tokens per minute to `tokens`; None releases one (no row or
        a row without cost; no answer)."""
        holds = ((self.budgets, ctx.hold, cost_usd), (self.tokens, ctx.tokens, tokens))
        ctx.hold = ctx.tokens = None
        for reservations, hold, used in holds:
            if hold is None or reservations is None:
                continue
            if used is None:
                await reservations.release(hold)
            else:
                await reservations.settle(hold, used)

    async def _ledger(
        self,
        ctx: Context,
        entry: ModelEntry,
        opened: Opened,
        usage: dict[str, Any],
        status: int,
        error: str | None,
        *,
        stream: bool,
    ) -> bool:
        """Write the row of an executed request; False (logged) if the store failed."""
        fields = {k: usage[k] for k in _LEDGER_USAGE}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        if ctx.prompt:  # before the answer, as its row is: an export right after finds both
            await asyncio.shield(self._later(self._keep_prompt(ctx, ctx.prompt)))
        return await self._commit(
            ctx,
            self._row(
                ctx,
                entry,
                status,
                error,
                provider=opened.target.provider.id,
                cached_tokens=cached,
                stream=stream,
                attempts=len(opened.attempts),
                tried=opened.attempts,
                **fields,
            ),
        )

    def decided(self, ctx: Context, entry: ModelEntry) -> None:
        """A ledger row for a decision-only /v1/router call (no tokens, no cost; in the background)."""
        self._later(
            self._write(self._row(ctx, entry, 200, None, attempts=0, latency_ms=round(ctx.elapsed_ms(), 1)))
        )

    def _failed(self, ctx: Context, entry: ModelEntry, exc: APIError) -> None:
        """A ledger row for a request that failed before any answer (written in the background)."""
        attempts = getattr(exc, "attempts", 0)
        self._later(
            self._write(
                self._row(
                    ctx,
                    entry,
                    exc.status,
                    exc.code,
                    attempts=attempts,
                    tried=exc.tried,
                    latency_ms=round(ctx.elapsed_ms(), 1),
                )
            )
        )

    def _row(
        self,
        ctx: Context,
        entry: ModelEntry | None,
        status: int,
        error: str | None,
        tried: Sequence[Attempted] = (),
        **fields: Any,
    ) -> UsageRow:
        """The ledger row of a request's outcome: every outcome passes here once, so it is also
        where the metrics count it (with its upstream attempts) and the access line learns it."""
        model = entry.id if entry else fields.pop("model", None)
        row = UsageRow(
            request_id=ctx.request_id, key_id=ctx.key.id, tenant=ctx.key.tenant, created=ctx.arrived,
            endpoint=ctx.endpoint, model=model, provider=fields.pop("provider", None), status=status,
            error=error, routed=ctx.endpoint == "router", router_version=ctx.router_version,
            predicted_quality=ctx.predicted_quality, **fields,
        )  # fmt: skip
        self.metrics.outcome(row, tried)
        logs.note(model=row.model, provider=row.provider, ttft_ms=row.ttft_ms)
        return row

    async def _write(self, row: UsageRow) -> bool:
        assert self.store is not None
        try:
            await self.store.record_usage(row)
        except Exception as exc:
            log.error("ledger write failed for %s: %s", row.request_id, exc)
            return False
        return True

    async def _keep_prompt(self, ctx: Context, prompt: str) -> None:
        """Store a request's prompt (prompt logging on); hourly, delete those past the retention."""
        assert self.store is not None
        try:
            await self.store.record_prompt(ctx.request_id, ctx.key.id, ctx.arrived, prompt)
            if time.monotonic() - self._prompts_purged > PURGE_EVERY_S:
                await self._purge_prompts()
        except Exception as exc:
            log.error("prompt write failed for %s: %s", ctx.request_id, exc)

    async def _purge_prompts(self) -> None:
        assert self.store is not None
        self._prompts_purged = time.monotonic()
        await self.store.forget_prompts(time.time() - self.settings.prompt_retention_days * 86400.0)

    async def _commit(self, ctx: Context, row: UsageRow) -> bool:
        """`_write` for a row the answer waits for, then the request's reservations settled: its
        budget to the row's cost (released if the row could not be written), its tokens to the
        row's tokens (the provider spent them either way); shielded: a client leaving or the
        shutdown deadline mid-write loses neither (stop() waits for them, as for any `_later`)."""
        return await asyncio.shield(self._later(self._billed(ctx, row)))

    async def _billed(self, ctx: Context, row: UsageRow) -> bool:
        written = await self._write(row)
        tokens = row.prompt_tokens + row.completion_tokens
        await self._settle(ctx, row.total_cost_usd if written else None, tokens)
        return written

    def _later(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


_LEDGER_USAGE = (
    "prompt_tokens", "completion_tokens", "input_cost_usd", "output_cost_usd", "cache_input_cost_usd",
    "total_cost_usd", "latency_ms", "ttft_ms",
)  # fmt: skip


DECIDERS = 1
"""Threads that run the router's decisions in each worker (the embedder uses `router_threads` cores
inside each; more workers, not more threads, scale a gateway out)."""

PURGE_EVERY_S = 3600.0
"""With prompt logging on, how often expired prompts are deleted (and once at start)."""

HOLD_MARGIN_S = 60.0
"""A budget reservation lapses this long past the request timeout unless renewed (service/budget.py)."""


def prompt_text(messages: list[dict[str, Any]] | None, prompt: Any = None) -> str:
    """The text a request asks: its last user turn's text parts, or a text completion's prompt."""
    if messages is None:
        return prompt if isinstance(prompt, str) else "\n".join(str(p) for p in prompt or ())
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
            return str(content or "")
    return ""


def _unbilled() -> Unavailable:
    """The error of an answer whose ledger row could not be written (and is not retried)."""
    err = Unavailable(
        "the usage ledger is unavailable, so the answer cannot be delivered; retry shortly",
        code="ledger_unavailable",
        headers={"retry-after": "1"},
    )
    err.recorded = True
    return err


async def _disconnect(receive: Receive) -> None:
    """Returns when the client has gone away (the request body has already been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _prompt_tokens(payload: dict[str, Any]) -> int:
    """chars / 4 over the prompt or messages' text: an estimate for when upstream does not say."""
    from router._text import estimate_tokens

    return estimate_tokens(window.prompt_chars(payload))

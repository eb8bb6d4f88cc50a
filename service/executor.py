"""The one place litellm is used: call a model's providers, primary first, failing over to backups.

litellm is imported lazily in `Executor.start()` (it takes seconds), with its price map read from
the bundled file (`LITELLM_LOCAL_MODEL_COST_MAP=True`) so nothing is fetched at start. litellm's own
retries are off (`num_retries=0`, `max_retries=0`): failover is ours, so every attempt is counted.

Failover happens on connect errors, timeouts, 5xx and upstream 429, and for streams only before the
first chunk. A 5xx or a connection error is first retried on the same provider (`retries`, after a
full-jitter backoff); a timeout or a 429 is not, since waiting there again would only add its delay.
A stream attempt with a provider left to try is cut when its first chunk takes longer than
`first_token_timeout_s`; the last attempt is bounded by the request timeout only. Upstream 400s pass
through to the client as 400 (a context-length refusal with the code `context_length_exceeded`);
upstream 401/403/404 mean our provider configuration is wrong and become 502 (the client's request
was fine). Every attempt feeds the per-provider `Breaker`, which decides which providers are tried.

Targets that need no translation (`Target.relayed`: an OpenAI-compatible endpoint of their own) are
called through `relay.Relay` instead of litellm: the same attempts, answers and errors, without
litellm's per-call set-up and per-chunk objects.

With `upstreams` (the SSRF policy, service/ssrf.py) set, the relay checks each address it connects to;
a call through litellm to an `api_base` has its host resolved and checked right before the call
(litellm resolves it again: see the policy's docstring for that gap). A refused address is
`ssrf.Refused`, a connection failure: the next provider is tried.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import math
import os
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from models_registry import Features, ModelEntry, Provider

from . import eligibility, logs
from .breaker import Breaker
from .errors import APIError, BadRequest, UpstreamError
from .relay import Relay
from .ssrf import Refused, Upstreams

__all__ = ["Attempted", "Executor", "Opened", "Target"]

log = logging.getLogger("pureai.executor")

Kind = Literal["chat", "text"]
KEYLESS = "sk-no-key"
TEXT_PREFIX = "text-completion-openai/"  # OpenAI-compatible servers without auth still need a non-empty key
BACKOFF_CAP_S = 1.0


class FirstTokenTimeout(TimeoutError):
    """A stream attempt sent no first chunk within the first-token deadline."""


@dataclass(frozen=True)
class Target:
    """One provider of one model, ready to call."""

    provider: Provider
    litellm_model: str
    api_base: str | None
    api_key: str | None
    custom: bool = False
    """A `pureai/` deployment: an OpenAI-compatible server with a real /v1/completions endpoint."""

    @property
    def features(self) -> Features:
        """What the model accepts on this provider."""
        return self.provider.features

    def model(self, kind: Kind) -> str:
        """The litellm model string; a custom deployment's /v1/completions gets the raw prompt."""
        if kind == "text" and self.custom and self.litellm_model.startswith("openai/"):
            return TEXT_PREFIX + self.litellm_model.removeprefix("openai/")
        return self.litellm_model

    def relayed(self, kind: Kind) -> bool:
        """Whether calls go straight to the endpoint (`relay.Relay`) rather than through litellm:
        an `openai/` model with an http(s) `api_base` of its own (no query string), for chat or a
        deployment's raw prompt (a chat model given a prompt needs litellm to make it a message)."""
        if not self.api_base or not self.litellm_model.startswith("openai/"):
            return False
        if kind == "text" and not self.custom:
            return False
        parts = urlsplit(self.api_base)
        return parts.scheme in ("http", "https") and not parts.query and not parts.fragment

    def url(self, kind: Kind) -> str:
        assert self.api_base is not None
        return self.api_base.rstrip("/") + ("/chat/completions" if kind == "chat" else "/completions")

    def kwargs(self, kind: Kind = "chat") -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model(kind)}
        if self.api_base:
            out["api_base"] = self.api_base
        if self.api_key:
            out["api_key"] = self.api_key
        return out


@dataclass
class Attempted:
    provider: str
    error: str | None = None


@dataclass
class Opened:
    """An upstream call that succeeded: a response, or a stream whose first chunk has arrived."""

    target: Target
    attempts: list[Attempted]
    started: float
    response: Any = None
    first: Any = None
    stream: Any = None
    first_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Executor:
    def __init__(
        self,
        timeout_s: float = 120.0,
        *,
        retries: int = 1,
        backoff_s: float = 0.05,
        first_token_timeout_s: float | None = None,
        breaker: Breaker | None = None,
        relay: bool = True,
    ) -> None:
        self.timeout_s = timeout_s
        self.use_relay = relay
        self.retries = retries
        self.backoff_s = backoff_s
        self.first_token_timeout_s = first_token_timeout_s
        self.breaker = breaker if breaker is not None else Breaker()
        self.relay = Relay(timeout_s)
        self._litellm: Any = None
        self._retryable: tuple[type[BaseException], ...] = ()
        self._timeouts: tuple[type[BaseException], ...] = ()
        self._text_clients: dict[tuple[str | None, str | None], Any] = {}
        self._credentials: dict[str, str] = {}
        self._environment: dict[tuple[str, bool], list[str]] = {}  # (model, has key) -> missing names

    @property
    def upstreams(self) -> Upstreams | None:
        """The SSRF policy for every call (None: none); set before the first call."""
        return self.relay.upstreams

    @upstreams.setter
    def upstreams(self, value: Upstreams | None) -> None:
        self.relay.upstreams = value

    @property
    def credentials(self) -> dict[str, str]:
        """API keys given with deployments registered through the admin API, by "<model>/<provider>";
        they come before the environment variable a provider names."""
        return self._credentials

    @credentials.setter
    def credentials(self, value: dict[str, str]) -> None:
        self._credentials = value
        self._environment = {}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        import aiohttp

        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_LOG", "CRITICAL")  # the handler it adds at import: quiet (ours logs)
        import litellm
        from litellm import exceptions as lx

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        # its loggers got a handler of their own at import: through ours (format, redaction) instead,
        # at WARNING unless debug; litellm.set_verbose stays off (it prints past any logging filter)
        logs.adopt("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", quiet=True)
        litellm.drop_params = True  # a parameter one provider lacks is dropped, not an error
        # no litellm callbacks are registered (the ledger is ours): its per-stream success logging
        # (a task dispatching to no one) and its per-delta accumulation for it are pure cost
        litellm.disable_streaming_logging = True
        self._litellm = litellm
        self._timeouts = (lx.Timeout, asyncio.TimeoutError, TimeoutError)
        self._retryable = (
            lx.APIConnectionError,
            lx.RateLimitError,
            lx.InternalServerError,
            lx.ServiceUnavailableError,
            lx.BadGatewayError,
            aiohttp.ClientError,  # the relay's connection failures
            Refused,  # an address the SSRF policy refuses
            *self._timeouts,
        )
        log.info("litellm %s ready; aiohttp transport: %s", _version(), self.aiohttp_transport)

    async def warm(self) -> None:
        """One mocked call (no network), so that litellm's lazy set-up happens now and not inside the
        first request's timeout: about a second of imports in its worker thread and of tiktoken
        encodings loaded on the event loop for its cost bookkeeping."""
        assert self._litellm is not None, "Executor.start() was not called"
        try:
            stream = await self._litellm.acompletion(
                model="openai/gpt-4o-mini",
                messages=[{"role": "user", "content": "warm up"}],
                mock_response="ok",
                stream=True,
                api_key=KEYLESS,
            )
            async for _ in stream:
                pass
        except Exception as exc:  # a cold first request is slower, not broken
            log.warning("litellm warm-up failed: %s", type(exc).__name__)

    def _text_client(self, target: Target) -> Any:
        """One kept AsyncOpenAI client per endpoint for litellm's text-completion-openai provider,
        which otherwise builds (and never closes) a new client and connection pool on every call."""
        key = (target.api_base, target.api_key)
        client = self._text_clients.get(key)
        if client is None:
            import openai

            client = openai.AsyncOpenAI(
                api_key=target.api_key or KEYLESS,
                base_url=target.api_base,
                max_retries=0,
                timeout=self.timeout_s,
            )
            self._text_clients[key] = client
        return client

    async def close(self) -> None:
        await self.relay.close()
        clients, self._text_clients = list(self._text_clients.values()), {}
        for client in clients:
            await client.close()

    @property
    def ready(self) -> bool:
        return self._litellm is not None

    @property
    def aiohttp_transport(self) -> bool:
        """Whether litellm sends OpenAI-compatible calls through its aiohttp transport."""
        lt = self._litellm
        return bool(lt is not None and not getattr(lt, "disable_aiohttp_transport", True))

    def transports(self) -> list[str]:
        """The HTTP transports of the clients litellm has cached (e.g. "LiteLLMAiohttpTransport"),
        and "relay (aiohttp)" once the relay has called: what upstream calls actually go through."""
        cache = getattr(self._litellm, "in_memory_llm_clients_cache", None)
        names: set[str] = {"relay (aiohttp)"} if self.relay.used else set()
        for client in list(getattr(cache, "cache_dict", {}).values()):
            inner = getattr(client, "_client", client)  # AsyncOpenAI wraps an httpx.AsyncClient
            transport = getattr(inner, "_transport", None) or getattr(
                getattr(inner, "client", None), "_transport", None
            )
            if transport is not None:
                names.add(type(transport).__name__)
        return sorted(names)

    # -- targets ------------------------------------------------------------------------------
    def targets(
        self, entry: ModelEntry, needs: eligibility.Needs | None = None, strict: bool = False
    ) -> list[Target]:
        """The enabled, configured providers, primary first (may be empty); with `needs`, only those
        that take the request (`eligibility.lacks`: `strict` wants support known)."""
        out: list[Target] = []
        for provider in sorted(entry.providers, key=lambda p: p.type != "primary"):
            target = self._target(entry, provider)
            if target is None:
                continue
            if needs is not None and eligibility.lacks(target.features, needs, strict=strict):
                continue
            out.append(target)
        return out

    def _target(self, entry: ModelEntry, provider: Provider) -> Target | None:
        """The provider ready to call, or None when it is disabled or its credentials are missing."""
        if not provider.enabled or self.missing(entry, provider):
            return None
        api_base = provider.api_base or entry.api_base
        api_key = self._api_key(entry, provider) or (KEYLESS if api_base else None)
        model = provider.litellm_model or entry.litellm_model
        return Target(provider, model, api_base, api_key, entry.is_custom)

    def _api_key(self, entry: ModelEntry, provider: Provider) -> str | None:
        env = provider.api_key_env or entry.api_key_env
        return self.credentials.get(f"{entry.id}/{provider.id}") or (os.environ.get(env) if env else None)

    def missing(self, entry: ModelEntry, provider: Provider) -> list[str]:
        """The environment variables `provider` still needs (empty when it is configured): the one
        its `api_key_env` names, and what litellm says that provider needs besides (Vertex AI its
        project and location, Bedrock AWS keys, Azure its endpoint and API version). A provider
        with an `api_base` of its own is configured: it is sent its key when set, else none."""
        env = provider.api_key_env or entry.api_key_env
        api_base = provider.api_base or entry.api_base
        api_key = self._api_key(entry, provider)
        if api_base:  # its own endpoint: a key if it names one, else none needed
            return []
        own = [env] if env and not api_key else []
        if self._litellm is None:
            return own
        # what litellm needs besides the key (when the catalogue names the key's variable)
        model = provider.litellm_model or entry.litellm_model
        cache_key = (model, bool(env or api_key))
        found = self._environment.get(cache_key)
        if found is None:
            probe = api_key or (KEYLESS if env else None)
            try:
                checked = self._litellm.validate_environment(model=model, api_key=probe)
                found = [] if checked.get("keys_in_environment") else list(checked.get("missing_keys") or ())
            except Exception:  # a model string litellm cannot place is not callable either
                found = [f"(litellm cannot resolve {model!r})"]
            self._environment[cache_key] = found
        return own + [name for name in found if name not in own]

    def missing_hint(self, entry: ModelEntry) -> str:
        """What to set for some provider of `entry` to be configured: "A (openai), or B and C (azure)"."""
        ways = []
        for provider in sorted(entry.providers, key=lambda p: p.type != "primary"):
            names = self.missing(entry, provider) if provider.enabled else []
            if names:
                ways.append(f"{' and '.join(names)} ({provider.id})")
        return ", or ".join(ways)

    def unconfigured(self, entry: ModelEntry) -> APIError:
        hint = self.missing_hint(entry)
        hint = f": set {hint}" if hint else ""
        return UpstreamError(
            f"no provider of {entry.id!r} is configured{hint}",
            code="provider_not_configured",
            status=503,
            type="service_unavailable",
        )

    # -- calls --------------------------------------------------------------------------------
    async def open(
        self,
        kind: Kind,
        entry: ModelEntry,
        payload: dict[str, Any],
        stream: bool,
        started: float,
        needs: eligibility.Needs | None = None,
        strict: bool = False,
    ) -> Opened:
        """Call providers in turn until one answers (or, streamed, sends its first chunk): those the
        breaker lets through, primary first, each retried after a 5xx or a connection error. With
        `needs`, only providers that take the request are tried (see `targets`)."""
        assert self._litellm is not None, "Executor.start() was not called"
        targets = self.targets(entry, needs, strict)
        if not targets:
            raise self.unconfigured(entry)
        keys = [f"{entry.id}/{t.provider.id}" for t in targets]
        plan = self.breaker.plan(keys)
        if len(plan) < len(targets):
            skipped = [targets[i].provider.id for i in range(len(targets)) if i not in plan]
            log.info("%s: skipping %s (cooling down)", entry.id, ", ".join(skipped))
        attempts: list[Attempted] = []
        last: BaseException | None = None
        for n, i in enumerate(plan):
            target, key, final = targets[i], keys[i], n == len(plan) - 1
            for retry in range(self.retries + 1):
                if retry:
                    await asyncio.sleep(_backoff(self.backoff_s, retry))
                # the last provider is tried even when cooling down: a request never fails untried
                if not self.breaker.begin(key) and (retry or not final):
                    break
                attempt = Attempted(target.provider.id)
                attempts.append(attempt)
                try:
                    return await self._judged(key, kind, target, payload, stream, started, attempts, final)
                except Exception as exc:
                    attempt.error = _error_code(exc, self._timeouts)
                    if not self._fails_over(exc):
                        err = self._client_error(exc, entry)
                        err.attempts, err.tried = len(attempts), tuple(attempts)
                        raise err from None
                    last = exc
                    # a timeout or a 429 is not retried here: it would only wait the same again
                    again = (
                        retry < self.retries and not isinstance(exc, self._timeouts) and _status(exc) != 429
                    )
                    step = (
                        "retrying" if again else "no provider left" if final else "trying the next provider"
                    )
                    log.warning(
                        "%s via %s failed (%s); %s", entry.id, target.provider.id, attempt.error, step
                    )
                    if not again:
                        break
        assert last is not None
        err = self._final_error(last, entry, attempts)
        err.attempts, err.tried = len(attempts), tuple(attempts)
        raise err

    async def _judged(
        self,
        key: str,
        kind: Kind,
        target: Target,
        payload: dict[str, Any],
        stream: bool,
        started: float,
        attempts: list[Attempted],
        final: bool,
    ) -> Opened:
        """One attempt, reported to the breaker: a success, a failure, or (cancelled) no verdict."""
        ttft = None if final else self.first_token_timeout_s
        try:
            opened = await self._attempt(kind, target, payload, stream, started, attempts, ttft)
        except asyncio.CancelledError:
            self.breaker.release(key)
            raise
        except Exception as exc:
            status = _status(exc)
            if self._fails_over(exc):
                self.breaker.failure(key, _retry_after_s(exc) if status == 429 else None)
            elif status is not None and status < 500:
                self.breaker.success(key)  # the provider answered: the request is at fault
            else:
                self.breaker.release(key)
            raise
        self.breaker.success(key)
        return opened

    def _fails_over(self, exc: BaseException) -> bool:
        """Connection errors, timeouts, 429 and any 5xx: another provider may answer."""
        status = _status(exc) or 0
        return isinstance(exc, self._retryable) or status >= 500 or status == 429

    async def _attempt(
        self,
        kind: Kind,
        target: Target,
        payload: dict[str, Any],
        stream: bool,
        started: float,
        attempts: list[Attempted],
        first_token_s: float | None = None,
    ) -> Opened:
        call = self._call(kind, target, payload, stream)
        await self._check_upstream(kind, target)
        if not stream:
            response = await asyncio.wait_for(call(), self.timeout_s)
            now = time.perf_counter()
            return Opened(target, attempts, started, response=response, first_at=now)
        if first_token_s is None or first_token_s >= self.timeout_s:
            return await self._first(call, target, attempts, started)
        deadline = asyncio.timeout(first_token_s)
        try:
            async with deadline:
                return await self._first(call, target, attempts, started)
        except TimeoutError:
            if deadline.expired():
                raise FirstTokenTimeout(f"no first chunk within {first_token_s:g}s") from None
            raise

    def _call(
        self, kind: Kind, target: Target, payload: dict[str, Any], stream: bool
    ) -> Callable[[], Awaitable[Any]]:
        """One attempt's upstream call, not yet made: through the relay or through litellm."""
        options = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
        if target.features.reasoning:
            payload = eligibility.reasoning_payload(payload)
        if self.use_relay and target.relayed(kind):
            body = {"model": target.litellm_model.removeprefix("openai/"), **payload, **options}
            return functools.partial(self.relay.send, target.url(kind), target.api_key or KEYLESS, body)
        lt = self._litellm
        kwargs = {
            **payload,
            **target.kwargs(kind),
            "timeout": self.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
            **options,
        }
        if target.model(kind).startswith(TEXT_PREFIX):
            kwargs["client"] = self._text_client(target)
        return functools.partial(lt.acompletion if kind == "chat" else lt.atext_completion, **kwargs)

    async def _check_upstream(self, kind: Kind, target: Target) -> None:
        """A litellm call's `api_base` against the SSRF policy, its host resolved now (the relay
        checks the addresses it connects to itself)."""
        upstreams = self.upstreams
        if upstreams is None or not target.api_base or (self.use_relay and target.relayed(kind)):
            return
        try:
            await upstreams.check(target.api_base)
        except Refused as exc:
            log.warning("refused to call %s (%s): %s", exc.host, target.provider.id, exc.reason)
            raise

    async def _first(
        self, call: Callable[[], Awaitable[Any]], target: Target, attempts: list[Attempted], started: float
    ) -> Opened:
        """Open a stream and wait for its first chunk."""
        iterator = await asyncio.wait_for(call(), self.timeout_s)
        try:
            first = await asyncio.wait_for(anext(iterator), self.timeout_s)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await _close(iterator)
            raise
        return Opened(target, attempts, started, first=first, stream=iterator, first_at=time.perf_counter())

    async def chunks(self, opened: Opened) -> AsyncIterator[Any]:
        """The rest of a stream after its first chunk.

        The time between upstream events is bounded by the transport's read timeout (the `timeout`
        litellm passes on: aiohttp's sock_read, httpx's read), which litellm raises as its Timeout.
        It is not bounded per chunk here: litellm swallows the events it does not surface (empty
        deltas, the usage-only chunk before [DONE]), so one of its steps can span several upstream
        gaps, each shorter than the timeout, and a healthy slow stream would be cut.
        """
        iterator = opened.stream
        try:
            while True:
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            await _close(iterator)

    # -- errors -------------------------------------------------------------------------------
    def stream_error(self, exc: BaseException) -> APIError:
        """An error after the first chunk, to end the stream with."""
        if isinstance(exc, self._timeouts):
            return UpstreamError("the provider stopped sending", code="upstream_timeout", status=504)
        return UpstreamError("the provider failed mid-stream", code="upstream_error")

    def _final_error(self, exc: BaseException, entry: ModelEntry, attempts: list[Attempted]) -> APIError:
        tried = ", ".join(f"{a.provider} ({a.error})" for a in attempts)
        if isinstance(exc, self._timeouts):
            return UpstreamError(
                f"{entry.id}: every provider timed out: {tried}", code="upstream_timeout", status=504
            )
        status = getattr(exc, "status_code", None)
        if status == 429:
            headers = {}
            retry = _retry_after(exc)
            if retry:
                headers["retry-after"] = retry
            return UpstreamError(
                f"{entry.id}: every provider is rate limited: {tried}",
                code="upstream_rate_limited",
                status=429,
                type="rate_limit_error",
                headers=headers,
            )
        return UpstreamError(f"{entry.id}: every provider failed: {tried}", code="upstream_error")

    def _client_error(self, exc: BaseException, entry: ModelEntry) -> APIError:
        status = getattr(exc, "status_code", None)
        message = _upstream_message(exc)
        if status in (400, 413, 422):
            code = (
                "context_length_exceeded" if "ContextWindow" in type(exc).__name__ else "upstream_bad_request"
            )
            return BadRequest(f"{entry.id}: the provider refused the request: {message}", code=code)
        if status in (401, 403):
            return UpstreamError(f"{entry.id}: the provider refused our credentials", code="upstream_auth")
        if status == 404:
            return UpstreamError(
                f"{entry.id}: the provider does not know this model", code="upstream_not_found"
            )
        log.error("%s: unexpected upstream error %s", entry.id, type(exc).__name__)
        return UpstreamError(f"{entry.id}: the provider call failed", code="upstream_error")


async def _close(iterator: Any) -> None:
    """Close a litellm stream (and with it the upstream HTTP response)."""
    for name in ("aclose", "close"):
        fn = getattr(iterator, name, None)
        if fn is not None:
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # closing a broken stream may fail; it is closed either way
                pass
            return
    inner = getattr(iterator, "completion_stream", None)
    if inner is not None:
        await _close(inner)


def _error_code(exc: BaseException, timeouts: tuple[type[BaseException], ...]) -> str:
    if isinstance(exc, FirstTokenTimeout):
        return "first_token_timeout"
    if isinstance(exc, timeouts):
        return "timeout"
    status = _status(exc)
    return f"status {status}" if status is not None and status >= 400 else type(exc).__name__


def _backoff(base_s: float, retry: int) -> float:
    """Full jitter: a random wait up to base x 2^(retry-1), capped."""
    return random.uniform(0, min(BACKOFF_CAP_S, base_s * 2 ** (retry - 1)))


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after_s(exc: BaseException) -> float | None:
    """Seconds from a 429's `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    headers = (
        getattr(exc, "response_headers", None)  # the relay's
        or getattr(response, "headers", None)
        or getattr(exc, "litellm_response_headers", None)
        or {}
    )
    try:
        ms, value = headers.get("retry-after-ms"), headers.get("retry-after")
    except Exception:
        return None
    for raw, scale in ((ms, 1000.0), (value, 1.0)):
        try:
            seconds = float(raw) / scale if raw else math.nan
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        return None
    return None if when is None else max(0.0, when.timestamp() - time.time())


def _retry_after(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    headers = getattr(exc, "response_headers", None) or getattr(response, "headers", None) or {}
    try:
        value = headers.get("retry-after")
    except Exception:
        return None
    return str(value) if value else None


def _upstream_message(exc: BaseException) -> str:
    """The provider's own message, without litellm's decoration, and redacted: a provider may echo
    our key or a `?key=` URL in it, and it goes to the client."""
    text = str(getattr(exc, "message", "") or exc)
    for prefix in ("litellm.", "OpenAIException - ", "Error code: "):
        text = text.replace(prefix, "")
    text = re.sub(r"^(?:\w+Error: )+", "", text)  # litellm's class names, once per wrapping
    return logs.redact(text)[:500]


def _version() -> str:
    from importlib.metadata import version

    return version("litellm")

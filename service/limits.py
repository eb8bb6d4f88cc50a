"""Per-key rate limits: requests per minute (rpm) and tokens per minute (tpm).

Both dimensions are **sliding-window logs** over the last `window_s` (60 s) seconds, the window
`(now - window_s, now]`:

- requests: a request is admitted iff fewer than `rpm` requests were admitted in the window;
  admitting records it (refused requests are not recorded);
- tokens: a request is admitted (`acquire`) iff the tokens recorded in the window plus those held
  by the key's requests in flight are fewer than `tpm`. Once its model is known it **reserves** its
  worst case (`reserve_tokens`: held iff recorded + held + worst <= tpm) and, when it ends, the
  hold is **settled** (`settle_tokens`: its real tokens enter the window as the hold leaves, in one
  step) or released (settled to 0). A hold lapses `ttl_s` after it was made or last renewed
  (`renew_tokens`), so a dead worker's holds do not stay. These are the primitives under
  `budget.TokenReservations`: one reservation mechanism with budgets' (service/budget.py), which
  hold dollars against the ledger as these hold tokens against the window. `record_tokens` records
  the tokens of a request that reserved none.

Every check happens atomically with its write: in Redis in one Lua script (on Redis server time, so
hosts with skewed clocks agree), in process with no `await` between them. A request that passes
rpm but fails tpm is not recorded. A `None` limit means that dimension is unlimited.

    Limiter                 acquire / reserve_tokens / settle_tokens / renew_tokens / record_tokens
    ├── MemoryLimiter       in process (one worker), time.monotonic()
    └── RedisLimiter        shared by workers and hosts; fail-open or fail-closed when Redis is down

`make_limiter(redis_url)` picks one. A RedisLimiter calls Redis through a `RedisLink`, one client
with a circuit breaker that the worker's RedisBudgets share: a call that fails, or takes longer
than `RedisPolicy.timeout_s`, opens the circuit, and for `cooldown_s` every call fails at once (so
the limiter fails open or closed at once) instead of waiting out a timeout of its own; then one
call probes Redis, and its answer closes the circuit. A frozen Redis costs one timeout per cooldown
and worker, not one per request. An outage is logged at WARNING at most once a minute per limiter,
fail-open or fail-closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .breaker import Breaker

__all__ = [
    "HELD_WAIT_S",
    "UNLIMITED",
    "CircuitOpen",
    "LimitResult",
    "Limiter",
    "LimiterUnavailable",
    "MemoryLimiter",
    "RedisLimiter",
    "RedisLink",
    "RedisPolicy",
    "TokenCheck",
    "make_limiter",
]

log = logging.getLogger("pureai.limits")

T = TypeVar("T")

WINDOW_S = 60.0
"""Length of the sliding window."""
KEY_GRACE_S = 1.0
"""Redis keys live this long past the window, so keys of idle API keys vanish."""
MAX_CONNECTIONS = 50
"""Connections per RedisLink (per worker); each script runs in well under a millisecond."""
WARN_EVERY_S = 60.0
"""At most one "Redis unavailable" warning per limiter (or budgets) per this many seconds."""
HELD_WAIT_S = 1.0
"""The wait a refusal or a reset reports when only the key's requests in flight stand in the way:
they give back what they did not use when they end, at a time no window can tell."""


class LimiterUnavailable(Exception):
    """The limiter's backend cannot be reached (the service answers 503)."""


UNLIMITED = 2**31 - 1
"""What `x-ratelimit-limit-*` and `x-ratelimit-remaining-*` say for a dimension without a limit."""


@dataclass(frozen=True)
class LimitResult:
    """The verdict on one request, with what the x-ratelimit-* headers report.

    Both resets are the seconds until `remaining` next goes up: while the window has room, until
    the oldest entry in it (request, or recorded tokens) leaves it; once it is full, until enough
    have left for one more (the wait of a refused request). 0 only when the window is empty (and,
    for tokens, none are held: then HELD_WAIT_S).
    """

    allowed: bool
    limit_requests: int | None
    remaining_requests: int | None
    """Requests left in the window after this one (0 when refused for requests)."""
    reset_requests_s: float | None
    """Seconds until remaining_requests next goes up (0 with no request in the window)."""
    limit_tokens: int | None
    remaining_tokens: int | None
    """tpm minus the tokens in the window and those held by requests in flight, >= 0; once the
    request's worst case is reserved (`tokens_reserved`), minus that too."""
    reset_tokens_s: float | None
    """Seconds until remaining_tokens next goes up (0 with no tokens in the window or held)."""
    retry_after_s: float
    """0 when allowed; else seconds until a retry can succeed (> 0)."""
    reason: str | None
    """"requests" or "tokens" when refused: the dimension that makes the client wait longest."""

    def tokens_reserved(self, remaining: int, reset_s: float) -> LimitResult:
        """This verdict with what the tokens dimension says once the request's worst case is
        reserved, or refused: the x-ratelimit-*-tokens headers of its response."""
        return replace(self, remaining_tokens=max(remaining, 0), reset_tokens_s=reset_s)

    def headers(self) -> dict[str, str]:
        """OpenAI's six x-ratelimit-* headers, limit, remaining and reset of requests and tokens.

        All six are sent for every key, as OpenAI does, so that a client reads them the same way
        on every response: a dimension without a limit says `UNLIMITED` (2147483647, an integer
        every client parses, which never makes one wait) for its limit and remaining, and "0s" for
        its reset. Resets are in OpenAI's duration format ("1s", "6m0s", "120ms", "1m30s"). Values
        unknown for a dimension that has a limit (Redis unreachable, fail-open) are left out.
        """
        out: dict[str, str] = {}
        for name, limit, remaining, reset in (
            ("requests", self.limit_requests, self.remaining_requests, self.reset_requests_s),
            ("tokens", self.limit_tokens, self.remaining_tokens, self.reset_tokens_s),
        ):
            if limit is None:
                limit, remaining, reset = UNLIMITED, UNLIMITED, 0.0
            out[f"x-ratelimit-limit-{name}"] = str(limit)
            if remaining is not None:
                out[f"x-ratelimit-remaining-{name}"] = str(remaining)
            if reset is not None:
                out[f"x-ratelimit-reset-{name}"] = _format_duration(reset)
        return out


def _format_duration(seconds: float) -> str:
    """OpenAI's (Go's) duration format, rounded up to the millisecond: "0s", "120ms", "1.5s", "6m0s"."""
    ms = math.ceil(round(max(seconds, 0.0) * 1000, 3))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest // 1000}.{rest % 1000:03d}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(frozen=True)
class TokenCheck:
    """What one atomic reservation of tokens found (`Limiter.reserve_tokens`)."""

    admitted: bool
    recorded: int
    """Tokens recorded in the window (by requests that ended)."""
    held: int
    """Tokens the key's other requests in flight held."""
    reset_s: float
    """Seconds until what is left goes up: until the oldest recorded tokens leave the window; with
    none recorded, HELD_WAIT_S while any are held (this request's own included), else 0."""
    retry_s: float | None
    """Refused: seconds until this amount fits (HELD_WAIT_S when only holds stand in the way), or
    None when it never can (more than tpm). 0 when admitted."""


class Limiter(ABC):
    """Per-key rpm and tpm limits; every method is safe to call concurrently."""

    @abstractmethod
    async def acquire(self, key_id: str, rpm: int | None, tpm: int | None) -> LimitResult:
        """Check both limits for one request of `key_id` and, if admitted, record it."""

    @abstractmethod
    async def reserve_tokens(
        self, key_id: str, request_id: str, tpm: int, amount: int, ttl_s: float
    ) -> TokenCheck | None:
        """Hold `amount` tokens for `request_id` for `ttl_s` iff recorded + held + amount <= tpm.
        None when Redis cannot be reached and the limiter fails open (closed: LimiterUnavailable)."""

    @abstractmethod
    async def settle_tokens(self, key_id: str, request_id: str, amount: int, tokens: int) -> None:
        """Replace the hold of `request_id` (of `amount`) by `tokens` recorded now; 0 releases it."""

    @abstractmethod
    async def renew_tokens(self, holds: Sequence[tuple[str, str, int]], ttl_s: float) -> None:
        """Make each hold (key id, request id, amount) still there expire `ttl_s` from now."""

    @abstractmethod
    async def record_tokens(self, key_id: str, tpm: int | None, tokens: int) -> None:
        """Record the tokens of a request that reserved none; a no-op when tpm is None or tokens <= 0."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise LimiterUnavailable when the backend cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the limiter is not used afterwards."""


@dataclass(frozen=True)
class _Check:
    """What one atomic check found, before it is turned into a LimitResult."""

    requests_ok: bool
    tokens_ok: bool
    requests_in_window: int
    """Including this request when it was admitted."""
    requests_reset_s: float
    tokens_in_window: int
    """Recorded and held."""
    tokens_reset_s: float


def _result(rpm: int | None, tpm: int | None, check: _Check) -> LimitResult:
    """The LimitResult for a check; dimensions without a limit report None."""
    allowed = check.requests_ok and check.tokens_ok
    waits: dict[str, float] = {}
    if not check.requests_ok:
        waits["requests"] = max(check.requests_reset_s, 1e-6)
    if not check.tokens_ok:
        waits["tokens"] = max(check.tokens_reset_s, 1e-6)
    reason = max(waits, key=lambda name: waits[name]) if waits else None
    return LimitResult(
        allowed=allowed,
        limit_requests=rpm,
        remaining_requests=None if rpm is None else max(rpm - check.requests_in_window, 0),
        reset_requests_s=None if rpm is None else check.requests_reset_s,
        limit_tokens=tpm,
        remaining_tokens=None if tpm is None else max(tpm - check.tokens_in_window, 0),
        reset_tokens_s=None if tpm is None else check.tokens_reset_s,
        retry_after_s=waits[reason] if reason else 0.0,
        reason=reason,
    )


def _unlimited(rpm: int | None, tpm: int | None) -> LimitResult:
    """An admitted request whose window state is unknown (no limits, or Redis down and fail-open)."""
    return LimitResult(True, rpm, None, None, tpm, None, None, 0.0, None)


def _check_limits(rpm: int | None, tpm: int | None) -> None:
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be None or >= 0, not {value}")


# ---------------------------------------------------------------------------------------------------
# Token waits: one rule for both limiters (the Lua scripts below do the same arithmetic)


def _room_wait(recorded: Sequence[tuple[float, int]], room: int, held: int) -> float:
    """Seconds until the window's recorded tokens are down to `room` (0 if they are), counting on
    the requests in flight to give back their holds: at least HELD_WAIT_S while any are held.
    `recorded` holds (seconds until it leaves the window, amount), oldest first; `room` >= 0."""
    left, wait = sum(amount for _, amount in recorded), 0.0
    for leaves, amount in recorded:
        if left <= room:
            break
        left, wait = left - amount, leaves
    return max(wait, HELD_WAIT_S) if held else wait


def _admission_wait(recorded: Sequence[tuple[float, int]], held: int, tpm: int, window_s: float) -> float:
    """Seconds until admission's remaining tokens (tpm - recorded - held) go up, `recorded` as for
    `_room_wait`. With room: until the oldest recorded tokens leave (HELD_WAIT_S with only holds).
    Full: until fewer than tpm are recorded (`_room_wait`); tpm 0: the whole window."""
    if sum(amount for _, amount in recorded) + held < tpm:
        return recorded[0][0] if recorded else (HELD_WAIT_S if held else 0.0)
    return _room_wait(recorded, tpm - 1, held) if tpm > 0 else window_s


def _reservation(recorded: Sequence[tuple[float, int]], held: int, tpm: int, amount: int) -> TokenCheck:
    """The verdict on holding `amount` more tokens, `recorded` as for `_room_wait`. Refused, the
    retry is until the recorded tokens leave room for it (`_room_wait`), or None over tpm."""
    in_window = sum(a for _, a in recorded)
    admitted = in_window + held + amount <= tpm
    reset = recorded[0][0] if recorded else (HELD_WAIT_S if held or admitted else 0.0)
    retry: float | None = 0.0
    if not admitted:
        retry = None if amount > tpm else _room_wait(recorded, tpm - amount, held)
    return TokenCheck(admitted, in_window, held, reset, retry)


# ---------------------------------------------------------------------------------------------------
# In process


class _KeyLog:
    """One API key's admitted requests, recorded tokens (oldest first) and holds."""

    __slots__ = ("requests", "tokens", "token_sum", "held")

    def __init__(self) -> None:
        self.requests: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.token_sum = 0
        self.held: dict[str, tuple[int, float]] = {}
        """Request id -> (tokens held, expiry)."""

    def prune(self, cutoff: float, now: float) -> None:
        """Drop entries at or before `cutoff` (they have left the window), and expired holds."""
        while self.requests and self.requests[0] <= cutoff:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= cutoff:
            self.token_sum -= self.tokens.popleft()[1]
        for request_id in [r for r, (_, expiry) in self.held.items() if expiry <= now]:
            del self.held[request_id]

    def held_sum(self) -> int:
        return sum(amount for amount, _ in self.held.values())

    def idle(self) -> bool:
        return not self.requests and not self.tokens and not self.held


class MemoryLimiter(Limiter):
    """Sliding-window logs and token holds in this process, on time.monotonic().

    Memory stays bounded: entries are pruned as they leave the window, holds when they are settled
    or expire, and keys with nothing left are forgotten (each key on its next use, all keys in a
    sweep once per window). Checks never await, so each call is atomic within the event loop.
    """

    def __init__(self, *, window_s: float = WINDOW_S) -> None:
        self._window_s = window_s
        self._logs: dict[str, _KeyLog] = {}
        self._last_sweep = time.monotonic()

    async def acquire(self, key_id: str, rpm: int | None, tpm: int | None) -> LimitResult:
        _check_limits(rpm, tpm)
        if rpm is None and tpm is None:
            return _unlimited(rpm, tpm)
        now, entry = self._entry(key_id)

        requests_ok = rpm is None or len(entry.requests) < rpm
        tokens_ok, tokens_reset, held = True, 0.0, 0
        if tpm is not None:
            held = entry.held_sum()
            tokens_ok = entry.token_sum + held < tpm
            tokens_reset = _admission_wait(self._leaving(entry, now), held, tpm, self._window_s)
        if requests_ok and tokens_ok and rpm is not None:
            entry.requests.append(now)
        requests_reset = 0.0
        if rpm is not None and (entry.requests or not requests_ok):
            requests_reset = self._slot_wait(entry, rpm, now)

        self._keep(key_id, entry)
        check = _Check(
            requests_ok,
            tokens_ok,
            len(entry.requests),
            requests_reset,
            entry.token_sum + held,
            tokens_reset,
        )
        return _result(rpm, tpm, check)

    async def reserve_tokens(
        self, key_id: str, request_id: str, tpm: int, amount: int, ttl_s: float
    ) -> TokenCheck:
        _check_limits(None, tpm)
        now, entry = self._entry(key_id)
        check = _reservation(self._leaving(entry, now), entry.held_sum(), tpm, amount)
        if check.admitted:
            entry.held[request_id] = (amount, now + ttl_s)
        self._keep(key_id, entry)
        return check

    async def settle_tokens(self, key_id: str, request_id: str, amount: int, tokens: int) -> None:
        now, entry = self._entry(key_id)
        entry.held.pop(request_id, None)
        if tokens > 0:
            entry.tokens.append((now, tokens))
            entry.token_sum += tokens
        self._keep(key_id, entry)

    async def renew_tokens(self, holds: Sequence[tuple[str, str, int]], ttl_s: float) -> None:
        expiry = time.monotonic() + ttl_s
        for key_id, request_id, _ in holds:
            entry = self._logs.get(key_id)
            if entry is not None and request_id in entry.held:
                entry.held[request_id] = (entry.held[request_id][0], expiry)

    async def record_tokens(self, key_id: str, tpm: int | None, tokens: int) -> None:
        if tpm is None or tokens <= 0:
            return
        now, entry = self._entry(key_id)
        entry.tokens.append((now, tokens))
        entry.token_sum += tokens
        self._keep(key_id, entry)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._logs.clear()

    def _entry(self, key_id: str) -> tuple[float, _KeyLog]:
        now = time.monotonic()
        self._sweep(now)
        entry = self._logs.get(key_id) or _KeyLog()
        entry.prune(now - self._window_s, now)
        return now, entry

    def _leaving(self, entry: _KeyLog, now: float) -> list[tuple[float, int]]:
        """The recorded tokens as (seconds until they leave the window, amount), oldest first."""
        return [(stamp + self._window_s - now, amount) for stamp, amount in entry.tokens]

    def _slot_wait(self, entry: _KeyLog, rpm: int, now: float) -> float:
        """Seconds until the remaining requests go up: until fewer than `rpm` requests are in the
        window when it is full, else until its oldest request leaves it."""
        surplus = max(len(entry.requests) - rpm, 0)
        if surplus >= len(entry.requests):  # rpm == 0: no slot ever frees
            return self._window_s
        return entry.requests[surplus] + self._window_s - now

    def _keep(self, key_id: str, entry: _KeyLog) -> None:
        if entry.idle():
            self._logs.pop(key_id, None)
        else:
            self._logs[key_id] = entry

    def _sweep(self, now: float) -> None:
        """Once per window, forget every key with nothing left in its window."""
        if now - self._last_sweep < self._window_s:
            return
        self._last_sweep = now
        cutoff = now - self._window_s
        for key_id in list(self._logs):
            entry = self._logs[key_id]
            entry.prune(cutoff, now)
            if entry.idle():
                del self._logs[key_id]


# ---------------------------------------------------------------------------------------------------
# Redis: the link (client and circuit breaker) the limiter and the budgets share


@dataclass(frozen=True)
class RedisPolicy:
    """How a worker calls Redis (rate limits, token and budget reservations).

    - `timeout_s`: one call (waiting for a pooled connection, connecting, the command) may take
      this long before Redis counts as unreachable.
    - `cooldown_s`: after a call failed so, Redis is not called for this long: every call fails at
      once, as if it had timed out. Then one call probes it; its answer closes the circuit.
    """

    timeout_s: float = 0.5
    cooldown_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("timeout_s", "cooldown_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, not {getattr(self, name)}")


class CircuitOpen(RedisError):
    """A Redis call not made: the circuit is open after a recent failure."""


_CIRCUIT = "redis"
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


class RedisLink:
    """One Redis client and its circuit breaker (service/breaker.py, opened by one failure).

    Every call goes through `call`. A connection error or a timeout opens the circuit for the
    policy's cooldown when Redis has answered no call since the failed one began: then it is Redis
    that is down or frozen, and the next calls would wait as long. (A call that fails while others
    get answers, waiting for a pooled connection in a burst or on a starved event loop, fails alone.)
    An answer, even an error reply, closes the circuit. While it is open, calls raise CircuitOpen
    without touching the network; after the cooldown one call is let through as the probe, while
    the others still fail at once.
    """

    def __init__(self, url: str, policy: RedisPolicy | None = None) -> None:
        self.policy = policy or RedisPolicy()
        self.where = _redact_url(url)
        self._secrets = _url_secrets(url)
        self._cause = ""
        timeout = self.policy.timeout_s
        # A burst waits (up to timeout_s) for a free connection instead of failing. One immediate
        # retry on a connection error covers a pooled connection the server has since closed; a
        # timeout is not retried, so a hung server costs one timeout_s.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self.redis = aioredis.Redis.from_pool(pool)
        cooldown = self.policy.cooldown_s
        self._breaker = Breaker(1, cooldown, cooldown, retry_after_max_s=0.0)
        self._answered = -math.inf  # monotonic time of Redis's last answer
        self._closed = False

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """`await make()`, unless the circuit is open (CircuitOpen); its errors pass through."""
        if not self._breaker.begin(_CIRCUIT):
            raise CircuitOpen(f"not called for up to {self.policy.cooldown_s:g}s after {self._cause}")
        began = time.monotonic()
        try:
            result = await make()
        except _UNREACHABLE as exc:
            if self._answered < began:  # nothing answered meanwhile: Redis is away
                self._cause = f"{type(exc).__name__}: {exc}"
                self._breaker.failure(_CIRCUIT)
            else:
                self._breaker.release(_CIRCUIT)
            raise
        except RedisError:  # an error reply: Redis answered
            self._answered_now()
            raise
        except BaseException:  # cancelled: no verdict; another call may probe
            self._breaker.release(_CIRCUIT)
            raise
        self._answered_now()
        return result

    def _answered_now(self) -> None:
        self._answered = time.monotonic()
        if self._breaker.state(_CIRCUIT) != "closed":
            log.info("Redis %s answers again: rate limits and reservations use it", self.where)
        self._breaker.success(_CIRCUIT)

    def describe(self, what: str, exc: BaseException) -> str:
        """A message naming the store and the error, with any password from the URL blanked out."""
        detail = str(exc)
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        return f"{what} {self.where} unavailable: {type(exc).__name__}: {detail}"

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(RedisError, OSError):
                await self.redis.aclose()


def hold_member(request_id: str, amount: float) -> str:
    """A hold's member in a Redis `held` sorted set (scored by its expiry): "<request id>|<amount>"."""
    return f"{request_id}|{amount!r}"


# held_sum: the sum of a `held` sorted set's live holds, after dropping the expired ones (now in µs).
# room_wait: as _room_wait, over the recorded amounts and the µs until each leaves, oldest first.
_TOKENS_LUA = """
local function held_sum(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now))
  local held = 0
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    held = held + tonumber(string.match(member, '|([^|]+)$'))
  end
  return held
end

local function room_wait(amounts, leaves, recorded, room, held, held_wait)
  local left, wait = recorded, 0
  for i = 1, #amounts do
    if left <= room then break end
    left = left - amounts[i]
    wait = leaves[i]
  end
  if held > 0 and wait < held_wait then wait = held_wait end
  return wait
end
"""

# KEYS: held zset. ARGV: ttl (µs), then members; each one still there expires ttl from now.
# Shared by token and budget reservations (service/budget.py).
RENEW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', now + ttl), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000))
return 1
"""

# KEYS: requests zset, tokens zset, sequence counter, token holds zset.
# ARGV: rpm (-1 = unlimited), tpm (-1 = unlimited), window (µs), key ttl (ms), HELD_WAIT_S (µs).
# Scores are Redis server time in µs; members are "<µs>:<seq>" (tokens: "<µs>:<seq>:<tokens>").
# Returns {requests_ok, tokens_ok, requests in window, requests reset (µs), tokens in window and
# held, tokens reset (µs)}: as MemoryLimiter.acquire and _admission_wait.
_ACQUIRE_LUA = (
    _TOKENS_LUA
    + """
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local ttl = ARGV[4]
local held_wait = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
local cutoff = string.format('%.0f', now - window)

-- Seconds (µs) until the remaining requests go up: until fewer than rpm are in the window when
-- it is full, else until its oldest request leaves it (as MemoryLimiter._slot_wait).
local function slot_wait(count)
  local surplus = math.max(count - rpm, 0)
  local nth = redis.call('ZRANGE', KEYS[1], surplus, surplus, 'WITHSCORES')
  if nth[2] == nil then return window end
  return tonumber(nth[2]) + window - now
end

local req_ok, req_count, req_reset = 1, 0, 0
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  req_count = redis.call('ZCARD', KEYS[1])
  if req_count >= rpm then req_ok = 0 end
end

local tok_ok, tok_sum, tok_reset = 1, 0, 0
if tpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  local held = held_sum(KEYS[4], now)
  local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local amounts, leaves = {}, {}
  for i = 1, #entries, 2 do
    local amount = tonumber(string.match(entries[i], ':(%d+)$'))
    amounts[#amounts + 1] = amount
    leaves[#leaves + 1] = tonumber(entries[i + 1]) + window - now
    tok_sum = tok_sum + amount
  end
  local recorded = tok_sum
  tok_sum = tok_sum + held
  if tok_sum >= tpm then
    tok_ok = 0
    tok_reset = window
    if tpm > 0 then tok_reset = room_wait(amounts, leaves, recorded, tpm - 1, held, held_wait) end
  elseif #amounts > 0 then
    tok_reset = leaves[1]
  elseif held > 0 then
    tok_reset = held_wait
  end
end

if req_ok == 1 and tok_ok == 1 and rpm >= 0 then
  local seq = redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('ZADD', KEYS[1], stamp, stamp .. ':' .. seq)
  redis.call('PEXPIRE', KEYS[1], ttl)
  req_count = req_count + 1
end
if rpm >= 0 and (req_ok == 0 or req_count > 0) then req_reset = slot_wait(req_count) end
return {req_ok, tok_ok, req_count, req_reset, tok_sum, tok_reset}
"""
)

# KEYS: tokens zset, token holds zset. ARGV: tpm, amount, member, window (µs), hold ttl (µs),
# HELD_WAIT_S (µs). Returns {admitted, recorded, held, reset (µs), retry (µs, -1: never)}, as
# _reservation.
_RESERVE_TOKENS_LUA = (
    _TOKENS_LUA
    + """
local tpm = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local window = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local held_wait = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local held = held_sum(KEYS[2], now)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local amounts, leaves, recorded = {}, {}, 0
for i = 1, #entries, 2 do
  local a = tonumber(string.match(entries[i], ':(%d+)$'))
  amounts[#amounts + 1] = a
  leaves[#leaves + 1] = tonumber(entries[i + 1]) + window - now
  recorded = recorded + a
end
local admitted = 0
if recorded + held + amount <= tpm then
  admitted = 1
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + ttl), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], math.ceil(ttl / 1000))
end
local reset = 0
if #amounts > 0 then reset = leaves[1] elseif held > 0 or admitted == 1 then reset = held_wait end
local retry = 0
if admitted == 0 then
  retry = -1
  if amount <= tpm then retry = room_wait(amounts, leaves, recorded, tpm - amount, held, held_wait) end
end
return {admitted, recorded, held, reset, retry}
"""
)

# KEYS: token holds zset, tokens zset, sequence counter. ARGV: member, tokens, window (µs), key
# ttl (ms). The hold leaves and its tokens (if any) enter the window, in one step.
_SETTLE_TOKENS_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now - tonumber(ARGV[3])))
  local seq = redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  redis.call('ZADD', KEYS[2], stamp, stamp .. ':' .. seq .. ':' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1
"""

# KEYS: tokens zset, sequence counter. ARGV: tokens, window (µs), key ttl (ms).
_RECORD_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stamp = t[1] .. string.format('%06d', tonumber(t[2]))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - tonumber(ARGV[2])))
local seq = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], stamp, stamp .. ':' .. seq .. ':' .. ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


class RedisLimiter(Limiter):
    """Sliding-window logs and token holds in Redis, shared by every worker and host that uses the
    same prefix.

    One sorted set per key and dimension, scored by Redis server time; window keys expire one
    second after the window, hold keys one hold ttl after the last hold, so idle keys vanish. When
    Redis cannot be reached (a call fails, times out after the policy's `timeout_s`, or the circuit
    is open), a fail-open limiter admits the request (remaining counts unknown; no tokens held) and
    a fail-closed one raises LimiterUnavailable; either logs a warning at most once a minute. No
    redis exception escapes.

    - `redis`: a URL (this limiter makes and closes its own RedisLink) or a RedisLink to share.
    - `policy`: timeout and cooldown of the link it makes (RedisPolicy's defaults without).
    """

    def __init__(
        self,
        redis: str | RedisLink,
        *,
        prefix: str = "pureai:rl:",
        fail_open: bool = True,
        window_s: float = WINDOW_S,
        policy: RedisPolicy | None = None,
    ) -> None:
        self._owns = not isinstance(redis, RedisLink)
        self.link = RedisLink(redis, policy) if isinstance(redis, str) else redis
        self._prefix = prefix
        self._fail_open = fail_open
        self._window_us = round(window_s * 1_000_000)
        self._ttl_ms = math.ceil((window_s + KEY_GRACE_S) * 1000)
        self._held_wait_us = round(HELD_WAIT_S * 1_000_000)
        self._last_warning: float | None = None
        client = self.link.redis
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._reserve = client.register_script(_RESERVE_TOKENS_LUA)
        self._settle = client.register_script(_SETTLE_TOKENS_LUA)
        self._renew = client.register_script(RENEW_LUA)
        self._record = client.register_script(_RECORD_LUA)

    async def acquire(self, key_id: str, rpm: int | None, tpm: int | None) -> LimitResult:
        _check_limits(rpm, tpm)
        if rpm is None and tpm is None:
            return _unlimited(rpm, tpm)
        keys = self._keys(key_id, "req", "tok", "seq", "tok:held")
        args = [-1 if rpm is None else rpm, -1 if tpm is None else tpm, self._window_us, self._ttl_ms]
        args.append(self._held_wait_us)
        try:
            reply: Any = await self.link.call(lambda: self._acquire(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            self._unavailable(exc)
            return _unlimited(rpm, tpm)
        req_ok, tok_ok, req_count, req_reset_us, tok_sum, tok_reset_us = (int(v) for v in reply)
        check = _Check(
            requests_ok=bool(req_ok),
            tokens_ok=bool(tok_ok),
            requests_in_window=req_count,
            requests_reset_s=req_reset_us / 1_000_000,
            tokens_in_window=tok_sum,
            tokens_reset_s=tok_reset_us / 1_000_000,
        )
        return _result(rpm, tpm, check)

    async def reserve_tokens(
        self, key_id: str, request_id: str, tpm: int, amount: int, ttl_s: float
    ) -> TokenCheck | None:
        _check_limits(None, tpm)
        keys = self._keys(key_id, "tok", "tok:held")
        member = hold_member(request_id, amount)
        args: list[str | int] = [tpm, amount, member, self._window_us, round(ttl_s * 1e6), self._held_wait_us]
        try:
            reply: Any = await self.link.call(lambda: self._reserve(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            self._unavailable(exc)
            return None
        admitted, recorded, held, reset_us, retry_us = (int(v) for v in reply)
        retry = None if retry_us < 0 else retry_us / 1_000_000
        return TokenCheck(bool(admitted), recorded, held, reset_us / 1_000_000, retry)

    async def settle_tokens(self, key_id: str, request_id: str, amount: int, tokens: int) -> None:
        keys = self._keys(key_id, "tok:held", "tok", "seq")
        member = hold_member(request_id, amount)
        args: list[str | int] = [member, max(int(tokens), 0), self._window_us, self._ttl_ms]
        try:
            await self.link.call(lambda: self._settle(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            self._unavailable(exc)

    async def renew_tokens(self, holds: Sequence[tuple[str, str, int]], ttl_s: float) -> None:
        by_key: dict[str, list[str]] = {}
        for key_id, request_id, amount in holds:
            by_key.setdefault(key_id, []).append(hold_member(request_id, amount))

        async def renew() -> None:
            async with self.link.redis.pipeline(transaction=False) as pipe:
                for key_id, members in by_key.items():
                    keys = self._keys(key_id, "tok:held")
                    await self._renew(keys=keys, args=[round(ttl_s * 1e6), *members], client=pipe)
                await pipe.execute()

        try:
            await self.link.call(renew)
        except (RedisError, OSError) as exc:
            self._unavailable(exc)

    async def record_tokens(self, key_id: str, tpm: int | None, tokens: int) -> None:
        if tpm is None or tokens <= 0:
            return
        keys = self._keys(key_id, "tok", "seq")
        args = [int(tokens), self._window_us, self._ttl_ms]
        try:
            await self.link.call(lambda: self._record(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            self._unavailable(exc)

    async def ping(self) -> None:
        try:
            await self.link.call(self.link.redis.ping)
        except (RedisError, OSError) as exc:
            raise LimiterUnavailable(self.link.describe("rate-limit store", exc)) from None

    async def close(self) -> None:
        if self._owns:
            await self.link.close()

    def _keys(self, key_id: str, *names: str) -> list[str]:
        # The {key_id} hash tag keeps a key's sets in one Redis Cluster slot, as a script needs.
        return [f"{self._prefix}{{{key_id}}}:{name}" for name in names]

    def _unavailable(self, exc: BaseException) -> None:
        """Log a warning at most once a minute; then raise LimiterUnavailable (fail-closed) or
        return (fail-open: the caller admits)."""
        message = self.link.describe("rate-limit store", exc)
        now = time.monotonic()
        if self._last_warning is None or now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            if self._fail_open:
                log.warning("%s (fail-open: admitting requests without rate limits)", message)
            else:
                log.warning("%s (fail-closed: refusing requests with 503 limiter_unavailable)", message)
        if not self._fail_open:
            raise LimiterUnavailable(message) from None


def _redact_url(url: str) -> str:
    """The URL without credentials or query: scheme://host:port/db."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "<unparsable redis url>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _url_secrets(url: str) -> list[str]:
    """Passwords in the URL (userinfo or ?password=), raw and decoded, to scrub from messages."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""] + parse_qs(parts.query).get("password", [])
    except ValueError:
        return []
    secrets = {s for p in found for s in (p, unquote(p)) if s}
    return sorted(secrets, key=len, reverse=True)


def make_limiter(
    redis_url: str | None,
    *,
    fail_open: bool = True,
    prefix: str = "pureai:rl:",
    policy: RedisPolicy | None = None,
) -> Limiter:
    """A RedisLimiter when a URL is given (shared by workers), else a MemoryLimiter (one process)."""
    if redis_url is None:
        return MemoryLimiter()
    return RedisLimiter(redis_url, prefix=prefix, fail_open=fail_open, policy=policy)

"""Per-key rate limits: requests per minute (rpm) and tokens per minute (tpm).

Both dimensions are **sliding-window logs** over the last `window_s` (60 s) seconds, the window
`(now - window_s, now]`:

- requests: a request is admitted iff fewer than `rpm` requests were admitted in the window;
  admitting records it (refused requests are not recorded);
- tokens: a request is admitted iff the tokens recorded in the window are fewer than `tpm`; the
  request's own tokens are recorded after it completes, with `record_tokens`.

Both checks and the recording happen atomically: in Redis in one Lua script (on Redis server time,
so hosts with skewed clocks agree), in process with no `await` between them. A request that passes
rpm but fails tpm is not recorded. A `None` limit means that dimension is unlimited.

    Limiter                 acquire / record_tokens / ping / close
    ├── MemoryLimiter       in process (one worker), time.monotonic()
    └── RedisLimiter        shared by workers and hosts; fail-open or fail-closed when Redis is down

`make_limiter(redis_url)` picks one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

__all__ = [
    "UNLIMITED",
    "LimitResult",
    "Limiter",
    "LimiterUnavailable",
    "MemoryLimiter",
    "RedisLimiter",
    "make_limiter",
]

log = logging.getLogger("pureai.limits")

WINDOW_S = 60.0
"""Length of the sliding window."""
KEY_GRACE_S = 1.0
"""Redis keys live this long past the window, so keys of idle API keys vanish."""
MAX_CONNECTIONS = 50
"""Connections per RedisLimiter (per worker); each script runs in well under a millisecond."""
WARN_EVERY_S = 60.0
"""At most one "Redis unavailable" warning per limiter per this many seconds."""


class LimiterUnavailable(Exception):
    """The limiter's backend cannot be reached (the service answers 503)."""


UNLIMITED = 2**31 - 1
"""What `x-ratelimit-limit-*` and `x-ratelimit-remaining-*` say for a dimension without a limit."""


@dataclass(frozen=True)
class LimitResult:
    """The verdict on one request, with what the x-ratelimit-* headers report.

    Both resets are the seconds until `remaining` next goes up: while the window has room, until
    the oldest entry in it (request, or recorded tokens) leaves it; once it is full, until enough
    have left for one more (the wait of a refused request). 0 only when the window is empty.
    """

    allowed: bool
    limit_requests: int | None
    remaining_requests: int | None
    """Requests left in the window after this one (0 when refused for requests)."""
    reset_requests_s: float | None
    """Seconds until remaining_requests next goes up (0 with no request in the window)."""
    limit_tokens: int | None
    remaining_tokens: int | None
    """tpm minus the tokens in the window, >= 0."""
    reset_tokens_s: float | None
    """Seconds until remaining_tokens next goes up (0 with no tokens in the window)."""
    retry_after_s: float
    """0 when allowed; else seconds until a retry can succeed (> 0)."""
    reason: str | None
    """"requests" or "tokens" when refused: the dimension that makes the client wait longest."""

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


class Limiter(ABC):
    """Per-key rpm and tpm limits; every method is safe to call concurrently."""

    @abstractmethod
    async def acquire(self, key_id: str, rpm: int | None, tpm: int | None) -> LimitResult:
        """Check both limits for one request of `key_id` and, if admitted, record it."""

    @abstractmethod
    async def record_tokens(self, key_id: str, tpm: int | None, tokens: int) -> None:
        """Record the tokens a finished request used; a no-op when tpm is None or tokens <= 0."""

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
# In process


class _KeyLog:
    """One API key's admitted requests and recorded tokens, oldest first."""

    __slots__ = ("requests", "tokens", "token_sum")

    def __init__(self) -> None:
        self.requests: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.token_sum = 0

    def prune(self, cutoff: float) -> None:
        """Drop entries at or before `cutoff` (they have left the window)."""
        while self.requests and self.requests[0] <= cutoff:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= cutoff:
            self.token_sum -= self.tokens.popleft()[1]

    def idle(self) -> bool:
        return not self.requests and not self.tokens


class MemoryLimiter(Limiter):
    """Sliding-window logs in this process, on time.monotonic().

    Memory stays bounded: entries are pruned as they leave the window, and keys with nothing in
    the window are forgotten (each key on its next use, all keys in a sweep once per window).
    Checks never await, so each acquire is atomic within the event loop.
    """

    def __init__(self, *, window_s: float = WINDOW_S) -> None:
        self._window_s = window_s
        self._logs: dict[str, _KeyLog] = {}
        self._last_sweep = time.monotonic()

    async def acquire(self, key_id: str, rpm: int | None, tpm: int | None) -> LimitResult:
        _check_limits(rpm, tpm)
        if rpm is None and tpm is None:
            return _unlimited(rpm, tpm)
        now = time.monotonic()
        self._sweep(now)
        entry = self._logs.get(key_id) or _KeyLog()
        entry.prune(now - self._window_s)

        requests_ok = rpm is None or len(entry.requests) < rpm
        tokens_ok, tokens_reset = True, 0.0
        if tpm is not None:
            tokens_ok = entry.token_sum < tpm
            if entry.tokens or not tokens_ok:
                tokens_reset = self._token_wait(entry, tpm, now)
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
            entry.token_sum,
            tokens_reset,
        )
        return _result(rpm, tpm, check)

    async def record_tokens(self, key_id: str, tpm: int | None, tokens: int) -> None:
        if tpm is None or tokens <= 0:
            return
        now = time.monotonic()
        self._sweep(now)
        entry = self._logs.get(key_id) or _KeyLog()
        entry.prune(now - self._window_s)
        entry.tokens.append((now, tokens))
        entry.token_sum += tokens
        self._keep(key_id, entry)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._logs.clear()

    def _slot_wait(self, entry: _KeyLog, rpm: int, now: float) -> float:
        """Seconds until the remaining requests go up: until fewer than `rpm` requests are in the
        window when it is full, else until its oldest request leaves it."""
        surplus = max(len(entry.requests) - rpm, 0)
        if surplus >= len(entry.requests):  # rpm == 0: no slot ever frees
            return self._window_s
        return entry.requests[surplus] + self._window_s - now

    def _token_wait(self, entry: _KeyLog, tpm: int, now: float) -> float:
        """Seconds until the remaining tokens go up: until fewer than `tpm` tokens are in the
        window when it holds `tpm` or more, else until its oldest tokens leave it."""
        left = entry.token_sum
        for stamp, amount in entry.tokens:
            left -= amount
            if left < tpm:
                return stamp + self._window_s - now
        return self._window_s  # tpm == 0: never room

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
            entry.prune(cutoff)
            if entry.idle():
                del self._logs[key_id]


# ---------------------------------------------------------------------------------------------------
# Redis

# KEYS: requests zset, tokens zset, sequence counter.
# ARGV: rpm (-1 = unlimited), tpm (-1 = unlimited), window (µs), key ttl (ms).
# Scores are Redis server time in µs; members are "<µs>:<seq>" (tokens: "<µs>:<seq>:<tokens>").
# Returns {requests_ok, tokens_ok, requests in window, requests reset (µs), tokens in window,
# tokens reset (µs)}.
_ACQUIRE_LUA = """
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local ttl = ARGV[4]
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
  local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local amounts = {}
  for i = 1, #entries, 2 do
    local amount = tonumber(string.match(entries[i], ':(%d+)$'))
    amounts[#amounts + 1] = amount
    tok_sum = tok_sum + amount
  end
  if tok_sum >= tpm then tok_ok = 0 end
  -- until the tokens in the window go below tpm (full), or its oldest tokens leave it (not full)
  if tok_ok == 0 or #amounts > 0 then
    tok_reset = window
    local left = tok_sum
    for i = 1, #amounts do
      left = left - amounts[i]
      if left < tpm then
        tok_reset = tonumber(entries[2 * i]) + window - now
        break
      end
    end
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
    """Sliding-window logs in Redis, shared by every worker and host that uses the same prefix.

    One sorted set per key and dimension, scored by Redis server time; keys expire one second after
    the window, so idle keys vanish. When Redis cannot be reached (or times out after `timeout_s`),
    a fail-open limiter admits the request (remaining counts unknown) and logs a warning at most
    once a minute; a fail-closed one raises LimiterUnavailable. No redis exception escapes.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "pureai:rl:",
        fail_open: bool = True,
        timeout_s: float = 0.5,
        window_s: float = WINDOW_S,
    ) -> None:
        self._prefix = prefix
        self._fail_open = fail_open
        self._window_us = round(window_s * 1_000_000)
        self._ttl_ms = math.ceil((window_s + KEY_GRACE_S) * 1000)
        self._where = _redact_url(url)
        self._secrets = _url_secrets(url)
        self._last_warning: float | None = None
        # A burst waits (up to timeout_s) for a free connection instead of failing. One immediate
        # retry on a connection error covers a pooled connection the server has since closed; a
        # timeout is not retried, so a hung server costs one timeout_s.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._acquire = self._redis.register_script(_ACQUIRE_LUA)
        self._record = self._redis.register_script(_RECORD_LUA)

    async def acquire(self, key_id: str, rpm: int | None, tpm: int | None) -> LimitResult:
        _check_limits(rpm, tpm)
        if rpm is None and tpm is None:
            return _unlimited(rpm, tpm)
        args = [-1 if rpm is None else rpm, -1 if tpm is None else tpm, self._window_us, self._ttl_ms]
        try:
            reply: Any = await self._acquire(keys=self._keys(key_id, "req", "tok", "seq"), args=args)
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

    async def record_tokens(self, key_id: str, tpm: int | None, tokens: int) -> None:
        if tpm is None or tokens <= 0:
            return
        try:
            await self._record(
                keys=self._keys(key_id, "tok", "seq"), args=[int(tokens), self._window_us, self._ttl_ms]
            )
        except (RedisError, OSError) as exc:
            self._unavailable(exc)

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise LimiterUnavailable(self._describe(exc)) from None

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    def _keys(self, key_id: str, *names: str) -> list[str]:
        # The {key_id} hash tag keeps a key's sets in one Redis Cluster slot, as a script needs.
        return [f"{self._prefix}{{{key_id}}}:{name}" for name in names]

    def _unavailable(self, exc: BaseException) -> None:
        """Raise LimiterUnavailable (fail-closed) or log a warning at most once a minute (fail-open)."""
        message = self._describe(exc)
        if not self._fail_open:
            raise LimiterUnavailable(message) from None
        now = time.monotonic()
        if self._last_warning is None or now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("%s (fail-open: admitting requests without rate limits)", message)

    def _describe(self, exc: BaseException) -> str:
        """A message naming the store and the error, with any password from the URL blanked out."""
        detail = str(exc)
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        return f"rate-limit store {self._where} unavailable: {type(exc).__name__}: {detail}"


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


def make_limiter(redis_url: str | None, *, fail_open: bool = True, prefix: str = "pureai:rl:") -> Limiter:
    """A RedisLimiter when a URL is given (shared by workers), else a MemoryLimiter (one process)."""
    if redis_url is None:
        return MemoryLimiter()
    return RedisLimiter(redis_url, prefix=prefix, fail_open=fail_open)

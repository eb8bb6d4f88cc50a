"""Reservations: a request holds its worst case against a per-key limit before it goes upstream.

One mechanism for two limits, each a `Reservations` with its own `unit`:

- **budgets** (`Budgets`, "usd"): a key with `budget_usd` has a request sent upstream only if
  spent + held + worst <= budget_usd, `spent` being what the usage ledger records for the key;
- **tokens per minute** (`TokenReservations`, "tokens"): a key with `tpm` has it sent only if
  recorded + held + worst <= tpm, `recorded` being the tokens the rate limiter's 60 s window holds
  (service/limits.py).

`held` is what the key's other requests in flight hold, `worst` what this one may use at most
(`worst_case`: the estimated prompt plus every answer at full length, in tokens and at the model's
prices). The check and the reservation are one atomic step across every worker and host. When the
request ends, its reservation is *settled* to what it really used (budgets: after its ledger row,
with the real `total_cost_usd`, is committed; tokens: its real tokens enter the window as the hold
leaves it) or *released* (nothing used). One that is neither, because its worker died, expires
`ttl_s` after it was made or last renewed: each worker renews the reservations of its requests in
flight every `ttl_s / 3`, so a long stream keeps its own while a dead worker's lapse. The unit's
backend does the atomic steps where its recorded amount lives:

    Reservations            reserve / settle / release / renew / close: the lifecycle, any unit
    ├── Budgets             usd
    │   ├── StoreBudgets    a `reservations` table beside the ledger (SQLite or PostgreSQL)
    │   └── RedisBudgets    one sorted set per key in Redis; the spend read from the store
    └── TokenReservations   tokens, in the limiter beside its window: in Redis (one script per
                            step) or in process (per worker, as the window is without Redis)

`make_budgets(store, redis)` picks a budget backend: Redis when the gateway has it (one Lua script
per reservation instead of a write transaction in the store), else the store.

**In the store**, a reservation is one transaction, serialised per key: SQLite's write lock
(`BEGIN IMMEDIATE`, and the writers' turn across processes), or a PostgreSQL advisory lock on the
key. A reservation row carries its request id and counts only while that request has no ledger row,
so writing the row settles it in the same commit: a cost is never counted twice, nor missed. Settling
costs nothing more; the next reservation of the key deletes settled and expired rows.

**In Redis**, the key's recorded spend is not kept: every reservation reads it from the store
(`Store.spend_usd`), the one place it is recorded. A request settling between that read and the
script would be missed (its row not yet read, its reservation already gone), so the script that
settles adds the real cost to a per-key counter `settled` as it removes the reservation, and a
reservation reads that counter *before* it reads the store:

    used = spent + (settled now - settled before the read) + held

A cost settled between the two reads is counted twice for that one check (a refusal a retry undoes),
never missed. The counter has an epoch (the request id that created it); if it expired and was
created again meanwhile, all of it counts. Tokens need none of this: their window is in Redis
beside their holds, and one script reads both. Budgets and the limiter share one `RedisLink`, whose
circuit breaker makes a frozen Redis cost one timeout per cooldown, not one per call. When Redis
cannot be reached, the gateway's `rate_limit_fail_open` decides, as for rate limits: open admits a
request if spent + worst fits (tokens: admits it; nothing is reserved, a warning at most once a
minute); closed raises `BudgetUnavailable` (tokens: `LimiterUnavailable`), both 503, with a warning
at most once a minute too.

Expiry is on Redis server time with Redis, on the gateway's clock with the store (hosts sharing a
PostgreSQL store must agree to well within the margin, as NTP does), on the worker's monotonic
clock for tokens in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from abc import ABC, abstractmethod
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

from redis.exceptions import RedisError

from models_registry import ModelEntry

from . import window
from .limits import RENEW_LUA, WARN_EVERY_S, Limiter, RedisLink, RedisPolicy, hold_member
from .store import Store

__all__ = [
    "BudgetUnavailable",
    "Budgets",
    "Hold",
    "RedisBudgets",
    "Reservations",
    "StoreBudgets",
    "TokenReservations",
    "WorstCase",
    "make_budgets",
    "worst_case",
]

log = logging.getLogger("pureai.budget")

USD = "usd"
TOKENS = "tokens"
UNKNOWN_MAX_OUTPUT_TOKENS = 4096
"""Output tokens of the worst case when neither the request nor the catalogue bounds them."""
MESSAGE_TOKENS = 3
"""Tokens a chat format adds per message, and once more for the reply's priming (OpenAI's count)."""


class BudgetUnavailable(Exception):
    """The reservation backend cannot be reached and budgets fail closed (the service answers 503)."""


# ---------------------------------------------------------------------------------------------------
# The worst case


@dataclass(frozen=True)
class WorstCase:
    """The most one request may cost: its estimated prompt and every answer at full length."""

    usd: float
    prompt_tokens: int
    output_tokens: int
    """Over all the answers asked for (n, best_of, several prompts)."""

    @property
    def tokens(self) -> int:
        """What a tokens-per-minute reservation holds: prompt and output."""
        return self.prompt_tokens + self.output_tokens


def worst_case(entry: ModelEntry, payload: dict[str, Any]) -> WorstCase:
    """The request's worst case on `entry`: the prompt estimated from its characters (about 4 to a
    token, plus each chat message's own tokens) at the input price, and `max_completion_tokens` or
    `max_tokens` (at most the model's `max_output_tokens`; without either, the model's, else 4096)
    for each answer at the output price. Rounded up to 1e-10 USD, the ledger's precision."""
    from router._text import estimate_tokens

    prompt = estimate_tokens(window.prompt_chars(payload))
    if "messages" in payload:
        prompt += MESSAGE_TOKENS * (len(payload["messages"]) + 1)
    asked = _positive(payload.get("max_completion_tokens")) or _positive(payload.get("max_tokens"))
    model_max = entry.max_output_tokens
    per_answer = min(asked, model_max) if asked and model_max else asked or model_max
    output = (per_answer or UNKNOWN_MAX_OUTPUT_TOKENS) * _answers(payload)
    usd = (prompt * entry.input_per_mtok + output * entry.output_per_mtok) / 1_000_000
    return WorstCase(math.ceil(usd * 1e10) / 1e10, prompt, output)


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _answers(payload: dict[str, Any]) -> int:
    """Answers the request is billed for: n (or best_of, generated and billed though not returned)
    per prompt; a text completion may send several prompts."""
    each = max(_positive(payload.get("n")) or 1, _positive(payload.get("best_of")) or 1)
    prompt = payload.get("prompt")
    several = isinstance(prompt, list) and prompt and not all(isinstance(p, int) for p in prompt)
    return each * (len(prompt) if several and isinstance(prompt, list) else 1)


# ---------------------------------------------------------------------------------------------------
# Reservations


@dataclass(frozen=True, eq=False)
class Hold:
    """A reservation of `amount` (in `unit`) for one request (`admitted`), or the refusal of one."""

    key_id: str
    request_id: str
    amount: float
    limit: float
    spent: float
    """What the key had used when it was checked: its recorded spend (with Redis: plus what settled
    meanwhile), or the tokens recorded in its window."""
    held: float
    """What the key's other requests in flight held then."""
    admitted: bool
    reserved: bool = True
    """False when admitted without a reservation (Redis unreachable, fail-open)."""
    unit: str = USD
    reset_s: float = 0.0
    """Tokens: seconds until what is left goes up (`limits.TokenCheck.reset_s`); usd: 0."""
    retry_s: float | None = 0.0
    """Tokens, refused: seconds until the amount fits, None when it never can (over the limit)."""

    @property
    def left(self) -> float:
        """What the limit had left for this request: limit - spent - held, at least 0."""
        return max(self.limit - self.spent - self.held, 0.0)


class Reservations(ABC):
    """Reservations of one `unit` against per-key limits; every method is safe to call concurrently.

    The lifecycle lives here (the holds this object made, their renewal, settling or releasing each
    at most once, errors logged rather than raised after the request is over); each subclass makes
    the atomic steps where its recorded amount lives (see the module docstring).

    - `ttl_s`: a reservation lapses this long after it was made or last renewed; this object
      renews its open ones every `ttl_s / 3` until they are settled or released, or until the
      `Hold` is dropped (a request that lost it without settling stops holding then).
    """

    unit: ClassVar[str]

    def __init__(self, *, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, not {ttl_s}")
        self.ttl_s = ttl_s
        self._open: weakref.WeakSet[Hold] = weakref.WeakSet()
        self._renewing: asyncio.Task[None] | None = None
        self._last_warning: float | None = None

    async def reserve(self, key_id: str, request_id: str, limit: float, amount: float) -> Hold:
        """Reserve `amount` for `request_id` iff the key's used + held + amount <= limit; the
        `Hold` says which (nothing is reserved when it is not admitted)."""
        hold = await self._reserve(key_id, request_id, limit, amount)
        if hold.admitted and hold.reserved:
            self._open.add(hold)
            if self._renewing is None or self._renewing.done():
                self._renewing = asyncio.get_running_loop().create_task(self._renew_while_open())
        return hold

    async def settle(self, hold: Hold, used: float) -> None:
        """The hold's request used `used` (usd: its committed ledger row's cost; tokens: its real
        prompt and completion tokens): that replaces the reservation. A second call, or one for a
        hold not reserved, does nothing; a backend error is logged and the reservation left to
        lapse."""
        if hold in self._open:
            self._open.discard(hold)
            await self._quietly("settle", self._settle(hold, max(used, 0.0)))

    async def release(self, hold: Hold) -> None:
        """The hold's request ended having used nothing (no ledger row, or no answer): drop the
        reservation. As `settle` otherwise."""
        if hold in self._open:
            self._open.discard(hold)
            await self._quietly("release", self._release(hold))

    def open_holds(self) -> int:
        """Reservations this object made and has not settled, released or lost."""
        return len(self._open)

    async def renew(self) -> None:
        """Push back the expiry of every open reservation now (`reserve` schedules this)."""
        holds = list(self._open)
        if holds:
            await self._quietly("renew", self._renew(holds))

    async def close(self) -> None:
        """Stop renewing (open reservations lapse by themselves) and release connections."""
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing

    async def _renew_while_open(self) -> None:
        while self._open:
            await asyncio.sleep(self.ttl_s / 3)
            await self.renew()

    async def _quietly(self, what: str, call: Any) -> None:
        try:
            await call
        except Exception as exc:  # the request is over either way; the reservation will lapse
            self._warn(f"could not {what} a {self.unit} reservation: {type(exc).__name__}: {exc}")

    def _warn(self, message: str) -> None:
        """A warning, at most one per WARN_EVERY_S (an outage would otherwise log every request)."""
        now = time.monotonic()
        if self._last_warning is None or now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("%s", message)

    @abstractmethod
    async def _reserve(self, key_id: str, request_id: str, limit: float, amount: float) -> Hold: ...

    @abstractmethod
    async def _settle(self, hold: Hold, used: float) -> None: ...

    @abstractmethod
    async def _release(self, hold: Hold) -> None: ...

    @abstractmethod
    async def _renew(self, holds: list[Hold]) -> None: ...


class Budgets(Reservations):
    """Reservations of USD against per-key budgets (`budget_usd`)."""

    unit = USD


class TokenReservations(Reservations):
    """Reservations of tokens against per-key tokens-per-minute limits, in `limiter` beside its
    window (`Limiter.reserve_tokens` and the rest): shared through Redis with a RedisLimiter, per
    worker with a MemoryLimiter. Settling records the request's real tokens in the window as its
    hold leaves it. Redis unreachable: admitted unreserved (fail-open) or LimiterUnavailable."""

    unit = TOKENS

    def __init__(self, limiter: Limiter, *, ttl_s: float) -> None:
        super().__init__(ttl_s=ttl_s)
        self._limiter = limiter

    async def _reserve(self, key_id: str, request_id: str, limit: float, amount: float) -> Hold:
        tpm, tokens = int(limit), math.ceil(amount)
        check = await self._limiter.reserve_tokens(key_id, request_id, tpm, tokens, self.ttl_s)
        if check is None:  # Redis unreachable, fail-open: the limiter has warned
            return Hold(key_id, request_id, tokens, tpm, 0, 0, True, reserved=False, unit=TOKENS)
        return Hold(
            key_id,
            request_id,
            tokens,
            tpm,
            check.recorded,
            check.held,
            check.admitted,
            unit=TOKENS,
            reset_s=check.reset_s,
            retry_s=check.retry_s,
        )

    async def _settle(self, hold: Hold, used: float) -> None:
        await self._limiter.settle_tokens(hold.key_id, hold.request_id, int(hold.amount), round(used))

    async def _release(self, hold: Hold) -> None:
        await self._limiter.settle_tokens(hold.key_id, hold.request_id, int(hold.amount), 0)

    async def _renew(self, holds: list[Hold]) -> None:
        await self._limiter.renew_tokens([(h.key_id, h.request_id, int(h.amount)) for h in holds], self.ttl_s)


class StoreBudgets(Budgets):
    """Reservations in the store's `reservations` table (see the module docstring).

    - `clock`: the time expiries are measured on (time.time); tests pass their own.
    """

    def __init__(self, store: Store, *, ttl_s: float, clock: Any = time.time) -> None:
        super().__init__(ttl_s=ttl_s)
        self._store = store
        self._clock = clock

    async def _reserve(self, key_id: str, request_id: str, limit: float, amount: float) -> Hold:
        now = self._clock()
        admitted, spent, held = await self._store.reserve_usd(
            key_id, request_id, amount, limit, now, now + self.ttl_s
        )
        return Hold(key_id, request_id, amount, limit, spent, held, admitted)

    async def _settle(self, hold: Hold, cost_usd: float) -> None:
        return None  # the ledger row settled it as it was committed

    async def _release(self, hold: Hold) -> None:
        await self._store.release_reservation(hold.request_id, USD)

    async def _renew(self, holds: list[Hold]) -> None:
        await self._store.renew_reservations([h.request_id for h in holds], self._clock() + self.ttl_s, USD)


# KEYS: held zset (score: expiry in µs of Redis time; member "<request id>|<amount>"), settled hash
# {epoch, total}. ARGV: limit, amount, member, ttl (µs), spent (read from the store), the epoch and
# total of `settled` read before it ("" when absent). Returns {admitted, spent + settled since, held}.
_RESERVE_LUA = """
local limit = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local ttl = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local held = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  held = held + tonumber(string.match(member, '|([^|]+)$'))
end
local settled = redis.call('HMGET', KEYS[2], 'epoch', 'total')
local since = tonumber(settled[2] or '0')
if settled[1] == ARGV[6] then since = since - tonumber(ARGV[7]) end
local spent = tonumber(ARGV[5]) + since
local admitted = 0
if spent + held + amount <= limit then
  admitted = 1
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000))
end
return {admitted, string.format('%.17g', spent), string.format('%.17g', held)}
"""

# KEYS: held zset, settled hash. ARGV: member, cost, epoch for a new counter, counter ttl (ms).
_SETTLE_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSETNX', KEYS[2], 'epoch', ARGV[3])
  redis.call('HINCRBYFLOAT', KEYS[2], 'total', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1
"""


class RedisBudgets(Budgets):
    """Reservations in Redis, shared by every worker and host with the same prefix; the spend is
    read from `store` (see the module docstring).

    - `redis`: a URL (these budgets make and close their own RedisLink) or a RedisLink to share
      (the worker's RedisLimiter's: one circuit breaker for both).
    - `fail_open`: Redis unreachable: admit when spent + amount fits (True), or raise
      `BudgetUnavailable` (False); either logs a warning at most once a minute.
    - `policy`: timeout and cooldown of the link it makes (RedisPolicy's defaults without).
    """

    def __init__(
        self,
        redis: str | RedisLink,
        store: Store,
        *,
        ttl_s: float,
        prefix: str = "pureai:budget:",
        fail_open: bool = True,
        policy: RedisPolicy | None = None,
    ) -> None:
        super().__init__(ttl_s=ttl_s)
        self._owns = not isinstance(redis, RedisLink)
        self._link = RedisLink(redis, policy) if isinstance(redis, str) else redis
        self._store = store
        self._prefix = prefix
        self._fail_open = fail_open
        self._ttl_us = round(ttl_s * 1_000_000)
        self._counter_ttl_ms = math.ceil(max(2 * ttl_s, 60.0) * 1000)
        client = self._link.redis
        self._reserve_script = client.register_script(_RESERVE_LUA)
        self._settle_script = client.register_script(_SETTLE_LUA)
        self._renew_script = client.register_script(RENEW_LUA)

    async def close(self) -> None:
        await super().close()
        if self._owns:
            await self._link.close()

    def _keys(self, key_id: str) -> list[str]:
        # The {key_id} hash tag keeps both keys in one Redis Cluster slot, as a script needs.
        return [f"{self._prefix}{{{key_id}}}:{USD}:{name}" for name in ("held", "settled")]

    async def _reserve(self, key_id: str, request_id: str, limit: float, amount: float) -> Hold:
        keys = self._keys(key_id)
        client = self._link.redis
        try:
            epoch, total = await self._link.call(lambda: client.hmget(keys[1], ["epoch", "total"]))
        except (RedisError, OSError) as exc:
            return await self._unreserved(exc, key_id, request_id, limit, amount)
        spent = await self._store.spend_usd(key_id)  # after the counter: see the module docstring
        member = hold_member(request_id, amount)
        args: list[bytes | str | float] = [limit, amount, member, self._ttl_us, spent]
        args += [epoch or b"", total or b"0"]
        try:
            reply: Any = await self._link.call(lambda: self._reserve_script(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            return await self._unreserved(exc, key_id, request_id, limit, amount, spent)
        admitted, used, held = int(reply[0]), float(reply[1]), float(reply[2])
        return Hold(key_id, request_id, amount, limit, used, held, bool(admitted))

    async def _settle(self, hold: Hold, used: float) -> None:
        member = hold_member(hold.request_id, hold.amount)
        args: list[str | float] = [member, used, hold.request_id, self._counter_ttl_ms]
        keys = self._keys(hold.key_id)
        await self._link.call(lambda: self._settle_script(keys=keys, args=args))

    async def _release(self, hold: Hold) -> None:
        await self._settle(hold, 0.0)

    async def _renew(self, holds: list[Hold]) -> None:
        by_key: dict[str, list[str]] = defaultdict(list)
        for hold in holds:
            by_key[hold.key_id].append(hold_member(hold.request_id, hold.amount))

        async def renew() -> None:
            async with self._link.redis.pipeline(transaction=False) as pipe:
                for key_id, members in by_key.items():
                    keys = self._keys(key_id)[:1]
                    await self._renew_script(keys=keys, args=[self._ttl_us, *members], client=pipe)
                await pipe.execute()

        await self._link.call(renew)

    async def _unreserved(
        self,
        exc: BaseException,
        key_id: str,
        request_id: str,
        limit: float,
        amount: float,
        spent: float | None = None,
    ) -> Hold:
        """Redis failed: BudgetUnavailable (fail-closed), or a verdict on the recorded spend alone;
        a warning at most once a minute either way."""
        message = self._link.describe("budget store", exc)
        if not self._fail_open:
            self._warn(f"{message} (fail-closed: refusing budgeted requests with 503 budget_unavailable)")
            raise BudgetUnavailable(message) from None
        self._warn(f"{message} (fail-open: budgets checked against recorded spend only)")
        if spent is None:
            spent = await self._store.spend_usd(key_id)
        return Hold(key_id, request_id, amount, limit, spent, 0.0, spent + amount <= limit, reserved=False)


def make_budgets(
    store: Store,
    redis: str | RedisLink | None,
    *,
    ttl_s: float,
    fail_open: bool = True,
    prefix: str = "pureai:budget:",
) -> Budgets:
    """RedisBudgets when Redis is given, a URL or a link to share (one script per reservation),
    else StoreBudgets."""
    if redis is None:
        return StoreBudgets(store, ttl_s=ttl_s)
    return RedisBudgets(redis, store, ttl_s=ttl_s, prefix=prefix, fail_open=fail_open)

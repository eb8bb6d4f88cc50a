"""Rate limits against the in-process limiter and a real Redis on 127.0.0.1:6379.

Each test uses its own random key prefix and deletes its Redis keys at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from service.budget import RedisBudgets
from service.limits import (
    HELD_WAIT_S,
    UNLIMITED,
    Limiter,
    LimiterUnavailable,
    LimitResult,
    MemoryLimiter,
    RedisLimiter,
    RedisPolicy,
    TokenCheck,
    make_limiter,
)
from service.store import SQLiteStore
from tests.service.calls import h
from tests.service.conftest import gateway_env
from tests.service.gateway_server import Gateway, free_port

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"
UNREACHABLE = "redis://127.0.0.1:1/0"
DURATION = re.compile(r"^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s)$")
UNLIMITED_TOKENS = {
    "x-ratelimit-limit-tokens": str(UNLIMITED),
    "x-ratelimit-remaining-tokens": str(UNLIMITED),
    "x-ratelimit-reset-tokens": "0s",
}
UNLIMITED_HEADERS = {
    "x-ratelimit-limit-requests": str(UNLIMITED),
    "x-ratelimit-remaining-requests": str(UNLIMITED),
    "x-ratelimit-reset-requests": "0s",
    **UNLIMITED_TOKENS,
}

T = TypeVar("T")
Body = Callable[[Limiter], Awaitable[T]]


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh Redis key prefix; its keys are deleted after the test."""
    value = f"test:rl:{uuid.uuid4().hex}:"
    yield value
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def build(kind: str, prefix: str, *, window_s: float = 60.0) -> Limiter:
    if kind == "memory":
        return MemoryLimiter(window_s=window_s)
    return RedisLimiter(REDIS_URL, prefix=prefix, fail_open=False, window_s=window_s)


def run(limiter: Limiter, body: Body[T]) -> T:
    """Run `body(limiter)` in a fresh event loop and close the limiter afterwards."""

    async def main() -> T:
        try:
            return await body(limiter)
        finally:
            await limiter.close()

    return asyncio.run(main())


def test_burst_admits_exactly_rpm(kind: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> list[LimitResult]:
        return list(await asyncio.gather(*(limiter.acquire("k1", 10, None) for _ in range(30))))

    results = run(build(kind, prefix), body)
    admitted = [r for r in results if r.allowed]
    refused = [r for r in results if not r.allowed]
    assert len(admitted) == 10
    assert sorted(r.remaining_requests or 0 for r in admitted) == list(range(10))
    assert all(r.retry_after_s == 0 and r.reason is None for r in admitted)
    for r in refused:
        assert r.reason == "requests"
        assert 0 < r.retry_after_s <= 60
        assert r.retry_after_s == r.reset_requests_s
        assert r.remaining_requests == 0
        assert r.limit_requests == 10
        assert r.limit_tokens is None and r.remaining_tokens is None


def test_headers_follow_openai(kind: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> list[LimitResult]:
        return [await limiter.acquire("k1", 2, 1000) for _ in range(3)]

    first, second, third = run(build(kind, prefix), body)
    assert first.headers() == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "1m0s",  # until this request leaves the window
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "1000",
        "x-ratelimit-reset-tokens": "0s",  # no tokens in the window
    }
    for result in (second, third):
        headers = result.headers()
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert DURATION.match(headers["x-ratelimit-reset-requests"])
        assert headers["x-ratelimit-reset-requests"] != "0s"
    assert second.allowed and not third.allowed


def test_header_durations_and_missing_dimensions() -> None:
    def result(reset_requests_s: float | None, remaining: int | None = 0) -> LimitResult:
        return LimitResult(False, 5, remaining, reset_requests_s, None, None, None, 1.0, "requests")

    cases = {0.0: "0s", 0.12: "120ms", 1.0: "1s", 1.5: "1.5s", 90.0: "1m30s", 360.0: "6m0s"}
    for seconds, text in cases.items():
        assert result(seconds).headers()["x-ratelimit-reset-requests"] == text
    assert result(0.0001).headers()["x-ratelimit-reset-requests"] == "1ms"  # rounded up
    # Unknown remaining/reset (fail-open) leave their headers out; no limit says UNLIMITED.
    assert result(None, None).headers() == {"x-ratelimit-limit-requests": "5", **UNLIMITED_TOKENS}
    assert LimitResult(True, None, None, None, None, None, None, 0.0, None).headers() == UNLIMITED_HEADERS


def test_tokens_refuse_once_the_window_is_full(kind: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> dict[str, LimitResult]:
        out = {"fresh": await limiter.acquire("k1", 5, 100)}
        await limiter.record_tokens("k1", 100, 60)
        out["after_60"] = await limiter.acquire("k1", 5, 100)
        await limiter.record_tokens("k1", 100, 50)
        out["after_110"] = await limiter.acquire("k1", 5, 100)
        out["again"] = await limiter.acquire("k1", 5, 100)
        # The refused requests were not recorded: only two requests are in the window.
        out["requests_only"] = await limiter.acquire("k1", 5, None)
        return out

    out = run(build(kind, prefix), body)
    assert out["fresh"].allowed and out["fresh"].remaining_tokens == 100
    assert out["fresh"].reset_tokens_s == 0
    assert out["after_60"].allowed and out["after_60"].remaining_tokens == 40
    for name in ("after_110", "again"):
        refused = out[name]
        assert not refused.allowed
        assert refused.reason == "tokens"
        assert refused.remaining_tokens == 0
        assert 0 < refused.retry_after_s <= 60
        assert refused.retry_after_s == refused.reset_tokens_s
        assert refused.headers()["x-ratelimit-remaining-tokens"] == "0"
    assert out["requests_only"].allowed and out["requests_only"].remaining_requests == 2


def test_none_limits_are_unlimited(kind: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> dict[str, list[LimitResult]]:
        out = {"none": [await limiter.acquire("k1", None, None) for _ in range(50)]}
        await limiter.record_tokens("k2", None, 10_000)  # tpm None: not recorded
        await limiter.record_tokens("k2", 10, 0)
        await limiter.record_tokens("k2", 10, -5)
        out["tokens_only"] = [await limiter.acquire("k2", None, 10) for _ in range(50)]
        return out

    out = run(build(kind, prefix), body)
    for result in out["none"]:
        assert result.allowed and result.headers() == UNLIMITED_HEADERS
    for result in out["tokens_only"]:
        assert result.allowed and result.remaining_tokens == 10
        assert result.limit_requests is None and result.remaining_requests is None
        assert result.headers() == {
            "x-ratelimit-limit-requests": str(UNLIMITED),
            "x-ratelimit-remaining-requests": str(UNLIMITED),
            "x-ratelimit-reset-requests": "0s",
            "x-ratelimit-limit-tokens": "10",
            "x-ratelimit-remaining-tokens": "10",
            "x-ratelimit-reset-tokens": "0s",
        }


def test_resets_are_until_the_oldest_entry_leaves_the_window(kind: str, prefix: str) -> None:
    """Not "0s" while the window holds requests or tokens: the time until remaining goes up."""

    async def body(limiter: Limiter) -> tuple[list[LimitResult], float]:
        started = time.monotonic()
        first = await limiter.acquire("k1", 5, 1000)
        await limiter.record_tokens("k1", 1000, 40)
        await asyncio.sleep(0.05)  # time passing, so that the resets fall below the window
        second = await limiter.acquire("k1", 5, 1000)
        return [first, second], time.monotonic() - started

    (first, second), elapsed = run(build(kind, prefix), body)
    assert first.reset_requests_s == pytest.approx(60.0, abs=1e-3)
    assert (first.reset_tokens_s, first.remaining_tokens) == (0, 1000)
    assert (second.remaining_requests, second.remaining_tokens) == (3, 960)
    # the first request and the 40 tokens leave the window 60 s after they entered it
    assert 60.0 - elapsed - 0.01 <= second.reset_requests_s <= 60.0 - 0.04  # type: ignore[operator]
    assert 60.0 - elapsed - 0.01 <= second.reset_tokens_s <= 60.0 - 0.04  # type: ignore[operator]
    headers = second.headers()
    assert set(headers) == set(UNLIMITED_HEADERS)
    assert headers["x-ratelimit-reset-requests"].startswith("59.9")
    assert headers["x-ratelimit-reset-tokens"].startswith("59.9")


def test_memory_and_redis_report_the_same(prefix: str) -> None:
    """The same calls give the same verdicts and headers from both limiters, resets within 50 ms."""

    async def body(limiter: Limiter) -> list[LimitResult]:
        out = []
        for rpm, tpm, tokens in ((3, 100, 30), (3, 100, 80), (3, 100, 0), (3, 100, 0), (None, 100, 0)):
            out.append(await limiter.acquire("k1", rpm, tpm))
            await limiter.record_tokens("k1", tpm, tokens)
        out.append(await limiter.acquire("k2", None, None))
        return out

    def without_resets(result: LimitResult) -> dict[str, str]:
        return {k: v for k, v in result.headers().items() if not k.startswith("x-ratelimit-reset")}

    memory = run(build("memory", prefix), body)
    shared = run(build("redis", prefix), body)
    assert [r.allowed for r in memory] == [True, True, False, False, False, True]
    assert [without_resets(r) for r in memory] == [without_resets(r) for r in shared]
    for mine, theirs in zip(memory, shared, strict=True):
        for name in ("reset_requests_s", "reset_tokens_s", "retry_after_s"):
            a, b = getattr(mine, name), getattr(theirs, name)
            assert (a is None) == (b is None) and (a is None or a == pytest.approx(b, abs=0.05)), name
    assert memory[0].headers()["x-ratelimit-reset-requests"] == "1m0s"
    assert memory[-1].headers() == shared[-1].headers() == UNLIMITED_HEADERS


def test_admission_counts_the_tokens_held_by_requests_in_flight(kind: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> dict[str, LimitResult | TokenCheck | None]:
        out: dict[str, LimitResult | TokenCheck | None] = {}
        out["first"] = await limiter.reserve_tokens("k1", "r1", 100, 60, ttl_s=60.0)
        out["held_60"] = await limiter.acquire("k1", None, 100)
        out["second"] = await limiter.reserve_tokens("k1", "r2", 100, 40, ttl_s=60.0)
        out["full"] = await limiter.acquire("k1", None, 100)
        await limiter.settle_tokens("k1", "r1", 60, 10)  # used 10 of its 60
        out["settled"] = await limiter.acquire("k1", None, 100)
        await limiter.settle_tokens("k1", "r2", 40, 0)  # released
        out["released"] = await limiter.acquire("k1", None, 100)
        return out

    out = run(build(kind, prefix), body)
    first, second = out["first"], out["second"]
    assert isinstance(first, TokenCheck) and isinstance(second, TokenCheck)
    assert (first.admitted, first.recorded, first.held, first.reset_s) == (True, 0, 0, HELD_WAIT_S)
    assert (second.admitted, second.held) == (True, 60)
    held_60, full, settled, released = (out[n] for n in ("held_60", "full", "settled", "released"))
    assert isinstance(held_60, LimitResult) and isinstance(full, LimitResult)
    assert isinstance(settled, LimitResult) and isinstance(released, LimitResult)
    assert held_60.allowed and (held_60.remaining_tokens, held_60.reset_tokens_s) == (40, HELD_WAIT_S)
    assert not full.allowed and full.reason == "tokens" and full.remaining_tokens == 0
    assert full.retry_after_s == HELD_WAIT_S  # only requests in flight stand in the way
    assert settled.allowed and settled.remaining_tokens == 50
    assert 59.9 < settled.reset_tokens_s <= 60.0  # type: ignore[operator]
    assert released.remaining_tokens == 90


def test_memory_and_redis_reserve_the_same(prefix: str) -> None:
    async def body(limiter: Limiter) -> list[TokenCheck | None]:
        out = []
        for request_id, amount, used in (
            ("r1", 30, 25),
            ("r2", 50, None),
            ("r3", 30, None),
            ("r4", 101, None),
        ):
            check = await limiter.reserve_tokens("k1", request_id, 100, amount, ttl_s=60.0)
            out.append(check)
            if used is not None:
                await limiter.settle_tokens("k1", request_id, amount, used)
        await limiter.settle_tokens("k1", "r2", 50, 50)
        out.append(await limiter.reserve_tokens("k1", "r5", 100, 30, ttl_s=60.0))  # 75 recorded
        return out

    def exact(check: TokenCheck | None) -> tuple[bool, int, int] | None:
        return None if check is None else (check.admitted, check.recorded, check.held)

    memory = run(build("memory", prefix), body)
    shared = run(build("redis", prefix), body)
    assert [exact(c) for c in memory] == [
        (True, 0, 0),
        (True, 25, 0),
        (False, 25, 50),  # 25 + 50 + 30 > 100
        (False, 25, 50),
        (False, 75, 0),
    ]
    assert [exact(c) for c in memory] == [exact(c) for c in shared]
    for mine, theirs in zip(memory, shared, strict=True):
        assert mine is not None and theirs is not None
        assert mine.reset_s == pytest.approx(theirs.reset_s, abs=0.05)
        assert (mine.retry_s is None) == (theirs.retry_s is None)
        assert mine.retry_s is None or mine.retry_s == pytest.approx(theirs.retry_s, abs=0.05)
    assert memory[2].retry_s == HELD_WAIT_S and memory[3].retry_s is None  # 101 never fits
    assert 59.9 < memory[4].retry_s <= 60.0  # type: ignore[operator,union-attr]


def test_zero_limits_refuse_everything(kind: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> list[LimitResult]:
        return [await limiter.acquire("k1", 0, None), await limiter.acquire("k2", None, 0)]

    by_requests, by_tokens = run(build(kind, prefix), body)
    assert not by_requests.allowed and by_requests.reason == "requests" and by_requests.retry_after_s > 0
    assert not by_tokens.allowed and by_tokens.reason == "tokens" and by_tokens.retry_after_s > 0


def test_negative_limits_are_rejected(kind: str, prefix: str) -> None:
    async def body(limiter: Limiter) -> None:
        with pytest.raises(ValueError, match="rpm"):
            await limiter.acquire("k1", -1, None)

    run(build(kind, prefix), body)


def test_window_expiry_admits_again(kind: str, prefix: str) -> None:
    window_s = 0.3

    async def body(limiter: Limiter) -> dict[str, LimitResult]:
        out = {}
        assert (await limiter.acquire("k1", 2, 50)).allowed
        assert (await limiter.acquire("k1", 2, 50)).allowed
        await limiter.record_tokens("k1", 50, 80)
        out["full"] = await limiter.acquire("k1", 2, 50)
        out["tokens_full"] = await limiter.acquire("k2", None, 50)
        # Waiting for time to pass: the retry-after the limiter promised, plus a hair for clocks.
        await asyncio.sleep(out["full"].retry_after_s + 0.02)
        out["later"] = await limiter.acquire("k1", 2, 50)
        return out

    out = run(build(kind, prefix, window_s=window_s), body)
    full = out["full"]
    assert not full.allowed and full.reason in {"requests", "tokens"}
    assert 0 < full.reset_requests_s <= window_s  # type: ignore[operator]
    assert 0 < full.reset_tokens_s <= window_s  # type: ignore[operator]
    assert full.retry_after_s == max(full.reset_requests_s, full.reset_tokens_s)  # type: ignore[type-var]
    assert out["tokens_full"].allowed  # another key is not affected
    later = out["later"]
    assert later.allowed and later.remaining_requests == 1 and later.remaining_tokens == 50


def test_memory_limiter_forgets_idle_keys() -> None:
    limiter = MemoryLimiter(window_s=0.05)

    async def body(limiter: Limiter) -> None:
        for i in range(100):
            await limiter.acquire(f"key-{i}", 3, 100)
            await limiter.record_tokens(f"key-{i}", 100, 7)
        assert len(limiter._logs) == 100  # type: ignore[attr-defined]
        await asyncio.sleep(0.06)  # let the window pass
        await limiter.acquire("another", 3, None)
        assert set(limiter._logs) == {"another"}  # type: ignore[attr-defined]

    run(limiter, body)


def test_redis_keys_expire_after_the_window(prefix: str) -> None:
    async def body(limiter: Limiter) -> None:
        await limiter.acquire("k1", 3, 100)
        await limiter.record_tokens("k1", 100, 7)

    run(build("redis", prefix), body)
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = sorted(client.scan_iter(match=f"{prefix}*"))
        assert len(keys) == 3  # requests, tokens, sequence
        for key in keys:
            assert 60_000 < client.pttl(key) <= 61_000

    async def hold(limiter: Limiter) -> None:
        await limiter.reserve_tokens("k2", "r1", 100, 7, ttl_s=5.0)

    run(build("redis", prefix), hold)
    with redis.Redis.from_url(REDIS_URL) as client:
        assert 4_000 < client.pttl(f"{prefix}{{k2}}:tok:held") <= 5_000  # a hold's ttl after the last


WORKER = """
import asyncio, sys
from service.limits import RedisLimiter

async def main(url, prefix):
    limiter = RedisLimiter(url, prefix=prefix, fail_open=False)
    try:
        await limiter.ping()
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(*(limiter.acquire("shared", 100, None) for _ in range(200)))
        print(sum(r.allowed for r in results), flush=True)
    finally:
        await limiter.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_two_processes_share_the_limit(prefix: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with contextlib.ExitStack() as stack:
        workers = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, REDIS_URL, prefix],
                    cwd=REPO,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(2)
        ]
        for worker in workers:  # on failure, stop it before Popen.__exit__ waits for it
            stack.callback(worker.kill)
        for worker in workers:  # both are connected before either bursts
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        admitted = []
        for worker in workers:
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
            admitted.append(int(out))
    assert sum(admitted) == 100


def test_fail_open_admits_quickly_when_redis_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisLimiter(UNREACHABLE, fail_open=True)

    async def body(limiter: Limiter) -> list[LimitResult]:
        out = [await limiter.acquire("k1", 10, 1000) for _ in range(3)]
        await limiter.record_tokens("k1", 1000, 50)
        with pytest.raises(LimiterUnavailable):
            await limiter.ping()
        return out

    caplog.set_level(logging.WARNING, logger="pureai.limits")
    start = time.monotonic()
    results = run(limiter, body)
    assert time.monotonic() - start < 1.0
    for result in results:
        assert result.allowed and result.retry_after_s == 0
        assert (result.limit_requests, result.limit_tokens) == (10, 1000)
        assert result.remaining_requests is None and result.remaining_tokens is None
        assert result.headers() == {"x-ratelimit-limit-requests": "10", "x-ratelimit-limit-tokens": "1000"}
    warnings = [r for r in caplog.records if r.name == "pureai.limits"]
    assert len(warnings) == 1  # at most one a minute
    assert "127.0.0.1:1" in warnings[0].getMessage()


def test_fail_closed_raises_when_redis_is_unreachable() -> None:
    limiter = RedisLimiter(UNREACHABLE, fail_open=False)

    async def body(limiter: Limiter) -> None:
        with pytest.raises(LimiterUnavailable):
            await limiter.acquire("k1", 10, None)
        with pytest.raises(LimiterUnavailable):
            await limiter.record_tokens("k1", 10, 5)
        assert (await limiter.acquire("k1", None, None)).allowed  # nothing to check

    run(limiter, body)


@pytest.mark.parametrize(
    "url",
    [
        "redis://alice:hunter2-s3cret@127.0.0.1:1/0",  # unreachable
        "redis://alice:hunter2-s3cret@127.0.0.1:6379/0",  # reachable, no such user
        "redis://127.0.0.1:1/0?password=hunter2-s3cret",
    ],
)
def test_password_never_appears_in_logs_or_errors(url: str, caplog: pytest.LogCaptureFixture) -> None:
    secret = "hunter2-s3cret"
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []

    async def body(limiter: Limiter) -> None:
        assert (await limiter.acquire("k1", 10, None)).allowed  # fail-open
        closed = RedisLimiter(url, fail_open=False)
        try:
            for call in (closed.acquire("k1", 10, None), closed.ping()):
                with pytest.raises(LimiterUnavailable) as info:
                    await call
                messages.extend([str(info.value), repr(info.value), str(info.getrepr())])
        finally:
            await closed.close()

    run(RedisLimiter(url, fail_open=True), body)
    assert caplog.records, "the fail-open limiter logs a warning"
    assert secret not in caplog.text
    for message in messages:
        assert secret not in message
        assert "unavailable" in message


def test_make_limiter_picks_the_backend(prefix: str) -> None:
    memory = make_limiter(None)
    assert isinstance(memory, MemoryLimiter)
    shared = make_limiter(REDIS_URL, prefix=prefix, fail_open=False)
    assert isinstance(shared, RedisLimiter)

    async def body(limiter: Limiter) -> bool:
        await limiter.ping()
        return (await limiter.acquire("k1", 1, None)).allowed

    assert run(memory, body)
    assert run(shared, body)


# -- a frozen Redis: the circuit breaker -------------------------------------------------------------
@dataclass
class OwnRedis:
    """A redis-server of the test's own, on a free port: `freeze()` stops it (SIGSTOP), so that it
    accepts connections and answers nothing, as a hung server does; `thaw()` lets it go on."""

    url: str
    process: subprocess.Popen[str]

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [*command, "--daemonize", "no"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # its own word that it is ready
            if "Ready to accept connections" in line:
                break
        else:
            raise RuntimeError(f"redis-server exited with {process.wait()}")
        yield OwnRedis(f"redis://127.0.0.1:{port}/0", process)
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


TIMEOUT_S = 0.5


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
def test_a_frozen_redis_costs_one_timeout_for_the_limiter_and_the_budgets(
    own_redis: OwnRedis, fail_open: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One link, one breaker: after the first call times out, 20 rounds of a rate-limit check and
    a budget reservation fail at once, in the mode asked for, until the cooldown has passed and
    Redis answers again."""
    cooldown = 2.0

    async def body() -> tuple[float, list[bool], bool]:
        limiter = RedisLimiter(
            own_redis.url, fail_open=fail_open, policy=RedisPolicy(timeout_s=TIMEOUT_S, cooldown_s=cooldown)
        )
        store = SQLiteStore(tmp_path / "pureai.db")
        await store.open()
        budgets = RedisBudgets(limiter.link, store, ttl_s=60.0, fail_open=fail_open)
        try:
            assert (await limiter.acquire("k1", 100, None)).remaining_requests == 99
            own_redis.freeze()
            started = time.monotonic()
            verdicts = []
            for _ in range(20):
                try:
                    verdicts.append((await limiter.acquire("k1", 100, None)).allowed)
                    verdicts.append((await budgets.reserve("k1", uuid.uuid4().hex, 1.0, 0.1)).admitted)
                except LimiterUnavailable:
                    verdicts.append(False)
            frozen_s = time.monotonic() - started
            own_redis.thaw()
            await asyncio.sleep(cooldown + 0.05)  # time passing: the cooldown since the timeout ends
            # The probe: counted again (the acquire that timed out ran once Redis woke up: 97).
            back = (await limiter.acquire("k1", 100, None)).remaining_requests in (97, 98)
            return frozen_s, verdicts, back
        finally:
            own_redis.thaw()
            await budgets.close()
            await limiter.close()
            await store.close()

    caplog.set_level(logging.INFO)
    frozen_s, verdicts, back = asyncio.run(body())
    # Without the breaker: 20 x (1 + 1) timeouts, 20 s. With it: the first call's timeout only.
    assert TIMEOUT_S <= frozen_s < 3 * TIMEOUT_S, frozen_s
    assert verdicts == ([True] * 40 if fail_open else [False] * 20)
    assert back
    mode = "fail-open" if fail_open else "fail-closed"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "pureai.limits"]
    assert len(warnings) == 1 and mode in warnings[0].getMessage()  # one a minute, in either mode
    assert "TimeoutError" in warnings[0].getMessage()
    if fail_open:  # the budgets reached the breaker too (fail-closed, the limiter refused first)
        budget = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "pureai.budget"]
        assert len(budget) == 1 and "CircuitOpen" in budget[0].getMessage()
    assert any("answers again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
def test_a_gateway_on_a_frozen_redis_pays_one_timeout_then_answers_at_once(
    own_redis: OwnRedis, fail_open: bool, catalogue_file: Path, tmp_path: Path
) -> None:
    env = gateway_env(
        catalogue_file,
        tmp_path,
        PUREAI_REDIS_URL=own_redis.url,
        PUREAI_REDIS_TIMEOUT_S=str(TIMEOUT_S),
        PUREAI_REDIS_COOLDOWN_S="5",
        PUREAI_RATE_LIMIT_FAIL_OPEN="true" if fail_open else "false",
    )
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    with Gateway.start(env) as gw:
        key = gw.new_key(tenant="t-frozen", rpm=1000, tpm=100_000, budget_usd=1.0)
        warm = gw.http.post("/v1/chat/completions", headers=h(key), json=chat)
        assert warm.status_code == 200 and "x-ratelimit-remaining-requests" in warm.headers
        own_redis.freeze()
        started = time.monotonic()
        during = [gw.http.post("/v1/chat/completions", headers=h(key), json=chat) for _ in range(20)]
        frozen_s = time.monotonic() - started
        own_redis.thaw()
        deadline = time.monotonic() + 20
        while True:  # the first request after the cooldown probes Redis, and finds it back
            after = gw.http.post("/v1/chat/completions", headers=h(key), json=chat)
            if after.status_code == 200 and "x-ratelimit-remaining-requests" in after.headers:
                break
            assert time.monotonic() < deadline, after.text
            time.sleep(0.05)  # polling a bounded loop, as calls.wait_row does
        logs = [json.loads(line) for line in gw.logs().splitlines() if line.startswith("{")]

    # Every request checks rpm and tpm, reserves tokens and budget, and settles both: without the
    # breaker each paid at least one timeout (10 s in all). With it, the first one did.
    assert TIMEOUT_S <= frozen_s < 4 * TIMEOUT_S, frozen_s
    if fail_open:
        assert [r.status_code for r in during] == [200] * 20
        assert all("x-ratelimit-remaining-requests" not in r.headers for r in during)
    else:
        assert [r.status_code for r in during] == [503] * 20
        assert {r.json()["error"]["code"] for r in during} == {"limiter_unavailable"}
    mode = "fail-open" if fail_open else "fail-closed"
    warnings = [line for line in logs if line["level"] == "warning" and line["logger"] == "pureai.limits"]
    assert len(warnings) == 1 and mode in warnings[0]["message"], warnings

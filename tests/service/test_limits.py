"""Rate limits against the in-process limiter and a real Redis on 127.0.0.1:6379.

Each test uses its own random key prefix and deletes its Redis keys at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from service.limits import (
    UNLIMITED,
    Limiter,
    LimiterUnavailable,
    LimitResult,
    MemoryLimiter,
    RedisLimiter,
    make_limiter,
)

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

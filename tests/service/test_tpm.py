"""Tokens per minute hold: a request reserves its worst-case tokens against the key's tpm window
before it goes upstream (service/budget.py `TokenReservations` over the limiter's window, the
mechanism budgets use). First the reservations themselves, in process and in a real Redis on
127.0.0.1:6379, then through real gateways: one worker with its limiter in process, and two
workers sharing Redis.

Token counts are exact: the fake upstream counts a chat's prompt as its words plus 3 per message,
its answer as the pieces it sends (cut at max_tokens). The test request's real tokens are 13 + 8 =
21 and its worst case 18 + 8 = 26 (test_budget.py says why).
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from models_registry import load_catalogue
from service.budget import Hold, TokenReservations, worst_case
from service.limits import HELD_WAIT_S, Limiter, LimiterUnavailable, MemoryLimiter, RedisLimiter
from tests.service.calls import h, ledger, wait_row
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway

REDIS_URL = "redis://127.0.0.1:6379/0"
UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1
CHAT = "/v1/chat/completions"
Upstreams = tuple[FakeUpstream, FakeUpstream]

BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "one two three four five six seven eight nine ten"}],
    "max_tokens": 8,
}
REAL = 13 + 8
WORST = 18 + 8
TOO_LARGE = {**BODY, "max_tokens": 16384}  # gpt-4o-mini's own output limit
"""A request no tpm in these tests can take: refused for its size, it shows what is left (the
x-ratelimit-remaining-tokens of its 429) without reserving or recording anything."""


def test_the_worst_case_in_tokens(catalogue_file: Path) -> None:
    entry = load_catalogue(catalogue_file).models["gpt-4o-mini"]
    assert worst_case(entry, BODY).tokens == WORST
    assert worst_case(entry, {k: v for k, v in BODY.items() if k != "max_tokens"}).tokens == 18 + 16384


# -- reservations -----------------------------------------------------------------------------------
@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"test:tpm:{secrets.token_hex(8)}:"
    yield value
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)


Opener = Callable[[], Any]


@pytest.fixture(params=["memory", "redis"])
def workers(request: pytest.FixtureRequest, prefix: str) -> Callable[[int], Any]:
    """`workers(n)`: an async context of n TokenReservations as n workers of one gateway would have
    them: over one MemoryLimiter (one worker's view), or each over its own RedisLimiter sharing the
    prefix."""

    @asynccontextmanager
    async def open_workers(n: int) -> AsyncIterator[list[TokenReservations]]:
        limiters: list[Limiter]
        if request.param == "memory":
            limiters = [MemoryLimiter()] * n
        else:
            limiters = [RedisLimiter(REDIS_URL, prefix=prefix, fail_open=False) for _ in range(n)]
        reservations = [TokenReservations(limiter, ttl_s=60.0) for limiter in limiters]
        try:
            yield reservations
        finally:
            for one in reservations:
                await one.close()
            for limiter in set(limiters):
                await limiter.close()

    return open_workers


def _request() -> str:
    return "req_" + secrets.token_hex(12)


def test_concurrent_reservations_never_pass_the_limit(workers: Callable[[int], Any]) -> None:
    async def body() -> list[Hold]:
        async with workers(2) as (one, two):
            calls = [(one if i % 2 else two).reserve("k1", _request(), 100, 10) for i in range(50)]
            return list(await asyncio.gather(*calls))

    holds = asyncio.run(body())
    admitted = [hold for hold in holds if hold.admitted]
    assert len(admitted) == 10
    assert sorted(hold.held for hold in admitted) == [10 * i for i in range(10)]
    for hold in holds:
        assert (hold.unit, hold.spent, hold.amount, hold.limit) == ("tokens", 0, 10, 100)
        if not hold.admitted:
            assert (hold.held, hold.left, hold.retry_s) == (100, 0, HELD_WAIT_S)


def test_settling_records_the_real_tokens_in_place_of_the_hold(workers: Callable[[int], Any]) -> None:
    async def body() -> list[Hold]:
        async with workers(1) as (tokens,):
            first = await tokens.reserve("k1", _request(), 100, 40)
            second = await tokens.reserve("k1", _request(), 100, 40)
            await tokens.settle(first, 12)
            await tokens.settle(first, 12)  # a second settle changes nothing
            third = await tokens.reserve("k1", _request(), 100, 40)
            fourth = await tokens.reserve("k1", _request(), 100, 40)  # 12 + 80 + 40 > 100
            await tokens.release(second)
            fifth = await tokens.reserve("k1", _request(), 100, 40)
            assert tokens.open_holds() == 2
            return [first, second, third, fourth, fifth]

    first, second, third, fourth, fifth = asyncio.run(body())
    assert (first.spent, first.held, second.held) == (0, 0, 40)
    assert third.admitted and (third.spent, third.held) == (12, 40)
    assert not fourth.admitted and (fourth.spent, fourth.held) == (12, 80) and fourth.left == 8
    assert fourth.retry_s == HELD_WAIT_S  # only the holds stand in the way
    assert fifth.admitted and (fifth.spent, fifth.held) == (12, 40)


def test_a_refusal_says_when_the_amount_fits(workers: Callable[[int], Any]) -> None:
    async def body() -> list[Hold]:
        async with workers(1) as (tokens,):
            first = await tokens.reserve("k1", _request(), 100, 80)
            await tokens.settle(first, 80)
            waits = await tokens.reserve("k1", _request(), 100, 30)  # until the 80 leave the window
            never = await tokens.reserve("k1", _request(), 100, 101)
            return [first, waits, never]

    first, waits, never = asyncio.run(body())
    assert first.admitted and first.reset_s == HELD_WAIT_S  # nothing recorded yet, its own hold
    assert not waits.admitted and 59.0 < waits.retry_s <= 60.0  # type: ignore[operator]
    assert 59.0 < waits.reset_s <= 60.0 and waits.left == 20
    assert not never.admitted and never.retry_s is None


def test_a_hold_dropped_without_settling_is_no_longer_renewed(workers: Callable[[int], Any]) -> None:
    async def body() -> int:
        async with workers(1) as (tokens,):
            hold: Hold | None = await tokens.reserve("k1", _request(), 100, 10)
            assert tokens.open_holds() == 1
            del hold
            gc.collect()
            return tokens.open_holds()

    assert asyncio.run(body()) == 0


def test_holds_lapse_unless_renewed(prefix: str) -> None:
    async def body(limiter: Limiter) -> list[bool]:
        try:
            kept = await limiter.reserve_tokens("k1", _request(), 10, 10, ttl_s=0.2)
            assert kept is not None and kept.admitted
            await asyncio.sleep(0.1)  # time passing: the hold has 0.1 s left
            await limiter.renew_tokens([("k1", "nobody", 10)], ttl_s=10.0)  # not held: no effect
            full = await limiter.reserve_tokens("k1", _request(), 10, 10, ttl_s=0.2)
            await asyncio.sleep(0.15)  # past its expiry: its worker would have died
            lapsed = await limiter.reserve_tokens("k1", (rid := _request()), 10, 10, ttl_s=0.2)
            await limiter.renew_tokens([("k1", rid, 10)], ttl_s=10.0)
            await asyncio.sleep(0.25)  # past the first expiry, not the renewed one
            renewed = await limiter.reserve_tokens("k1", _request(), 10, 10, ttl_s=0.2)
            return [bool(c and c.admitted) for c in (full, lapsed, renewed)]
        finally:
            await limiter.close()

    for limiter in (MemoryLimiter(), RedisLimiter(REDIS_URL, prefix=prefix, fail_open=False)):
        assert asyncio.run(body(limiter)) == [False, True, False]


def test_redis_unreachable_fails_closed_or_admits_unreserved(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> Hold:
        limiters = [RedisLimiter(UNREACHABLE, fail_open=False), RedisLimiter(UNREACHABLE, fail_open=True)]
        closed, opened = (TokenReservations(limiter, ttl_s=60.0) for limiter in limiters)
        try:
            with pytest.raises(LimiterUnavailable, match="unavailable"):
                await closed.reserve("k1", _request(), 100, 10)
            hold = await opened.reserve("k1", _request(), 100, 10)
            await opened.settle(hold, 10)  # nothing was reserved: nothing to do
            assert opened.open_holds() == 0
            return hold
        finally:
            for limiter in limiters:
                await limiter.close()

    caplog.set_level("WARNING", logger="pureai.limits")
    hold = asyncio.run(body())
    assert hold.admitted and not hold.reserved
    messages = [r.getMessage() for r in caplog.records if r.name == "pureai.limits"]
    assert any("fail-closed" in m for m in messages) and any("fail-open" in m for m in messages)


# -- through the gateway ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def memory_gateway(catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One worker, its limiter in process."""
    with Gateway.start(gateway_env(catalogue_file, tmp_path_factory.mktemp("tpm-memory"))) as gw:
        yield gw


@pytest.fixture(scope="module")
def redis_gateway(catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Two workers sharing their limiter in Redis. Its calls may take up to 5 s: on a loaded test
    machine, 100 requests at once on a worker's event loop can keep one waiting past the default
    0.5 s, and that request would be admitted unreserved (fail-open, as documented), which is not
    what these tests measure (tests/service/test_limits.py covers a Redis that does not answer)."""
    data = tmp_path_factory.mktemp("tpm-redis")
    env = gateway_env(catalogue_file, data, PUREAI_REDIS_URL=REDIS_URL, PUREAI_REDIS_TIMEOUT_S="5")
    with Gateway.start(env, workers=2) as gw:
        yield gw


@pytest.fixture(params=["memory", "redis"])
def gw(request: pytest.FixtureRequest) -> Gateway:
    gateway: Gateway = request.getfixturevalue(f"{request.param}_gateway")
    return gateway


def _tokens_used(gw: Gateway, key: str) -> int:
    """The key's ledger rows' prompt + completion tokens over the last minute (the tpm window)."""
    since = time.time() - 60.0
    rows = ledger(gw, key)
    assert all(row["created"] >= since for row in rows), "a test outlived the window"
    return sum(row["prompt_tokens"] + row["completion_tokens"] for row in rows)


def _refused_for_tokens(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    return error


def _left(gw: Gateway, key: str) -> int:
    """What the key's window has left: the remaining tokens a request too large for any tpm is told."""
    r = gw.http.post(CHAT, headers=h(key), json=TOO_LARGE)
    error = _refused_for_tokens(r)
    assert "more than this key's limit" in error["message"] and "retry-after" not in r.headers
    return int(r.headers["x-ratelimit-remaining-tokens"])


def test_concurrent_requests_never_pass_the_tpm_and_sequential_use_is_exact(
    gw: Gateway, fresh: Upstreams
) -> None:
    a, _ = fresh
    tpm = 10 * WORST + 10  # ten worst cases at once, and a bit
    key = gw.new_key(tenant="t-tpm", tpm=tpm)
    a.script(*[{"delay_ms": 300}] * 200)  # every admitted request stays in flight a while

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=gw.url, timeout=30, trust_env=False, limits=limits) as client:
            return list(
                await asyncio.gather(*(client.post(CHAT, headers=h(key), json=BODY) for _ in range(200)))
            )

    answers = asyncio.run(burst())
    admitted = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    # Without reservations all 200 were admitted: 200 x 21 = 4200 tokens against a tpm of 270.
    assert 10 <= len(admitted) < 20
    for r in admitted:
        assert r.json()["usage"]["total_tokens"] == REAL
        # what is left after this request's own worst case: never less than 0, never more than
        # the limit less that worst case
        assert 0 <= int(r.headers["x-ratelimit-remaining-tokens"]) <= tpm - WORST
    for r in refused:
        assert f"of {tpm} left" in _refused_for_tokens(r)["message"]
        assert int(r.headers["x-ratelimit-remaining-tokens"]) < WORST
        assert int(r.headers["retry-after"]) >= 1
    assert _tokens_used(gw, key) <= tpm

    # Then one at a time: admitted while the real tokens leave room for a worst case, 12 in all
    # (11 x 21 = 231 and 231 + 26 <= 270; 12 x 21 = 252 and 252 + 26 > 270), whatever the burst got.
    sequential = 0
    while (r := gw.http.post(CHAT, headers=h(key), json=BODY)).status_code == 200:
        sequential += 1
        assert sequential < 12
    error = _refused_for_tokens(r)
    assert len(admitted) + sequential == 12
    assert _tokens_used(gw, key) == 12 * REAL <= tpm
    assert r.headers["x-ratelimit-remaining-tokens"] == str(tpm - 12 * REAL)
    assert "held by requests in flight" not in error["message"]  # nothing stayed reserved
    assert f"{tpm - 12 * REAL} of {tpm} left" in error["message"]
    assert 1 <= int(r.headers["retry-after"]) <= 60  # until the oldest tokens leave the window


def test_an_answer_says_what_is_left_after_its_own_worst_case(gw: Gateway, fresh: Upstreams) -> None:
    key = gw.new_key(tenant="t-tpm", tpm=100)
    first = gw.http.post(CHAT, headers=h(key), json=BODY)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-tokens"] == "100"
    assert first.headers["x-ratelimit-remaining-tokens"] == str(100 - WORST)
    second = gw.http.post(CHAT, headers=h(key), json=BODY)
    assert second.headers["x-ratelimit-remaining-tokens"] == str(100 - REAL - WORST)
    assert _left(gw, key) == 100 - 2 * REAL
    # A request larger than the whole limit is refused for its size, with no retry to wait for;
    # one that asks for fewer tokens fits.
    small = gw.new_key(tenant="t-tpm", tpm=20)
    r = gw.http.post(CHAT, headers=h(small), json=BODY)
    error = _refused_for_tokens(r)
    assert "may use up to 26 tokens" in error["message"] and "lower max_tokens" in error["message"]
    assert "retry-after" not in r.headers
    assert gw.http.post(CHAT, headers=h(small), json={**BODY, "max_tokens": 2}).status_code == 200


def test_a_failed_or_cut_request_gives_back_what_it_did_not_use(gw: Gateway, fresh: Upstreams) -> None:
    a, b = fresh
    # Room for one worst case at a time: a reservation left behind would refuse the next request.
    key = gw.new_key(tenant="t-tpm", tpm=WORST + 4)

    # Every provider fails: a 502, no tokens recorded, the next request admitted at once.
    a.script({"status": 500})
    b.script({"status": 500})
    failed = gw.http.post(CHAT, headers=h(key), json=BODY)
    assert failed.status_code == 502, failed.text
    assert _left(gw, key) == WORST + 4
    ok = gw.http.post(CHAT, headers=h(key), json=BODY)
    assert ok.status_code == 200, ok.text
    assert _left(gw, key) == WORST + 4 - REAL

    # A stream the upstream breaks after two pieces: its real tokens recorded before its last frame.
    cut_key = gw.new_key(tenant="t-tpm", tpm=WORST + 4)
    a.script({"error_after_chunks": 3})
    with gw.http.stream("POST", CHAT, headers=h(cut_key), json={**BODY, "stream": True}) as r:
        raw = r.read()
    assert r.status_code == 200 and b"upstream_error" in raw and b"[DONE]" not in raw
    row = ledger(gw, cut_key)[0]
    used = row["prompt_tokens"] + row["completion_tokens"]
    assert 0 < used < REAL
    assert _left(gw, cut_key) == WORST + 4 - used


def test_a_request_the_client_abandons_gives_back_its_tokens(gw: Gateway, fresh: Upstreams) -> None:
    a, _ = fresh
    key = gw.new_key(tenant="t-tpm", tpm=WORST + 4)
    a.script({"headers_delay_ms": 10_000})
    with (
        httpx.Client(base_url=gw.url, timeout=10, trust_env=False) as leaving,
        pytest.raises(httpx.ReadTimeout),
    ):
        leaving.post(CHAT, headers=h(key), json=BODY, timeout=httpx.Timeout(10, read=0.5))
    row = wait_row(gw, key, lambda row: row["error"] == "client_disconnected")
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == (499, 0, 0)
    _until_left(gw, key, WORST + 4)  # released in the background once the gateway notices

    # A stream left after its first piece: what it sent is recorded.
    streamed = gw.new_key(tenant="t-tpm", tpm=WORST + 4)
    a.script({"chunk_delay_ms": 200})
    client = httpx.Client(base_url=gw.url, timeout=10, trust_env=False)  # a connection of our own
    with client, client.stream("POST", CHAT, headers=h(streamed), json={**BODY, "stream": True}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data:") and '"content":"Hello"' in line.replace(" ", ""):
                break  # the first piece has arrived; now go away
    row = wait_row(gw, streamed, lambda row: row["error"] == "client_disconnected")
    used = row["prompt_tokens"] + row["completion_tokens"]
    assert 0 < used < REAL
    _until_left(gw, streamed, WORST + 4 - used)


def _until_left(gw: Gateway, key: str, expected: int, timeout: float = 5.0) -> None:
    """Poll `_left` until it says `expected`: a reservation settled in the background, after the
    row the test waited for, lands a moment later. The probes reserve nothing."""
    deadline = time.monotonic() + timeout
    while (left := _left(gw, key)) != expected:
        assert time.monotonic() < deadline, f"{left} tokens left, not {expected}"
        time.sleep(0.02)  # polling a bounded loop, as calls.wait_row does

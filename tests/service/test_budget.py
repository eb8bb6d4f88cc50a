"""Hard per-key budgets (service/budget.py): reservations against a real Redis on 127.0.0.1:6379 and
the real stores (SQLite files, the PostgreSQL database `test` on 127.0.0.1:5432), then through real
gateways: one worker on its store alone, and two workers sharing Redis.

Costs are exact: the fake upstream counts a chat's prompt as its words plus 3 per message, and its
answer as the pieces it sends (cut at max_tokens), and the gateway prices those at the catalogue's
prices.
"""

from __future__ import annotations

import asyncio
import gc
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import redis.asyncio as aioredis
from psycopg import sql

from models_registry import load_catalogue, load_entry
from service.budget import (
    Budgets,
    BudgetUnavailable,
    Hold,
    RedisBudgets,
    StoreBudgets,
    make_budgets,
    worst_case,
)
from service.store import PostgresStore, SQLiteStore, Store, UsageRow
from tests.service.calls import h, ledger, wait_row
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway, catalogue

REDIS_URL = "redis://127.0.0.1:6379/0"
UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
CHAT = "/v1/chat/completions"
Upstreams = tuple[FakeUpstream, FakeUpstream]

# Ten words: the fake counts 10 + 3 = 13 prompt tokens, the gateway's worst case 48 chars / 4 + 2 x 3
# = 18; the answer ("Hello from A: one two ...") is cut at max_tokens = 8 pieces. On gpt-4o-mini
# ($0.15 / $0.60 per 1M) a request costs 6.75e-6 and may cost 7.5e-6 at worst.
WORDS = "one two three four five six seven eight nine ten"
BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": WORDS}],
    "max_tokens": 8,
}
REAL_USD = (13 * 0.15 + 8 * 0.60) / 1e6
WORST_USD = (18 * 0.15 + 8 * 0.60) / 1e6


# -- the worst case ---------------------------------------------------------------------------------
def _entry(**spec: Any) -> Any:
    table = {
        "id": "m",
        "owned_by": "x",
        "litellm_model": "openai/not-in-any-price-map",
        "input_per_mtok": 1.0,
        "output_per_mtok": 2.0,
        "context_window": 8192,
        "quality_priors": {"default": 0.5},
        **spec,
    }
    return load_entry(table)


def test_the_worst_case_is_the_prompt_and_every_answer_at_full_length() -> None:
    entry = _entry()
    chat = {"messages": [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 40}]}
    # 80 characters and a newline: 20 tokens; 3 per message and 3 more: 29; no bound on the answer: 4096
    assert worst_case(entry, chat).prompt_tokens == 29
    assert worst_case(entry, chat).output_tokens == 4096
    assert worst_case(entry, chat).usd == pytest.approx((29 * 1.0 + 4096 * 2.0) / 1e6)
    assert worst_case(entry, {**chat, "max_tokens": 100}).output_tokens == 100
    assert worst_case(entry, {**chat, "max_completion_tokens": 50, "max_tokens": 100}).output_tokens == 50
    assert worst_case(entry, {**chat, "max_tokens": 100, "n": 3}).output_tokens == 300
    capped = _entry(max_output_tokens=64)
    assert worst_case(capped, chat).output_tokens == 64  # the model's own bound
    assert worst_case(capped, {**chat, "max_tokens": 100}).output_tokens == 64
    # A text completion: several prompts get an answer each, best_of is billed though not returned.
    text = {"prompt": ["a" * 8, "b" * 8], "max_tokens": 10, "best_of": 2}
    assert (worst_case(entry, text).prompt_tokens, worst_case(entry, text).output_tokens) == (4, 40)
    assert worst_case(entry, {"prompt": [1, 2, 3], "max_tokens": 10}).output_tokens == 10  # token ids


def test_the_gateways_worst_case_for_the_test_request(catalogue_file: Path) -> None:
    entry = load_catalogue(catalogue_file).models["gpt-4o-mini"]
    assert worst_case(entry, BODY).usd == pytest.approx(WORST_USD, abs=1e-12)
    assert WORST_USD > REAL_USD


# -- backends ---------------------------------------------------------------------------------------
@dataclass
class Backend:
    """Budgets over one test's database (and Redis keys): `open()` gives a fresh store and Budgets on
    it each time, as another worker would have."""

    name: str
    make_store: Callable[[], Store]
    make_budgets: Callable[[Store], Budgets]

    @asynccontextmanager
    async def open(self) -> AsyncIterator[tuple[Store, Budgets]]:
        store = self.make_store()
        await store.open()
        budgets = self.make_budgets(store)
        try:
            yield store, budgets
        finally:
            await budgets.close()
            await store.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"test:budget:{secrets.token_hex(8)}:"
    yield value
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    name = f"t_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> Backend:
    path = tmp_path / "pureai.db"
    if request.param == "postgres":
        schema = request.getfixturevalue("pg_schema")
        return Backend("postgres", lambda: PostgresStore(PG_URL, schema=schema), _in_store)
    if request.param == "sqlite":
        return Backend("sqlite", lambda: SQLiteStore(path), _in_store)
    return Backend(
        "redis",
        lambda: SQLiteStore(path),
        lambda store: RedisBudgets(REDIS_URL, store, ttl_s=60.0, prefix=prefix, fail_open=False),
    )


def _in_store(store: Store) -> Budgets:
    return StoreBudgets(store, ttl_s=60.0)


def _request() -> str:
    return "req_" + secrets.token_hex(12)


async def _bill(store: Store, key_id: str, request_id: str, cost: float) -> None:
    """Commit the ledger row of `request_id` with `cost`, as the gateway does before settling."""
    await store.record_usage(
        UsageRow(
            request_id=request_id,
            key_id=key_id,
            tenant="t",
            created=time.time(),
            endpoint="chat.completions",
            model="m",
            provider="p",
            status=200,
            total_cost_usd=cost,
        )  # fmt: skip
    )


def test_concurrent_reservations_from_two_workers_never_pass_the_limit(backend: Backend) -> None:
    async def body() -> list[Hold]:
        async with backend.open() as (_, one), backend.open() as (_, two):
            calls = [(one if i % 2 else two).reserve("k1", _request(), 10.0, 1.0) for i in range(50)]
            return list(await asyncio.gather(*calls))

    holds = asyncio.run(body())
    admitted = [hold for hold in holds if hold.admitted]
    assert len(admitted) == 10
    assert sorted(hold.held for hold in admitted) == [float(i) for i in range(10)]
    for hold in holds:
        assert hold.spent == 0.0 and hold.amount == 1.0 and hold.limit == 10.0
        if not hold.admitted:
            assert hold.held == 10.0 and hold.left == 0.0


def test_settling_puts_the_ledgers_cost_in_place_of_the_reservation(backend: Backend) -> None:
    async def body() -> list[Hold]:
        async with backend.open() as (store, budgets):
            first = await budgets.reserve("k1", (rid := _request()), 3.0, 1.0)
            await _bill(store, "k1", rid, 0.25)
            await budgets.settle(first, 0.25)
            await budgets.settle(first, 0.25)  # a second settle changes nothing
            holds = [await budgets.reserve("k1", _request(), 3.0, 1.0) for _ in range(3)]
            assert budgets.open_holds() == 2
            return [first, *holds]

    first, second, third, fourth = asyncio.run(body())
    assert first.admitted and second.admitted and third.admitted
    assert (second.spent, second.held) == (0.25, 0.0)
    assert (third.spent, third.held) == (0.25, 1.0)
    assert not fourth.admitted and (fourth.spent, fourth.held) == (0.25, 2.0)
    assert fourth.left == pytest.approx(0.75)


def test_releasing_frees_the_reservation(backend: Backend) -> None:
    async def body() -> list[Hold]:
        async with backend.open() as (_, budgets):
            first = await budgets.reserve("k1", _request(), 1.0, 1.0)
            refused = await budgets.reserve("k1", _request(), 1.0, 1.0)
            await budgets.release(first)
            again = await budgets.reserve("k1", _request(), 1.0, 1.0)
            other_key = await budgets.reserve("k2", _request(), 1.0, 1.0)
            return [first, refused, again, other_key]

    first, refused, again, other_key = asyncio.run(body())
    assert first.admitted and not refused.admitted and again.admitted and other_key.admitted
    assert (again.spent, again.held) == (0.0, 0.0)


def test_a_hold_dropped_without_settling_is_no_longer_renewed(backend: Backend) -> None:
    async def body() -> int:
        async with backend.open() as (_, budgets):
            hold: Hold | None = await budgets.reserve("k1", _request(), 1.0, 1.0)
            assert budgets.open_holds() == 1
            del hold
            gc.collect()
            return budgets.open_holds()

    assert asyncio.run(body()) == 0


def test_a_reservation_lapses_unless_renewed_in_the_store(tmp_path: Path) -> None:
    now = [1000.0]

    async def body() -> list[Hold]:
        store = SQLiteStore(tmp_path / "pureai.db")
        await store.open()
        budgets = StoreBudgets(store, ttl_s=10.0, clock=lambda: now[0])
        try:
            kept = await budgets.reserve("k1", _request(), 1.0, 1.0)  # expires at 1010
            now[0] = 1005.0
            await budgets.renew()  # now at 1015
            now[0] = 1012.0
            while_renewed = await budgets.reserve("k1", _request(), 1.0, 1.0)
            now[0] = 1016.0  # its worker has died: nothing renewed it
            after = await budgets.reserve("k1", _request(), 1.0, 1.0)
            return [kept, while_renewed, after]
        finally:
            await budgets.close()
            await store.close()

    kept, while_renewed, after = asyncio.run(body())
    assert kept.admitted and not while_renewed.admitted and while_renewed.held == 1.0
    assert after.admitted and after.held == 0.0


def test_a_dead_workers_reservation_lapses_in_redis(tmp_path: Path, prefix: str) -> None:
    held_key = f"{prefix}{{k1}}:usd:held"
    with redis.Redis.from_url(REDIS_URL) as client:  # a reservation made long ago, never settled
        client.zadd(held_key, {"req_dead|1.0": 1_000_000})

    async def body() -> Hold:
        store = SQLiteStore(tmp_path / "pureai.db")
        await store.open()
        budgets = RedisBudgets(REDIS_URL, store, ttl_s=60.0, prefix=prefix, fail_open=False)
        try:
            return await budgets.reserve("k1", _request(), 1.0, 1.0)
        finally:
            await budgets.close()
            await store.close()

    hold = asyncio.run(body())
    assert hold.admitted and hold.held == 0.0
    with redis.Redis.from_url(REDIS_URL) as client:
        assert [m.decode().split("|")[0] for m in client.zrange(held_key, 0, -1)] == [hold.request_id]
        assert 0 < client.pttl(held_key) <= 60_000


def test_open_reservations_are_renewed_in_redis(tmp_path: Path, prefix: str) -> None:
    held_key = f"{prefix}{{k1}}:usd:held"

    async def body() -> None:
        store = SQLiteStore(tmp_path / "pureai.db")
        await store.open()
        budgets = RedisBudgets(REDIS_URL, store, ttl_s=0.3, prefix=prefix, fail_open=False)
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            hold = await budgets.reserve("k1", _request(), 1.0, 1.0)
            member = f"{hold.request_id}|1.0"
            first = await client.zscore(held_key, member)
            assert first is not None
            deadline = time.monotonic() + 5
            while (await client.zscore(held_key, member) or 0) <= first:  # the renewal, every 0.1 s
                assert time.monotonic() < deadline, "the reservation was never renewed"
                await asyncio.sleep(0.02)
            await budgets.settle(hold, 0.0)
            assert await client.zscore(held_key, member) is None
        finally:
            await client.aclose()
            await budgets.close()
            await store.close()

    asyncio.run(body())


class _SettlingMidway(SQLiteStore):
    """A real SQLite store whose next `spend_usd` runs `midway` after its read and before it returns:
    another worker's request settling between a reservation's read of the spend and its script."""

    midway: Callable[[], Awaitable[None]] | None = None

    async def spend_usd(self, key_id: str) -> float:
        spent = await super().spend_usd(key_id)
        midway, self.midway = self.midway, None
        if midway is not None:
            await midway()
        return spent


def test_a_cost_settled_between_the_spend_read_and_the_script_is_counted(tmp_path: Path, prefix: str) -> None:
    async def body() -> Hold:
        store = _SettlingMidway(tmp_path / "pureai.db")
        await store.open()
        budgets = RedisBudgets(REDIS_URL, store, ttl_s=60.0, prefix=prefix, fail_open=False)
        try:
            first = await budgets.reserve("k1", (rid := _request()), 1.5, 1.0)
            assert first.admitted

            async def settle_first() -> None:
                await _bill(store, "k1", rid, 1.0)
                await budgets.settle(first, 1.0)

            store.midway = settle_first
            # The read saw 0 spent; by the script, the 1.0 is in the ledger and its hold is gone.
            return await budgets.reserve("k1", _request(), 1.5, 1.0)
        finally:
            await budgets.close()
            await store.close()

    second = asyncio.run(body())
    assert not second.admitted
    assert (second.spent, second.held) == (1.0, 0.0)


def test_redis_unreachable_fails_closed_or_checks_the_recorded_spend(tmp_path: Path) -> None:
    async def body() -> list[Any]:
        store = SQLiteStore(tmp_path / "pureai.db")
        await store.open()
        closed = make_budgets(store, UNREACHABLE, ttl_s=60.0, fail_open=False)
        opened = make_budgets(store, UNREACHABLE, ttl_s=60.0, fail_open=True)
        try:
            with pytest.raises(BudgetUnavailable, match="unavailable"):
                await closed.reserve("k1", _request(), 1.0, 0.5)
            await _bill(store, "k1", _request(), 0.4)
            fits = await opened.reserve("k1", _request(), 1.0, 0.5)
            await opened.settle(fits, 0.5)  # nothing was reserved: nothing to do
            too_much = await opened.reserve("k1", _request(), 1.0, 0.7)
            return [fits, too_much, opened.open_holds()]
        finally:
            await closed.close()
            await opened.close()
            await store.close()

    fits, too_much, still_open = asyncio.run(body())
    assert fits.admitted and not fits.reserved and fits.spent == 0.4
    assert not too_much.admitted and still_open == 0


# -- through the gateway ----------------------------------------------------------------------------
UNPRICED = """
[[models]]
id = "mystery-model"
owned_by = "nobody"
litellm_model = "openai/mystery-model-nobody-prices"
context_window = 8192
api_base = "{primary}"
quality_priors = {{ default = 0.5 }}
"""


@pytest.fixture(scope="module")
def budget_catalogue(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test catalogue and a model without prices."""
    a, b = upstreams
    path = tmp_path_factory.mktemp("budget-catalogue") / "catalogue.toml"
    path.write_text(catalogue(a.url, b.url) + UNPRICED.format(primary=a.url))
    return path


@pytest.fixture(scope="module")
def store_gateway(budget_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One worker, reservations in its store."""
    with Gateway.start(gateway_env(budget_catalogue, tmp_path_factory.mktemp("budget-store"))) as gw:
        yield gw


@pytest.fixture(scope="module")
def redis_gateway(budget_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Two workers sharing reservations in Redis."""
    env = gateway_env(budget_catalogue, tmp_path_factory.mktemp("budget-redis"), PUREAI_REDIS_URL=REDIS_URL)
    with Gateway.start(env, workers=2) as gw:
        yield gw


@pytest.fixture(params=["store", "redis"])
def gw(request: pytest.FixtureRequest) -> Gateway:
    gateway: Gateway = request.getfixturevalue(f"{request.param}_gateway")
    return gateway


def _spent(gw: Gateway, key: str) -> float:
    return sum(row["total_cost_usd"] for row in ledger(gw, key))


def _quota(response: httpx.Response) -> str:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    return str(error["message"])


def _admitted_soon(gw: Gateway, key: str, timeout: float = 5.0) -> httpx.Response:
    """POST the test request until it is admitted: a reservation released in the background (after
    the client saw its stream end) frees up a moment later. Refusals cost nothing."""
    deadline = time.monotonic() + timeout
    while True:
        r = gw.http.post(CHAT, headers=h(key), json=BODY)
        if r.status_code != 429 or time.monotonic() >= deadline:
            return r
        time.sleep(0.02)  # polling a bounded loop, as calls.wait_row does


def test_concurrent_requests_never_spend_past_the_budget_and_nothing_stays_reserved(
    gw: Gateway, fresh: Upstreams
) -> None:
    a, _ = fresh
    budget = 10.5 * WORST_USD  # ten worst cases at once, and half of one
    assert 4 * budget < 50 * REAL_USD  # what 50 requests let through at once would spend
    key = gw.new_key(tenant="t-budget", budget_usd=budget)
    a.script(*[{"delay_ms": 300}] * 50)  # every admitted request stays in flight a while

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=gw.url, timeout=30, trust_env=False, limits=limits) as client:
            return list(
                await asyncio.gather(*(client.post(CHAT, headers=h(key), json=BODY) for _ in range(50)))
            )

    burst_answers = asyncio.run(burst())
    admitted = [r for r in burst_answers if r.status_code == 200]
    for r in burst_answers:
        if r.status_code != 200:
            _quota(r)
    assert 10 <= len(admitted) < 50
    assert all(r.json()["usage"]["total_cost_usd"] == pytest.approx(REAL_USD) for r in admitted)
    assert _spent(gw, key) <= budget

    # Afterwards, one at a time: admitted until the real spend leaves less than a worst case.
    sequential = 0
    while (r := gw.http.post(CHAT, headers=h(key), json=BODY)).status_code == 200:
        sequential += 1
        assert sequential < 50
    message = _quota(r)
    spent = _spent(gw, key)
    # Each admitted request costs exactly REAL_USD, and one is admitted while spent + worst fits:
    # 11 in all, however many the burst got.
    assert len(admitted) + sequential == 11
    assert spent == pytest.approx(11 * REAL_USD) and spent <= budget
    assert budget - spent < WORST_USD
    assert "held by requests in flight" not in message  # nothing stayed reserved
    left = re.search(r"has \$([0-9.e-]+) left", message)
    assert left is not None and float(left[1]) == pytest.approx(budget - spent, rel=1e-4)
    assert f"may cost up to ${WORST_USD:.6g}" in message


def test_a_failed_or_cut_request_releases_its_reservation(gw: Gateway, fresh: Upstreams) -> None:
    a, b = fresh
    # Room for one worst case at a time: a reservation left behind would refuse the next request.
    key = gw.new_key(tenant="t-budget", budget_usd=1.5 * WORST_USD)

    # Every provider fails: a 502, nothing spent, the next request admitted at once.
    a.script({"status": 500})
    b.script({"status": 500})
    failed = gw.http.post(CHAT, headers=h(key), json=BODY)
    assert failed.status_code == 502, failed.text
    assert _spent(gw, key) == 0.0
    ok = gw.http.post(CHAT, headers=h(key), json=BODY)
    assert ok.status_code == 200, ok.text
    assert float(ok.headers["x-pureai-budget-remaining-usd"]) == pytest.approx(0.5 * WORST_USD, rel=1e-4)
    fresh_key = gw.new_key(tenant="t-budget", budget_usd=1.5 * WORST_USD)

    # A stream the upstream breaks after two pieces: billed for those, settled before its last frame.
    a.script({"error_after_chunks": 3})
    with gw.http.stream("POST", CHAT, headers=h(fresh_key), json={**BODY, "stream": True}) as r:
        raw = r.read()
    assert r.status_code == 200 and b"upstream_error" in raw and b"[DONE]" not in raw
    cut = _spent(gw, fresh_key)
    assert 0 < cut < REAL_USD
    assert gw.http.post(CHAT, headers=h(fresh_key), json=BODY).status_code == 200


def test_a_request_the_client_abandons_releases_its_reservation(gw: Gateway, fresh: Upstreams) -> None:
    a, _ = fresh
    key = gw.new_key(tenant="t-budget", budget_usd=1.5 * WORST_USD)
    # A stream left after its first piece: billed for what it sent.
    a.script({"chunk_delay_ms": 200})
    client = httpx.Client(base_url=gw.url, timeout=10, trust_env=False)  # a connection of our own
    with client, client.stream("POST", CHAT, headers=h(key), json={**BODY, "stream": True}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data:") and '"content":"Hello"' in line.replace(" ", ""):
                break  # the first piece has arrived; now go away
    row = wait_row(gw, key, lambda row: row["error"] == "client_disconnected")
    assert row["stream"] is True and 0 < row["total_cost_usd"] < REAL_USD
    assert _admitted_soon(gw, key).status_code == 200

    # A non-streamed request left before the answer: a 499 row, nothing spent.
    other = gw.new_key(tenant="t-budget", budget_usd=1.5 * WORST_USD)
    a.script({"headers_delay_ms": 10_000})
    with (
        httpx.Client(base_url=gw.url, timeout=10, trust_env=False) as leaving,
        pytest.raises(httpx.ReadTimeout),
    ):
        leaving.post(CHAT, headers=h(other), json=BODY, timeout=httpx.Timeout(10, read=0.5))
    row = wait_row(gw, other, lambda row: row["error"] == "client_disconnected")
    assert (row["status"], row["total_cost_usd"]) == (499, 0.0)
    assert _admitted_soon(gw, other).status_code == 200


def test_a_budgeted_key_is_refused_a_model_without_a_price(store_gateway: Gateway, fresh: Upstreams) -> None:
    gw = store_gateway
    body = {**BODY, "model": "mystery-model"}
    budgeted = gw.new_key(tenant="t-budget", budget_usd=1.0)
    r = gw.http.post(CHAT, headers=h(budgeted), json=body)
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("model_unpriced", "model")
    assert "mystery-model" in error["message"] and "budget" in error["message"]
    assert fresh[0].requests() == []  # refused before any provider
    unlimited = gw.new_key(tenant="t-budget")
    assert gw.http.post(CHAT, headers=h(unlimited), json=body).status_code == 200

"""The store against real engines: SQLite files in tmp_path, and the PostgreSQL server on
127.0.0.1:5432 (database `test`, a fresh schema per test, dropped afterwards).

Every behaviour test runs once per engine through the `engine` fixture. Tests are plain functions
that run small async bodies with `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import fcntl
import math
import os
import secrets
import select
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import service.store as store_package
from service.store import (
    Feedback,
    KeyRecord,
    PostgresStore,
    RouterStat,
    Scored,
    SQLiteStore,
    Store,
    StoreError,
    TrainingRow,
    UsageRow,
    UsageTotals,
    open_store,
)
from service.store import _schema as schema

REPO = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"
PASSWORD = "hunter2-Pa55word"
ALL_VERSIONS = [(n,) for n in range(1, schema.LATEST + 1)]


# -- engines ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Engine:
    """One database for one test, and the means to reach it."""

    name: str
    make: Callable[[], Store]
    """A new, unopened store on this test's database."""
    sql: Callable[[str], list[tuple[Any, ...]]]
    """Run one statement on this test's database, outside any store; its rows (if any)."""
    target: str
    """The SQLite file, or the PostgreSQL URL."""
    schema: str | None = None


def _pg_connect() -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.fail(
            f"these tests need PostgreSQL at {PG_URL} (trust auth, database 'test'): {exc}",
            pytrace=False,
        )


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name on the test PostgreSQL database; the schema is dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    _pg_connect().close()
    try:
        yield name
    finally:
        with _pg_connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _sqlite_engine(path: Path, alone: bool = False) -> Engine:
    """`alone`: the store's calls run on the event loop (as in a gateway worker with one request in
    flight) rather than in a worker thread."""

    def run(statement: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(path)) as conn, conn:
            return conn.execute(statement).fetchall()

    def make() -> SQLiteStore:
        store = SQLiteStore(path)
        store.alone = lambda: alone
        return store

    return Engine("sqlite", make, run, str(path))


def _postgres_engine(schema: str) -> Engine:
    def run(statement: str) -> list[tuple[Any, ...]]:
        with _pg_connect() as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    return Engine("postgres", lambda: PostgresStore(PG_URL, schema=schema), run, PG_URL, schema)


@pytest.fixture(params=["sqlite", "sqlite-on-the-loop", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param.startswith("sqlite"):
        return _sqlite_engine(tmp_path / "store" / "pureai.db", alone=request.param == "sqlite-on-the-loop")
    return _postgres_engine(request.getfixturevalue("pg_schema"))


@asynccontextmanager
async def opened(store: Store) -> AsyncIterator[Store]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def key(id: str, tenant: str = "acme", **kw: Any) -> KeyRecord:
    values: dict[str, Any] = {"name": f"key {id}", "secret_hash": id.encode().hex()}
    return KeyRecord(id=id, tenant=tenant, **{**values, **kw})


def row(
    request_id: str, key_id: str = "k1", tenant: str = "acme", created: float = 100.0, **kw: Any
) -> UsageRow:
    values: dict[str, Any] = {"endpoint": "chat.completions", "model": "m", "provider": "p", "status": 200}
    return UsageRow(request_id, key_id, tenant, created, **{**values, **kw})


# -- migrations -------------------------------------------------------------------------------
def test_migrations_run_once_across_reopens(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            await store.add_key(key("k1"))
        async with opened(engine.make()) as store:
            assert [k.id for k in await store.list_keys()] == ["k1"]

    asyncio.run(body())
    assert engine.sql("SELECT version FROM schema_version ORDER BY version") == ALL_VERSIONS


def test_concurrent_opens_migrate_once(engine: Engine) -> None:
    async def body() -> None:
        stores = [engine.make() for _ in range(4)]
        try:
            await asyncio.gather(*(s.open() for s in stores))
            await stores[0].add_key(key("k1"))
            assert [k.id for k in await stores[3].list_keys()] == ["k1"]
        finally:
            await asyncio.gather(*(s.close() for s in stores))

    asyncio.run(body())
    assert engine.sql("SELECT version FROM schema_version ORDER BY version") == ALL_VERSIONS


def test_open_twice_on_one_store_is_harmless(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            await store.open()
            await store.ping()

    asyncio.run(body())


def test_newer_schema_is_refused(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()):
            pass
        engine.sql("INSERT INTO schema_version (version, applied) VALUES (99, 0)")
        store = engine.make()
        with pytest.raises(StoreError, match="schema version 99 is newer"):
            await store.open()

    asyncio.run(body())


def test_store_must_be_open(engine: Engine) -> None:
    async def body() -> None:
        store = engine.make()
        with pytest.raises(StoreError, match="not open"):
            await store.get_key("k1")
        async with opened(store):
            pass
        with pytest.raises(StoreError, match="not open"):
            await store.record_usage(row("r1"))

    asyncio.run(body())


# -- keys -------------------------------------------------------------------------------------
def test_keys(engine: Engine) -> None:
    k1 = key(
        "k1",
        tenant="acme",
        allowed_models=("gpt-4o", "claude-sonnet"),
        rpm=60,
        tpm=100_000,
        budget_usd=12.5,
        created=10.0,
    )
    k2 = key("k2", tenant="globex", admin=True, created=5.0)
    k3 = key("k3", tenant="acme", allowed_models=(), created=20.0)

    async def body() -> None:
        async with opened(engine.make()) as store:
            for record in (k1, k2, k3):
                await store.add_key(record)
            assert await store.get_key("k1") == k1
            assert await store.get_key("k3") == k3  # () is not None: no model allowed
            assert await store.get_key("nope") is None
            assert [k.id for k in await store.list_keys()] == ["k2", "k1", "k3"]
            assert await store.list_keys("acme") == [k1, k3]
            assert await store.list_keys("nobody") == []

            assert await store.count_admin_keys() == 1
            await store.add_key(key("k4", admin=True, created=30.0))
            assert await store.count_admin_keys() == 2
            assert await store.revoke_key("k4", 40.5) is True
            assert await store.revoke_key("k4", 41.0) is False
            assert await store.revoke_key("nope", 41.0) is False
            assert await store.count_admin_keys() == 1
            revoked = await store.get_key("k4")
            assert revoked is not None and revoked.revoked == 40.5
            assert [k.id for k in await store.list_keys()] == ["k2", "k1", "k3", "k4"]

    asyncio.run(body())


def test_duplicate_key_id(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            await store.add_key(key("k1", name="first"))
            with pytest.raises(StoreError, match="key id 'k1' exists"):
                await store.add_key(key("k1", tenant="other", name="second"))
            kept = await store.get_key("k1")
            assert kept is not None and kept.name == "first"

    asyncio.run(body())


# -- ledger -----------------------------------------------------------------------------------
def test_usage_filters_and_order(engine: Engine) -> None:
    rows = [
        row("a100", "a", "t1", 100.0),
        row("a200", "a", "t1", 200.0, stream=True, routed=True, latency_ms=12.5, ttft_ms=3.25),
        row("a300", "a", "t1", 300.0, status=502, error="upstream_error", attempts=3),
        row("b200", "b", "t2", 200.0, model=None, provider=None),
        row("b400", "b", "t2", 400.0),
        row("c250", "c", "t1", 250.0),
    ]
    by_id = {r.request_id: r for r in rows}

    async def body() -> None:
        async with opened(engine.make()) as store:
            for r in rows:
                await store.record_usage(r)

            async def ids(**filters: Any) -> list[str]:
                return [r.request_id for r in await store.usage(**filters)]

            everything = await store.usage()
            assert everything == [by_id[i] for i in ("b400", "a300", "c250", "b200", "a200", "a100")]
            assert await ids(key_id="a") == ["a300", "a200", "a100"]
            assert await ids(tenant="t1") == ["a300", "c250", "a200", "a100"]
            assert await ids(key_id="a", tenant="t2") == []
            assert await ids(since=250.0) == ["b400", "a300", "c250"]  # since is inclusive
            assert await ids(until=200.0) == ["a100"]  # until is exclusive
            assert await ids(since=200.0, until=300.0) == ["c250", "b200", "a200"]
            assert await ids(tenant="t1", since=200.0, until=300.0) == ["c250", "a200"]
            assert await ids(limit=2) == ["b400", "a300"]
            assert await ids(key_id="a", limit=1) == ["a300"]
            assert await ids(limit=0) == []
            with pytest.raises(StoreError, match="limit"):
                await store.usage(limit=-1)

    asyncio.run(body())


def test_usage_totals_cover_every_row_the_filters_match(engine: Engine) -> None:
    rows = [
        row("a100", "a", "t1", 100.0, prompt_tokens=10, completion_tokens=1, total_cost_usd=0.25),
        row("a200", "a", "t1", 200.0, prompt_tokens=20, completion_tokens=2, total_cost_usd=0.5),
        row("a300", "a", "t1", 300.0, status=502, error="upstream_error"),
        row("b200", "b", "t2", 200.0, prompt_tokens=40, completion_tokens=4, total_cost_usd=1.0),
    ]

    async def body() -> None:
        async with opened(engine.make()) as store:
            assert await store.usage_totals() == UsageTotals(0, 0, 0, 0.0)
            for r in rows:
                await store.record_usage(r)
            assert await store.usage_totals() == UsageTotals(4, 70, 7, 1.75)
            assert await store.usage_totals(key_id="a") == UsageTotals(3, 30, 3, 0.75)
            assert await store.usage_totals(tenant="t2") == UsageTotals(1, 40, 4, 1.0)
            assert await store.usage_totals(since=200.0, until=300.0) == UsageTotals(2, 60, 6, 1.5)
            assert await store.usage_totals(key_id="a", tenant="t2") == UsageTotals(0, 0, 0, 0.0)
            # the same filters as `usage`, whatever its limit leaves out
            page = await store.usage(key_id="a", limit=1)
            assert len(page) == 1 and (await store.usage_totals(key_id="a")).requests == 3

    asyncio.run(body())


def test_spend(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            assert await store.spend_usd("k1") == 0.0
            for i, cost in enumerate((0.25, 0.5, 1.125, 0.0)):
                await store.record_usage(row(f"r{i}", "k1", total_cost_usd=cost))
            await store.record_usage(row("other", "k2", total_cost_usd=100.0))
            assert await store.spend_usd("k1") == 1.875
            assert await store.spend_usd("k2") == 100.0
            assert await store.spend_usd("k3") == 0.0

    asyncio.run(body())


def test_usage_of_one_request(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            await store.record_usage(row("r1", "k1", created=5.0))
            await store.record_usage(row("r2", "k2", created=6.0))
            assert [(r.request_id, r.key_id) for r in await store.usage_of("r1")] == [("r1", "k1")]
            assert await store.usage_of("nope") == []

    asyncio.run(body())


# -- feedback ---------------------------------------------------------------------------------
def test_feedback_upserts_per_request_and_metric(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            first = Feedback("r1", "score", 0.25, "k1", 10.0, "meh")
            assert await store.put_feedback(first) is True
            assert await store.put_feedback(Feedback("r1", "helpful", 1.0, "k1", 11.0)) is True
            assert await store.put_feedback(Feedback("r2", "score", 0.0, "k2", 12.0)) is True
            again = Feedback("r1", "score", 0.75, "k1", 13.0, None)
            assert await store.put_feedback(again) is False  # replaced, not added
            assert await store.feedback(request_id="r1") == [
                again,
                Feedback("r1", "helpful", 1.0, "k1", 11.0),
            ]
            assert [f.request_id for f in await store.feedback(key_id="k2")] == ["r2"]
            assert [f.created for f in await store.feedback(since=11.0, until=13.0)] == [12.0, 11.0]
            assert len(await store.feedback(limit=2)) == 2
            with pytest.raises(StoreError, match="limit"):
                await store.feedback(limit=-1)

    asyncio.run(body())
    assert engine.sql("SELECT COUNT(*) FROM feedback") == [(3,)]


def test_concurrent_feedback_keeps_one_row(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            await asyncio.gather(
                *(store.put_feedback(Feedback("r1", "score", i / 10, "k1", float(i))) for i in range(8))
            )
            assert len(await store.feedback(request_id="r1")) == 1

    asyncio.run(body())


# -- prompts ----------------------------------------------------------------------------------
def test_training_rows_join_prompts_feedback_and_answers(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            for i, kw in enumerate(
                (
                    {},  # answered, prompt, score: exported
                    {"status": 502, "error": "upstream_error"},  # failed
                    {"attempts": 0, "endpoint": "router", "routed": True},  # a decision alone
                    {},  # no prompt
                    {},  # only a metric other than "score"
                    {"created": 50.0},  # before `since`
                )
            ):
                values: dict[str, Any] = {"created": 100.0 + i, "total_cost_usd": 0.5, "completion_tokens": 7}
                await store.record_usage(row(f"r{i}", "k1", **{**values, **kw}))
                if i != 3:
                    await store.record_prompt(f"r{i}", "k1", kw.get("created", 100.0 + i), f"prompt {i}")
                metric = "tone" if i == 4 else "score"
                await store.put_feedback(Feedback(f"r{i}", metric, 0.25, "k1", 200.0))
            await store.record_prompt("r0", "k1", 100.0, "a second write is ignored")
            assert await store.training_rows(since=60.0, until=1000.0) == [
                TrainingRow("r0", "k1", 100.0, "m", "prompt 0", 0.25, 0.5, 7)
            ]
            assert [r.request_id for r in await store.training_rows()] == ["r5", "r0"]
            assert await store.forget_prompts(before=100.5) == 2  # r0 and r5
            assert await store.training_rows() == []

    asyncio.run(body())


def test_router_stats_per_version_and_model(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            routed = {"endpoint": "router", "routed": True}
            rows = [
                row("a", model="m1", router_version="v1", **routed),
                row("b", model="m1", router_version="v1", **routed),
                row("c", model="m2", router_version="v1", **routed),
                row("d", model="m2", router_version="v2", **routed),
                row("e", model="m2", router_version="v2", created=500.0, **routed),  # after `until`
                row("f", model="m1"),  # not routed
            ]
            for r in rows:
                await store.record_usage(r)
            assert (await store.usage_of("a"))[0].router_version == "v1"
            await store.put_feedback(Feedback("a", "score", 1.0, "k1", 200.0))
            await store.put_feedback(Feedback("b", "score", 0.5, "k1", 200.0))
            await store.put_feedback(Feedback("b", "tone", 0.0, "k1", 200.0))  # another metric
            await store.put_feedback(Feedback("c", "score", 0.0, "k2", 200.0))  # not the requester's key
            await store.put_feedback(Feedback("f", "score", 0.0, "k1", 200.0))
            assert await store.router_stats(until=400.0) == [
                RouterStat("v1", "m1", 2, 2, 0.75),
                RouterStat("v1", "m2", 1, 0, None),
                RouterStat("v2", "m2", 1, 0, None),
            ]
            assert await store.router_stats(since=400.0) == [RouterStat("v2", "m2", 1, 0, None)]

    asyncio.run(body())


def test_scored_decisions_of_one_version_newest_first(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as store:
            routed = {"endpoint": "router", "routed": True, "router_version": "v1"}
            for i, kw in enumerate(
                (
                    {"model": "m1", "predicted_quality": 0.9, **routed},
                    {"model": "m2", "predicted_quality": 0.7, **routed},
                    {"model": "m1", "predicted_quality": 0.8, **routed},
                    {"model": "m1", "predicted_quality": 0.6, **{**routed, "router_version": "v2"}},
                    {"model": "m1", **routed},  # no prediction kept (an older gateway's row)
                    {"model": "m1", "predicted_quality": 0.5},  # not routed
                )
            ):
                await store.record_usage(row(f"r{i}", **kw))
                await store.put_feedback(Feedback(f"r{i}", "score", i / 10, "k1", 300.0 + i))
            await store.put_feedback(Feedback("r0", "tone", 1.0, "k1", 400.0))  # another metric
            newest_first = [Scored("m1", 0.8, 0.2), Scored("m2", 0.7, 0.1), Scored("m1", 0.9, 0.0)]
            assert await store.scored("v1", 10) == newest_first
            assert await store.scored("v1", 1) == [Scored("m1", 0.8, 0.2)]
            assert await store.scored("v3", 10) == []

    asyncio.run(body())


def test_floats_round_trip_exactly(engine: Engine) -> None:
    costs = [0.1 + 0.2, 1 / 3, 1e-15, 123456.78901234567, math.pi * 1e-7, 2.2250738585072014e-308]
    rows = [
        row(
            f"r{i}",
            created=1732586401.1234567 + i,
            input_cost_usd=c,
            output_cost_usd=c / 7,
            cache_input_cost_usd=c * 3,
            total_cost_usd=c + c / 7 + c * 3,
            latency_ms=c * 1e6,
            ttft_ms=1.7976931348623157e308,
        )
        for i, c in enumerate(costs)
    ]
    budget = key("k1", budget_usd=0.1 + 0.7, created=1732586401.9876543)

    async def body() -> None:
        async with opened(engine.make()) as store:
            await store.add_key(budget)
            for r in rows:
                await store.record_usage(r)
            assert await store.get_key("k1") == budget
            assert await store.usage() == rows[::-1]

    asyncio.run(body())


def test_unicode_text(engine: Engine) -> None:
    tenant = "Zürich-租户-🚀"
    record = key("k_ü", tenant=tenant, name="clé «test» 🔑", allowed_models=("модель", "模型"))
    usage = row("req-ß", "k_ü", tenant, model="модель", error="ошибка ✗")

    async def body() -> None:
        async with opened(engine.make()) as store:
            await store.add_key(record)
            await store.record_usage(usage)
            assert await store.list_keys(tenant) == [record]
            assert await store.get_key("k_ü") == record
            assert await store.usage(tenant=tenant) == [usage]

    asyncio.run(body())


# -- durability -------------------------------------------------------------------------------
def test_second_store_sees_rows(engine: Engine) -> None:
    async def body() -> None:
        async with opened(engine.make()) as first, opened(engine.make()) as second:
            await first.record_usage(row("from-first"))
            assert [r.request_id for r in await second.usage()] == ["from-first"]
            await second.add_key(key("k2"))
            assert await first.get_key("k2") == key("k2")

    asyncio.run(body())


# Opens a store, records one row, says "ok" once record_usage has returned, then waits to be killed.
CHILD = """
import asyncio, sys
from service.store import PostgresStore, SQLiteStore, UsageRow

async def main():
    kind, target, schema = sys.argv[1:4]
    store = SQLiteStore(target) if kind == "sqlite" else PostgresStore(target, schema=schema)
    await store.open()
    await store.record_usage(UsageRow("req-killed", "k1", "acme", 100.0, "router", None, None, 200,
                                      total_cost_usd=0.1 + 0.2))
    print("ok", flush=True)
    sys.stdin.read()

asyncio.run(main())
"""


def test_acknowledged_row_survives_sigkill(engine: Engine) -> None:
    async def prepare() -> None:  # migrate first, so the child only writes the row
        async with opened(engine.make()):
            pass

    asyncio.run(prepare())
    args = [sys.executable, "-c", CHILD, engine.name, engine.target, engine.schema or ""]
    with subprocess.Popen(
        args,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        ready, _, _ = select.select([child.stdout], [], [], 120)
        line = child.stdout.readline() if ready else ""
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert line == "ok\n", child.stderr.read()
        assert child.returncode == -signal.SIGKILL

    async def read_back() -> None:
        async with opened(engine.make()) as store:
            rows = await store.usage(key_id="k1")
            assert [(r.request_id, r.total_cost_usd) for r in rows] == [("req-killed", 0.1 + 0.2)]

    asyncio.run(read_back())


def test_concurrent_rows_share_commits_and_fail_alone(engine: Engine) -> None:
    """Rows recorded together are committed together; a row the database refuses fails only its
    own caller, the others in its batch are committed."""
    good = [row(f"r{i}", created=100.0 + i) for i in range(40)]
    bad = row("bad", model={"not": "text"})  # neither driver can bind a dict

    async def body() -> None:
        async with opened(engine.make()) as store:
            results = await asyncio.gather(
                *(store.record_usage(r) for r in [*good[:20], bad, *good[20:]]), return_exceptions=True
            )
            assert isinstance(results[20], StoreError)
            assert results[:20] + results[21:] == [None] * 40
            assert await store.usage(limit=100) == sorted(good, key=lambda r: -r.created)

    asyncio.run(body())


def test_close_commits_queued_rows(engine: Engine) -> None:
    rows = [row(f"r{i}", created=100.0 + i) for i in range(30)]

    async def body() -> None:
        store = engine.make()
        await store.open()
        puts = [asyncio.create_task(store.record_usage(r)) for r in rows]
        closing = asyncio.create_task(store.close())  # runs after every put has queued its row
        await asyncio.gather(*puts, closing)
        async with opened(engine.make()) as again:
            assert await again.usage(limit=100) == sorted(rows, key=lambda r: -r.created)

    asyncio.run(body())


@pytest.mark.parametrize("alone", [False, True])
def test_sqlite_writers_take_turns_through_a_lock_file(tmp_path: Path, alone: bool) -> None:
    """A ledger write waits in a blocking flock on <file>-writer.lock while another process's writer
    holds it (no busy-handler sleeps), and commits as soon as the lock is released. A store whose
    calls may run on the event loop (`alone`) does not wait there: the write goes to a thread."""
    path = tmp_path / "pureai.db"
    lock = Path(f"{path}-writer.lock")

    def waiting_on(inode: int) -> bool:  # /proc/locks marks a blocked waiter with "->"
        text = Path("/proc/locks").read_text()
        return any("->" in line and "FLOCK" in line and f":{inode} " in line for line in text.splitlines())

    async def body() -> None:
        store = SQLiteStore(path)
        store.alone = lambda: alone
        async with opened(store):
            assert lock.exists()
            other = os.open(lock, os.O_RDWR)  # another writer's turn (a separate open file)
            try:
                fcntl.flock(other, fcntl.LOCK_EX)
                put = asyncio.create_task(store.record_usage(row("r1")))
                for _ in range(500):
                    if waiting_on(os.fstat(other).st_ino):
                        break
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the write never waited on the writers' lock")
                assert not put.done()
                with closing(sqlite3.connect(path)) as conn:
                    assert conn.execute("SELECT count(*) FROM usage").fetchone() == (0,)
                fcntl.flock(other, fcntl.LOCK_UN)
                await put
            finally:
                os.close(other)
            assert [r.request_id for r in await store.usage()] == ["r1"]

    asyncio.run(body())


# -- reachability -----------------------------------------------------------------------------
def test_unreachable_store_fails_fast(engine: Engine, tmp_path: Path) -> None:
    if engine.name == "sqlite":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        store: Store = SQLiteStore(blocker / "pureai.db")
    else:
        store = PostgresStore(f"postgresql://postgres@{PG_HOST}:1/test", schema=engine.schema)

    async def body() -> None:
        with pytest.raises(StoreError) as caught:
            await asyncio.wait_for(store.open(), timeout=30)
        assert "\n" not in str(caught.value)
        with pytest.raises(StoreError):
            await asyncio.wait_for(store.ping(), timeout=30)
        await store.close()

    asyncio.run(body())


class _Proxy:
    """A TCP relay on loopback to the test PostgreSQL server, to be cut like a server going away."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(PG_HOST, PG_PORT)
        self._writers += [client_w, server_w]
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()

    async def stop(self) -> None:
        """Refuse new connections and drop the open ones."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()


def test_postgres_ping_fails_fast_once_the_server_is_gone(pg_schema: str) -> None:
    """Postgres only: a server that disappears after `open()` (SQLite has no server to lose)."""

    async def body() -> None:
        proxy = _Proxy()
        await proxy.start()
        store = PostgresStore(f"postgresql://postgres@127.0.0.1:{proxy.port}/test", schema=pg_schema)
        async with opened(store):
            await store.ping()
            await store.add_key(key("k1"))
            await proxy.stop()
            with pytest.raises(StoreError, match="unreachable"):
                await asyncio.wait_for(store.ping(), timeout=30)

    asyncio.run(body())


# -- URLs and messages ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "kind", "path"),
    [
        ("sqlite:///relative/path.db", SQLiteStore, Path("relative/path.db")),
        ("sqlite:////abs/path.db", SQLiteStore, Path("/abs/path.db")),
        ("sqlite:///with%20space.db", SQLiteStore, Path("with space.db")),
        ("data/pureai.db", SQLiteStore, Path("data/pureai.db")),
        ("/var/lib/pureai/pureai.db", SQLiteStore, Path("/var/lib/pureai/pureai.db")),
        ("postgresql://postgres@127.0.0.1:5432/test", PostgresStore, None),
        ("postgres://postgres@127.0.0.1:5432/test", PostgresStore, None),
        ("POSTGRESQL://postgres@127.0.0.1:5432/test", PostgresStore, None),
    ],
)
def test_open_store_parses_urls(url: str, kind: type[Store], path: Path | None) -> None:
    store = open_store(url)
    assert type(store) is kind
    if path is not None:
        assert isinstance(store, SQLiteStore) and store.path == path


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://root@db/pureai", "unknown scheme 'mysql'"),
        ("redis://127.0.0.1:6379/0", "unknown scheme 'redis'"),
        ("sqlite://", "expected sqlite:///"),
        ("sqlite://host/pureai.db", "expected sqlite:///"),
        ("", "empty"),
    ],
)
def test_open_store_rejects_bad_urls(url: str, why: str) -> None:
    with pytest.raises(StoreError, match=why):
        open_store(url)


def test_relative_sqlite_url_creates_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    async def body() -> None:
        async with opened(open_store("sqlite:///nested/deeper/pureai.db")) as store:
            await store.record_usage(row("r1"))

    asyncio.run(body())
    assert (tmp_path / "nested" / "deeper" / "pureai.db").is_file()


def test_passwords_never_appear_in_messages(pg_schema: str) -> None:
    with pytest.raises(StoreError) as bad_scheme:
        open_store(f"mysql://root:{PASSWORD}@db/pureai")
    with pytest.raises(StoreError) as bad_sqlite:
        open_store(f"sqlite://root:{PASSWORD}@host/pureai.db")
    messages = [str(bad_scheme.value), str(bad_sqlite.value)]
    reprs = [repr(open_store(f"postgresql://postgres:{PASSWORD}@{PG_HOST}:{PG_PORT}/test"))]

    async def body() -> None:
        refused = PostgresStore(f"postgresql://postgres:{PASSWORD}@{PG_HOST}:1/test")
        with pytest.raises(StoreError) as unreachable:
            await refused.open()
        messages.append(str(unreachable.value))
        # The server trusts loopback, so the password is accepted and ignored.
        store = PostgresStore(f"postgresql://postgres:{PASSWORD}@{PG_HOST}:{PG_PORT}/test", schema=pg_schema)
        reprs.append(repr(store))
        async with opened(store):
            await store.add_key(key("k1"))
            with pytest.raises(StoreError) as duplicate:
                await store.add_key(key("k1"))
            messages.append(str(duplicate.value))

    asyncio.run(body())
    for text in messages + reprs:
        assert PASSWORD not in text
        assert "***" in text, text


def test_public_names() -> None:
    assert sorted(store_package.__all__) == sorted(
        [
            "Deployment",
            "Feedback",
            "KeyRecord",
            "RouterStat",
            "Scored",
            "UsageRow",
            "UsageTotals",
            "Store",
            "StoreError",
            "TrainingRow",
            "SQLiteStore",
            "PostgresStore",
            "open_store",
        ]
    )
    for name in store_package.__all__:
        assert getattr(store_package, name) is not None


# -- deployments ------------------------------------------------------------------------------
def test_deployments(engine: Engine) -> None:
    from service.store import Deployment

    spec = {
        "id": "pureai/a",
        "owned_by": "pureai",
        "api_base": "http://h/v1",
        "quality_priors": {"default": 0.5},
    }
    first = Deployment("pureai/a", spec, {"pureai": "sk-a-secret"}, created=10.0)
    second = Deployment("pureai/b", {**spec, "id": "pureai/b", "input_per_mtok": 0.125}, {}, created=5.0)

    async def body() -> None:
        async with opened(engine.make()) as store:
            assert await store.list_deployments() == []
            assert await store.add_deployment(first) is True
            assert await store.add_deployment(second) is True
            assert await store.add_deployment(Deployment("pureai/a", spec, {}, created=20.0)) is False
            assert await store.list_deployments() == [second, first]  # oldest first; the first write kept
        async with opened(engine.make()) as store:  # another process sees them
            assert [d.id for d in await store.list_deployments()] == ["pureai/b", "pureai/a"]
            assert await store.remove_deployment("pureai/a") is True
            assert await store.remove_deployment("pureai/a") is False
            assert await store.list_deployments() == [second]

    asyncio.run(body())

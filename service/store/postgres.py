"""`PostgresStore`: keys and the ledger in PostgreSQL, through a psycopg 3 async connection pool.

`open()` first connects once on its own (so an unreachable server gives libpq's own reason, within
`CONNECT_TIMEOUT`), runs the migrations on that connection under a transaction-level advisory lock,
then opens the pool. Pooled connections are in autocommit mode: each statement is committed when
the call returns. A pooled connection is checked before use, so a restarted server costs no failed
call, and a stopped one makes the call fail within a few seconds rather than hang. Ledger rows are
group-committed (`GroupCommit`): the rows of concurrent requests go in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from . import _schema as schema
from ._group import GroupCommit
from ._types import (
    Deployment,
    Feedback,
    KeyRecord,
    RouterStat,
    Scored,
    Store,
    TrainingRow,
    UsageRow,
    UsageTotals,
)
from .errors import StoreError, redact

__all__ = ["PostgresStore"]

CONNECT_TIMEOUT = 3
"""Seconds libpq may take to connect (its `connect_timeout`; psycopg waits at least 2)."""
WAIT_TIMEOUT = 5.0
"""Seconds a call may wait for a pooled connection (`ping` waits `CONNECT_TIMEOUT`)."""
MIN_SIZE, MAX_SIZE = 1, 10
MIGRATION_LOCK = 0x7075726561692D73
"""`pg_advisory_xact_lock` key held while migrating ("pureai-s" in ASCII)."""
BUDGET_LOCK = 0x70757262
"""First half of the two-key `pg_advisory_xact_lock` a budget reservation holds ("purb" in ASCII);
the second is the hash of the key id."""
_LOCK_BUDGET = f"SELECT pg_advisory_xact_lock({BUDGET_LOCK}, hashtext(%s))"

Connection = psycopg.AsyncConnection[TupleRow]


class PostgresStore(Store):
    """Keys and the usage ledger in the PostgreSQL database at `url`.

    With `schema`, the store creates that schema if needed and keeps its tables there (every
    pooled connection gets `SET search_path`); tests use it to get a fresh database each.
    """

    def __init__(self, url: str, schema: str | None = None) -> None:
        self._url = url
        self.schema = schema
        self.where = f"PostgreSQL at {redact(url)}"
        """The database, for messages and logs: the URL with its password hidden."""
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._ledger = GroupCommit(self._insert_usage)

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self._url)!r}, schema={self.schema!r})"

    # -- plumbing -----------------------------------------------------------------------------
    def _error(self, exc: BaseException, action: str) -> StoreError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        try:
            password = conninfo_to_dict(self._url).get("password")
        except psycopg.Error:
            password = None
        if password:
            reason = reason.replace(str(password), "***")
        return StoreError(f"{self.where}: {action}: {redact(reason)}")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Map driver errors raised in the block to `StoreError`."""
        try:
            yield
        except (psycopg.Error, OSError) as exc:
            raise self._error(exc, action) from exc

    def _ready(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise StoreError(f"{self.where}: not open; call open() first")
        return self._pool

    async def _fetchall(self, query: str, params: tuple[Any, ...], action: str) -> list[TupleRow]:
        pool = self._ready()
        with self._errors(action):
            async with pool.connection() as conn:
                cursor = await conn.execute(schema.pyformat(query), params)
                return await cursor.fetchall()

    async def _fetchone(self, query: str, params: tuple[Any, ...], action: str) -> TupleRow | None:
        rows = await self._fetchall(query, params, action)
        return rows[0] if rows else None

    async def _execute(self, query: str, params: tuple[Any, ...], action: str) -> int:
        """Run one statement (committed on return); the number of rows it changed."""
        pool = self._ready()
        with self._errors(action):
            async with pool.connection() as conn:
                cursor = await conn.execute(schema.pyformat(query), params)
                return cursor.rowcount

    async def _configure(self, conn: Connection) -> None:
        """Point a new connection at `self.schema` (autocommit, so the setting stays)."""
        if self.schema is not None:
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    async def _migrate(self, conn: Connection) -> None:
        """Apply pending migrations in one transaction, holding an advisory lock so that a second
        process opening at the same time waits, then finds nothing to do."""
        async with conn.transaction():
            await conn.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            if self.schema is not None:
                await conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
            await conn.execute(schema.CREATE_VERSION_TABLE)
            cursor = await conn.execute(schema.SELECT_VERSION)
            row = await cursor.fetchone()
            current = int(row[0]) if row is not None else 0
            for version, statements in schema.pending(current, self.where):
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(schema.pyformat(schema.INSERT_VERSION), (version, time.time()))

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        with self._errors("cannot open the store"):
            conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
            async with conn:
                await self._configure(conn)
                await self._migrate(conn)
            pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
                self._url,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                min_size=MIN_SIZE,
                max_size=MAX_SIZE,
                open=False,
                configure=self._configure,
                check=AsyncConnectionPool.check_connection,
                timeout=WAIT_TIMEOUT,
                name="pureai-store",
            )
            try:
                await pool.open(wait=True, timeout=2 * CONNECT_TIMEOUT)
            except BaseException:
                await pool.close()
                raise
        self._pool = pool

    async def close(self) -> None:
        await self._ledger.flush()
        pool, self._pool = self._pool, None
        if pool is not None:
            with self._errors("cannot close the store"):
                await pool.close()

    async def ping(self) -> None:
        pool = self._ready()
        with self._errors("unreachable"):
            async with pool.connection(timeout=CONNECT_TIMEOUT) as conn:
                await conn.execute("SELECT 1")

    # -- keys ---------------------------------------------------------------------------------
    async def add_key(self, record: KeyRecord) -> None:
        action = f"cannot add key {record.id!r}"
        if not await self._execute(schema.INSERT_KEY, schema.key_params(record), action):
            raise StoreError(f"{self.where}: key id {record.id!r} exists")

    async def get_key(self, key_id: str) -> KeyRecord | None:
        row = await self._fetchone(schema.SELECT_KEY, (key_id,), f"cannot read key {key_id!r}")
        return None if row is None else schema.key_from_row(row)

    async def list_keys(self, tenant: str | None = None) -> list[KeyRecord]:
        if tenant is None:
            rows = await self._fetchall(schema.LIST_KEYS, (), "cannot list keys")
        else:
            rows = await self._fetchall(schema.LIST_TENANT_KEYS, (tenant,), "cannot list keys")
        return [schema.key_from_row(row) for row in rows]

    async def revoke_key(self, key_id: str, when: float) -> bool:
        action = f"cannot revoke key {key_id!r}"
        return await self._execute(schema.REVOKE_KEY, (when, key_id), action) == 1

    async def count_admin_keys(self) -> int:
        params = schema.COUNT_ADMIN_KEYS_PARAMS
        row = await self._fetchone(schema.COUNT_ADMIN_KEYS, params, "cannot count admin keys")
        return int(row[0]) if row is not None else 0

    # -- ledger -------------------------------------------------------------------------------
    async def record_usage(self, row: UsageRow) -> None:
        await self._ledger.put(row)

    async def _insert_usage(self, rows: list[UsageRow]) -> None:
        """Insert rows in one transaction (psycopg pipelines the statements: one round trip)."""
        pool = self._ready()
        ids = ", ".join(repr(row.request_id) for row in rows[:3]) + (", ..." if len(rows) > 3 else "")
        with self._errors(f"cannot record usage of request {ids}"):
            async with pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(
                    schema.pyformat(schema.INSERT_USAGE), [schema.usage_params(row) for row in rows]
                )

    async def usage(
        self,
        *,
        key_id: str | None = None,
        tenant: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[UsageRow]:
        query, params = schema.usage_query(key_id, tenant, since, until, limit)
        rows = await self._fetchall(query, params, "cannot read usage")
        return [schema.usage_from_row(row) for row in rows]

    async def usage_totals(
        self,
        *,
        key_id: str | None = None,
        tenant: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> UsageTotals:
        query, params = schema.usage_totals_query(key_id, tenant, since, until)
        return schema.usage_totals_from_row(await self._fetchone(query, params, "cannot sum usage"))

    async def spend_usd(self, key_id: str) -> float:
        row = await self._fetchone(schema.SPEND, (key_id,), f"cannot sum spend of key {key_id!r}")
        return float(row[0]) if row is not None else 0.0

    async def usage_of(self, request_id: str) -> list[UsageRow]:
        action = f"cannot read usage of request {request_id!r}"
        rows = await self._fetchall(schema.SELECT_USAGE_OF, (request_id,), action)
        return [schema.usage_from_row(row) for row in rows]

    # -- budget reservations ------------------------------------------------------------------
    async def reserve_usd(
        self, key_id: str, request_id: str, amount: float, limit: float, now: float, expires: float
    ) -> tuple[bool, float, float]:
        """One transaction holding an advisory lock on the key: reservations of one key take turns,
        and each one's reading of spent and held (one statement) sees the commits before it."""
        pool = self._ready()
        with self._errors(f"cannot reserve budget for key {key_id!r}"):
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(_LOCK_BUDGET, (key_id,))
                done = (key_id, schema.USD, now)
                await conn.execute(schema.pyformat(schema.DELETE_DONE_RESERVATIONS), done)
                cursor = await conn.execute(
                    schema.pyformat(schema.SPENT_AND_HELD_USD), (key_id, key_id, schema.USD, now)
                )
                row = await cursor.fetchone()
                spent, held = (float(row[0]), float(row[1])) if row is not None else (0.0, 0.0)
                admitted = spent + held + amount <= limit
                if admitted:
                    params = (request_id, schema.USD, key_id, amount, expires)
                    await conn.execute(schema.pyformat(schema.INSERT_RESERVATION), params)
        return admitted, spent, held

    async def release_reservation(self, request_id: str, unit: str = schema.USD) -> None:
        action = f"cannot release the reservation of request {request_id!r}"
        await self._execute(schema.DELETE_RESERVATION, (request_id, unit), action)

    async def renew_reservations(
        self, request_ids: Sequence[str], expires: float, unit: str = schema.USD
    ) -> None:
        if not request_ids:
            return
        pool = self._ready()
        with self._errors("cannot renew reservations"):
            async with pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(
                    schema.pyformat(schema.RENEW_RESERVATION), [(expires, r, unit) for r in request_ids]
                )

    # -- deployments --------------------------------------------------------------------------
    async def add_deployment(self, deployment: Deployment) -> bool:
        action = f"cannot add deployment {deployment.id!r}"
        params = schema.deployment_params(deployment)
        return await self._execute(schema.INSERT_DEPLOYMENT, params, action) == 1

    async def list_deployments(self) -> list[Deployment]:
        rows = await self._fetchall(schema.LIST_DEPLOYMENTS, (), "cannot list deployments")
        return [schema.deployment_from_row(row) for row in rows]

    async def remove_deployment(self, deployment_id: str) -> bool:
        action = f"cannot remove deployment {deployment_id!r}"
        return await self._execute(schema.DELETE_DEPLOYMENT, (deployment_id,), action) == 1

    # -- prompts ------------------------------------------------------------------------------
    async def record_prompt(self, request_id: str, key_id: str, created: float, prompt: str) -> None:
        params = (request_id, key_id, created, prompt)
        await self._execute(schema.INSERT_PROMPT, params, f"cannot record the prompt of {request_id!r}")

    async def forget_prompts(self, before: float) -> int:
        return await self._execute(schema.FORGET_PROMPTS, (before,), "cannot delete old prompts")

    async def training_rows(
        self, since: float | None = None, until: float | None = None
    ) -> list[TrainingRow]:
        query, params = schema.training_query(since, until)
        rows = await self._fetchall(query, params, "cannot read training rows")
        return [schema.training_from_row(row) for row in rows]

    async def scored(self, version: str, limit: int) -> list[Scored]:
        rows = await self._fetchall(schema.SCORED, (True, version, limit), "cannot read feedback")
        return [schema.scored_from_row(row) for row in rows]

    async def router_stats(self, since: float | None = None, until: float | None = None) -> list[RouterStat]:
        query, params = schema.router_stats_query(since, until)
        rows = await self._fetchall(query, params, "cannot read router statistics")
        return [schema.router_stat_from_row(row) for row in rows]

    # -- feedback -----------------------------------------------------------------------------
    async def put_feedback(self, feedback: Feedback) -> bool:
        """One transaction: whether a row exists, then the upsert (`FOR UPDATE` serialises two
        writers of an existing row; two first writers both see none, and both say new)."""
        pool = self._ready()
        with self._errors(f"cannot record feedback on request {feedback.request_id!r}"):
            async with pool.connection() as conn, conn.transaction():
                key = (feedback.request_id, feedback.metric)
                cursor = await conn.execute(schema.pyformat(schema.SELECT_FEEDBACK_ONE + " FOR UPDATE"), key)
                new = await cursor.fetchone() is None
                await conn.execute(schema.pyformat(schema.UPSERT_FEEDBACK), schema.feedback_params(feedback))
                return new

    async def feedback(
        self,
        *,
        key_id: str | None = None,
        request_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[Feedback]:
        query, params = schema.feedback_query(key_id, request_id, since, until, limit)
        rows = await self._fetchall(query, params, "cannot read feedback")
        return [schema.feedback_from_row(row) for row in rows]

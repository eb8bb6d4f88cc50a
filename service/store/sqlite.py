"""`SQLiteStore`: keys and the ledger in one SQLite file (the default store).

One connection, shared by every call under a lock; each call runs in a worker thread
(`asyncio.to_thread`) so the event loop does not wait on the disk while it has other requests to
serve. When it has none (`alone()`, which the gateway sets to "this request is the worker's only
one") and neither lock below is held, a ledger commit or a one-row read runs on the event loop
itself: the two thread hops cost ~0.2 ms of a lone request's latency on a VM, more than the commit
itself. Calls whose cost grows with the data (lists, exports, deleting expired prompts) always run
in a thread, so that they never hold up /health or a request that arrives meanwhile.

The file (and its -wal, -shm and lock files) is 0600, in a folder created 0700. It is in WAL mode
with `synchronous=FULL`: a row is on disk when `record_usage` returns, and
survives the process being killed. Ledger rows are group-committed (`GroupCommit`: the rows of
concurrent requests share one transaction, so one fsync); every other statement outside migrations
runs in autocommit mode, so it is committed on return.

Writers in several processes (`pureai serve --workers N` on one file) take turns through an
exclusive `flock` on `<file>-writer.lock` before they write. Without it, a writer that finds the
file locked falls to SQLite's busy handler, which sleeps 1, 2, 5, ... up to 100 ms between tries
and can lose the race again and again while the other process keeps committing: requests that wait
for their ledger row then take 100-250 ms instead of a few. A blocked `flock` wakes as soon as the
lock is released. The busy timeout still covers writers that do not take the lock (another program,
the `sqlite3` shell).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

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
from .errors import StoreError

__all__ = ["SQLiteStore"]

BUSY_TIMEOUT_MS = 5000

P = ParamSpec("P")
T = TypeVar("T")


class SQLiteStore(Store):
    """Keys and the usage ledger in the SQLite file at `path` (parent folders are created)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._writers: int | None = None  # the fd of <file>-writer.lock; None for ":memory:"
        self.alone: Callable[[], bool] = lambda: False
        """Whether nothing else waits for the event loop (set by the gateway); then calls run on it."""
        self._ledger = GroupCommit(self._insert_usage)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- plumbing -----------------------------------------------------------------------------
    async def _run(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(connection, *args)`, holding the lock, errors mapped: on the event loop when the
        worker is alone and the locks are free at once, else in a worker thread."""
        brief = any(fn is f for f in _BRIEF)
        if brief and self.alone():
            done, result = self._at_once(fn, *args, **kwargs)
            if done:
                return cast(T, result)
        return await asyncio.to_thread(functools.partial(self._call, fn, *args, **kwargs))

    def _call(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self._lock, self._turn(fn in _WRITES, wait=True):
            return self._apply(fn, *args, **kwargs)

    def _at_once(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> tuple[bool, T | None]:
        """(True, fn's result) if both locks were free; (False, None), having done nothing, if not."""
        if not self._lock.acquire(blocking=False):
            return False, None
        try:
            with self._turn(fn in _WRITES, wait=False) as turn:
                if not turn:
                    return False, None
                return True, self._apply(fn, *args, **kwargs)
        finally:
            self._lock.release()

    def _apply(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._conn is None:
            raise StoreError(f"SQLite store {self.path}: not open; call open() first")
        try:
            return fn(self._conn, *args, **kwargs)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    @contextlib.contextmanager
    def _turn(self, write: bool, wait: bool) -> Iterator[bool]:
        """For a write, this process's turn among the file's writers (an exclusive flock): True
        once it has it; with `wait=False`, False at once if another writer has it."""
        if not write or self._writers is None:
            yield True
            return
        try:
            fcntl.flock(self._writers, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        except OSError as exc:
            raise self._error(exc) from exc
        try:
            yield True
        finally:
            fcntl.flock(self._writers, fcntl.LOCK_UN)

    def _error(self, exc: sqlite3.Error | OSError) -> StoreError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return StoreError(f"SQLite store {self.path}: {reason}")

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            conn: sqlite3.Connection | None = None
            try:
                if str(self.path) != ":memory:":
                    _private(self.path)
                    lock = f"{self.path}-writer.lock"
                    self._writers = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                conn = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                _wal(conn)
                conn.execute("PRAGMA synchronous = FULL")
                _migrate(conn, str(self.path))
            except (sqlite3.Error, OSError) as exc:
                self._release(conn)
                raise self._error(exc) from exc
            except BaseException:
                self._release(conn)
                raise
            self._conn = conn

    def _release(self, conn: sqlite3.Connection | None) -> None:
        writers, self._writers = self._writers, None
        try:
            if conn is not None:
                conn.close()
        finally:
            if writers is not None:
                os.close(writers)

    async def close(self) -> None:
        await self._ledger.flush()
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            try:
                self._release(conn)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    async def ping(self) -> None:
        """Read the schema version: it touches the file, unlike `SELECT 1`."""
        await self._run(_fetchone, schema.SELECT_VERSION, ())

    # -- keys ---------------------------------------------------------------------------------
    async def add_key(self, record: KeyRecord) -> None:
        added = await self._run(_execute, schema.INSERT_KEY, schema.key_params(record))
        if not added:
            raise StoreError(f"SQLite store {self.path}: key id {record.id!r} exists")

    async def get_key(self, key_id: str) -> KeyRecord | None:
        row = await self._run(_fetchone, schema.SELECT_KEY, (key_id,))
        return None if row is None else schema.key_from_row(row)

    async def list_keys(self, tenant: str | None = None) -> list[KeyRecord]:
        if tenant is None:
            rows = await self._run(_fetchall, schema.LIST_KEYS, ())
        else:
            rows = await self._run(_fetchall, schema.LIST_TENANT_KEYS, (tenant,))
        return [schema.key_from_row(row) for row in rows]

    async def revoke_key(self, key_id: str, when: float) -> bool:
        return await self._run(_execute, schema.REVOKE_KEY, (when, key_id)) == 1

    async def count_admin_keys(self) -> int:
        row = await self._run(_fetchone, schema.COUNT_ADMIN_KEYS, schema.COUNT_ADMIN_KEYS_PARAMS)
        return int(row[0]) if row is not None else 0

    # -- ledger -------------------------------------------------------------------------------
    async def record_usage(self, row: UsageRow) -> None:
        await self._ledger.put(row)

    async def _insert_usage(self, rows: list[UsageRow]) -> None:
        await self._run(_insert_many, schema.INSERT_USAGE, [schema.usage_params(row) for row in rows])

    async def usage(
        self,
        *,
        key_id: str | None = None,
        tenant: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[UsageRow]:
        sql, params = schema.usage_query(key_id, tenant, since, until, limit)
        rows = await self._run(_fetchall, sql, params)
        return [schema.usage_from_row(row) for row in rows]

    async def usage_totals(
        self,
        *,
        key_id: str | None = None,
        tenant: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> UsageTotals:
        sql, params = schema.usage_totals_query(key_id, tenant, since, until)
        return schema.usage_totals_from_row(await self._run(_fetchone, sql, params))

    async def spend_usd(self, key_id: str) -> float:
        row = await self._run(_fetchone, schema.SPEND, (key_id,))
        return float(row[0]) if row is not None else 0.0

    async def usage_of(self, request_id: str) -> list[UsageRow]:
        rows = await self._run(_fetchall, schema.SELECT_USAGE_OF, (request_id,))
        return [schema.usage_from_row(row) for row in rows]

    # -- budget reservations ------------------------------------------------------------------
    async def reserve_usd(
        self, key_id: str, request_id: str, amount: float, limit: float, now: float, expires: float
    ) -> tuple[bool, float, float]:
        return await self._run(_reserve_usd, key_id, request_id, amount, limit, now, expires)

    async def release_reservation(self, request_id: str, unit: str = schema.USD) -> None:
        await self._run(_execute, schema.DELETE_RESERVATION, (request_id, unit))

    async def renew_reservations(
        self, request_ids: Sequence[str], expires: float, unit: str = schema.USD
    ) -> None:
        if request_ids:
            params = [(expires, request_id, unit) for request_id in request_ids]
            await self._run(_insert_many, schema.RENEW_RESERVATION, params)

    # -- deployments --------------------------------------------------------------------------
    async def add_deployment(self, deployment: Deployment) -> bool:
        return await self._run(_execute, schema.INSERT_DEPLOYMENT, schema.deployment_params(deployment)) == 1

    async def list_deployments(self) -> list[Deployment]:
        rows = await self._run(_fetchall, schema.LIST_DEPLOYMENTS, ())
        return [schema.deployment_from_row(row) for row in rows]

    async def remove_deployment(self, deployment_id: str) -> bool:
        return await self._run(_execute, schema.DELETE_DEPLOYMENT, (deployment_id,)) == 1

    # -- prompts ------------------------------------------------------------------------------
    async def record_prompt(self, request_id: str, key_id: str, created: float, prompt: str) -> None:
        await self._run(_execute, schema.INSERT_PROMPT, (request_id, key_id, created, prompt))

    async def forget_prompts(self, before: float) -> int:
        return await self._run(_execute, schema.FORGET_PROMPTS, (before,))

    async def training_rows(
        self, since: float | None = None, until: float | None = None
    ) -> list[TrainingRow]:
        sql, params = schema.training_query(since, until)
        return [schema.training_from_row(row) for row in await self._run(_fetchall, sql, params)]

    async def scored(self, version: str, limit: int) -> list[Scored]:
        rows = await self._run(_fetchall, schema.SCORED, (True, version, limit))
        return [schema.scored_from_row(row) for row in rows]

    async def router_stats(self, since: float | None = None, until: float | None = None) -> list[RouterStat]:
        sql, params = schema.router_stats_query(since, until)
        return [schema.router_stat_from_row(row) for row in await self._run(_fetchall, sql, params)]

    # -- feedback -----------------------------------------------------------------------------
    async def put_feedback(self, feedback: Feedback) -> bool:
        return await self._run(_upsert, feedback)

    async def feedback(
        self,
        *,
        key_id: str | None = None,
        request_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[Feedback]:
        sql, params = schema.feedback_query(key_id, request_id, since, until, limit)
        rows = await self._run(_fetchall, sql, params)
        return [schema.feedback_from_row(row) for row in rows]


def _execute(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    """Run one statement (committed on return, autocommit); the number of rows it changed."""
    return conn.execute(sql, params).rowcount


def _insert_many(conn: sqlite3.Connection, sql: str, params: list[tuple[Any, ...]]) -> None:
    """Insert rows in one transaction: one commit (one fsync of the WAL) for all of them."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(sql, params)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _fetchone(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Any:
    return conn.execute(sql, params).fetchone()


def _fetchall(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def _upsert(conn: sqlite3.Connection, feedback: Feedback) -> bool:
    """Write one feedback row in a transaction; True if there was none for its request and metric."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        new = (
            conn.execute(schema.SELECT_FEEDBACK_ONE, (feedback.request_id, feedback.metric)).fetchone()
            is None
        )
        conn.execute(schema.UPSERT_FEEDBACK, schema.feedback_params(feedback))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return new


def _reserve_usd(
    conn: sqlite3.Connection,
    key_id: str,
    request_id: str,
    amount: float,
    limit: float,
    now: float,
    expires: float,
) -> tuple[bool, float, float]:
    """`Store.reserve_usd` in one `BEGIN IMMEDIATE` transaction: the write lock (and, across
    processes, the writers' turn) serialises it with every other reservation and ledger commit."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(schema.DELETE_DONE_RESERVATIONS, (key_id, schema.USD, now))
        spent, held = conn.execute(schema.SPENT_AND_HELD_USD, (key_id, key_id, schema.USD, now)).fetchone()
        admitted = float(spent) + float(held) + amount <= limit
        if admitted:
            conn.execute(schema.INSERT_RESERVATION, (request_id, schema.USD, key_id, amount, expires))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return admitted, float(spent), float(held)


_WRITES = (_execute, _insert_many, _upsert, _reserve_usd)
"""What writes, and so waits for its turn among the file's writers; everything else reads."""
_BRIEF = (_insert_many, _fetchone, _reserve_usd)
"""What may run on the event loop (see the module's docstring): a batch of ledger rows, one row read,
a budget reservation."""


def _migrate(conn: sqlite3.Connection, where: str) -> None:
    """Apply pending migrations in one `BEGIN IMMEDIATE` transaction: the write lock is taken
    first, so a second process opening at the same time waits, then finds nothing to do."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(schema.CREATE_VERSION_TABLE)
        (current,) = conn.execute(schema.SELECT_VERSION).fetchone()
        for version, statements in schema.pending(int(current), f"SQLite store {where}"):
            for statement in statements:
                conn.execute(statement)
            conn.execute(schema.INSERT_VERSION, (version, time.time()))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _private(path: Path) -> None:
    """The store's folder (if new) 0700 and its file 0600, before SQLite opens it: its -wal and -shm
    files take the file's mode. A file an earlier version made 0644 is made 0600; an existing folder
    is left as it is (it may be shared, like /tmp)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # another user's: theirs to set
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. SQLite answers "database is locked" at once, without its busy handler, when
    another connection holds the file while the journal mode changes (two processes opening a new
    database together): retry for up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)  # another process holds the file: wait for it, backing off
        delay = min(delay * 2, 0.1)

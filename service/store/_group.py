"""`GroupCommit`: ledger rows written by many requests at once, committed together.

Each caller of `put(row)` waits until its row is committed, as before; what changes is that the
rows queued while one commit is under way go in the next one, a single transaction (one fsync for
SQLite, one round trip for PostgreSQL) however many there are. Under load the batches grow by
themselves; a lone request's row is committed at once, with no delay added. If a batch fails, its
rows are tried one by one, so one bad row fails only its own request.

A caller that is cancelled while it waits does not take its row back: it stays queued and is
committed. `flush()` waits for every queued row (the store's `close()` calls it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ._types import UsageRow

__all__ = ["GroupCommit"]

Write = Callable[[list[UsageRow]], Awaitable[None]]


class GroupCommit:
    def __init__(self, write: Write) -> None:
        self._write = write
        self._queue: list[tuple[UsageRow, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def put(self, row: UsageRow) -> None:
        """Queue `row`; return once it is committed (or raise the store's error)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.append((row, done))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._drain())
        await done

    async def flush(self) -> None:
        """Wait until every row queued so far is committed (or has failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._commit(batch)
            except asyncio.CancelledError:  # the loop is ending: no caller is left waiting forever
                for _, done in batch + self._queue:
                    done.cancel()
                self._queue = []
                raise

    async def _commit(self, batch: list[tuple[UsageRow, asyncio.Future[None]]]) -> None:
        try:
            await self._write([row for row, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for item in batch:  # one bad row must not fail the others: each on its own
                await self._commit([item])
            return
        for _, done in batch:
            _settle(done, None)


def _settle(done: asyncio.Future[None], exc: Exception | None) -> None:
    if done.done():  # its caller was cancelled; the row is committed (or failed) all the same
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)

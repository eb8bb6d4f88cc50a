"""GroupCommit on its own: the rows queued while a commit is under way go in the next one."""

from __future__ import annotations

import asyncio

import pytest

from service.store import UsageRow
from service.store._group import GroupCommit


def row(request_id: str) -> UsageRow:
    return UsageRow(request_id, "k1", "acme", 100.0, "chat.completions", "m", "p", 200)


def test_rows_queued_during_a_commit_share_the_next() -> None:
    async def body() -> None:
        batches: list[list[str]] = []
        writing, release = asyncio.Event(), asyncio.Event()

        async def write(rows: list[UsageRow]) -> None:
            batches.append([r.request_id for r in rows])
            writing.set()
            await release.wait()

        group = GroupCommit(write)
        first = asyncio.create_task(group.put(row("a")))
        await writing.wait()  # the first commit is under way
        rest = [asyncio.create_task(group.put(row(f"b{i}"))) for i in range(10)]
        asyncio.get_running_loop().call_soon(release.set)  # after the ten have queued
        await asyncio.gather(first, *rest)
        assert batches == [["a"], [f"b{i}" for i in range(10)]]

    asyncio.run(body())


def test_a_failed_batch_is_retried_row_by_row() -> None:
    async def body() -> None:
        committed: list[str] = []

        async def write(rows: list[UsageRow]) -> None:
            if any(r.request_id == "bad" for r in rows):
                raise ValueError("refused")
            committed.extend(r.request_id for r in rows)

        group = GroupCommit(write)
        results = await asyncio.gather(
            *(group.put(row(name)) for name in ("a", "bad", "c")), return_exceptions=True
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], ValueError)
        assert committed == ["a", "c"]

    asyncio.run(body())


def test_a_cancelled_caller_leaves_its_row_queued() -> None:
    async def body() -> None:
        committed: list[str] = []
        release = asyncio.Event()

        async def write(rows: list[UsageRow]) -> None:
            await release.wait()
            committed.extend(r.request_id for r in rows)

        group = GroupCommit(write)
        put = asyncio.create_task(group.put(row("a")))
        asyncio.get_running_loop().call_soon(put.cancel)
        with pytest.raises(asyncio.CancelledError):
            await put
        release.set()
        await group.flush()
        assert committed == ["a"]

    asyncio.run(body())

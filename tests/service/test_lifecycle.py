"""The gateway's life under stress (reliability cases 15 and 31-34): SIGTERM with open streams, kill -9
right after an answer, requests past capacity, a client that stops reading, two workers sharing
Redis, Redis and PostgreSQL going down. The tests that stop or break their gateway start one of
their own over the fake upstreams (A serves gpt-4o-mini); the others share `small`. The ledger is
read straight from the store, after the gateway has gone where it matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from service.store import UsageRow, open_store
from tests.service.calls import chat, frames, h, text_of
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import ADMIN_KEY, PUREAI, Gateway, free_port

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"
REDIS = "redis://127.0.0.1:6379/0"
NO_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
ERROR_FIELDS = {"message", "type", "param", "code"}
Upstreams = tuple[FakeUpstream, FakeUpstream]


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def ledger(env: dict[str, str], tenant: str) -> list[UsageRow]:
    """The tenant's ledger rows, read from the gateway's store (SQLite file or PostgreSQL schema)."""

    async def read() -> list[UsageRow]:
        store = open_store(env["PUREAI_DATABASE_URL"])
        await store.open()
        try:
            return await store.usage(tenant=tenant)
        finally:
            await store.close()

    return asyncio.run(read())


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_FIELDS, body
    assert body["error"]["code"] == code, body
    error: dict[str, Any] = body["error"]
    return error


def wait_until_refused(port: int, timeout: float = 5.0) -> float:
    """Poll new connections to `port` until one is refused; the seconds that took."""
    started = time.monotonic()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"new connections still accepted {timeout}s after SIGTERM")
        time.sleep(0.01)  # polling with a deadline


async def read_stream(client: httpx.AsyncClient, key: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
    """A streamed request's status, raw body, and how it ended: "complete", or the error's name."""
    status, raw = 0, b""
    try:
        async with client.stream("POST", "/v1/chat/completions", headers=h(key), json=body) as r:
            status = r.status_code
            async for part in r.aiter_raw():
                raw += part
    except httpx.HTTPError as exc:
        return status, raw, type(exc).__name__
    return status, raw, "complete"


# -- case 33: SIGTERM with open streams -------------------------------------------------------------


def test_sigterm_refuses_new_connections_and_lets_fifty_open_streams_finish(
    catalogue_file: Path, tmp_path: Path, fresh: Upstreams
) -> None:
    """SIGTERM closes the listening socket at once (a new connection is refused while the streams
    run), every open stream runs to [DONE] within the graceful deadline, the process exits 0, and
    each stream has its ledger row (written before its [DONE])."""
    a, _ = fresh
    n, content = 50, words(30)
    a.script(*({"content": content, "chunk_delay_ms": 50} for _ in range(n)))  # ~1.5 s per stream
    env = gateway_env(catalogue_file, tmp_path, PUREAI_GRACEFUL_TIMEOUT_S="30")
    with Gateway.start(env) as gw:
        key = gw.new_key(tenant="t-drain")

        async def body() -> tuple[list[tuple[int, bytes, str]], float, bool, int, float]:
            limits = httpx.Limits(max_connections=n)
            async with httpx.AsyncClient(base_url=gw.url, timeout=60, limits=limits, trust_env=False) as c:
                streams = [
                    asyncio.create_task(read_stream(c, key, chat(f"s{i}", stream=True))) for i in range(n)
                ]
                await a.wait_for_async(lambda reqs: len(reqs) == n, timeout=30)
                sent = time.monotonic()
                gw.process.send_signal(signal.SIGTERM)
                refused_after = await asyncio.to_thread(wait_until_refused, gw.port)
                all_finished = all(r["finished"] for r in await asyncio.to_thread(a.requests))
                results = await asyncio.gather(*streams)
            code = await asyncio.to_thread(gw.process.wait, 40)
            return results, refused_after, all_finished, code, time.monotonic() - sent

        results, refused_after, finished_when_refused, code, exit_s = asyncio.run(body())
    assert not finished_when_refused  # refused while the streams were still running
    assert refused_after < 1.0
    for status, raw, end in results:
        assert (status, end) == (200, "complete")
        events = frames(raw)
        assert events[-1] == "[DONE]" and text_of(events) == content
    assert code == 0 and exit_s < 30
    rows = ledger(env, "t-drain")
    assert len(rows) == n
    assert all((r.status, r.error, r.stream, r.completion_tokens) == (200, None, True, 30) for r in rows)


EXIT_TOLERANCE_S = 0.15
"""How far past the grace period a measured exit may be: the budget (service/server.py `Grace`) ends
the process inside the period; this covers the test's own side, the signal's delivery and the wait
for the child's exit status in a thread of a busy machine."""


def test_streams_past_the_graceful_deadline_end_with_a_shutdown_event_within_the_grace(
    catalogue_file: Path, tmp_path: Path, fresh: Upstreams
) -> None:
    """With a 1 s grace period and streams that need 5 s: at the deadline each stream ends with an
    SSE error event `shutdown` in place of [DONE], between two frames, and a complete chunked body
    (no client error: a deliberate stop, not a broken network); a non-streamed request still
    waiting upstream gets a 503 `shutdown` (not uvicorn's bare 500); the process has exited 0 within
    the grace period (+ EXIT_TOLERANCE_S), and every request has its ledger row, the streams' with
    the tokens they sent."""
    grace = 1.0
    a, _ = fresh
    n = 10
    a.script(*({"content": words(50), "chunk_delay_ms": 100} for _ in range(n)), {"headers_delay_ms": 5000})
    env = gateway_env(
        catalogue_file,
        tmp_path,
        PUREAI_GRACEFUL_TIMEOUT_S=str(grace),
        PUREAI_REQUEST_TIMEOUT_S="30",
    )
    with Gateway.start(env) as gw:
        key = gw.new_key(tenant="t-cut")

        async def stream(c: httpx.AsyncClient, i: int, first: asyncio.Event) -> tuple[bytes, str]:
            """Read a stream; `first` is set once its first content arrived. Its body and ending."""
            raw = b""
            try:
                async with c.stream(
                    "POST", "/v1/chat/completions", headers=h(key), json=chat(f"s{i}", stream=True)
                ) as r:
                    async for part in r.aiter_raw():
                        raw += part
                        if b'"content":"w' in raw:
                            first.set()
            except httpx.HTTPError as exc:
                return raw, type(exc).__name__
            return raw, "complete"

        async def body() -> tuple[list[tuple[bytes, str]], httpx.Response, int, float]:
            limits = httpx.Limits(max_connections=n + 1)
            async with httpx.AsyncClient(base_url=gw.url, timeout=60, limits=limits, trust_env=False) as c:
                firsts = [asyncio.Event() for _ in range(n)]
                streams = [asyncio.create_task(stream(c, i, firsts[i])) for i in range(n)]
                for first in firsts:
                    await asyncio.wait_for(first.wait(), 30)
                plain = asyncio.create_task(c.post("/v1/chat/completions", headers=h(key), json=chat("p")))
                await a.wait_for_async(lambda reqs: len(reqs) == n + 1, timeout=10)
                sent = time.monotonic()
                gw.process.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(gw.process.wait, 30)
                exit_s = time.monotonic() - sent
                return await asyncio.gather(*streams), await plain, code, exit_s

        ends, plain, code, exit_s = asyncio.run(body())
    assert code == 0 and exit_s <= grace + EXIT_TOLERANCE_S, exit_s
    assert exit_s >= grace / 2  # the streams had most of the period to finish
    for raw, end in ends:
        assert end == "complete", (end, raw[-200:])
        events = frames(raw)  # whole frames only
        assert events[-1]["error"]["code"] == "shutdown", events[-1]
        assert set(events[-1]["error"]) == ERROR_FIELDS
        assert "[DONE]" not in events
        assert 0 < len(text_of(events)) < len(words(50))  # some of it, not all
    assert_error(plain, 503, "shutdown")
    assert plain.headers["retry-after"] == "1"
    rows = ledger(env, "t-cut")
    streamed = [r for r in rows if r.stream]
    assert len(streamed) == n and all((r.status, r.error) == (200, "shutdown") for r in streamed)
    assert all(r.completion_tokens > 0 for r in streamed)  # what was sent is billed
    assert [(r.status, r.error) for r in rows if not r.stream] == [(503, "shutdown")]


def test_two_workers_refuse_new_connections_at_once_and_exit_within_the_grace(
    catalogue_file: Path, tmp_path: Path, fresh: Upstreams
) -> None:
    """With 2 workers the supervisor holds the listening socket too: on SIGTERM it must close at once
    (a connect() is refused while streams still run, instead of being accepted by the kernel and never
    answered), and the whole tree exits within the grace period, the streams ending with `shutdown`."""
    grace = 2.0
    a, _ = fresh
    n = 4
    a.script(*({"content": words(60), "chunk_delay_ms": 100} for _ in range(n)))  # ~6 s each
    env = gateway_env(
        catalogue_file, tmp_path, PUREAI_GRACEFUL_TIMEOUT_S=str(grace), PUREAI_REQUEST_TIMEOUT_S="30"
    )
    with Gateway.start(env, workers=2) as gw:
        wait_for_workers(gw, 2)
        key = gw.new_key(tenant="t-two-stop")

        async def body() -> tuple[list[tuple[int, bytes, str]], float, bool, int, float]:
            async with httpx.AsyncClient(base_url=gw.url, timeout=60, trust_env=False) as c:
                streams = [
                    asyncio.create_task(read_stream(c, key, chat(f"s{i}", stream=True))) for i in range(n)
                ]
                await a.wait_for_async(lambda reqs: len(reqs) == n, timeout=30)
                sent = time.monotonic()
                gw.process.send_signal(signal.SIGTERM)
                refused_after = await asyncio.to_thread(wait_until_refused, gw.port)
                running = not any(r["finished"] for r in await asyncio.to_thread(a.requests))
                code = await asyncio.to_thread(gw.process.wait, 30)
                exit_s = time.monotonic() - sent
                return await asyncio.gather(*streams), refused_after, running, code, exit_s

        results, refused_after, running_when_refused, code, exit_s = asyncio.run(body())
    assert running_when_refused and refused_after < 0.5, refused_after
    assert code == 0 and exit_s <= grace + EXIT_TOLERANCE_S, exit_s
    for status, raw, end in results:
        assert (status, end) == (200, "complete")
        assert frames(raw)[-1]["error"]["code"] == "shutdown"


# -- kill -9 --------------------------------------------------------------------------------------


def test_an_acknowledged_answer_has_its_row_even_after_sigkill(
    catalogue_file: Path, tmp_path: Path, fresh: Upstreams
) -> None:
    """The row is written (and committed) before the answer is sent: a non-streamed 200, and a stream
    read to [DONE], each survive the gateway being killed right after the client has them."""
    env = gateway_env(catalogue_file, tmp_path)
    with Gateway.start(env) as gw:
        key = gw.new_key(tenant="t-kill")
        with gw.http.stream("POST", "/v1/chat/completions", headers=h(key), json=chat(stream=True)) as s:
            events = frames(s.read())
        assert events[-1] == "[DONE]"
        r = gw.http.post("/v1/chat/completions", headers=h(key), json=chat())
        assert r.status_code == 200
        gw.process.kill()
        assert gw.process.wait(10) == -signal.SIGKILL
    rows = {row.request_id: row for row in ledger(env, "t-kill")}
    assert set(rows) == {s.headers["x-request-id"], r.headers["x-request-id"]}
    plain, streamed = rows[r.headers["x-request-id"]], rows[s.headers["x-request-id"]]
    assert (plain.status, plain.error, plain.stream) == (200, None, False)
    assert plain.total_cost_usd == r.json()["usage"]["total_cost_usd"]
    assert (streamed.status, streamed.error, streamed.stream) == (200, None, True)
    assert streamed.total_cost_usd == events[-2]["usage"]["total_cost_usd"]


# -- case 34: past capacity -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway for the tests that leave it running: at most 4 requests in flight, Redis unreachable
    (fail-open, the default), upstream timeouts of 30 s, and glibc's malloc keeping blocks of 128 KiB
    and more in maps of their own (MALLOC_MMAP_THRESHOLD_, its default value without its drift) so
    that memory freed goes back to the OS at once and RSS follows what is live."""
    env = gateway_env(
        catalogue_file,
        tmp_path_factory.mktemp("small"),
        PUREAI_MAX_CONCURRENCY="4",
        PUREAI_REDIS_URL=NO_REDIS,
        PUREAI_REQUEST_TIMEOUT_S="30",
        MALLOC_MMAP_THRESHOLD_=str(128 * 1024),
    )
    with Gateway.start(env) as gw:
        yield gw


def test_past_capacity_is_a_fast_503_and_capacity_frees_as_streams_end(
    small: Gateway, fresh: Upstreams
) -> None:
    """PUREAI_MAX_CONCURRENCY=4: with 4 streams open, the 5th request is refused at once (503
    `overloaded`, Retry-After: 1, never queued, never sent upstream) while /health and /ready still
    answer; once the streams have ended, requests are admitted again."""
    a, _ = fresh
    a.script(*({"content": words(15), "chunk_delay_ms": 100} for _ in range(4)))  # ~1.5 s each
    gw = small
    key = gw.new_key(tenant="t-cap")

    async def body() -> tuple[httpx.Response, float, list[int], list[tuple[int, bytes, str]]]:
        async with httpx.AsyncClient(base_url=gw.url, timeout=60, trust_env=False) as c:
            streams = [asyncio.create_task(read_stream(c, key, chat(f"s{i}", stream=True))) for i in range(4)]
            await a.wait_for_async(lambda reqs: len(reqs) == 4, timeout=20)
            started = time.monotonic()
            over = await c.post("/v1/chat/completions", headers=h(key), json=chat("one too many"))
            took = time.monotonic() - started
            probes = [(await c.get(path)).status_code for path in ("/health", "/ready")]
            return over, took, probes, await asyncio.gather(*streams)

    over, took, probes, results = asyncio.run(body())
    error = assert_error(over, 503, "overloaded")
    assert error["type"] == "service_unavailable" and over.headers["retry-after"] == "1"
    assert "x-request-id" in over.headers
    assert took < 1.0  # a behaviour bound (the streams hold for ~1.5 s), not a benchmark
    assert probes == [200, 200]
    assert all((status, end) == (200, "complete") for status, _, end in results)
    assert len(a.requests()) == 4  # the refused request never reached a provider
    deadline = time.monotonic() + 5
    while (r := gw.http.post("/v1/chat/completions", headers=h(key), json=chat())).status_code == 503:
        assert time.monotonic() < deadline, r.text  # a slot frees as the stream's task ends
        time.sleep(0.02)  # polling with a deadline
    assert r.status_code == 200


# -- case 15: a client that stops reading -----------------------------------------------------------


def rss_anon(pid: int) -> int:
    """The process's resident anonymous memory (heap and the like; not code or mapped files)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^RssAnon:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match[1]) * 1024


def dechunk(data: bytes) -> bytes:
    """The body of an HTTP/1.1 response with chunked transfer encoding (head included in `data`)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower(), head
    body = bytearray()
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(body)
        body += rest[:size]
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


def test_a_client_that_stops_reading_gets_backpressure_not_buffering(
    small: Gateway, fresh: Upstreams
) -> None:
    """A stream of 32 MiB to a client that sends its request and then reads nothing: the gateway must
    stop pulling from upstream instead of holding the reply in its memory.

    Whether the upstream has finished cannot tell: loopback sockets buffer tens of megabytes in the
    kernel (tcp_rmem goes to 32 MiB here), so a well-behaved gateway may see a reply this size
    finish upstream. What a gateway without backpressure cannot hide is its memory: it would hold
    the undelivered reply, 32 MiB and more, until the client reads. So: (1) the baseline is the
    gateway's anonymous RSS before; (2) the stalled request starts; (3) a second client reads an
    identical stream through the gateway to its end, a positive event after which a gateway pulling
    as fast as it could would have pulled the stalled reply whole too (it started first, with the
    same work); (4) from then on, the gateway's RSS must come back to less than the reply's size
    over the baseline, polled with a deadline (the second stream's own buffers take a moment to be
    freed; the `small` gateway's malloc returns them at once). A gateway holding the reply never
    gets there (measured: 126 MiB over); one with backpressure holds what fits downstream, the
    kernel's socket buffer to the client and litellm's copies of it (measured: 14 MiB). At last the
    stalled client reads it all: every byte is there, in order.
    """
    a, _ = fresh
    content = " ".join(f"{i:05d}" + "x" * (2**20 - 6) for i in range(32))  # 32 pieces of 1 MiB
    size = len(content.encode())
    for _ in range(2):
        a.script({"content": content})
    gw = small
    key = gw.new_key(tenant="t-slow")
    baseline = rss_anon(gw.process.pid)
    data = json.dumps(chat(stream=True)).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"x-api-key: {key}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    with socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # no autotuning
        stalled.connect(("127.0.0.1", gw.port))
        stalled.sendall(head + data)
        a.wait_for(lambda reqs: len(reqs) == 1, timeout=10)
        with gw.http.stream("POST", "/v1/chat/completions", headers=h(key), json=chat(stream=True)) as r:
            assert text_of(frames(r.read())) == content  # meanwhile the stalled client reads nothing
        deadline = time.monotonic() + 10
        while (growth := rss_anon(gw.process.pid) - baseline) >= size:
            assert time.monotonic() < deadline, f"RSS stayed {growth / 2**20:.1f} MiB over its baseline"
            time.sleep(0.05)  # polling with a deadline
        stalled.settimeout(30)
        received = bytearray()
        while not received.endswith(b"\r\n0\r\n\r\n"):
            part = stalled.recv(1 << 20)
            assert part, "the gateway closed the stream"
            received += part
    events = frames(dechunk(bytes(received)))
    assert events[-1] == "[DONE]" and text_of(events) == content
    assert all(r["finished"] for r in a.requests())


# -- case 31: two workers ---------------------------------------------------------------------------


def wait_for_workers(gw: Gateway, n: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while gw.logs().count("Application startup complete") < n:
        assert gw.process.poll() is None and time.monotonic() < deadline, gw.logs()
        time.sleep(0.1)  # polling with a deadline


def worker_pids(gw: Gateway) -> list[int]:
    children = Path(f"/proc/{gw.process.pid}/task/{gw.process.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def upstream_ports_of(pid: int, upstream_port: int) -> set[int]:
    """The local ports of `pid`'s open TCP connections to 127.0.0.1:`upstream_port`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with_target = os.readlink(fd) if fd.is_symlink() else ""
        if with_target.startswith("socket:["):
            inodes.add(with_target[8:-1])
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if inode in inodes and int(remote.split(":")[1], 16) == upstream_port:
            ports.add(int(local.split(":")[1], 16))
    return ports


def burst(gw: Gateway, key: str, n: int) -> list[int]:
    """`n` concurrent requests, each on a connection of its own (so the kernel spreads them over
    the workers that accept); their statuses."""

    def one(i: int) -> int:
        with httpx.Client(base_url=gw.url, timeout=30, trust_env=False) as c:
            return c.post("/v1/chat/completions", headers=h(key), json=chat(f"b{i}")).status_code

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_two_workers_sharing_redis_admit_exactly_the_limit(
    catalogue_file: Path, tmp_path: Path, fresh: Upstreams
) -> None:
    """Two uvicorn workers, one Redis: a burst of 40 at a 20 rpm key admits exactly 20, and both
    workers served some of them (each admitted request's upstream connection belongs to one of the
    workers' processes)."""
    a, _ = fresh
    env = gateway_env(catalogue_file, tmp_path, PUREAI_REDIS_URL=REDIS)
    with Gateway.start(env, workers=2) as gw:
        wait_for_workers(gw, 2)
        key = gw.new_key(tenant="t-two", rpm=20)
        codes = burst(gw, key, 40)
        assert codes.count(200) == 20 and codes.count(429) == 20
        peers = {int(r["peer"].rsplit(":", 1)[1]) for r in a.requests()}
        assert len(a.requests()) == 20
        served = {pid: len(peers & upstream_ports_of(pid, a.port)) for pid in worker_pids(gw)}
        assert sum(1 for n in served.values() if n) == 2, served  # both workers admitted some
        assert "without PUREAI_REDIS_URL" not in gw.logs()


def test_two_workers_without_redis_warn_at_start(catalogue_file: Path, tmp_path: Path) -> None:
    """Without Redis each worker keeps its own windows, so a key may get up to workers x its limit:
    `pureai serve` says so as it starts, before anything else (the test stops it there)."""
    out = tmp_path / "serve.log"
    env = {**os.environ, **gateway_env(catalogue_file, tmp_path), "PUREAI_ADMIN_KEY": ADMIN_KEY}
    env.pop("PUREAI_REDIS_URL", None)
    with out.open("wb") as log:
        serve = subprocess.Popen(
            [str(PUREAI), "serve", "--workers", "2", "--port", str(free_port())],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "warning" not in out.read_text():
            assert serve.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)  # polling with a deadline
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(30) == 0
    assert out.read_text().startswith(
        "pureai: warning: 2 workers without PUREAI_REDIS_URL: each worker keeps its own rate-limit "
        "windows, so a key may get up to 2x its rpm/tpm; set PUREAI_REDIS_URL to share them\n"
    )


# -- case 32: Redis down, PostgreSQL down -----------------------------------------------------------


def test_redis_down_fail_open_serves_and_reports_degraded(small: Gateway, fresh: Upstreams) -> None:
    """Fail-open (the default; the `small` gateway's Redis is unreachable): requests are served without
    rate limits, never a 500; /ready says the limiter is degraded, with 200."""
    ready = small.http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["limiter"] == "degraded (fail-open)"
    key = small.new_key(tenant="t-open", rpm=1)
    codes = [
        small.http.post("/v1/chat/completions", headers=h(key), json=chat()).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 200]  # unlimited while Redis is down: that is what fail-open means
    assert "fail-open: admitting requests without rate limits" in small.logs()
    assert "Traceback" not in small.logs()


def test_redis_down_fail_closed_is_503_never_500(
    catalogue_file: Path, tmp_path: Path, fresh: Upstreams
) -> None:
    """Fail-closed: a rate-limited key gets 503 `limiter_unavailable` with Retry-After and a row in
    the ledger; /ready is 503. A key without limits needs no limiter and is served."""
    a, _ = fresh
    env = gateway_env(
        catalogue_file, tmp_path, PUREAI_REDIS_URL=NO_REDIS, PUREAI_RATE_LIMIT_FAIL_OPEN="false"
    )
    with Gateway.start(env, ready="/health") as gw:
        assert_error(gw.http.get("/ready"), 503, "not_ready")
        limited = gw.new_key(tenant="t-closed", rpm=100)
        r = gw.http.post("/v1/chat/completions", headers=h(limited), json=chat())
        error = assert_error(r, 503, "limiter_unavailable")
        assert error["type"] == "service_unavailable" and r.headers["retry-after"] == "1"
        assert a.requests() == []
        unlimited = gw.new_key(tenant="t-closed-free")
        assert gw.http.post("/v1/chat/completions", headers=h(unlimited), json=chat()).status_code == 200
        assert "Traceback" not in gw.logs()
    assert [(row.status, row.error) for row in ledger(env, "t-closed")] == [(503, "limiter_unavailable")]


class Relay:
    """A TCP relay on loopback to PostgreSQL, to be cut like a database server going away: `cut()`
    refuses new connections and drops the open ones."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept)]
        self._lock = threading.Lock()
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection((PG_HOST, PG_PORT))
            with self._lock:
                self._sockets += [client, server]
                for source, sink in ((client, server), (server, client)):
                    thread = threading.Thread(target=self._pipe, args=(source, sink))
                    self._threads.append(thread)
                    thread.start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (a close() alone would not)
        self._listener.close()
        with self._lock:
            for end in self._sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in threads:
            thread.join(10)
        for end in self._sockets:
            end.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()


@pytest.fixture()
def pg_schema() -> Iterator[str]:
    schema = "lc_" + secrets.token_hex(6)
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_postgres_down_is_503_and_an_unrecorded_answer_is_not_delivered(
    catalogue_file: Path, tmp_path: Path, fresh: Upstreams, pg_schema: str
) -> None:
    """PostgreSQL goes away while the gateway runs. A key already checked (cached) gets its answer
    computed upstream, but the row cannot be written: 503 `ledger_unavailable` rather than an answer
    nobody is billed for. A key not yet seen gets 503 `store_unavailable`; /ready is 503. All in
    OpenAI's shape, never a 500."""
    a, _ = fresh
    with Relay() as relay:
        url = f"postgresql://postgres@127.0.0.1:{relay.port}/test?options=-csearch_path%3D{pg_schema}"
        env = gateway_env(catalogue_file, tmp_path, PUREAI_DATABASE_URL=url, PUREAI_KEY_CACHE_S="600")
        with Gateway.start(env) as gw:
            seen = gw.new_key(tenant="t-pg")
            unseen = gw.new_key(tenant="t-pg")
            assert gw.http.post("/v1/chat/completions", headers=h(seen), json=chat()).status_code == 200
            relay.cut()

            def after_the_cut(call: str) -> httpx.Response:  # each waits for the store's timeout
                if call == "ready":
                    return gw.http.get("/ready")
                return gw.http.post("/v1/chat/completions", headers=h(call), json=chat("after the cut"))

            with ThreadPoolExecutor(3) as pool:
                answered, refused, ready = pool.map(after_the_cut, [seen, unseen, "ready"])
            assert_error(answered, 503, "ledger_unavailable")
            assert answered.headers["retry-after"] == "1"
            assert len(a.requests()) == 2  # the answer was computed, and withheld
            assert_error(refused, 503, "store_unavailable")
            assert_error(ready, 503, "not_ready")
            assert "Traceback" not in gw.logs()
    env["PUREAI_DATABASE_URL"] = f"{PG}?options=-csearch_path%3D{pg_schema}"
    assert [(row.status, row.error) for row in ledger(env, "t-pg")] == [(200, None)]

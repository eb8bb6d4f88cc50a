"""Hostile clients at the socket (issue 20, items 1 and 2): heads too large or too many, URLs too
long, connections that send nothing or trickle their head, more connections than a worker takes.
Each case is sent with a raw socket to a real `pureai serve` (service/server.py enforces the limits
before any other work), and each asserts what the client sees: the status and the OpenAI error
shape, or the connection closed, and when.

The timing bounds are behaviours (a refusal in well under a second, where the issue measured 16.9 s
and 5.6-7.8 s), not benchmarks.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.calls import chat
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import ADMIN_KEY, PUREAI, Gateway, free_port

HEADER_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 0.5
BODY_TIMEOUT_S = 1.0
CAP = 8
ERROR_FIELDS = {"message", "type", "param", "code"}
Upstreams = tuple[FakeUpstream, FakeUpstream]


@pytest.fixture(scope="module")
def hostile(catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with the default size limits and short timeouts."""
    env = gateway_env(
        catalogue_file,
        tmp_path_factory.mktemp("hostile"),
        PUREAI_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        PUREAI_KEEP_ALIVE_S=str(KEEP_ALIVE_S),
        PUREAI_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
    )
    with Gateway.start(env) as gw:
        yield gw


def connect(gw: Gateway) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gw.port), timeout=10)


def read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything until the server closes the connection (a reset after its answer counts as a
    close: it comes when the server drops what the client was still sending)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while part := sock.recv(65536):
            out += part
    except ConnectionResetError:
        pass
    return out


def response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response with a Content-Length."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    length = int(headers["content-length"])
    assert len(body) == length, (len(body), length)
    return status, headers, body


def assert_refused(raw: bytes, status: int, code: str) -> dict[str, Any]:
    got, headers, body = response(raw)
    assert got == status, raw[:300]
    assert headers["connection"] == "close" and headers["content-type"] == "application/json"
    error = json.loads(body)
    assert set(error) == {"error"} and set(error["error"]) == ERROR_FIELDS, error
    assert error["error"]["code"] == code and error["error"]["type"] == "invalid_request_error"
    detail: dict[str, Any] = error["error"]
    return detail


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


def served(gw: Gateway, request: bytes) -> int:
    with connect(gw) as sock:
        sock.sendall(request)
        status, _, _ = response(read_all(sock))
    return status


# -- sizes ----------------------------------------------------------------------------------------


def test_a_huge_header_is_431_at_once_and_the_worker_keeps_answering(hostile: Gateway) -> None:
    """The issue's 128 MiB header on /health: a 431 `header_too_large` as soon as the head passes
    64 KiB (it was a 200 after 16.9 s, the worker's event loop parsing it quadratically), then the
    connection closed; while the client goes on sending, the same worker answers /health at once."""
    total, piece = 128 * 2**20, b"a" * 2**20
    sock = connect(hostile)
    sent = {"bytes": 0}

    def send() -> None:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            while sent["bytes"] < total:
                sock.sendall(piece)
                sent["bytes"] += len(piece)
        except OSError:
            pass  # the server closed the connection after its answer

    sender = threading.Thread(target=send)
    started = time.monotonic()
    sender.start()
    try:
        readable, _, _ = select.select([sock], [], [], 10)
        answered = time.monotonic() - started
        assert readable, "no answer to a 128 MiB header"
        probes = []
        for _ in range(10):  # while the sender is still at it (or the server has cut it off)
            t = time.monotonic()
            assert served(hostile, get("/health")) == 200
            probes.append(time.monotonic() - t)
        error = assert_refused(read_all(sock), 431, "header_too_large")
    finally:
        sender.join(30)
        sock.close()
    assert answered < 1.0, answered
    assert max(probes) < 0.5, probes
    assert "65536 bytes" in error["message"]
    assert sent["bytes"] < total or time.monotonic() - started < 30  # cut off, or all dropped quickly
    assert not sender.is_alive()


def test_a_head_within_the_limit_is_served(hostile: Gateway) -> None:
    """A 60 KiB header (under the 64 KiB head limit) is parsed and answered as before."""
    assert served(hostile, get("/health", "X-Big: " + "a" * 60 * 1024)) == 200


def test_a_thousand_headers_is_431_and_a_hundred_are_served(hostile: Gateway) -> None:
    """More than PUREAI_MAX_HEADERS (100) header fields: 431 `too_many_headers` (100,000 were accepted);
    exactly 100 (Host and Connection among them) are served."""
    with connect(hostile) as sock:
        sock.sendall(get("/health", *(f"X-H{i}: {i}" for i in range(1000))))
        assert_refused(read_all(sock), 431, "too_many_headers")
    assert served(hostile, get("/health", *(f"X-H{i}: {i}" for i in range(98)))) == 200


def test_a_long_url_is_414_and_one_within_the_limit_is_served(hostile: Gateway) -> None:
    """A request target over PUREAI_MAX_URL_BYTES (8 KiB): 414 `url_too_long`; one just under it
    reaches the route."""
    with connect(hostile) as sock:
        sock.sendall(get("/health?q=" + "a" * 9000))
        error = assert_refused(read_all(sock), 414, "url_too_long")
    assert "8192 bytes" in error["message"]
    assert served(hostile, get("/health?q=" + "a" * 8000)) == 200


# -- time ------------------------------------------------------------------------------------------


def closed_within(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Wait (with a deadline) for the server to close `sock`; what it sent and the seconds it took."""
    started = time.monotonic()
    raw = read_all(sock, timeout)
    return raw, time.monotonic() - started


def test_connections_that_send_nothing_are_closed_at_the_header_timeout(hostile: Gateway) -> None:
    """50 connections that never send a byte (the issue: none of 1,700 closed in 40 s) are all closed
    by the server, without an answer, once PUREAI_HEADER_TIMEOUT_S (1 s here) has passed."""
    socks = [connect(hostile) for _ in range(50)]
    started = time.monotonic()
    try:
        pending = set(socks)
        while pending:
            assert time.monotonic() - started < HEADER_TIMEOUT_S + 5, f"{len(pending)} still open"
            readable, _, _ = select.select(list(pending), [], [], 0.5)
            for sock in readable:
                assert sock.recv(1024) == b""  # closed, nothing said
                pending.discard(sock)
        took = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    assert took >= HEADER_TIMEOUT_S * 0.9, took


def trickle(sock: socket.socket, data: bytes, every_s: float = 0.1) -> float:
    """Send `data` one byte every `every_s` (the slow client's pace) until the server answers or
    closes; the seconds until then."""
    started = time.monotonic()
    for byte in data:
        readable, _, _ = select.select([sock], [], [], every_s)
        if readable:
            break
        try:
            sock.send(bytes([byte]))
        except OSError:
            break
    else:
        raise AssertionError("the server read the whole trickled head without answering")
    return time.monotonic() - started


def test_a_trickled_head_gets_408_at_the_header_timeout(hostile: Gateway) -> None:
    """A head sent a byte every 0.1 s (each byte would have reset an idle timer) gets 408
    `header_timeout` when PUREAI_HEADER_TIMEOUT_S has passed since the connection began, then the
    connection is closed."""
    head = get("/health", *(f"X-Slow-{i}: {'x' * 20}" for i in range(5)))
    with connect(hostile) as sock:
        took = trickle(sock, head)
        raw = read_all(sock)
    assert_refused(raw, 408, "header_timeout")
    assert HEADER_TIMEOUT_S * 0.9 <= took < HEADER_TIMEOUT_S + 3, took


def test_keep_alive_idle_and_a_slow_next_head_are_both_bounded(hostile: Gateway) -> None:
    """After a response on a keep-alive connection: idle, it is closed after PUREAI_KEEP_ALIVE_S
    (0.5 s here); a next head trickled from there gets 408 at the header timeout counted from the
    end of that response (the keep-alive timer alone would have let it trickle for ever)."""
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    def first_answer(sock: socket.socket) -> None:
        sock.sendall(request)
        raw = b""
        while not raw.endswith(b'{"status":"ok"}'):
            raw += sock.recv(65536)

    with connect(hostile) as sock:
        first_answer(sock)
        raw, took = closed_within(sock, 10)
    assert raw == b"" and KEEP_ALIVE_S * 0.9 <= took < KEEP_ALIVE_S + 3, took
    with connect(hostile) as sock:
        first_answer(sock)
        took = trickle(sock, b"GET /health HTTP/1.1\r\n" + b"X-Slow: " + b"x" * 100)
        raw = read_all(sock)
    assert_refused(raw, 408, "header_timeout")
    assert HEADER_TIMEOUT_S * 0.9 <= took < HEADER_TIMEOUT_S + 3, took


def post_head(path: str, length: int, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [*headers, f"Content-Length: {length}", "", ""]
    return "\r\n".join(lines).encode()


def test_a_body_that_does_not_come_gets_408_at_the_body_timeout(hostile: Gateway) -> None:
    """An authenticated request whose head promises 1,000 bytes of body and sends 10, then trickles a
    byte every 0.1 s, gets 408 `body_timeout` once PUREAI_BODY_TIMEOUT_S (1 s) has passed since its
    head, then the connection is closed; the gateway still answers others."""
    with connect(hostile) as sock:
        sock.sendall(post_head("/v1/admin/keys", 1000, f"x-api-key: {ADMIN_KEY}") + b'{"name": "')
        took = trickle(sock, b"x" * 1000)
        raw = read_all(sock)
    assert_refused(raw, 408, "body_timeout")
    assert BODY_TIMEOUT_S * 0.9 <= took < BODY_TIMEOUT_S + 3, took
    assert served(hostile, get("/health")) == 200
    keys = httpx.get(f"{hostile.url}/v1/admin/keys", headers={"x-api-key": ADMIN_KEY}, timeout=10)
    assert keys.status_code == 200, keys.text


def test_a_request_answered_before_its_body_cannot_hold_the_connection(hostile: Gateway) -> None:
    """A wrong key gets its 401 before the body is read; a body trickled after it (each byte used
    to restart the keep-alive timer) does not keep the connection open past the body timeout."""
    with connect(hostile) as sock:
        sock.sendall(post_head("/v1/chat/completions", 100_000, "x-api-key: pk-nobody-wrong"))
        started = time.monotonic()
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 401"), first[:200]
        for _ in range(200):  # 20 s of trickling at most
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                break
            try:
                sock.send(b"x")
            except OSError:
                break
        rest = read_all(sock)
        took = time.monotonic() - started
    assert b"HTTP/1.1" not in rest, rest[:200]
    assert took < BODY_TIMEOUT_S + 3, took


# -- connections per worker ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capped(catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    """A gateway that takes CAP connections per worker, and a key of it. The gateway's own client is
    closed: its keep-alive connection would be the oldest idle one."""
    env = gateway_env(
        catalogue_file,
        tmp_path_factory.mktemp("capped"),
        PUREAI_MAX_CONNECTIONS=str(CAP),
        PUREAI_REQUEST_TIMEOUT_S="30",
    )
    with Gateway.start(env) as gw:
        key = gw.new_key(tenant="t-cap")
        gw.http.close()
        yield gw, key


def post(key: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data


def server_side(port: int) -> int:
    """How many established TCP connections the process listening on `port` holds (its ends of them:
    local port `port` in /proc/net/tcp)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            count += 1
    return count


def settle(gw: Gateway, n: int) -> None:
    """Poll (with a deadline) until the gateway holds `n` connections."""
    deadline = time.monotonic() + 10
    while server_side(gw.port) != n:
        assert time.monotonic() < deadline, f"{server_side(gw.port)} connections, expected {n}"
        time.sleep(0.01)  # polling with a deadline


def test_past_the_cap_a_new_connection_takes_the_place_of_the_longest_idle(
    capped: tuple[Gateway, str],
) -> None:
    """PUREAI_MAX_CONNECTIONS=8 with 8 connections that sent nothing: a 9th connection is served, and
    the one that had waited longest is closed to make room (the others stay), so slow or idle
    connections cannot lock clients out."""
    gw, key = capped
    settle(gw, 0)
    idle = []
    for _ in range(CAP):
        idle.append(connect(gw))
        settle(gw, len(idle))  # one at a time, so their order is the server's
    try:
        for n in range(2):
            assert served(gw, post(key, chat())) == 200
            readable, _, _ = select.select(idle[n:], [], [], 0)
            assert readable == [idle[n]], [idle.index(s) for s in readable]  # the oldest, alone
            assert idle[n].recv(1024) == b""  # closed, nothing said
            idle.append(connect(gw))  # the cap full again: the next to go is the oldest left
            settle(gw, CAP)
    finally:
        for sock in idle:
            sock.close()


def test_past_the_cap_with_every_connection_busy_a_new_one_is_closed_at_once(
    capped: tuple[Gateway, str], fresh: Upstreams
) -> None:
    """With 8 streams in flight (nothing to evict), a 9th connection is closed at once, unanswered,
    and the streams run to [DONE]; once they have ended, connections are served again."""
    a, _ = fresh
    a.script(*({"content": " ".join(["w"] * 20), "chunk_delay_ms": 50} for _ in range(CAP)))  # ~1 s
    gw, key = capped
    settle(gw, 0)
    request = post(key, chat(stream=True))
    streams = []
    for _ in range(CAP):
        sock = connect(gw)
        sock.sendall(request)
        streams.append(sock)
    try:
        a.wait_for(lambda reqs: len(reqs) == CAP, timeout=20)
        with connect(gw) as extra:
            extra.sendall(get("/health"))
            started = time.monotonic()
            raw = read_all(extra, 10)
            took = time.monotonic() - started
        assert raw == b"" and took < 1.0, (raw[:100], took)
        for sock in streams:
            assert read_all(sock, 30).endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    finally:
        for sock in streams:
            sock.close()
    settle(gw, 0)
    assert served(gw, get("/health")) == 200


# -- open files ------------------------------------------------------------------------------------


def test_serve_raises_a_low_soft_limit_of_open_files(catalogue_file: Path, tmp_path: Path) -> None:
    """Started under a soft limit of 512 open files (service managers often give 1,024), `pureai
    serve` raises it to what its connections need (PUREAI_MAX_CONNECTIONS + PUREAI_MAX_CONCURRENCY
    + 256 = 1768 by default), within the hard limit, so accept() does not fail first."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 1000 + 512 + 256
    # the test starts the server under a soft limit of 512: the machine must allow that much
    assert hard == resource.RLIM_INFINITY or hard >= 512, f"the hard limit of open files here is {hard}"
    expected = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    port = free_port()
    env = {**os.environ, **gateway_env(catalogue_file, tmp_path), "PUREAI_ADMIN_KEY": ADMIN_KEY}
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [str(PUREAI), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard)),
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert serve.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=2, trust_env=False).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling for readiness
        limits = Path(f"/proc/{serve.pid}/limits").read_text()
        soft = next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
        assert int(soft) == expected, limits
    finally:
        serve.terminate()
        serve.wait(30)
        log.close()
    if expected < needed:
        assert "open-file limit" in (tmp_path / "serve.log").read_text()


def test_the_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each limit is a PUREAI_* setting, with the defaults docs/operations.md lists."""
    from service.server import Limits
    from service.settings import Settings

    names = (
        "MAX_HEADER_BYTES",
        "MAX_HEADERS",
        "MAX_URL_BYTES",
        "HEADER_TIMEOUT_S",
        "KEEP_ALIVE_S",
        "BODY_TIMEOUT_S",
    )
    for name in names:
        monkeypatch.delenv("PUREAI_" + name, raising=False)
    monkeypatch.delenv("PUREAI_MAX_CONNECTIONS", raising=False)
    assert Limits.of(Settings()) == Limits(
        max_header_bytes=65536,
        max_headers=100,
        max_url_bytes=8192,
        header_timeout_s=10.0,
        keep_alive_s=5.0,
        body_timeout_s=30.0,
        max_connections=1000,
    )
    monkeypatch.setenv("PUREAI_MAX_HEADER_BYTES", "2048")
    monkeypatch.setenv("PUREAI_HEADER_TIMEOUT_S", "2.5")
    monkeypatch.setenv("PUREAI_MAX_CONNECTIONS", "7")
    monkeypatch.setenv("PUREAI_BODY_TIMEOUT_S", "4")
    limits = Limits.of(Settings())
    got = (limits.max_header_bytes, limits.header_timeout_s, limits.max_connections, limits.body_timeout_s)
    assert got == (2048, 2.5, 7, 4.0)

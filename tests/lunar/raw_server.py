"""A tiny HTTP/1.1 server on a raw socket, for the protocol faults the real gateway never makes.

    with RawServer() as server:
        server.script(json_reply(503, {...}), json_reply(200, {...}))
        Lunar(api_key="k", base_url=server.url, ...)
        server.requests   # what arrived, in order (method, path, headers, body, arrival time)

Each connection carries one request: the server reads it, hands the socket to the next scripted
`Reply` (a function of the connection and the request) and closes the connection (every reply
says `Connection: close`). With nothing scripted it answers 418. Replies that must wait for the
test (a stream that drops after the client has read its first chunk) wait on a `threading.Event`;
replies that stall (slow headers) wait until the client goes away.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

__all__ = [
    "RawRequest",
    "RawServer",
    "Reply",
    "chunked",
    "drop_after",
    "json_reply",
    "paused",
    "reset",
    "sse_reply",
    "stall",
]


@dataclass
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]] = field(default_factory=list)  # in order, repeats kept
    arrived: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


Reply = Callable[[socket.socket, RawRequest], None]


class RawServer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[RawRequest] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def close(self) -> None:
        _shut(self._listener)  # wakes the accept loop, which then ends
        self._listener.close()
        self._accepting.join(timeout=5)
        with self._lock:
            for conn in list(self._open):
                _shut(conn)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
                reply = self._replies.popleft() if self._replies else json_reply(418, {"error": "unscripted"})
            reply(conn, request)
        except OSError:
            pass  # the client went away: that is what several faults are about
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()


def _shut(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already gone
        conn.shutdown(socket.SHUT_RDWR)


def _read_request(conn: socket.socket) -> RawRequest | None:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return None
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    header_list = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        header_list.append((name.strip().lower(), value.strip()))
    headers = dict(header_list)
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        more = conn.recv(65536)
        if not more:
            return None
        rest += more
    return RawRequest(method, path, headers, rest[:length], header_list)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- replies ----------------------------------------------------------------------------------------


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    """A whole JSON answer with a Content-Length."""
    payload = json.dumps(body).encode()

    def reply(conn: socket.socket, request: RawRequest) -> None:
        extra = {"content-type": "application/json", "content-length": str(len(payload)), **(headers or {})}
        conn.sendall(_head(status, extra) + payload)

    return reply


def chunked(pieces: Iterable[bytes]) -> bytes:
    """`pieces` as HTTP/1.1 chunks (each its own chunk, so the client reads them apart), then the end."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


def sse_reply(pieces: Iterable[bytes], *, headers: dict[str, str] | None = None) -> Reply:
    """A 200 event stream whose body is `pieces`, each one HTTP chunk, then a proper end."""
    body = chunked(pieces)

    def reply(conn: socket.socket, request: RawRequest) -> None:
        extra = {"content-type": "text/event-stream", "transfer-encoding": "chunked", **(headers or {})}
        conn.sendall(_head(200, extra) + body)

    return reply


def drop_after(pieces: Iterable[bytes], proceed: threading.Event, *, rst: bool = False) -> Reply:
    """A 200 event stream that sends `pieces`, waits for `proceed`, then drops the connection
    without the final chunk (with a TCP reset when `rst`)."""
    body = chunked(pieces).removesuffix(b"0\r\n\r\n")

    def reply(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(_head(200, {"content-type": "text/event-stream", "transfer-encoding": "chunked"}) + body)
        proceed.wait(timeout=10)
        if rst:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return reply


def paused(first: Iterable[bytes], rest: Iterable[bytes], proceed: threading.Event) -> Reply:
    """A 200 event stream that sends `first`, waits for `proceed`, then sends `rest` and ends."""
    head = _head(200, {"content-type": "text/event-stream", "transfer-encoding": "chunked"})
    start, end = chunked(first).removesuffix(b"0\r\n\r\n"), chunked(rest)

    def reply(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head + start)
        proceed.wait(timeout=10)
        conn.sendall(end)

    return reply


def stall(conn: socket.socket, request: RawRequest) -> None:
    """Send nothing until the client gives up and closes the connection (slow headers)."""
    conn.settimeout(30)
    while conn.recv(1024):
        pass


def reset(conn: socket.socket, request: RawRequest) -> None:
    """Abort the connection with a TCP reset, without a response."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

"""The HTTP server under the gateway: uvicorn with a protocol of ours that bounds what a client controls
before any work is done, a supervisor that closes the listening socket at once on SIGTERM, and the
budget of a graceful shutdown.

- `HttpProtocol`, uvicorn's httptools protocol with limits (`Limits`, from `Settings`):
  - **head size**: the bytes of a request's head (request line and headers) are counted as they
    arrive, before the parser sees them; past `max_header_bytes`, 431. httptools accumulates a header
    value by concatenation, so a head without a bound costs time quadratic in its size, on the event
    loop (a 128 MiB header took 16.9 s, and every other request of the worker waited);
  - **header count**: past `max_headers`, 431; **URL length**: past `max_url_bytes`, 414;
  - **header timeout**: a head must be complete within `header_timeout_s` of the connection's start,
    or of the end of the previous response on a keep-alive connection; a connection that sent nothing
    is then closed, one that sent part of a head gets 408;
  - **keep-alive**: an idle connection is closed after `keep_alive_s` (uvicorn's `timeout_keep_alive`);
  - **body timeout**: a request's body must be complete within `body_timeout_s` of its head, or it
    gets 408 (unless it was answered already, as a wrong key is before its body is read) and the
    application sees the client gone;
  - **connections**: past `max_connections` in a worker, a new connection takes the place of the one
    that has waited longest for a request head with nothing in flight (as nginx reuses idle keep-alive
    connections when it runs out), or is closed at once if every connection is busy with a request.
  A refusal is a short JSON body in OpenAI's error shape with `connection: close`; the connection is
  then half-closed and what the client still sends is read and dropped for `LINGER_S` at most (a close
  with unread data would reset the connection, and the client could lose the answer).
- `Supervisor`, uvicorn's multiprocess supervisor (`--workers N`): on SIGTERM or SIGINT it closes its
  copy of the listening socket and signals the workers at once. uvicorn's polls its signals every
  0.5 s and keeps the socket open until the workers have exited, so the kernel went on accepting
  connections that no process would ever answer, for the whole drain.
- `Grace`: how the graceful period (`PUREAI_GRACEFUL_TIMEOUT_S`) is spent, so that SIGTERM -> exit
  fits inside it: uvicorn lets requests finish for `wait_s`, then cuts the rest (a stream ends with
  an SSE error event `shutdown`, service/streaming.py); the gateway waits `drain_s` for their ledger
  rows and has `close_s` to close the store and the clients (service/gateway.py `stop`).

`serve(config)` runs it as `uvicorn.run` would (one worker in this process, or the supervisor).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import sys
from collections import OrderedDict
from dataclasses import dataclass
from types import FrameType
from typing import Any

import httptools
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors.multiprocess import Multiprocess

from .settings import Settings

__all__ = ["Config", "Grace", "HttpProtocol", "Limits", "Supervisor", "serve"]

log = logging.getLogger("pureai.server")

LINGER_S = 2.0
"""After a refusal, how long what the client still sends is read and dropped before the close."""

_BODY = -1  # `HttpProtocol._head` once a head is complete: its body, its answer
_DROPPING = -2  # after a refusal: what arrives is dropped


@dataclass(frozen=True)
class Limits:
    """What one connection may ask of a worker before it is refused (defaults as in `Settings`).

    - `max_header_bytes`: the request line and headers together; more is 431.
    - `max_headers`: header fields; more is 431.
    - `max_url_bytes`: the request target; longer is 414.
    - `header_timeout_s`: from the connection's start, or the end of the previous response, until the
      head is complete; then a silent connection is closed and a partial head gets 408.
    - `keep_alive_s`: an idle keep-alive connection is closed after this long.
    - `body_timeout_s`: from the end of a request's head until its body is complete; then, unless
      the request has been answered already, 408 and the request is cancelled.
    - `max_connections`: open connections per worker (see `HttpProtocol`).
    """

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_url_bytes: int = 8 * 1024
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    body_timeout_s: float = 30.0
    max_connections: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            max_url_bytes=settings.max_url_bytes,
            header_timeout_s=settings.header_timeout_s,
            keep_alive_s=settings.keep_alive_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=settings.max_connections,
        )


@dataclass(frozen=True)
class Grace:
    """How `total_s` (PUREAI_GRACEFUL_TIMEOUT_S) is spent from SIGTERM to the process's exit.

    - `slack_s` (`SLACK_S`): uvicorn's own delays: up to 0.1 s before its main loop sees the signal,
      a 0.1 s sleep before it waits for the requests, and the supervisor's exit with several workers.
    - `wait_s`: open requests and streams finish on their own (uvicorn's `timeout_graceful_shutdown`);
      then uvicorn cancels the rest, each ending at once (a stream with its `shutdown` event).
    - `drain_s`: the gateway waits for the ledger rows of what was cut (`Gateway.stop`).
    - `close_s`: the gateway closes the upstream clients, the limiter and the store.
    The last two share a reserve of 30 % of the period, at most `RESERVE_MAX_S`.
    """

    total_s: float

    SLACK_S = 0.25
    RESERVE_MAX_S = 3.0

    @property
    def reserve_s(self) -> float:
        return min(self.RESERVE_MAX_S, 0.3 * self.total_s)

    @property
    def wait_s(self) -> float:
        return max(0.0, self.total_s - self.SLACK_S - self.reserve_s)

    @property
    def drain_s(self) -> float:
        return 0.6 * self.reserve_s

    @property
    def close_s(self) -> float:
        return 0.4 * self.reserve_s


class Config(uvicorn.Config):
    """uvicorn's Config with our `Limits` (pickled with it to the workers), `HttpProtocol` as its
    HTTP protocol and the keep-alive timeout of the limits."""

    def __init__(self, app: Any, *, limits: Limits, **kwargs: Any) -> None:
        kwargs.setdefault("http", HttpProtocol)
        super().__init__(app, timeout_keep_alive=limits.keep_alive_s, **kwargs)  # type: ignore[arg-type]
        self.limits = limits


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `Limits` (see the module docstring). A connection is in one of
    three states, held in `_head`: reading a request head (the bytes of it read so far, >= 0), past
    its head (`_BODY`: the body and the answer), or refused (`_DROPPING`). One timer per connection:
    uvicorn's keep-alive handle, armed while it waits for a head with nothing in flight."""

    def __init__(self, config: uvicorn.Config, server_state: ServerState, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, server_state, *args, **kwargs)
        limits = getattr(config, "limits", None) or Limits()
        self.limits = limits
        self._max_head = limits.max_header_bytes
        self._max_url = limits.max_url_bytes
        self._max_headers = limits.max_headers
        self._head = 0
        self._deadline = 0.0  # loop time by which the head being read must be complete
        self._refusal: tuple[int, str, str] | None = None  # set by a parser callback that refuses
        self._body_timer: Any = None  # armed from a head's end until its body is complete
        self._waiting = _waiting(server_state)

    # -- connections ---------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            log.info("refused a connection: %d connections, all busy", len(self.connections))
            self.transport.close()
            return
        self._wait_for_head(self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting.pop(self, None)
        self._stop_body_timer()
        super().connection_lost(exc)

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a request head with nothing in flight (the
        oldest in `_waiting`); False if there is none."""
        while self._waiting:
            other, _ = self._waiting.popitem(last=False)
            if other is not self and not other.transport.is_closing():
                other.transport.close()
                return True
        return False

    def _wait_for_head(self, idle_s: float) -> None:
        """Nothing in flight: arm the connection's timer for the next head, which must begin within
        `idle_s` and end within the header timeout."""
        timeout = self.limits.header_timeout_s
        self._deadline = self.loop.time() + timeout
        self.timeout_keep_alive_task = self.loop.call_later(min(idle_s, timeout), self._head_late)
        self._waiting[self] = None

    def _head_late(self) -> None:
        self.timeout_keep_alive_task = None
        if self._head < 0 or self.transport.is_closing():
            return
        if self._head == 0:  # idle: closed, as uvicorn's keep-alive timeout closes it
            self._waiting.pop(self, None)
            self.transport.close()
            return
        left = self._deadline - self.loop.time()
        if left > 0:  # idle, then a head began: it has until the header timeout
            self.timeout_keep_alive_task = self.loop.call_later(left, self._head_late)
            return
        timeout = self.limits.header_timeout_s
        self._refuse(408, "header_timeout", f"the request head was not complete within {timeout:g} s")

    # -- reading -------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        head = self._head
        if head >= 0:
            if len(data) > self._max_head - head:
                self._past_the_head(data)
                return
            self._head = head + len(data)
        elif head == _BODY:
            self._unset_keepalive_if_required()
        else:
            return  # _DROPPING
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
            self._parser_stopped(exc)

    def _parser_stopped(self, exc: Exception) -> bool:
        """What uvicorn's `data_received` does when the parser stops (an upgrade, an error), and our
        refusals; False if the connection was refused."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return True
        if self._refusal is not None:
            self._refuse(*self._refusal)
        else:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        return False

    def _past_the_head(self, data: bytes) -> None:
        """`data` holds more than the head may still take: the parser gets that much, and the rest
        only if the head ended within it (a pipelined request's head that begins in the chunk ending
        the request before it is counted from the next chunk on: at most twice the limit)."""
        room = self._max_head - self._head
        self._head = self._max_head
        if not self._feed(data[:room]):
            return
        if self._head == self._max_head:
            limit = self._max_head
            self._refuse(431, "header_too_large", f"the request head is larger than {limit} bytes")
            return
        self.data_received(data[room:])

    def _feed(self, data: bytes) -> bool:
        """The parser fed `data`; False if the connection was refused."""
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
            return self._parser_stopped(exc)
        return True

    def on_headers_complete(self) -> None:
        # The URL and the header count are checked once the head is whole: its size is bounded, so
        # the parse was cheap, and uvicorn's per-piece callbacks stay as they are.
        if len(self.headers) > self._max_headers:
            self._refusal = (
                431,
                "too_many_headers",
                f"the request has more than {self._max_headers} headers",
            )
            raise _Refused
        if len(self.url) > self._max_url:
            self._refusal = (414, "url_too_long", f"the request URL is longer than {self._max_url} bytes")
            raise _Refused
        self._head = _BODY
        self._waiting.pop(self, None)
        self._unset_keepalive_if_required()
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_late)

    def on_message_complete(self) -> None:
        self._stop_body_timer()
        super().on_message_complete()
        self._head = 0  # the next request's head
        if self.cycle.response_complete and not self.pipeline:  # answered before its body had come
            self._unset_keepalive_if_required()
            self._wait_for_head(self.timeout_keep_alive)

    def on_response_complete(self) -> None:
        """uvicorn's, with our timer while the next head is read."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._head >= 0:
            self._wait_for_head(self.timeout_keep_alive)
        else:  # answered before its body had come: uvicorn's keep-alive timer, until more of it comes
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_late(self) -> None:
        """The body did not come in time: 408 and the application's `receive` sees the client gone;
        a request answered already (a wrong key, before its body) has its connection closed."""
        self._body_timer = None
        cycle = self.cycle
        if self._head != _BODY or self.transport.is_closing() or cycle is None:
            return
        if cycle.response_complete:  # answered long ago; nobody reads the rest of the body
            self.transport.close()
            return
        timeout = self.limits.body_timeout_s
        self._refuse(
            408, "body_timeout", f"the request body was not complete within {timeout:g} s", current=True
        )
        cycle.disconnected = True
        cycle.message_event.set()

    # -- refusing ------------------------------------------------------------------------------
    def _refuse(self, status: int, code: str, message: str, current: bool = False) -> None:
        """Answer `status` in OpenAI's error shape, unless an answer to an earlier request (or, with
        `current`, to this one) is being written on this connection; then half-close it, drop what
        the client still sends, and close it after `LINGER_S` at the latest."""
        self._head = _DROPPING
        self._waiting.pop(self, None)
        self._unset_keepalive_if_required()
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.info("%d %s from %s", status, code, peer)
        transport = self.transport
        if transport.is_closing():
            return
        free = self.cycle is None or self.cycle.response_complete
        if free or (current and not self.cycle.response_started):
            error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
            body = json.dumps({"error": error}).encode()
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [
                b"content-type: application/json\r\ncontent-length: ",
                str(len(body)).encode(),
                b"\r\nconnection: close\r\n\r\n",
                body,
            ]
            transport.write(b"".join(head))
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.flow.resume_reading()
        self.timeout_keep_alive_task = self.loop.call_later(LINGER_S, transport.close)


class _Refused(Exception):
    """Raised in a parser callback to stop the parse (httptools raises HttpParserCallbackError)."""


def _waiting(state: ServerState) -> OrderedDict[HttpProtocol, None]:
    """The worker's connections waiting for a request head with nothing in flight, oldest first:
    one registry per server, kept on its state beside uvicorn's own set of connections."""
    waiting: OrderedDict[HttpProtocol, None] | None = getattr(state, "pureai_waiting", None)
    if waiting is None:
        waiting = OrderedDict()
        state.pureai_waiting = waiting  # type: ignore[attr-defined]
    return waiting


class Supervisor(Multiprocess):
    """uvicorn's supervisor of `--workers N`, whose SIGTERM and SIGINT close the listening socket and
    signal the workers at once, in the signal handler. uvicorn's queues the signal for a loop that
    looks every 0.5 s and keeps the socket open until the workers have exited. Each worker closes its
    own copy of the socket as its graceful shutdown begins; the socket is gone with the last. The
    loop wakes at once too (a byte on a pipe), so the supervisor exits as soon as its workers have."""

    def __init__(self, config: uvicorn.Config, sockets: list[Any]) -> None:
        super().__init__(config, sockets)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        for sock in self.sockets:
            sock.close()
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        self.signal_queue.append(sig)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def run(self) -> None:
        """uvicorn's `Multiprocess.run`, waiting on the pipe instead of an Event (a signal handler
        cannot set an Event safely: the waiting thread may hold its lock)."""
        log.info("Started parent process [%d]", os.getpid())
        self.init_processes()
        try:
            while not self.should_exit.is_set():
                ready, _, _ = select.select([self._wake_r], [], [], 0.5)
                if ready:
                    os.read(self._wake_r, 64)
                self.handle_signals()
                self.keep_subprocess_alive()
            self.terminate_all()
            self.join_all()
        finally:
            os.close(self._wake_r)
            os.close(self._wake_w)
        log.info("Stopping parent process [%d]", os.getpid())


def serve(config: uvicorn.Config) -> None:
    """Run `config` as `uvicorn.run` does: one worker in this process, or `Supervisor` over several.
    A single worker that did not start exits with uvicorn's STARTUP_FAILURE status."""
    if config.workers > 1:
        sock = config.bind_socket()
        with contextlib.suppress(KeyboardInterrupt):
            Supervisor(config, sockets=[sock]).run()
        return
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)

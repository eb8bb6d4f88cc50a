"""`Breaker`: a circuit breaker per provider of a model, so that a failing provider is skipped.

    closed ──N failures within the window──▶ open ──cooldown passes──▶ half-open
       ▲                                      ▲                           │ one probe request
       └──────────────── the probe succeeds ──┼───── the probe fails ─────┘

Failures are 5xx answers, connection errors, timeouts and 429s without a retry hint; a 429 with
`Retry-After` or `retry-after-ms` opens the provider at once until that time has passed (capped).
An open provider is skipped while another provider of the model can be tried; when every one is
open, the one whose cooldown ends first is still tried, so a request never fails untried. A
success, or an answer that is the client's fault (4xx), closes the provider.

The state lives in this process: each worker or replica learns of a failing provider on its own
(a few more failed calls, one set per process), which needs no shared store.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Breaker", "State"]

State = Literal["closed", "open", "half_open"]


@dataclass
class _Circuit:
    failures: deque[float] = field(default_factory=deque)
    opened: bool = False
    until: float = 0.0  # while opened: skipped before this time, half-open after it
    probing: bool = False  # half-open: the one probe is in flight


class Breaker:
    """Per-provider circuits keyed `"<model>/<provider>"`; `failures=0` turns counting off and
    `retry_after_max_s=0` ignores rate-limit hints, so both off is a breaker that never opens."""

    def __init__(
        self,
        failures: int = 3,
        window_s: float = 30.0,
        cooldown_s: float = 15.0,
        retry_after_max_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.retry_after_max_s = retry_after_max_s
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}

    def state(self, key: str) -> State:
        circuit = self._circuits.get(key)
        if circuit is None or not circuit.opened:
            return "closed"
        return "open" if self._clock() < circuit.until else "half_open"

    def available(self, key: str) -> bool:
        """Whether a request may call the provider now: closed, or half-open with no probe out."""
        state = self.state(key)
        return state == "closed" or (state == "half_open" and not self._circuits[key].probing)

    def plan(self, keys: Sequence[str]) -> list[int]:
        """Indices of `keys` to try, in order: the available ones, else the one opening first."""
        order = [i for i, key in enumerate(keys) if self.available(key)]
        if order or not keys:
            return order
        return [min(range(len(keys)), key=lambda i: self._circuits[keys[i]].until)]

    def begin(self, key: str) -> bool:
        """Before calling the provider: takes the probe of a half-open one; False if unavailable."""
        if not self.available(key):
            return False
        if self.state(key) == "half_open":
            self._circuits[key].probing = True
        return True

    def release(self, key: str) -> None:
        """The call ended without a verdict (cancelled): a half-open provider may be probed again."""
        circuit = self._circuits.get(key)
        if circuit is not None:
            circuit.probing = False

    def success(self, key: str) -> None:
        self._circuits.pop(key, None)

    def failure(self, key: str, retry_after_s: float | None = None) -> None:
        """A failed call; `retry_after_s`: the provider's own word on when to come back (a 429)."""
        now = self._clock()
        circuit = self._circuits.setdefault(key, _Circuit())
        circuit.probing = False
        if retry_after_s is not None and self.retry_after_max_s > 0:
            self._open(circuit, now + min(max(retry_after_s, 0.0), self.retry_after_max_s))
        elif circuit.opened:  # a failed probe (or a call made while every provider was open)
            self._open(circuit, now + self.cooldown_s)
        elif self.failures > 0:
            circuit.failures.append(now)
            while circuit.failures and circuit.failures[0] <= now - self.window_s:
                circuit.failures.popleft()
            if len(circuit.failures) >= self.failures:
                self._open(circuit, now + self.cooldown_s)
        if not circuit.opened and not circuit.failures:
            del self._circuits[key]

    def snapshot(self) -> dict[str, State]:
        """The providers that are not closed, for /ready."""
        states = {key: self.state(key) for key in sorted(self._circuits)}
        return {key: state for key, state in states.items() if state != "closed"}

    @staticmethod
    def _open(circuit: _Circuit, until: float) -> None:
        circuit.until = max(until, circuit.until) if circuit.opened else until
        circuit.opened = True
        circuit.failures.clear()

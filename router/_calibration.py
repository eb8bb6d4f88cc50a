"""Per pool: the lambda table that maps cost_weight to a price of quality, calibrated on traffic.

A pool's table (`_score.lambda_table`) is fitted on the predicted quality and cost of a set of
prompts, so that a cost_weight lands on the same point of the pool's cost range in those prompts.
Before a pool has seen traffic, those prompts are reference training prompts. Traffic whose costs
sit on another scale (long worked answers, short chit-chat) would then see its weights bunched at
one end of its own range. So each pool keeps its last `WINDOW` prompts' predicted quality and cost
(its traffic; predictions only, never outcomes) and is recalibrated on them as they come:
first at `FIRST` prompts, then each time its traffic doubles up to `WINDOW`, then every
`WINDOW // 4` prompts. Reference prompts fill in while traffic is short (two fewer for each prompt
of traffic), so the table moves from the reference scale to the traffic's smoothly.

The table changes how a cost_weight is priced, never a candidate's quality or expected cost.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from . import _score

WINDOW = 512  # recent prompts per pool on which its table is recalibrated
FIRST = 32  # prompts a pool has routed before its table is first recalibrated on them
POOLS = 64  # pools whose traffic is kept (each holds WINDOW x models qualities and costs)
MODES = ("traffic", "reference")


class PoolCalibration:
    """One pool's recent traffic and its current table."""

    def __init__(self, models: int) -> None:
        self.quality = np.zeros((WINDOW, models))
        self.cost = np.zeros((WINDOW, models))
        self.seen = 0  # prompts routed (the window holds the last WINDOW of them)
        self.table: np.ndarray | None = None
        self.fitted_at = -1  # `seen` when `table` was fitted; -1: on reference prompts only

    def add(self, quality: np.ndarray, cost: np.ndarray) -> None:
        """Add a batch of routed prompts; one longer than the window is sampled evenly (a batch may
        come sorted by kind, and its last prompts alone would be no sample of it)."""
        if len(quality) > WINDOW:
            pick = np.linspace(0, len(quality) - 1, WINDOW).round().astype(np.int64)
            self.quality[:], self.cost[:] = quality[pick], cost[pick]
            self.seen += len(quality)
            return
        for q, c in zip(quality, cost, strict=True):
            i = self.seen % WINDOW
            self.quality[i], self.cost[i] = q, c
            self.seen += 1

    def due(self) -> bool:
        """Whether the traffic has grown enough since the last fit to fit again."""
        if self.table is None:
            return True
        if self.seen < FIRST:
            return False
        if self.fitted_at < FIRST:
            return True
        if self.fitted_at < WINDOW:
            return self.seen >= min(2 * self.fitted_at, WINDOW)
        return self.seen >= self.fitted_at + WINDOW // 4

    def rows(self, reference: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Traffic rows, with reference rows filling in: `len(reference) - 2 * traffic` of them."""
        n = min(self.seen, WINDOW) if self.seen >= FIRST else 0
        ref_q, ref_c = reference
        keep = max(0, len(ref_q) - 2 * n)
        return (
            np.concatenate([self.quality[:n], ref_q[:keep]]),
            np.concatenate([self.cost[:n], ref_c[:keep]]),
        )


class Calibrations:
    """The tables of the `pools` pools used last, keyed by the pool's model names in order (a pool
    dropped starts again from reference prompts); thread-safe."""

    def __init__(self, mode: str, pools: int) -> None:
        if mode not in MODES:
            raise ValueError(f"calibration must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.pools = pools
        self._by_pool: OrderedDict[tuple[str, ...], PoolCalibration] = OrderedDict()
        self._lock = threading.Lock()

    def observe(self, models: tuple[str, ...], quality: np.ndarray, cost: np.ndarray) -> None:
        """Record routed prompts' predicted (prompts, models) quality and cost."""
        if self.mode != "traffic":
            return
        with self._lock:
            self._get(models).add(quality, cost)

    def table(
        self, models: tuple[str, ...], reference: Callable[[], tuple[np.ndarray, np.ndarray]]
    ) -> np.ndarray:
        """The pool's current table, fitted again first if its traffic has grown enough."""
        with self._lock:
            pool = self._get(models)
            if not pool.due() and pool.table is not None:
                return pool.table
            quality, cost = pool.rows(reference())
            seen = pool.seen if pool.seen >= FIRST else -1
        table = _score.lambda_table(quality, cost)
        with self._lock:
            if seen >= pool.fitted_at:
                pool.table, pool.fitted_at = table, seen
            return pool.table if pool.table is not None else table

    def traffic(self, models: tuple[str, ...]) -> int:
        """Prompts the pool's current table was fitted on (0: reference prompts only)."""
        with self._lock:
            pool = self._by_pool.get(models)
            return min(pool.fitted_at, WINDOW) if pool is not None and pool.fitted_at > 0 else 0

    def carried(self, keep: Callable[[tuple[str, ...]], bool]) -> Calibrations:
        """A copy holding the pools for which `keep` is true (their traffic copied, not shared)."""
        out = Calibrations(self.mode, self.pools)
        with self._lock:
            out._by_pool = OrderedDict(
                (key, copy.deepcopy(pool)) for key, pool in self._by_pool.items() if keep(key)
            )
        return out

    def _get(self, models: tuple[str, ...]) -> PoolCalibration:
        pool = self._by_pool.get(models)
        if pool is None:
            pool = self._by_pool[models] = PoolCalibration(len(models))
            while len(self._by_pool) > self.pools:
                self._by_pool.popitem(last=False)
        else:
            self._by_pool.move_to_end(models)
        return pool

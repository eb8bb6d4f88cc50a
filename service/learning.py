"""Learning from feedback while serving: each model's quality shift, and exploration.

The router predicts each candidate's quality from what it was trained on. Feedback ("score"
metric, or thumbs) on routed requests tells how far off that prediction is on this gateway's
traffic now. Per model, a decayed tally keeps the residuals `score - predicted quality` (the
prediction the router made when it chose the model, before any shift); the model's shift is their
shrunk mean,

    shift = sum(residuals) / (count + PUREAI_FEEDBACK_PRIOR)

with every residual's weight halved after each `PUREAI_FEEDBACK_HALF_LIFE` newer scores (on any
model). A model whose answers got worse loses its traffic within tens of requests; once it gets no
more traffic, its bad record fades, so it is tried again now and then, and wins its traffic back if
it recovered. Every decision adds the shifts to the predicted qualities before ranking.

Exploration: a share `PUREAI_EXPLORE_SHARE` of routed requests is decided on a Thompson sample
instead: each candidate's shifted quality plus a normal draw whose spread is the posterior's,
`sqrt(q (1 - q) / (count + prior))`, so models with little feedback are tried most. The sample is
ranked with the same price of quality as any decision, so `cost_weight` bounds it (at
`cost_weight` 1 there is no exploring: the cheapest model is the answer), and for a key with a
budget it never picks a model with a higher expected cost than the unexplored choice. An explored
decision says so in its reasoning.

The tallies are rebuilt from the store (`Store.scored`: the latest scores on requests the router in
service routed, beside the prediction each ledger row keeps) at most every `PUREAI_FEEDBACK_REFRESH_S`
seconds, and a worker adds the scores it receives at once: every worker, and a restarted one, learns
from all the feedback. Each router version learns from the scores on its own decisions only (the
residuals measure its predictions): a new version starts from nothing, a rolled-back one from its
own record; a retrained router learns the same lesson for good.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .store import Scored

__all__ = ["Choice", "Learner", "Tally"]


@dataclass
class Tally:
    count: float = 0.0  # feedback received, decayed
    residual: float = 0.0  # sum of (score - predicted quality), decayed


@dataclass(frozen=True)
class Choice:
    decision: Any  # router.Decision
    explored: bool
    predicted: float  # the chosen model's predicted quality before the feedback shift
    seconds: float = 0.0  # the router's own time (select, twice when exploring)


class Learner:
    def __init__(self, prior: float, half_life: float, explore_share: float, seed: int | None = None) -> None:
        self.prior = prior
        self.half_life = half_life
        self.decay = 0.5 ** (1.0 / half_life)
        self.explore_share = explore_share
        self.tallies: dict[str, Tally] = {}
        self._version: str | None = None  # of the router whose predictions the tallies measure
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # decisions run in worker threads

    # -- what feedback taught -------------------------------------------------------------------
    def shift(self, model: str) -> float:
        t = self.tallies.get(model)
        return t.residual / (t.count + self.prior) if t else 0.0

    def spread(self, model: str, quality: float) -> float:
        t = self.tallies.get(model)
        count = t.count if t else 0.0
        q = min(max(quality, 0.01), 0.99)
        return math.sqrt(q * (1 - q) / (count + self.prior))

    @property
    def version(self) -> str | None:
        """The router version whose predictions the tallies measure."""
        return self._version

    def learn(self, model: str, predicted: float, score: float, version: str) -> bool:
        """Count a score on a request `version` routed to `model` (predicted quality `predicted`,
        before the shift); False when the tallies measure another version."""
        with self._lock:
            if version != self._version:
                return False
            self._add(model, predicted, score)
            return True

    def rebuild(self, scored: Iterable[Scored], version: str) -> None:
        """The tallies from the store's scores on `version`'s requests, oldest first."""
        with self._lock:
            self.tallies, self._version = {}, version
            for s in scored:
                self._add(s.model, s.predicted, s.score)

    def _add(self, model: str, predicted: float, score: float) -> None:
        for t in self.tallies.values():  # every model's past fades with each new score
            t.count *= self.decay
            t.residual *= self.decay
        t = self.tallies.setdefault(model, Tally())
        t.count += 1.0
        t.residual += score - predicted

    def remembered(self) -> int:
        """How many scores the store should give a rebuild: older ones weigh under 2^-12."""
        return int(12 * self.half_life) + 1

    # -- deciding -------------------------------------------------------------------------------
    def decide(
        self,
        router: Any,
        version: str,
        messages: Any,
        pool: Sequence[str],
        cost_weight: float,
        frugal: bool = False,
    ) -> Choice:
        """The router's decision with the feedback shifts (and, on a share of requests, a Thompson
        sample); `frugal`: exploring may not pick a model dearer than the plain choice. Runs in a
        worker thread."""
        with self._lock:
            if version != self._version:  # what was learned measured another router's predictions
                self.tallies, self._version = {}, version
            shifts = {m: self.shift(m) for m in pool if m in self.tallies}
            explore = (
                self.explore_share > 0
                and cost_weight < 1
                and len(pool) > 1
                and self._rng.random() < self.explore_share
            )
            noise = {m: self._rng.gauss(0.0, 1.0) for m in pool} if explore else {}
        started = time.perf_counter()
        decision = router.select(messages, pool, cost_weight, quality_shift=shifts or None)
        plain = Choice(
            decision,
            False,
            decision.candidates[0].quality - shifts.get(decision.selected_model, 0.0),
            time.perf_counter() - started,
        )
        if not explore:
            return plain
        quality = {c.model: c.quality for c in decision.candidates}
        sample = {
            m: max(-1.0, min(1.0, shifts.get(m, 0.0) + noise[m] * self.spread(m, quality[m]))) for m in pool
        }
        tried = router.select(messages, pool, cost_weight, quality_shift=sample)
        seconds = time.perf_counter() - started
        chosen, best = tried.candidates[0], decision.candidates[0]
        if chosen.model == best.model or (frugal and chosen.cost_usd > best.cost_usd):
            return replace(plain, seconds=seconds)
        # Report the shifted (not the sampled) qualities: the sample was only the reason to try it.
        honest = {c.model: c for c in decision.candidates}
        note = (
            f" Exploring: {chosen.model} was tried instead of {best.model} on a Thompson sample of "
            f"the quality each model's feedback supports ({self.explore_share:.0%} of requests explore)."
        )
        pick = honest[chosen.model]
        explored = replace(
            decision,
            selected_model=pick.model,
            confidence=pick.confidence,
            reasoning=decision.reasoning + note,
            candidates=(pick, *(c for c in decision.candidates if c.model != pick.model)),
        )
        return Choice(explored, True, pick.quality - shifts.get(pick.model, 0.0), seconds)

    def state(self) -> dict[str, dict[str, float]]:
        """Per model: feedback count (decayed) and current quality shift."""
        with self._lock:
            return {
                m: {"feedback": round(t.count, 3), "quality_shift": round(self.shift(m), 4)}
                for m, t in sorted(self.tallies.items())
            }

"""How much the estimate from a prompt's neighbours counts against each model's ability (the
`near` bounds of router/_quality.py): chosen on the held-out folds, by the validation score the
other hyper-parameters are chosen by.

The router weighs the neighbour estimate by `share * clip((s - lo) / (hi - lo), 0, 1)`, where `s`
is the mean similarity of the prompt's `NEAREST` closest training prompts and `share` the fraction
of them with the model's outcome; the ability has the rest. Where held-out prompts with few close
neighbours are better served by the ability, the bounds move up; where the neighbours stay better
even when far, they move down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from router._quality import NEAR, NEAREST, local_weight

GRID: tuple[tuple[float, float], ...] = tuple(
    (lo, round(lo + width, 2)) for lo in (0.2, 0.3, 0.4, 0.5, 0.6) for width in (0.1, 0.25, 0.4)
)
"""Candidate (lo, hi) bounds. None starts below 0.2, the similarity of a greeting's closest maths
items: a prompt's neighbours have to be something like it before their outcomes speak for it."""


@dataclass(frozen=True)
class Fold:
    """One held-out fold: its validation score, and per held-out row the calibrated neighbour
    estimate, the ability, the mean similarity of the closest training rows and the share of them
    with each model's outcome."""

    score: Callable[[np.ndarray], float]
    quality: np.ndarray  # (n, M)
    ability: np.ndarray  # (n, M)
    similarity: np.ndarray  # (n,)
    share: np.ndarray  # (n, M)


def closeness(E_fit: np.ndarray, seen_fit: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,) mean similarity of each row of E to its `NEAREST` closest rows of E_fit, and (n, M) the
    share of those with each model's outcome (`seen_fit`, a boolean (rows, M) matrix)."""
    n = len(E)
    k = min(NEAREST, len(E_fit))
    sim = np.zeros(n)
    share = np.zeros((n, seen_fit.shape[1]))
    if k == 0:
        return sim, share
    for s in range(0, n, 1024):
        sims = E[s : s + 1024] @ E_fit.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        sim[s : s + 1024] = np.take_along_axis(sims, top, axis=1).mean(axis=1)
        share[s : s + 1024] = seen_fit[top].mean(axis=1)
    return sim, share


def mixed(fold: Fold, near: tuple[float, float]) -> np.ndarray:
    """The fold's quality as the router computes it with these bounds."""
    a = local_weight(fold.similarity, fold.share, near)
    return np.asarray(a * fold.quality + (1 - a) * fold.ability)


def choose(folds: Sequence[Fold]) -> tuple[tuple[float, float], dict[str, float]]:
    """The bounds with the best summed validation score over the folds (ties: the router's default
    `NEAR`, then the earlier candidate), and the score of every candidate."""
    if not folds:
        return (float(NEAR[0]), float(NEAR[1])), {}
    candidates: list[tuple[float, float]] = list(dict.fromkeys([(float(NEAR[0]), float(NEAR[1])), *GRID]))
    scores = {c: sum(f.score(mixed(f, c)) for f in folds) for c in candidates}
    best = max(candidates, key=lambda c: scores[c])
    return best, {f"{lo:g}-{hi:g}": round(v, 5) for (lo, hi), v in scores.items()}

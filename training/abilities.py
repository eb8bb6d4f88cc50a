"""Per-model abilities: how likely a model is to answer a prompt of each capability well, and how
that falls with the prompt's complexity, learned from every outcome row the model has.

For model m, a prompt of capability c and complexity z (the complexity head's output):

    logit P(good) = theta[m, c] + slope[m] * (logit(z) - center)

`theta[m, c] = pooled[c] + a[m] + u[m, c]`: what every model scores on capability c, the model's
overall standing `a[m]` (from all its rows, whatever their capability) and its own deviation on c,
`u[m, c]`, which needs rows of c to move away from 0 (an L2 penalty worth `PSEUDO_ROWS` rows).
`a[m]` and `u[m, c]` are fitted against each item group's difficulty, shared by all models, so a
model seen only on an easy benchmark is not taken for a strong one. So a
model measured on maths and code only still gets a writing ability: the pooled one, moved by how
much better or worse than the others it did everywhere else. `slope[m]` is likewise the pooled
slope plus the model's deviation; the router holds a prompt's complexity to the span of the training
rows' (`span`), so that the slope is not carried past the evidence. The router mixes the capabilities by the prompt's capability
probabilities (router/_quality.py); this is what carries a model's evidence to prompts unlike any
training item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PSEUDO_ROWS = 30.0  # L2 on a model's per-capability deviation, in rows' worth of evidence
SLOPE_ROWS = 200.0  # the same for its deviation from the pooled complexity slope
GROUP_ROWS = 20.0  # L2 on an item group's difficulty, in rows' worth: small groups stay near 0
ITERATIONS = 25


@dataclass(frozen=True)
class Abilities:
    theta: np.ndarray  # (models, capabilities) logit ability at the centre complexity
    slope: np.ndarray  # (models,) change of the logit per unit of logit complexity
    center: float  # logit complexity at which theta holds (the training rows' mean)
    rows: np.ndarray  # (models, capabilities) outcome rows behind each ability (weighted)
    pooled_slope: float
    span: tuple[
        float, float
    ]  # logit complexities (about the centre) of the training rows, 1st-99th percentile

    def table(self, capabilities: list[str]) -> dict[str, Any]:
        """The quality.json entry (router/_quality.py reads it)."""
        return {
            "capabilities": list(capabilities),
            "theta": np.round(self.theta, 5).tolist(),
            "slope": np.round(self.slope, 5).tolist(),
            "center": round(self.center, 5),
            "rows": np.round(self.rows, 1).tolist(),
            "pooled_slope": round(self.pooled_slope, 5),
            "span": [round(self.span[0], 5), round(self.span[1], 5)],
        }


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.asarray(np.log(p) - np.log1p(-p))


def _newton(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray, penalty: np.ndarray
) -> np.ndarray:
    """Weighted logistic regression on soft labels y in [0, 1] with a per-row offset and an L2
    penalty per coefficient (Newton's method; a few coefficients, many rows)."""
    beta = np.zeros(X.shape[1])
    for _ in range(ITERATIONS):
        eta = X @ beta + offset
        p = 1.0 / (1.0 + np.exp(-np.clip(eta, -30, 30)))
        grad = X.T @ (w * (y - p)) - penalty * beta
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + np.diag(penalty + 1e-6)
        step = np.linalg.solve(hess, grad)
        beta += step
        if float(np.max(np.abs(step))) < 1e-6:
            break
    return beta


def _compared(groups: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, int]:
    """Group indices in which only the groups that at least two models have outcomes in keep a
    difficulty of their own: in a group one model alone was scored in (a user's feedback on the
    model that answered), difficulty and ability cannot be told apart, and its outcomes should
    move that model's ability. The others share one last index, held at 0 (see `_pooled`); also
    the number of indices."""
    groups = np.asarray(groups, dtype=np.int64)
    n_groups = int(groups.max(initial=0) + 1)
    models_in = np.zeros((n_groups, seen.shape[1]), dtype=bool)
    np.logical_or.at(models_in, groups, seen)
    keep = models_in.sum(axis=1) >= 2
    index = np.full(n_groups, int(keep.sum()), dtype=np.int64)
    index[keep] = np.arange(int(keep.sum()))
    return index[groups], int(keep.sum()) + 1


def _pooled(
    c: np.ndarray,
    g: np.ndarray,
    d: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    n_caps: int,
    n_groups: int,
    group_penalty: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Newton's method for logit = theta[c] + slope * d + delta[g] over every (row, model) outcome:
    ([theta..., slope], delta). The last group is held at 0 (`_compared`). The design is two one-hot
    blocks and a column, so the gradient and the Hessian are sums per capability and per group (no
    dense design matrix)."""
    k = n_caps + 1 + n_groups
    beta = np.zeros(k)
    penalty = np.r_[np.full(n_caps + 1, 1e-3), np.full(n_groups - 1, group_penalty), [1e9]]
    for _ in range(ITERATIONS):
        eta = beta[c] + beta[n_caps] * d + beta[n_caps + 1 + g]
        p = 1.0 / (1.0 + np.exp(-np.clip(eta, -30, 30)))
        e, h = w * (y - p), w * p * (1 - p)
        grad = np.r_[np.bincount(c, e, n_caps), [e @ d], np.bincount(g, e, n_groups)] - penalty * beta
        H = np.zeros((k, k))
        cg = np.zeros((n_caps, n_groups))
        np.add.at(cg, (c, g), h)
        gi = slice(n_caps + 1, k)
        H[np.arange(n_caps), np.arange(n_caps)] = np.bincount(c, h, n_caps)
        H[n_caps, n_caps] = h @ (d * d)
        H[np.arange(n_caps + 1, k), np.arange(n_caps + 1, k)] = np.bincount(g, h, n_groups)
        H[:n_caps, n_caps] = H[n_caps, :n_caps] = np.bincount(c, h * d, n_caps)
        H[gi, n_caps] = H[n_caps, gi] = np.bincount(g, h * d, n_groups)
        H[:n_caps, gi] = cg
        H[gi, :n_caps] = cg.T
        H += np.diag(penalty + 1e-6)
        step = np.linalg.solve(H, grad)
        beta += step
        if float(np.max(np.abs(step))) < 1e-6:
            break
    return beta[: n_caps + 1], beta[n_caps + 1 :]


def fit_abilities(
    scores: np.ndarray,
    caps: np.ndarray,
    complexity: np.ndarray,
    n_caps: int,
    weights: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> Abilities:
    """Abilities from a (rows, models) score matrix (NaN where a model has no outcome), each row's
    capability index in [0, n_caps) (-1: unknown, not used), its predicted complexity in (0, 1), its
    weight and its item group (a dataset and subtask, say). Each group gets a difficulty of its own,
    shared by every model (`GROUP_ROWS`): a model measured only on an easy benchmark is then rated
    against the others on those items, not against every model on everything."""
    n, models = scores.shape
    w_row = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    d = _logit(np.asarray(complexity, dtype=np.float64))
    labelled = caps >= 0
    center = float(np.average(d[labelled], weights=w_row[labelled])) if labelled.any() else 0.0
    d = d - center
    onehot = np.zeros((n, n_caps))
    onehot[np.flatnonzero(labelled), caps[labelled]] = 1.0
    # pooled over every model: one logit per capability, one slope, one difficulty per item group
    seen = ~np.isnan(scores) & labelled[:, None]
    r, m = np.nonzero(seen)
    g, n_groups = _compared(np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups), seen)
    scale = float(w_row[r].mean()) if len(r) else 1.0
    pooled, group_logit = _pooled(
        caps[r], g[r], d[r], scores[r, m], w_row[r], n_caps, n_groups, GROUP_ROWS * scale * 0.25
    )
    theta = np.zeros((models, n_caps))
    slope = np.zeros(models)
    rows = np.zeros((models, n_caps))
    for j in range(models):
        rj = np.flatnonzero(seen[:, j])
        rows[j] = onehot[rj].T @ w_row[rj] if len(rj) else 0.0
        if not len(rj):
            theta[j], slope[j] = pooled[:n_caps], pooled[n_caps]
            continue
        offset = onehot[rj] @ pooled[:n_caps] + pooled[n_caps] * d[rj] + group_logit[g[rj]]
        Xj = np.hstack([np.ones((len(rj), 1)), onehot[rj], d[rj, None]])
        # penalties scaled to the rows' mean weight, so that PSEUDO_ROWS means rows
        scale = float(w_row[rj].mean())
        penalty = np.r_[1e-3, np.full(n_caps, PSEUDO_ROWS * scale * 0.25), SLOPE_ROWS * scale * 0.25]
        b = _newton(Xj, scores[rj, j], w_row[rj], offset, penalty)
        theta[j] = pooled[:n_caps] + b[0] + b[1 : 1 + n_caps]
        slope[j] = pooled[n_caps] + b[1 + n_caps]
    span = (
        (float(np.percentile(d[labelled], 1)), float(np.percentile(d[labelled], 99)))
        if labelled.any()
        else (0.0, 0.0)
    )
    return Abilities(theta, slope, center, rows, float(pooled[n_caps]), span)

"""Fit the router's heads and quality-cost table from embedded outcome data.

Scikit-learn manners: `QualityFitter(...).fit(E, data)` returns self; learned attributes end in
`_`. Hyper-parameters (logistic C per model, k of the neighbour mean, the blend of the three
quality estimates) are chosen on a held-out fifth of the prompts (grouped by text), the
calibration is fitted there too, and the final heads are refitted on every prompt.

Row weights (`data.weights`, set when a base set is merged in) weigh what is learned from outcomes:
the quality heads, the neighbour mean, the group quality and output-token tables, complexity, the
calibration and the validation Brier score. The group and capability heads (what kind of prompt
this is) and the cost model (what a model charges) count every row once. With a base set,
`hyperparameters` (the base's C, k, blend and calibration) are kept instead of tuned.

The last `shape_dims` columns of the embedding matrix are the prompts' shape features
(`router._text.SHAPE`): the quality, group and complexity heads read them, the neighbour search and
the capability head (what a prompt asks for, not how long it is) read the embedding alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from router._quality import VOTE_K, VOTE_SHARE, class_weights, mixed_ability, sigmoid, vote

from .abilities import Abilities, fit_abilities
from .base import base_set_arrays
from .data import CAPABILITIES, OutcomeData
from .mix import Fold, choose, closeness, mixed
from .onnx_heads import Linear
from .prompt_labels import LabelSet, dev_report, text_key

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
K_GRID = (10, 20, 50, 100, 200)
SHRINK = 10.0  # pseudo-count pulling group means toward the model mean
MIN_GROUP = 20
FOLDS = 5  # validation folds (of five) for the hyper-parameters and the calibration
COST_R2_MIN = 0.8  # held-out R² above which expected cost varies per prompt (else: per group)  # groups with fewer prompts fall back to their task label
DEFAULT_OUT_TOKENS = 400.0
ABSENT_LOGIT = -30.0  # softmax bias of a class with no training row in a fold
CAPABILITY_C = 4.0  # inverse regularisation of the capability head (labelled prompts + benchmarks)
CELL_CAP = 100.0  # a (source, label) cell weighs as much as at most this many of its rows
BENCH_SHARE = 0.5  # share of the complexity head's weight on the benchmark difficulty (the rest: anchors)
BENCH_SPAN = (0.15, 0.85)  # the benchmark difficulty ranks are spread over this part of [0, 1]
NOT_A_CAPABILITY = ("arena-bench-v1",)  # datasets whose task label names the dataset, not the request


def text_split(
    data: OutcomeData, seed: int, frac: float = 0.2, fold: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (train, validation): validation is the `fold`-th slice of width `frac` of a seeded
    hash of the normalised text, so prompts with the same text stay on one side."""
    keys = [" ".join(t.lower().split()) or pid for t, pid in zip(data.texts, data.prompt_ids, strict=True)]
    salt = str(seed).encode()
    u = np.array([int(hashlib.sha1(salt + k.encode()).hexdigest()[:8], 16) / 2**32 for k in keys])
    va = (u >= fold * frac) & (u < (fold + 1) * frac)
    return np.flatnonzero(~va), np.flatnonzero(va)


def soft_logistic(
    E: np.ndarray, s: np.ndarray, C: float, w: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Logistic regression on soft labels: each row once as 1 with weight s, once as 0 with 1 - s
    (times the row's weight `w`, if given)."""
    from sklearn.linear_model import LogisticRegression

    mean = float(np.clip(s.mean() if w is None else np.average(s, weights=w), 1e-3, 1 - 1e-3))
    if len(s) < 20 or s.min() == s.max():
        return np.zeros(E.shape[1]), float(np.log(mean / (1 - mean)))
    if np.isin(s, (0.0, 1.0)).all():
        X, y, sw = E, s.astype(int), w
    else:
        X, y, sw = np.vstack([E, E]), np.r_[np.ones(len(s), int), np.zeros(len(s), int)], np.r_[s, 1 - s]
        if w is not None:
            sw = sw * np.r_[w, w]
    clf = LogisticRegression(C=C, max_iter=1000).fit(X, y, sample_weight=sw)
    return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def softmax_head(
    E: np.ndarray,
    labels: list[str],
    classes: list[str],
    weights: np.ndarray | None = None,
    C: float = 1.0,
) -> Linear:
    """Multinomial logistic head; classes balanced unless `weights` are given. A class without a
    row here (a small group that fell wholly into a validation fold) gets probability ~0."""
    from sklearn.linear_model import LogisticRegression

    dim = E.shape[1]
    y = np.array([classes.index(x) for x in labels])
    present = np.unique(y)
    if len(present) == 1:
        W, b = np.zeros((dim, 1)), np.zeros(1)
    else:
        clf = LogisticRegression(C=C, max_iter=1000, class_weight=None if weights is not None else "balanced")
        clf.fit(E, y, sample_weight=weights)
        if len(present) == 2:  # sklearn keeps one coefficient row for two classes
            w = clf.coef_[0] / 2
            W, b = np.stack([-w, w], axis=1), np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
        else:
            W, b = clf.coef_.T.astype(np.float64), clf.intercept_.astype(np.float64)
    if len(present) == len(classes):
        return Linear(W, b, "softmax")
    W_all, b_all = np.zeros((dim, len(classes))), np.full(len(classes), ABSENT_LOGIT)
    W_all[:, present], b_all[present] = W, b
    return Linear(W_all, b_all, "softmax")


def cell_weights(labels: list[str], sources: list[str], cap: float = CELL_CAP) -> np.ndarray:
    """Row weights (mean 1): a row of a (source, label) cell of n rows weighs min(1, cap / n), then
    every label's total is made equal, so that no source's style carries a label and a big
    benchmark does not drown the real prompts."""
    cells: dict[tuple[str, str], int] = {}
    for key in zip(sources, labels, strict=True):
        cells[key] = cells.get(key, 0) + 1
    w = np.array([min(1.0, cap / cells[key]) for key in zip(sources, labels, strict=True)])
    names = sorted(set(labels))
    lab = np.array(labels)
    for c in names:
        w[lab == c] /= w[lab == c].sum()
    return np.asarray(w * len(w) / len(names))


def rank_scale(x: np.ndarray, lo: float, hi: float, w: np.ndarray | None = None) -> np.ndarray:
    """x's (weighted) mid-ranks mapped linearly onto [lo, hi]: the order of x, none of its scale."""
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    mid = (cum - w[order] / 2) / cum[-1]
    _, inverse = np.unique(x[order], return_inverse=True)  # ties share the mean of their mid-ranks
    pct = np.empty(len(x))
    pct[order] = (np.bincount(inverse, weights=mid) / np.bincount(inverse))[inverse]
    return np.asarray(lo + (hi - lo) * pct)


def knn_mean(
    E_fit: np.ndarray,
    S_fit: np.ndarray,
    E: np.ndarray,
    k: int,
    fallback: np.ndarray,
    w_fit: np.ndarray | None = None,
) -> np.ndarray:
    """Mean score of the k nearest rows of E_fit per model (weighted by w_fit if given), as
    router/_quality.py computes it when routing."""
    seen = ~np.isnan(S_fit)
    filled = np.nan_to_num(S_fit)
    if w_fit is not None:
        seen, filled = seen * w_fit[:, None], filled * w_fit[:, None]
    out = np.empty((len(E), S_fit.shape[1]))
    for s in range(0, len(E), 1024):
        sims = E[s : s + 1024] @ E_fit.T
        kk = min(k, sims.shape[1])
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        n = seen[top].sum(axis=1)
        out[s : s + 1024] = np.where(
            n > 0, filled[top].sum(axis=1) / np.where(n > 0, n, 1), fallback[s : s + 1024]
        )
    return out


def group_means(
    groups: np.ndarray, values: np.ndarray, G: int, prior: np.ndarray, w: np.ndarray | None = None
) -> np.ndarray:
    """(G, M) means of `values` per group (rows weighted by `w` if given), shrunk toward `prior`
    (M,); NaN cells ignored."""
    out = np.tile(prior, (G, 1)).astype(np.float64)
    seen = ~np.isnan(values)
    filled = np.nan_to_num(values)
    if w is not None:
        seen, filled = seen * w[:, None], filled * w[:, None]
    for g in range(G):
        rows = groups == g
        n = seen[rows].sum(axis=0)
        total = filled[rows].sum(axis=0)
        out[g] = (total + SHRINK * prior) / (n + SHRINK)
    return out


def brier(q: np.ndarray, s: np.ndarray, w: np.ndarray | None = None) -> float:
    m = ~np.isnan(s)
    if w is not None:
        return float(np.average((q[m] - s[m]) ** 2, weights=np.broadcast_to(w[:, None], s.shape)[m]))
    return float(np.mean((q[m] - s[m]) ** 2))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p) - np.log1p(-p)


@dataclass
class Parts:
    """The three quality estimates for some rows, and the group probabilities."""

    logreg: np.ndarray
    knn: np.ndarray
    table: np.ndarray
    groups: np.ndarray

    def blend(self, w: dict[str, float]) -> np.ndarray:
        return np.asarray(w["logreg"] * self.logreg + w["knn"] * self.knn + w["table"] * self.table)


class QualityFitter:
    def __init__(
        self,
        seed: int = 0,
        knn_max: int = 20000,
        progress: Any = None,
        folds: int = FOLDS,
        seeds: tuple[np.ndarray, LabelSet] | None = None,
        hyperparameters: dict[str, Any] | None = None,
        shape_dims: int = 0,
        near: tuple[float, float] | None = None,
    ) -> None:
        self.shape_dims = shape_dims
        self.near = near  # the `near` bounds to keep; None: chosen on the held-out folds
        # (embeddings incl. shape features, labels) of the labelled prompts (training/prompt_labels.py)
        self.seeds = seeds
        self.hyperparameters = hyperparameters  # {"C", "k", "blend", "calibration"}: kept, not fitted
        self.seed = seed
        self.folds = folds
        self.knn_max = knn_max
        self.progress = progress  # callable(iterable, desc) -> iterable, e.g. tqdm

    def _iter(self, items: Any, desc: str) -> Any:
        return self.progress(items, desc=desc) if self.progress else items

    # -- labels ---------------------------------------------------------------------------------
    def _labels(self, data: OutcomeData) -> None:
        counts: dict[str, int] = {}
        for g in data.groups:
            counts[g] = counts.get(g, 0) + 1
        groups = [
            g if counts[g] >= MIN_GROUP else (t or "other")
            for g, t in zip(data.groups, data.tasks, strict=True)
        ]
        self.groups_ = sorted(set(groups))
        self.group_idx_ = np.array([self.groups_.index(g) for g in groups])
        tasks = [t for t in data.tasks if t]
        self.capabilities_ = [c for c in CAPABILITIES if tasks.count(c) >= 5]

    # -- pieces fitted on some rows -----------------------------------------------------------
    def _fit_logreg(self, E: np.ndarray, S: np.ndarray, rows: np.ndarray, Cs: list[float]) -> Linear:
        W, b = np.zeros((E.shape[1], S.shape[1])), np.zeros(S.shape[1])
        for j in self._iter(range(S.shape[1]), "quality heads"):
            r = rows[~np.isnan(S[rows, j])]
            W[:, j], b[j] = soft_logistic(E[r], S[r, j], Cs[j], self._w(r))
        return Linear(W, b, "sigmoid")

    def _parts(
        self,
        E: np.ndarray,
        data: OutcomeData,
        rows: np.ndarray,
        at: np.ndarray,
        lr: Linear,
        k: int,
        group_head: Linear,
    ) -> Parts:
        S, w = data.scores, self._w(rows)
        prior = np.nanmean(S[rows], axis=0)
        prior = np.where(np.isnan(prior), np.nanmean(S), prior)
        table = group_means(self.group_idx_[rows], S[rows], len(self.groups_), prior, w)
        P = group_head(E[at])
        q_table = P @ table
        D = self._dims(E)
        return Parts(lr(E[at]), knn_mean(E[rows, :D], S[rows], E[at, :D], k, q_table, w), q_table, P)

    def _dims(self, E: np.ndarray) -> int:
        """Columns of E that are the embedding (the rest: shape features)."""
        return int(E.shape[1] - self.shape_dims)

    # -- the whole fit ------------------------------------------------------------------------
    def _w(self, rows: np.ndarray) -> np.ndarray | None:
        """The weights of these rows, or None when every row weighs 1."""
        return None if self.weights_ is None else self.weights_[rows]

    def fit(self, E: np.ndarray, data: OutcomeData) -> QualityFitter:
        S = data.scores
        self.weights_ = None if data.weights is None else np.asarray(data.weights, dtype=np.float64)
        self._labels(data)
        folds = []
        # with fixed hyper-parameters one fold is enough: it only measures the held-out metrics
        for fold in range(1 if self.hyperparameters is not None else max(1, min(self.folds, 5))):
            tr, va = text_split(data, self.seed, fold=fold)
            if len(va) < 10 or len(tr) < 10:
                folds = [(np.arange(len(S)), np.arange(len(S)))]  # tiny data: no honest hold-out
                break
            folds.append((tr, va))
        tr, va = folds[0]
        self.split_ = {"train": len(tr), "validation": len(va), "folds": len(folds)}
        # Per-prompt costs steer money to where it buys most only if they are predictable (cost
        # mostly input); when output length dominates, the noise costs more than it buys.
        self.cost_r2_ = self._cost_r2(data, tr, va)
        self.per_prompt_cost_ = self.cost_r2_ >= COST_R2_MIN
        # hyper-parameters by the summed validation score over the folds
        c_grid, k_grid, grid = self._grids()
        C_score = dict.fromkeys(c_grid, 0.0)
        k_score = dict.fromkeys(k_grid, 0.0)
        blend_score: dict[tuple[float, ...], float] = dict.fromkeys(grid, 0.0)
        per_fold = []
        for tr, va in self._iter(folds, "tune (folds)"):
            group_head_tr = softmax_head(E[tr], [self.groups_[g] for g in self.group_idx_[tr]], self.groups_)
            cost_tr = self._cost_model(data, tr, self.per_prompt_cost_)
            score = self._scorer(data, tr, va, cost_tr, group_head_tr(E[va]))
            lrs = {C: self._fit_logreg(E, S, tr, [C] * S.shape[1]) for C in c_grid}
            for C in c_grid:
                C_score[C] += score(lrs[C](E[va]))
            per_fold.append((tr, va, score, lrs, group_head_tr, cost_tr))
        C_best = max(c_grid, key=lambda C: C_score[C])
        self.C_ = [C_best] * S.shape[1]
        fold_parts = []
        for tr, va, score, lrs, group_head_tr, cost_tr in per_fold:
            parts = {k: self._parts(E, data, tr, va, lrs[C_best], k, group_head_tr) for k in k_grid}
            for k in k_grid:
                k_score[k] += score(parts[k].knn)
            fold_parts.append((tr, va, score, parts, cost_tr))
        self.k_ = max(k_grid, key=lambda k: k_score[k])
        for _, _, score, parts, _ in fold_parts:
            for w in grid:
                blend_score[w] += score(
                    parts[self.k_].blend(dict(zip(("logreg", "knn", "table"), w, strict=True)))
                )
        best: tuple[float, ...] = max(grid, key=blend_score.__getitem__)
        self.blend_ = dict(zip(("logreg", "knn", "table"), best, strict=True))
        # calibration on the out-of-fold predictions of every fold
        q_oof = np.concatenate([p[self.k_].blend(self.blend_) for _, _, _, p, _ in fold_parts])
        s_oof = np.concatenate([S[va] for _, va, _, _, _ in fold_parts])
        if self.hyperparameters is not None:
            self.calibration_ = dict(self.hyperparameters["calibration"])
        else:
            w_oof = (
                None
                if self.weights_ is None
                else np.concatenate([self.weights_[va] for _, va, *_ in fold_parts])
            )
            self.calibration_ = self._calibrate(q_oof, s_oof, w_oof)
        tr, va, _, parts, cost_tr = fold_parts[0]
        self.validation_ = (tr, va, parts[self.k_], cost_tr)
        # final heads on every prompt
        everything = np.arange(len(S))
        self.logreg_ = self._fit_logreg(E, S, everything, self.C_)
        self.group_head_ = softmax_head(E, [self.groups_[g] for g in self.group_idx_], self.groups_)
        self._label_rows(data)
        self.capability_head_ = self._capability_head(E, data)
        self.complexity_head_, self.complexity_mean_ = self._complexity(E, S)
        self.label_report_ = self._label_report()
        self.abilities_ = self._abilities(E, data)
        self.near_, self.near_scores_ = self._near(E, data, fold_parts)
        prior = np.nanmean(S, axis=0)
        self.group_table_ = group_means(
            self.group_idx_, S, len(self.groups_), np.where(np.isnan(prior), 0.5, prior), self.weights_
        )
        self.out_table_ = self._out_tokens(data)
        seen = ~np.isnan(S)
        self.coverage_ = np.stack([seen[self.group_idx_ == g].mean(axis=0) for g in range(len(self.groups_))])
        self.cost_ = self._cost_model(data, everything, self.per_prompt_cost_)
        n_in = self._n_in(data)
        self.reference_ = {"input_tokens": int(round(float(n_in.mean())))}  # fallback input length
        self._knn_memory(E, data, n_in)
        return self

    def _grids(self) -> tuple[tuple[float, ...], tuple[int, ...], list[tuple[float, ...]]]:
        """The candidates for C, k and the blend: the grids, or the one given in `hyperparameters`."""
        if self.hyperparameters is not None:
            h = self.hyperparameters
            return (
                (float(h["C"]),),
                (int(h["k"]),),
                [tuple(float(h["blend"][n]) for n in ("logreg", "knn", "table"))],
            )
        blends: list[tuple[float, ...]] = [
            (a / 8, b / 8, (8 - a - b) / 8) for a in range(9) for b in range(9 - a)
        ]
        return C_GRID, K_GRID, blends

    def _scorer(
        self, data: OutcomeData, tr: np.ndarray, va: np.ndarray, cost: dict[str, Any], groups_va: np.ndarray
    ) -> Any:
        """Validation score of a quality matrix: AIQ of the cost_weight sweep on the held-out
        prompts that have every model's outcome (minus a hair of Brier to break ties), or minus
        the Brier score when too few such prompts exist."""
        from . import metrics

        S, w = data.scores[va], self._w(va)
        full = ~np.isnan(S).any(axis=1)
        if full.sum() < 30 or S.shape[1] < 2 or not all(cost["known"]):
            return lambda q: -brier(q, S, w)
        n_in = self._n_in(data)
        c_hat = self._expected(cost, n_in[va], groups_va)[full]
        real = np.where(np.isnan(data.costs[va][full]), c_hat, data.costs[va][full])
        models = list(data.models)

        def score(q: np.ndarray) -> float:
            pts = metrics.sweep(q[full], c_hat, S[full], real)
            return metrics.curve_metrics(pts, S[full], real, models)["aiq"] - 1e-3 * brier(q, S, w)

        return score

    def group_onehot(self, rows: np.ndarray) -> np.ndarray:
        return np.eye(len(self.groups_))[self.group_idx_[rows]]

    @staticmethod
    def _n_in(data: OutcomeData) -> np.ndarray:
        from router._text import estimate_tokens

        if data.input_tokens is not None:
            return np.asarray(data.input_tokens, dtype=np.float64)
        return np.array([estimate_tokens(len(t)) for t in data.texts], dtype=np.float64)

    @staticmethod
    def _expected(cost: dict[str, Any], n_in: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Expected cost (n, M) from the learned cost model; models without costs get NaN."""
        out = n_in[:, None] * np.asarray(cost["input_slope"])[None, :] + groups @ np.asarray(cost["base"])
        return np.where(np.asarray(cost["known"])[None, :], out, np.nan)

    def _calibrate(self, q: np.ndarray, s: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression

        m = ~np.isnan(s)
        x, y = logit(q[m]).reshape(-1, 1), s[m]
        if len(y) < 20 or y.min() == y.max():
            return {"a": 1.0, "b": 0.0}
        X = np.vstack([x, x])
        sw = np.r_[y, 1 - y]
        if w is not None:
            wm = np.broadcast_to(w[:, None], s.shape)[m]
            sw = sw * np.r_[wm, wm]
        clf = LogisticRegression(C=1e4, max_iter=1000).fit(
            X, np.r_[np.ones(len(y), int), np.zeros(len(y), int)], sample_weight=sw
        )
        return {"a": float(clf.coef_[0, 0]), "b": float(clf.intercept_[0])}

    # -- what a prompt asks for and how hard it is ---------------------------------------------
    def _label_rows(self, data: OutcomeData) -> None:
        """`own_rows_`: the data rows the capability and complexity heads learn from (not a dev
        prompt's text); `data_sources_`: each row's dataset (the prompt id's prefix)."""
        self.data_sources_ = [
            "data:" + pid.split(":", 1)[0] if ":" in pid else "data" for pid in data.prompt_ids
        ]
        dev = self.seeds[1].dev_keys() if self.seeds is not None else set()
        self.own_rows_ = np.array([text_key(t) not in dev for t in data.texts], dtype=bool)

    def _capability_head(self, E: np.ndarray, data: OutcomeData) -> Linear:
        """Capability head on the data's task labels plus the labelled prompts (real user requests
        and seeds, training/prompt_labels.py), every (source, capability) cell weighed alike:
        benchmark prompts alone teach the head that every hard, real request is chat."""
        D = self._dims(E)
        head = self._capability_head_on(E[:, :D], data)
        weight = np.zeros((E.shape[1], head.weight.shape[1]))
        weight[:D] = head.weight
        return Linear(weight, head.bias, head.activation)

    def _capability_head_on(self, E: np.ndarray, data: OutcomeData) -> Linear:
        rows = [i for i, t in enumerate(data.tasks) if t in CAPABILITIES]
        if self.seeds is not None:
            E_lab, lab = self.seeds
            self.capabilities_ = list(CAPABILITIES)
            rows = [
                i
                for i in rows
                if self.own_rows_[i] and self.data_sources_[i].removeprefix("data:") not in NOT_A_CAPABILITY
            ]
            train = ~lab.dev
            X = np.vstack([E[rows], E_lab[train, : E.shape[1]]])
            labels = [data.tasks[i] for i in rows] + [
                c for c, d in zip(lab.capabilities, lab.dev, strict=True) if not d
            ]
            sources = [self.data_sources_[i] for i in rows] + [
                s for s, d in zip(lab.sources, lab.dev, strict=True) if not d
            ]
            return softmax_head(X, labels, self.capabilities_, cell_weights(labels, sources), C=CAPABILITY_C)
        if len(self.capabilities_) < 2:
            self.capabilities_ = self.capabilities_ or ["chat"]
            return Linear(
                np.zeros((E.shape[1], len(self.capabilities_))), np.zeros(len(self.capabilities_)), "softmax"
            )
        rows = [i for i in rows if data.tasks[i] in self.capabilities_]
        return softmax_head(E[rows], [data.tasks[i] for i in rows], self.capabilities_)

    def _complexity(self, E: np.ndarray, S: np.ndarray) -> tuple[Linear, float]:
        """How hard a prompt is, in [0, 1]. The benchmark evidence is IRT-style difficulty: how far
        a prompt's scores fall below each model's own mean. Alone it spans a narrow band (which
        models scored a prompt sets its scale), and no benchmark holds a greeting or a research
        proof; so with labelled prompts only its order is kept (weighted ranks spread over
        BENCH_SPAN), and the anchors (a greeting near 0, a research-level proof near 1) pin the
        ends. One ridge regression in logit space fits both, each carrying half the weight."""
        from sklearn.linear_model import Ridge

        mu = np.nanmean(S, axis=0)
        resid = S - mu
        n = (~np.isnan(S)).sum(axis=1)
        overall = float(np.nanmean(S))
        r = (np.nansum(resid, axis=1) + n * overall) / (n + 2.0) + 2.0 * overall / (n + 2.0)
        own = getattr(self, "own_rows_", np.ones(len(S), dtype=bool))
        w_rows = np.ones(len(S)) if self.weights_ is None else self.weights_
        anchors = None
        if self.seeds is not None:
            E_lab, lab = self.seeds
            anchors = np.flatnonzero(~lab.dev & ~np.isnan(lab.complexity))
        if anchors is None or not len(anchors):
            y = logit(np.clip(1.0 - r, 0.02, 0.98))
            reg = Ridge(alpha=1.0).fit(E, y, sample_weight=self.weights_)
        else:
            t_bench = rank_scale(1.0 - r[own], *BENCH_SPAN, w_rows[own])
            w_bench = w_rows[own] / w_rows[own].sum() * BENCH_SHARE
            w_anchor = cell_weights([lab.capabilities[i] for i in anchors], [lab.sources[i] for i in anchors])
            w_anchor = w_anchor / w_anchor.sum() * (1.0 - BENCH_SHARE)
            X = np.vstack([E[own], E_lab[anchors]])
            y = logit(np.clip(np.r_[t_bench, lab.complexity[anchors]], 0.02, 0.98))
            w = np.r_[w_bench, w_anchor]
            reg = Ridge(alpha=1.0).fit(X, y, sample_weight=w * len(w))
        head = Linear(
            reg.coef_.reshape(-1, 1).astype(np.float64), np.array([float(reg.intercept_)]), "sigmoid"
        )
        return head, float(head(E).mean())

    def _label_report(self) -> dict[str, Any] | None:
        """The capability and complexity heads on the labelled prompts kept out of training."""
        if self.seeds is None:
            return None
        E_lab, lab = self.seeds
        P = self.capability_head_(E_lab)
        D = E_lab.shape[1] - self.shape_dims
        memory, classes = self.label_memory(E_lab[:, :D])
        dev = np.flatnonzero(lab.dev)
        if len(memory) and len(dev):  # the router's blend of the head and the labelled prompts' vote
            sims = E_lab[dev, :D] @ memory.T
            k = min(VOTE_K, len(memory))
            top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            weight = class_weights(classes, len(self.capabilities_))
            voted = vote(np.take_along_axis(sims, top, axis=1), classes[top], len(self.capabilities_), weight)
            P = P.copy()
            P[dev] = np.where(
                voted.sum(axis=1, keepdims=True) > 0, (1 - VOTE_SHARE) * P[dev] + VOTE_SHARE * voted, P[dev]
            )
        return dev_report(P, self.complexity_head_(E_lab)[:, 0], lab, self.capabilities_)

    def label_memory(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The labelled prompts that vote on a prompt's capability in the router (router/_quality.py
        `vote`): the embeddings `emb` (rows of the label set) and capability indices of those kept
        for training."""
        if self.seeds is None:
            return np.zeros((0, emb.shape[1]), np.float32), np.zeros(0, np.int64)
        lab = self.seeds[1]
        keep = np.array(
            [not d and c in self.capabilities_ for c, d in zip(lab.capabilities, lab.dev, strict=True)],
            dtype=bool,
        )
        classes = np.array(
            [self.capabilities_.index(c) for c, k in zip(lab.capabilities, keep, strict=True) if k], np.int64
        )
        return emb[keep].astype(np.float32), classes

    def _abilities(self, E: np.ndarray, data: OutcomeData) -> Abilities:
        """Each model's ability per capability and its complexity slope, from all its rows
        (training/abilities.py), at the complexity the fitted head predicts for each row, against
        the difficulty of each row's group."""
        # a row without a capability label (a user's traffic) takes the one the head reads in it
        read = np.argmax(self.capability_head_(E), axis=1)
        caps = np.array(
            [
                self.capabilities_.index(t) if t in self.capabilities_ else int(r)
                for t, r in zip(data.tasks, read, strict=True)
            ]
        )
        z = self.complexity_head_(E)[:, 0]
        return fit_abilities(data.scores, caps, z, len(self.capabilities_), self.weights_, self.group_idx_)

    def _near(
        self, E: np.ndarray, data: OutcomeData, fold_parts: list[Any]
    ) -> tuple[tuple[float, float], dict[str, float]]:
        """The similarity bounds at which the neighbour estimate takes over from the ability
        (training/mix.py): the ones given, else those `hyperparameters` name, else chosen on the
        held-out folds; and the validation score of each candidate (none when not chosen). Sets
        `validation_quality_`: the first fold's quality as the router computes it, for the
        training report."""
        given = self.near
        if given is None and self.hyperparameters is not None and "near" in self.hyperparameters:
            given = self.hyperparameters["near"]
        # fixed bounds need only the first fold (the report's); chosen ones, every fold
        folds = [self._fold(E, data, part) for part in (fold_parts[:1] if given is not None else fold_parts)]
        if given is not None:
            near, scores = (float(given[0]), float(given[1])), dict[str, float]()
        else:
            near, scores = choose(folds)
        self.validation_quality_ = mixed(folds[0], near)
        return near, scores

    def _fold(self, E: np.ndarray, data: OutcomeData, part: Any) -> Fold:
        """A held-out fold's calibrated neighbour estimate, ability and closeness to its training
        rows (training/mix.py)."""
        tr, va, score, parts, _ = part
        cal = self.calibration_
        q = sigmoid(cal["a"] * logit(parts[self.k_].blend(self.blend_)) + cal["b"])
        a = self.abilities_
        caps, z = self.capability_head_(E[va]), self.complexity_head_(E[va])[:, 0]
        ability = mixed_ability(a.theta, a.slope, a.center, a.span, caps, z)
        D = self._dims(E)
        similarity, share = closeness(E[tr, :D], ~np.isnan(data.scores[tr]), E[va, :D])
        return Fold(score, q, ability, similarity, share)

    def _out_tokens(self, data: OutcomeData) -> np.ndarray:
        T = data.out_tokens
        model_mean = np.nanmean(T, axis=0) if np.isfinite(T).any() else np.full(T.shape[1], np.nan)
        overall = float(np.nanmean(T)) if np.isfinite(T).any() else DEFAULT_OUT_TOKENS
        prior = np.where(np.isnan(model_mean), overall, model_mean)
        return group_means(self.group_idx_, T, len(self.groups_), prior, self.weights_)

    def _cost_r2(self, data: OutcomeData, tr: np.ndarray, va: np.ndarray) -> float:
        """Held-out R² of the per-prompt cost model (mean over models with costs)."""
        cost = self._cost_model(data, tr, per_prompt=True)
        c_hat = self._expected(cost, self._n_in(data)[va], self.group_onehot(va))
        r2 = []
        for j in range(data.costs.shape[1]):
            real = data.costs[va, j]
            m = ~np.isnan(real)
            if m.sum() >= 10 and np.var(real[m]) > 0:
                r2.append(1 - float(np.mean((real[m] - c_hat[m, j]) ** 2)) / float(np.var(real[m])))
        return float(np.mean(r2)) if r2 else 0.0

    def _cost_model(self, data: OutcomeData, subset: np.ndarray, per_prompt: bool = True) -> dict[str, Any]:
        """cost ~ slope_m * input_tokens + base[group, m], fitted per model with group effects;
        with per_prompt False the slope is 0 and the base is the group's mean cost."""
        n_in = self._n_in(data)
        M, G = data.costs.shape[1], len(self.groups_)
        slope, base, known = np.zeros(M), np.zeros((G, M)), []
        for j in range(M):
            rows = subset[~np.isnan(data.costs[subset, j])]
            known.append(bool(len(rows)))
            if not len(rows):
                continue
            c, n, g = data.costs[rows, j], n_in[rows], self.group_idx_[rows]
            dn, dc = n.copy(), c.copy()
            for k in np.unique(g):
                m = g == k
                dn[m] -= n[m].mean()
                dc[m] -= c[m].mean()
            slope[j] = max(float(dn @ dc / (dn @ dn)) if dn @ dn > 0 and per_prompt else 0.0, 0.0)
            resid = (c - slope[j] * n).reshape(-1, 1)
            model_base = float(max(resid.mean(), 0.0))
            base[:, j] = np.maximum(group_means(g, resid, G, np.array([model_base]))[:, 0], 0.0)
        return {"input_slope": slope.tolist(), "base": base.tolist(), "known": known}

    def _knn_memory(self, E: np.ndarray, data: OutcomeData, n_in: np.ndarray) -> None:
        """The neighbour memory: up to knn_max rows (every row not from a base set first), with
        what a later `pureai train --base` needs to learn from them again (training/base.py)."""
        rows = np.arange(len(E))
        if len(rows) > self.knn_max:
            rng = np.random.default_rng(self.seed)
            if data.from_base is None:
                rows = np.sort(rng.choice(rows, self.knn_max, replace=False))
            else:
                own, base = rows[~data.from_base], rows[data.from_base]
                own = np.sort(rng.choice(own, min(len(own), self.knn_max), replace=False))
                base = rng.choice(base, self.knn_max - len(own), replace=False)
                rows = np.sort(np.r_[own, base])
        D = self._dims(E)
        self.knn_embeddings_ = E[rows, :D].astype(np.float16)
        self.knn_shape_ = E[rows, D:].astype(np.float32)
        self.knn_tokens_ = n_in[rows].astype(np.int32)
        self.knn_scores_ = data.scores[rows].astype(np.float16)
        self.knn_base_set_ = base_set_arrays(data, rows, self.group_idx_, self._w(rows))

    # -- outputs --------------------------------------------------------------------------------
    def heads(self) -> dict[str, Linear]:
        return {
            "capabilities": self.capability_head_,
            "groups": self.group_head_,
            "quality": self.logreg_,
            "complexity": self.complexity_head_,
        }

    def table(self, models: list[str], cost_from: str) -> dict[str, Any]:
        return {
            "models": models,
            "capabilities": self.capabilities_,
            "groups": self.groups_,
            "group_table": self.group_table_.tolist(),
            "out_tokens": self.out_table_.tolist(),
            "blend": self.blend_,
            "calibration": self.calibration_,
            "knn_k": self.k_,
            "complexity_mean": self.complexity_mean_,
            "cost": {"from": cost_from, **self.cost_},
            "logreg_C": self.C_,
            "cost_r2": round(self.cost_r2_, 4),
            "split": self.split_,
            "reference": self.reference_,
            "coverage": np.round(self.coverage_, 4).tolist(),
            "abilities": self.abilities_.table(self.capabilities_),
            "near": list(self.near_),
        }

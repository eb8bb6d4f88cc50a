"""Per-prompt features and per-model predicted quality from the learned artifacts.

heads.onnx maps the embedding (followed by the prompt's shape features, `router._text.SHAPE`, when
quality.json lists them under `shape`) to capability and group probabilities, complexity and one
logistic quality head per learned model. Predicted quality blends that head with a k-nearest-
neighbour mean over training prompts (weighted by the rows' training weights when knn.npz has
`weights`) and the group quality table, then applies the calibration fitted on held-out prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._text import SHAPE

SEARCH = Path(__file__).resolve().parent / "knn_search.onnx"
"""The int8 stage of the neighbour search (training/onnx_knn.py): no data, shared by every artifacts
folder."""


MARGIN = 128
"""Candidates the int8 search keeps beyond k. Its similarities are within ~0.003 of the float32
ones, far less than the gap between the k-th and the (k + 128)-th neighbour of a real prompt."""


def quantize_rows(memory: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dim, rows) int8 and (rows,) float32 scales: each row symmetric, max |value| -> 127."""
    scales = np.maximum(np.abs(memory).max(axis=1, initial=0.0), 1e-12) / 127.0
    q = np.rint(memory / scales[:, None]).astype(np.int8)
    return np.ascontiguousarray(q.T), scales.astype(np.float32)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p) - np.log1p(-p)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


NEAR = (0.45, 0.70)
"""The default (artifacts that name none under `near`, training/mix.py chooses them on held-out
folds): mean cosine similarity of a prompt's `NEAREST` closest training prompts at which the estimate
from similar prompts starts to count, and at which it counts in full (for a model with outcomes on
each of them): a benchmark item's closest training prompts are its siblings (0.65-0.75);
real requests unlike any training item have them at 0.2-0.5, and their outcomes say little about it."""
NEAREST = 10
VOTE_K = 15
"""Labelled prompts (knn.npz `label_embeddings`, `label_classes`) that vote on a prompt's capability."""
VOTE_SHARE = 0.6
"""The vote's share of the capability probabilities; the capability head has the rest. A linear
head over the embedding draws one boundary per capability; the vote follows the labelled prompts
wherever they lie (on held-out real prompts: top-1 0.83 for the head alone, 0.89 blended)."""


def local_weight(similarity: np.ndarray, share: np.ndarray, near: tuple[float, float]) -> np.ndarray:
    """(n, M) how much the neighbour estimate counts: `share` (n, M), the fraction of the `NEAREST`
    neighbours with each model's outcome, times where their mean `similarity` (n,) falls between
    the two `near` bounds."""
    lo, hi = near
    return share * np.clip((similarity - lo) / (hi - lo), 0.0, 1.0)[:, None]


def mixed_ability(
    theta: np.ndarray,
    slope: np.ndarray,
    center: float,
    span: tuple[float, float],
    caps: np.ndarray,
    complexity: np.ndarray,
) -> np.ndarray:
    """(n, M): each model's ability (theta (M, C) at logit complexity `center`, moving by `slope`
    (M,) per unit, the complexity held to `span` about the centre) mixed over the prompts'
    capability probabilities `caps` (n, C), at their `complexity` (n,) (training/abilities.py)."""
    d = np.clip(logit(np.asarray(complexity, dtype=np.float64)) - center, *span)
    eta = theta[None, :, :] + slope[None, :, None] * d[:, None, None]
    return np.asarray(np.einsum("ic,imc->im", caps, sigmoid(eta)))


def class_weights(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Per class, the weight of one labelled prompt's vote: inversely to how many the class has, so
    every class weighs alike in all (0 for a class with none)."""
    counts = np.bincount(classes, minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)


def vote(sims: np.ndarray, classes: np.ndarray, n_classes: int, class_weight: np.ndarray) -> np.ndarray:
    """(n, n_classes) capability probabilities from each prompt's nearest labelled prompts: `sims`
    (n, k) their cosine similarities, `classes` (n, k) their labels. Each votes its similarity
    squared times its class's weight (classes with fewer labelled prompts weigh more); a prompt with
    no positive similarity gets zeros."""
    w = np.maximum(sims, 0.0) ** 2 * class_weight[classes]
    out = np.zeros((len(sims), n_classes))
    np.add.at(out, (np.arange(len(sims))[:, None], classes), w)
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.where(total > 0, total, 1.0), 0.0)


@dataclass(frozen=True)
class Features:
    capabilities: np.ndarray  # (n, C)
    groups: np.ndarray  # (n, G)
    complexity: np.ndarray  # (n,)
    quality: np.ndarray  # (n, M) calibrated, from similar training prompts (heads, neighbours, groups)
    out_tokens: np.ndarray  # (n, M) expected output tokens
    ability: np.ndarray  # (n, M) from each model's ability on the prompt's capabilities
    local: np.ndarray  # (n, M) in [0, 1]: how much `quality` counts against `ability`


class QualityModel:
    def __init__(self, heads_path: Path, knn_path: Path, table: dict[str, Any], threads: int = 1) -> None:
        import onnxruntime as ort

        # The heads and the neighbour search are small: one thread each, whatever `threads` the
        # embedder gets. A pool of their own would spin beside the embedder's and slow it down
        # (with 2 threads everywhere, the embedder took 9.3 ms p50 instead of 4.6 on 2 cores).
        del threads
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(heads_path), options, providers=["CPUExecutionProvider"])
        self.models: list[str] = list(table["models"])
        self.capabilities: list[str] = list(table["capabilities"])
        self.groups: list[str] = list(table["groups"])
        self.group_table = np.asarray(table["group_table"], dtype=np.float64)
        self.out_table = np.asarray(table["out_tokens"], dtype=np.float64)
        self.blend = table["blend"]
        self.calibration = table["calibration"]
        self.k = int(table["knn_k"])
        abilities = table.get("abilities")  # artifacts before it have none: `quality` alone
        self.abilities: dict[str, np.ndarray] | None = None
        if abilities is not None:
            self.abilities = {
                "theta": np.asarray(abilities["theta"], dtype=np.float64),
                "slope": np.asarray(abilities["slope"], dtype=np.float64),
                "rows": np.asarray(abilities["rows"], dtype=np.float64),
            }
            self.ability_center = float(abilities["center"])
            self.ability_span = tuple(abilities.get("span", (-np.inf, np.inf)))
            self.pooled_slope = float(abilities["pooled_slope"])
            if list(abilities["capabilities"]) != self.capabilities:
                raise ValueError("quality.json: abilities are not over the heads' capabilities")
        lo, hi = table.get("near", NEAR)
        if not 0.0 <= float(lo) < float(hi):
            raise ValueError(f"quality.json: near must be two similarities 0 <= lo < hi, not {[lo, hi]}")
        self.near = (float(lo), float(hi))
        self.complexity_mean = float(table["complexity_mean"])
        self.shape: list[str] = list(table.get("shape", []))  # artifacts before it have none
        unknown = [n for n in self.shape if n not in SHAPE]
        if unknown:  # checked here, not on the first decision
            raise ValueError(
                f"quality.json: unknown prompt shape features {unknown} (known: {', '.join(SHAPE)})"
            )
        with np.load(knn_path) as knn:
            self.knn_emb = np.asarray(knn["embeddings"], dtype=np.float32)
            self.knn_shape = np.asarray(
                knn["shape"] if self.shape else np.zeros((len(self.knn_emb), 0)), np.float32
            )
            scores = np.asarray(knn["scores"], dtype=np.float32)
            self.knn_tokens = np.asarray(knn["input_tokens"]) if "input_tokens" in knn else None
            weights = np.asarray(knn["weights"], dtype=np.float32)[:, None] if "weights" in knn else None
            labelled = "label_embeddings" in knn
            if labelled:
                self.label_emb = np.asarray(knn["label_embeddings"], dtype=np.float32)
                self.label_classes = np.asarray(knn["label_classes"], dtype=np.int64)
        self.label_search = None
        if labelled and len(self.label_emb):
            self.label_weight = class_weights(self.label_classes, len(self.capabilities))
            self.label_search, self._label_data = _search(self.label_emb)
        self.knn_q, self.knn_scales = quantize_rows(self.knn_emb)
        self.knn_search = None
        if len(self.knn_emb):  # the memory as the search graph's constants (training/onnx_knn.py)
            self.knn_search, self._search_data = _search(self.knn_emb, (self.knn_q, self.knn_scales))
        self.knn_seen = ~np.isnan(scores)
        self.knn_scores = np.nan_to_num(scores)
        if weights is not None:  # the sums below become weighted sums
            self.knn_seen = self.knn_seen * weights
            self.knn_scores = self.knn_scores * weights

    def capability_vote(self, emb: np.ndarray) -> np.ndarray | None:
        """(n, C) the labelled prompts' vote on each prompt's capability, or None without them."""
        if self.label_search is None:
            return None
        rows = len(self.label_emb)
        k = min(VOTE_K, rows)
        emb32 = emb.astype(np.float32, copy=False)
        feed = {"embedding": emb32, "n": np.array([min(rows, k + MARGIN)], np.int64)}
        (candidates,) = self.label_search.run(["candidates"], feed)
        exact = np.einsum("id,ijd->ij", emb32, self.label_emb[candidates])
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(candidates, order, axis=1)
        return vote(
            np.take_along_axis(exact, order, axis=1),
            self.label_classes[top],
            len(self.capabilities),
            self.label_weight,
        )

    def heads(self, emb: np.ndarray, shape: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if self.shape:
            if shape is None or shape.shape != (len(emb), len(self.shape)):
                raise ValueError(f"these heads read the prompts' shape features too: {', '.join(self.shape)}")
            emb = np.hstack([emb, shape]).astype(np.float32)
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(None, {"embedding": emb}), strict=True))

    def knn(
        self, emb: np.ndarray, fallback: np.ndarray, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The neighbour mean of each model's scores (`fallback` where no neighbour has one), and
        how much that mean counts: per model, the share of the `NEAREST` neighbours that have its
        outcome, times where their mean similarity falls between the two `near` bounds."""
        if self.knn_emb.shape[0] <= (0 if exclude is None else 1) or self.k == 0:
            return fallback, np.zeros_like(fallback)
        top, sims = self._neighbours(emb.astype(np.float32, copy=False), exclude)
        seen = self.knn_seen[top].sum(axis=1)  # (n, M)
        total = self.knn_scores[top].sum(axis=1)
        mean = np.where(seen > 0, total / np.where(seen > 0, seen, 1), fallback)
        share = (self.knn_seen[top[:, :NEAREST]] > 0).mean(axis=1)
        return mean, local_weight(sims[:, :NEAREST].mean(axis=1), share, self.near)

    def neighbours(self, emb: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """(n, k) indices of the k most similar memory rows (see `_neighbours`)."""
        return self._neighbours(emb, exclude)[0]

    def _neighbours(
        self, emb: np.ndarray, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) indices of the k most similar memory rows, exactly as a float32 search finds them
        (ties to the lower index); with `exclude`, row i leaves out memory row exclude[i] (a
        training prompt's own row, so that its prediction is the one a new prompt would get).
        Two stages: an int8 search in onnxruntime (knn_search.onnx) keeps k + MARGIN candidates,
        then their float32 similarities rank them. Not numpy over the
        whole memory: `@` wakes OpenBLAS's thread pool, which fights onnxruntime for the cores, and
        einsum reads 12 MB of float32 per decision, out of cache after the embedder has run."""
        rows = len(self.knn_emb)
        k = min(self.k, rows if exclude is None else rows - 1)
        n = min(rows, k + MARGIN + (exclude is not None))
        assert self.knn_search is not None, "knn() searches only a memory that has rows"
        feed = {"embedding": emb, "n": np.array([n], np.int64)}
        (candidates,) = self.knn_search.run(["candidates"], feed)
        candidates = np.sort(candidates, axis=1)  # so that a stable sort breaks ties to the lower index
        exact = np.einsum("id,ijd->ij", emb, self.knn_emb[candidates])
        if exclude is not None:
            exact[candidates == np.asarray(exclude)[:, None]] = -np.inf
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(exact, order, axis=1)

    def features(
        self, emb: np.ndarray, shape: np.ndarray | None = None, exclude: np.ndarray | None = None
    ) -> Features:
        """Features of each embedding and its prompt's shape features (needed when `self.shape`
        lists any); `exclude` as in `neighbours`."""
        h = self.heads(emb, shape)
        groups = h["groups"].astype(np.float64)
        table = groups @ self.group_table
        knn, near = self.knn(emb, table, exclude)
        parts = {"logreg": h["quality"].astype(np.float64), "table": table, "knn": knn}
        q = sum(float(self.blend[name]) * parts[name] for name in parts if self.blend.get(name))
        q = sigmoid(self.calibration["a"] * logit(np.asarray(q)) + self.calibration["b"])
        caps = h["capabilities"].astype(np.float64)
        voted = self.capability_vote(emb)
        if voted is not None:
            caps = np.where(
                voted.sum(axis=1, keepdims=True) > 0, (1 - VOTE_SHARE) * caps + VOTE_SHARE * voted, caps
            )
        complexity = h["complexity"][:, 0].astype(np.float64)
        if self.abilities is None:
            ability, local = q, np.ones_like(q)
        else:
            ability, local = self.ability(caps, complexity), near
        return Features(caps, groups, complexity, q, groups @ self.out_table, ability, local)

    def ability(self, caps: np.ndarray, complexity: np.ndarray) -> np.ndarray:
        """(n, M): each model's ability mixed over the prompts' capability probabilities, at their
        complexity (training/abilities.py)."""
        assert self.abilities is not None
        a = self.abilities
        return mixed_ability(a["theta"], a["slope"], self.ability_center, self.ability_span, caps, complexity)

    def prior_shift(self, complexity: float) -> float:
        """How far a prompt's complexity moves a catalogue prior, in logits: the pooled slope of
        every learned model's quality against complexity (artifacts without abilities: a fixed
        slope about the training prompts' mean complexity)."""
        if self.abilities is None:
            return -2.0 * (complexity - self.complexity_mean)
        d = np.clip(logit(np.asarray(complexity)) - self.ability_center, *self.ability_span)
        return float(self.pooled_slope * d)


def _search(
    memory: np.ndarray, quantized: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[Any, list[Any]]:
    """The int8 search graph (knn_search.onnx) over `memory` (rows, dim), and the values its session
    reads (kept alive beside it)."""
    import onnxruntime as ort

    q, scales = quantized if quantized is not None else quantize_rows(memory)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    data = [ort.OrtValue.ortvalue_from_numpy(a) for a in (q, scales)]
    options.add_initializer("memory_q", data[0])
    options.add_initializer("scales", data[1])
    return ort.InferenceSession(str(SEARCH), options, providers=["CPUExecutionProvider"]), data

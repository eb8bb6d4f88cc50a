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


@dataclass(frozen=True)
class Features:
    capabilities: np.ndarray  # (n, C)
    groups: np.ndarray  # (n, G)
    complexity: np.ndarray  # (n,)
    quality: np.ndarray  # (n, M) calibrated, learned models
    out_tokens: np.ndarray  # (n, M) expected output tokens


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
        self.shape: list[str] = list(table.get("shape", []))  # artifacts before it have none
        unknown = [n for n in self.shape if n not in SHAPE]
        if unknown:  # checked here, not on the first decision
            raise ValueError(f"quality.json: unknown prompt shape features {unknown} (known: {', '.join(SHAPE)})")
        with np.load(knn_path) as knn:
            self.knn_emb = np.asarray(knn["embeddings"], dtype=np.float32)
            self.knn_shape = np.asarray(
                knn["shape"] if self.shape else np.zeros((len(self.knn_emb), 0)), np.float32
            )
            scores = np.asarray(knn["scores"], dtype=np.float32)
            self.knn_tokens = np.asarray(knn["input_tokens"]) if "input_tokens" in knn else None
            weights = np.asarray(knn["weights"], dtype=np.float32)[:, None] if "weights" in knn else None
        self.knn_q, self.knn_scales = quantize_rows(self.knn_emb)
        self.knn_search = None
        if len(self.knn_emb):  # the memory as the search graph's constants (training/onnx_knn.py)
            search = ort.SessionOptions()
            search.intra_op_num_threads = 1
            search.inter_op_num_threads = 1
            self._search_data = [ort.OrtValue.ortvalue_from_numpy(a) for a in (self.knn_q, self.knn_scales)]
            search.add_initializer("memory_q", self._search_data[0])  # kept alive: the session reads them
            search.add_initializer("scales", self._search_data[1])
            self.knn_search = ort.InferenceSession(str(SEARCH), search, providers=["CPUExecutionProvider"])
        self.knn_seen = ~np.isnan(scores)
        self.knn_scores = np.nan_to_num(scores)
        if weights is not None:  # the sums below become weighted sums
            self.knn_seen = self.knn_seen * weights
            self.knn_scores = self.knn_scores * weights

    def heads(self, emb: np.ndarray, shape: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if self.shape:
            if shape is None or shape.shape != (len(emb), len(self.shape)):
                raise ValueError(f"these heads read the prompts' shape features too: {', '.join(self.shape)}")
            emb = np.hstack([emb, shape]).astype(np.float32)
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(None, {"embedding": emb}), strict=True))

    def knn(self, emb: np.ndarray, fallback: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        if self.knn_emb.shape[0] <= (0 if exclude is None else 1) or self.k == 0:
            return fallback
        top = self.neighbours(emb.astype(np.float32, copy=False), exclude)
        seen = self.knn_seen[top].sum(axis=1)  # (n, M)
        total = self.knn_scores[top].sum(axis=1)
        return np.where(seen > 0, total / np.where(seen > 0, seen, 1), fallback)

    def neighbours(self, emb: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
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
        return np.take_along_axis(candidates, order, axis=1)

    def features(
        self, emb: np.ndarray, shape: np.ndarray | None = None, exclude: np.ndarray | None = None
    ) -> Features:
        """Features of each embedding and its prompt's shape features (needed when `self.shape`
        lists any); `exclude` as in `neighbours`."""
        h = self.heads(emb, shape)
        groups = h["groups"].astype(np.float64)
        table = groups @ self.group_table
        knn = self.knn(emb, table, exclude)
        parts = {"logreg": h["quality"].astype(np.float64), "table": table, "knn": knn}
        q = sum(float(self.blend[name]) * parts[name] for name in parts if self.blend.get(name))
        q = sigmoid(self.calibration["a"] * logit(np.asarray(q)) + self.calibration["b"])
        return Features(
            h["capabilities"].astype(np.float64),
            groups,
            h["complexity"][:, 0].astype(np.float64),
            q,
            groups @ self.out_table,
        )

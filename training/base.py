"""The base set: training rows that artifacts carry so that `pureai train --base` can learn from
them again, together with new rows, without their texts.

Every `pureai train` writes its neighbour memory (`knn.npz`: `embeddings`, `scores`, `input_tokens`
and, when quality.json lists any, `shape` features of up to `--knn-max` training prompts) with
these arrays beside it, row for row:

    groups      int16 (n,)    index into quality.json's `groups`
    tasks       int8 (n,)     index into training.data.CAPABILITIES, -1 where unknown
    costs       float32 (n, M)  USD per outcome, NaN where unknown (M = quality.json's `models`)
    out_tokens  float32 (n, M)  output tokens per outcome, NaN where unknown
    weights     float32 (n,)  the rows' training weights (only when they were not all 1)

`load` reads them back as outcome data without texts; `merge` puts a user's rows beside them,
each weighing `user_weight`, with the union of both sets' models as columns.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from .data import CAPABILITIES, OutcomeData
from .errors import OptionError

KEYS = ("groups", "tasks", "costs", "out_tokens")
DEFAULT_USER_WEIGHT = 10.0


def base_set_arrays(
    data: OutcomeData, rows: np.ndarray, group_idx: np.ndarray, weights: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The base-set arrays of these rows of `data` (group_idx: their fitted group per data row)."""
    out = {
        "groups": group_idx[rows].astype(np.int16),
        "tasks": np.array(
            [CAPABILITIES.index(data.tasks[i]) if data.tasks[i] else -1 for i in rows], np.int8
        ),
        "costs": data.costs[rows].astype(np.float32),
        "out_tokens": data.out_tokens[rows].astype(np.float32),
    }
    if weights is not None:
        out["weights"] = np.asarray(weights, dtype=np.float32)
    return out


def load(folder: Path) -> OutcomeData:
    """The base set of an artifacts folder, as outcome data whose rows carry their embeddings."""
    from router import _artifacts
    from router.errors import ArtifactError

    if not folder.is_dir():
        raise OptionError("--base", f"{folder}: not a folder of router artifacts")
    try:
        art = _artifacts.load(folder)
    except ArtifactError as exc:
        raise OptionError("--base", str(exc)) from None
    knn_path = folder / "knn.npz"
    with np.load(knn_path) as knn:
        missing = [k for k in KEYS if k not in knn]
        if missing:
            raise OptionError(
                "--base",
                f"{knn_path}: no base set (missing {', '.join(missing)}): these artifacts predate it; "
                "retrain them, or pass --base none",
            )
        arrays = {k: np.asarray(knn[k]) for k in (*KEYS, "embeddings", "scores", "input_tokens")}
        if "shape" in knn:  # the rows' shape features follow their embeddings, as training reads them
            arrays["embeddings"] = np.hstack([arrays["embeddings"], np.asarray(knn["shape"])])
        weights = np.asarray(knn["weights"], np.float64) if "weights" in knn else None
    table: dict[str, Any] = art.quality
    groups: list[str] = list(table["groups"])
    n = len(arrays["scores"])
    tasks = [CAPABILITIES[t] if t >= 0 else "" for t in arrays["tasks"].tolist()]
    return OutcomeData(
        prompt_ids=[f"base:{i}" for i in range(n)],
        texts=[""] * n,
        tasks=tasks,
        groups=[groups[g] for g in arrays["groups"].tolist()],
        models=list(table["models"]),
        scores=arrays["scores"].astype(np.float64),
        costs=arrays["costs"].astype(np.float64),
        out_tokens=arrays["out_tokens"].astype(np.float64),
        source=str(folder),
        data_hash=art.manifest["files"]["knn.npz"]["sha256"],
        embeddings=arrays["embeddings"].astype(np.float32),
        input_tokens=arrays["input_tokens"].astype(np.float64),
        weights=weights if weights is not None else np.ones(n),
        from_base=np.ones(n, bool),
    )


def hyperparameters(folder: Path) -> dict[str, Any]:
    """The base's logistic C, neighbour k, blend, calibration and `near` bounds (when it has them),
    which a fit with this base keeps:
    they were chosen on all of the base's training data, of which the base set is a sample (tuned
    again on the sample, they moved the shipped models' predicted quality by 0.03-0.10 on average
    before any user row was added; kept, by 0.03)."""
    from router import _artifacts

    table = _artifacts.read_json(folder / "quality.json")
    kept = {
        "C": float(table["logreg_C"][0]),
        "k": int(table["knn_k"]),
        "blend": dict(table["blend"]),
        "calibration": dict(table["calibration"]),
    }
    if "near" in table:
        kept["near"] = list(table["near"])
    return kept


def merge(base: OutcomeData, user: OutcomeData, user_weight: float) -> OutcomeData:
    """Base rows first, then the user's; columns: the base's models, then the user's new ones."""
    from router._text import estimate_tokens

    assert base.embeddings is not None and base.weights is not None and base.input_tokens is not None
    models = base.models + [m for m in user.models if m not in base.models]
    n_b, n_u = len(base.texts), len(user.texts)

    def stacked(b: np.ndarray, u: np.ndarray) -> np.ndarray:
        out = np.full((n_b + n_u, len(models)), np.nan)
        out[:n_b, : len(base.models)] = b
        out[n_b:, [models.index(m) for m in user.models]] = u
        return out

    dim = base.embeddings.shape[1]
    user_tokens = [estimate_tokens(len(t)) for t in user.texts]
    return OutcomeData(
        prompt_ids=base.prompt_ids + user.prompt_ids,
        texts=base.texts + user.texts,
        tasks=base.tasks + user.tasks,
        groups=base.groups + user.groups,
        models=models,
        scores=stacked(base.scores, user.scores),
        costs=stacked(base.costs, user.costs),
        out_tokens=stacked(base.out_tokens, user.out_tokens),
        source=user.source,
        data_hash=hashlib.sha256((user.data_hash + base.data_hash).encode()).hexdigest(),
        notes=[*user.notes, f"base set: {n_b} rows from {base.source}, each of yours weighs {user_weight:g}"],
        embeddings=np.vstack([base.embeddings, np.full((n_u, dim), np.nan, np.float32)]),
        input_tokens=np.r_[base.input_tokens, np.array(user_tokens, np.float64)],
        weights=np.r_[base.weights, np.full(n_u, float(user_weight))],
        from_base=np.r_[np.ones(n_b, bool), np.zeros(n_u, bool)],
    )

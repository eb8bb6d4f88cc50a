"""`pureai evaluate`: a trained router's metrics on outcome data (held-out prompts)."""

from __future__ import annotations

from typing import Any

import numpy as np

from router import Router

from . import metrics
from .data import OutcomeData
from .errors import DataError


def evaluate(data: OutcomeData, rt: Router) -> dict[str, Any]:
    """Sweep cost_weight over the prompts on which every model has a score."""
    full = ~np.isnan(data.scores).any(axis=1)
    if full.sum() == 0:
        raise DataError(data.source, "no prompt has a score for every model: pass --models to pick a pool")
    rows = np.flatnonzero(full)
    decisions = rt.select_many([data.texts[i] for i in rows], models=data.models, cost_weight=0.0)
    col = {m: j for j, m in enumerate(data.models)}
    q_hat = np.zeros((len(rows), len(data.models)))
    c_hat = np.zeros_like(q_hat)
    for i, d in enumerate(decisions):
        for c in d.candidates:
            q_hat[i, col[c.model]], c_hat[i, col[c.model]] = c.quality, c.cost_usd
    S = data.scores[rows]
    C = np.where(np.isnan(data.costs[rows]), c_hat, data.costs[rows])
    lambdas = rt.lambda_table(data.models)
    points = metrics.sweep(q_hat, c_hat, S, C, table=lambdas)
    picked = metrics.choose(q_hat, c_hat, 0.0, lambdas)
    r = np.arange(len(rows))
    sel_ece, table = metrics.ece(q_hat[r, picked], S[r, picked])
    pair_ece, _ = metrics.ece(q_hat.ravel(), S.ravel())
    return {
        "prompts": len(rows),
        "models": data.models,
        "sweep": points,
        "curve": metrics.curve_metrics(points, S, C, data.models),
        "selected_ece": sel_ece,
        "ece": pair_ece,
        "reliability": table,
        "costs_imputed": int(np.isnan(data.costs[rows]).sum()),
    }

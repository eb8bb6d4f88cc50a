"""`pureai evaluate`: a trained router's metrics on outcome data (held-out prompts)."""

from __future__ import annotations

from typing import Any

import numpy as np

from router import Router

from . import metrics
from .data import OutcomeData
from .errors import DataError


def evaluate(data: OutcomeData, rt: Router) -> dict[str, Any]:
    """Sweep cost_weight over the prompts on which every model has a score, as a router that has
    routed only these prompts (once) would decide: its cost_weight scale calibrated on them, as
    it would be on this traffic in service (`rt` itself is left as it was)."""
    full = ~np.isnan(data.scores).any(axis=1)
    if full.sum() == 0:
        raise DataError(data.source, "no prompt has a score for every model: pass --models to pick a pool")
    rows = np.flatnonzero(full)
    rt = rt.fresh()
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


def cost_at_quality(points: list[dict[str, float]], quality: float) -> float | None:
    """The least mean cost at which a router's sweep reaches `quality` (between sweep points, on
    the line joining them), or None when no point of the sweep reaches it."""
    pts = sorted((p["cost"], p["quality"]) for p in points)
    best: float | None = None
    for (c0, q0), (c1, q1) in zip([pts[0], *pts], pts, strict=False):
        if q1 < quality:
            continue
        cost = c1 if q0 >= quality or q1 == q0 else c0 + (c1 - c0) * (quality - q0) / (q1 - q0)
        best = cost if best is None else min(best, cost)
    return best


def compare(candidate: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """How a candidate router stands against a baseline evaluated on the same prompts and pool:
    the AIQ and calibration differences, and the cost the candidate needs for each quality the
    baseline reaches on its sweep (ratio < 1: cheaper at equal quality)."""
    if candidate["prompts"] != baseline["prompts"] or candidate["models"] != baseline["models"]:
        raise ValueError("the two evaluations are not on the same prompts and models")
    ratios = []
    for point in baseline["sweep"]:
        mine = cost_at_quality(candidate["sweep"], point["quality"])
        if mine is not None and point["cost"] > 0:
            ratios.append(mine / point["cost"])
    reached = len(ratios) / len(baseline["sweep"])
    return {
        "aiq_delta": candidate["curve"]["aiq"] - baseline["curve"]["aiq"],
        "selected_ece_delta": candidate["selected_ece"] - baseline["selected_ece"],
        "ece_delta": candidate["ece"] - baseline["ece"],
        "cost_ratio_at_equal_quality": float(np.median(ratios)) if ratios else None,
        "baseline_qualities_reached": reached,
    }

"""Routing metrics on held-out prompts: the quality-cost sweep, AIQ, APGR and calibration (ECE).

AIQ follows RouterBench: the area under the router's hull (the non-decreasing upper concave
envelope of its (mean cost, mean quality) points, 0 below its cheapest point) over the span
between the cheapest and the dearest single model, divided by that span.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from router._score import lambda_table, price_of_quality, utilities

WEIGHTS = tuple(round(0.05 * i, 2) for i in range(21))


def choose(q_hat: np.ndarray, c_hat: np.ndarray, w: float, table: np.ndarray | None = None) -> np.ndarray:
    """Column per row under the router's rule (router._score): ties to the cheaper model.
    `table`: lambda per weight (default: calibrated on these rows' predictions)."""
    lam = price_of_quality(w, lambda_table(q_hat, c_hat) if table is None else table)
    u = utilities(q_hat, c_hat, lam)
    best = u >= u.max(axis=1, keepdims=True)
    return np.argmin(np.where(best, c_hat, np.inf), axis=1)


def sweep(
    q_hat: np.ndarray,
    c_hat: np.ndarray,
    scores: np.ndarray,
    costs: np.ndarray,
    weights: tuple[float, ...] = WEIGHTS,
    table: np.ndarray | None = None,
) -> list[dict[str, float]]:
    rows = np.arange(len(scores))
    table = lambda_table(q_hat, c_hat) if table is None else table
    points = []
    for w in weights:
        j = choose(q_hat, c_hat, w, table)
        points.append(
            {"cost_weight": w, "cost": float(costs[rows, j].mean()), "quality": float(scores[rows, j].mean())}
        )
    return points


def hull(costs: list[float], quals: list[float]) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted(zip(costs, quals, strict=True), key=lambda p: (p[0], -p[1]))
    pareto: list[tuple[float, float]] = []
    for c, q in pts:
        if not pareto or q > pareto[-1][1] + 1e-15:
            if pareto and c == pareto[-1][0]:
                pareto[-1] = (c, q)
            else:
                pareto.append((c, q))
    h: list[tuple[float, float]] = []
    for p in pareto:
        while len(h) >= 2 and (h[-1][1] - h[-2][1]) * (p[0] - h[-2][0]) <= (p[1] - h[-2][1]) * (
            h[-1][0] - h[-2][0]
        ):
            h.pop()
        h.append(p)
    return np.array([x for x, _ in h]), np.array([y for _, y in h])


def area(xs: np.ndarray, ys: np.ndarray, lo: float, hi: float) -> float:
    """Mean of the hull over [lo, hi] (0 below its first point)."""
    if hi <= lo:
        return float(np.interp(lo, xs, ys)) if lo >= xs[0] else 0.0
    grid = np.unique(np.concatenate([[lo, hi], xs[(xs > lo) & (xs < hi)]]))
    a, b = grid[:-1], grid[1:]
    ya = np.where(a < xs[0] - 1e-18, 0.0, np.interp(a, xs, ys))
    yb = np.where(b <= xs[0], 0.0, np.interp(b, xs, ys))
    return float(np.sum((b - a) * (ya + yb) / 2.0) / (hi - lo))


def curve_metrics(
    points: list[dict[str, float]], scores: np.ndarray, costs: np.ndarray, models: list[str]
) -> dict[str, Any]:
    single = {
        m: {"cost": float(costs[:, j].mean()), "quality": float(scores[:, j].mean())}
        for j, m in enumerate(models)
    }
    c = [s["cost"] for s in single.values()]
    q = [s["quality"] for s in single.values()]
    lo, hi = min(c), max(c)
    rx, ry = hull([p["cost"] for p in points], [p["quality"] for p in points])
    zx, zy = hull(c, q)
    cheap = int(np.argmin(c))
    best = int(np.lexsort((c, [-x for x in q]))[0])
    apgr = None
    if best != cheap and q[best] > q[cheap] and c[best] > c[cheap]:
        grid = np.linspace(c[cheap], c[best], 201)
        r = np.where(grid < rx[0] - 1e-18, 0.0, np.interp(grid, rx, ry))
        apgr = float(np.mean((r - q[cheap]) / (q[best] - q[cheap])))
    return {
        "aiq": area(rx, ry, lo, hi),
        "aiq_zero": area(zx, zy, lo, hi),
        "apgr": apgr,
        "single_models": single,
        "best_model": models[best],
        "cheapest_model": models[cheap],
    }


def ece(confidence: np.ndarray, outcome: np.ndarray, bins: int = 10) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error with equal-width bins, and the reliability table."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total, table = 0.0, []
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        conf, acc = float(confidence[m].mean()), float(outcome[m].mean())
        total += m.sum() / len(confidence) * abs(conf - acc)
        table.append({"bin": b, "n": int(m.sum()), "confidence": conf, "observed": acc})
    return float(total), table

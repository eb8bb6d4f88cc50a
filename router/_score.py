"""Candidates' quality, cost and utility for one prompt; the choice; the reasoning sentence.

Utility is `quality - lambda(w) * expected cost in USD`: the Lagrangian of "best mean quality for a
mean budget", so across many prompts the money goes where it buys the most quality (long prompts
cost more everywhere and go cheaper sooner). `lambda(0) = 0` (best predicted quality, ties to the
cheaper model), `lambda(1) = inf` (cheapest). In between, lambda is calibrated per pool on a set of
prompts (its traffic, or reference prompts: `router._calibration`) so that the mean expected cost of
the choices falls log-evenly from the w = 0 choice to the cheapest model: a given cost_weight lands
on a predictable point of this pool's cost range. lambda never decreases with w, so for a fixed
prompt and table the chosen model's expected cost never rises.
"""

from __future__ import annotations

import numpy as np

from ._decision import Candidate

DEFAULT_COST_WEIGHT = 0.5
"""The cost_weight when a caller gives none, everywhere (`router.select`, `Router.select`, `pureai
route`, POST /v1/router): halfway along the pool's cost range, log-evenly, between the best
predicted quality (0) and the cheapest model (1)."""
GRID = tuple(round(0.05 * i, 2) for i in range(21))  # weights at which lambda is calibrated
CANDIDATES = 400  # lambdas tried, log-spaced over the pool's span


def _choice_cost(quality: np.ndarray, cost: np.ndarray, lam: float) -> float:
    u = utilities(quality, cost, lam)
    best = u >= u.max(axis=1, keepdims=True)
    return float(np.min(np.where(best, cost, np.inf), axis=1).mean())


def _choice_costs(quality: np.ndarray, cost: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """`_choice_cost` at each of the increasing `lams`, from each prompt's switch points.

    As lambda grows, a prompt's choice steps down to ever cheaper models: from the choice it holds,
    to the cheaper candidate whose utility line crosses its own first (the cheapest of those
    crossing together). The mean chosen cost at any lambda is then the w = 0 choices' mean plus the
    cost steps of every switch at or below it."""
    rows, k = quality.shape
    idx = np.arange(rows)
    u0 = np.round(quality, 12)
    best = u0 >= u0.max(axis=1, keepdims=True)
    cur = np.argmin(np.where(best, cost, np.inf), axis=1)
    start = float(cost[idx, cur].mean())
    at: list[np.ndarray] = []
    step: list[np.ndarray] = []
    live = np.ones(rows, dtype=bool)
    for _ in range(k):
        qc, cc = quality[idx, cur][:, None], cost[idx, cur][:, None]
        cheaper = (cost < cc) & live[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where(cheaper, np.maximum((qc - quality) / (cc - cost), 0.0), np.inf)
        first = cross.min(axis=1)
        live = np.isfinite(first)
        if not live.any():
            break
        nxt = np.argmin(np.where(cross <= first[:, None], cost, np.inf), axis=1)
        at.append(first[live])
        step.append(cost[idx, nxt][live] - cost[idx, cur][live])
        cur = np.where(live, nxt, cur)
    if not at:
        return np.full(len(lams), start)
    points, deltas = np.concatenate(at), np.concatenate(step)
    order = np.argsort(points, kind="stable")
    total = np.concatenate([[0.0], np.cumsum(deltas[order])])
    return start + total[np.searchsorted(points[order], lams, side="right")] / rows


def lambda_table(quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """lambda at each weight of GRID from predicted (rows, models) quality and cost matrices."""
    table = np.zeros(len(GRID))
    table[-1] = np.inf
    lo, hi = float(np.min(cost)), float(np.max(cost))
    if len(quality) == 0 or quality.shape[1] < 2 or hi <= 0:
        table[1:-1] = np.geomspace(1e-3, 1e3, len(GRID) - 2) / max(hi, 1e-12)
        return table
    lams = np.geomspace(1e-4 / hi, 1e2 / max(lo, hi * 1e-6), CANDIDATES)
    spent = _choice_costs(quality, cost, lams)
    top, bottom = _choice_cost(quality, cost, 0.0), float(np.min(cost, axis=1).mean())
    for i, w in enumerate(GRID[1:-1], start=1):
        target = np.exp((1 - w) * np.log(max(top, 1e-12)) + w * np.log(max(bottom, 1e-12)))
        ok = np.flatnonzero(spent <= target * (1 + 1e-9))
        table[i] = lams[ok[0]] if len(ok) else lams[-1]
    table[1:-1] = np.maximum.accumulate(table[1:-1])
    return table


def price_of_quality(cost_weight: float, table: np.ndarray) -> float:
    """lambda(w) in quality per USD: the calibrated table, log-interpolated between its weights."""
    if cost_weight <= 0:
        return 0.0
    if cost_weight >= 1:
        return float("inf")
    step = GRID[1]
    i = int(cost_weight // step)
    if i == 0:
        return float(table[1] * cost_weight / step)
    if i >= len(GRID) - 2:
        return float(table[-2] * (1 - GRID[-2]) / (1 - cost_weight))
    a, b = table[i], table[i + 1]
    t = (cost_weight - GRID[i]) / step
    return float(np.exp((1 - t) * np.log(a) + t * np.log(b))) if a > 0 and b > 0 else float(a)


def utilities(quality: np.ndarray, cost: np.ndarray, lam: float) -> np.ndarray:
    """Utility per candidate (last axis); at lambda = inf, minus the cost (cheapest wins)."""
    if np.isinf(lam):
        return np.round(-cost / max(float(np.max(cost)), 1e-12), 12)
    return np.round(quality - lam * cost, 12)


def rank(
    models: list[str],
    quality: np.ndarray,
    cost: np.ndarray,
    sources: list[str],
    cost_weight: float,
    table: np.ndarray,
) -> list[Candidate]:
    utility = utilities(quality, cost, price_of_quality(cost_weight, table))
    order = sorted(range(len(models)), key=lambda j: (-utility[j], cost[j], -quality[j], models[j]))
    return [
        Candidate(models[j], float(quality[j]), float(cost[j]), float(utility[j]), sources[j]) for j in order
    ]


TINY_COST_USD = 1e-9
"""At or below this expected cost (less than one token at any listed price: a free model, or a
deployment priced at 0), the reasoning gives the runner-up's extra cost in dollars, not as a ratio."""


def level(complexity: float) -> str:
    return "low" if complexity < 0.33 else "moderate" if complexity < 0.66 else "high"


def reasoning(
    candidates: list[Candidate],
    capability: str,
    cap_p: float,
    complexity: float,
    cost_weight: float,
    relative: str | None = None,
) -> str:
    """One sentence: the prompt, the choice and what its quality rests on, the runner-up and why it
    lost. `relative`: the model whose outcome data stands in for the choice's (`like`)."""
    best = candidates[0]
    head = (
        f"{capability.capitalize()} request ({cap_p:.0%}), {level(complexity)} complexity "
        f"({complexity:.2f}): {best.model} has predicted quality {best.quality:.2f} "
        f"at ~${best.cost_usd:.2g}"
    )
    if best.quality_source == "prior":
        head += f" (from catalogue priors: no outcome data for {best.model})"
    elif best.quality_source == "relative":
        head += f" (no outcome data for {best.model}; estimated from {relative})"
    elif best.quality_source == "ability":
        head += f" (from its outcome data on {capability} prompts in general)"
    if len(candidates) == 1:
        return head + "; it was the only candidate."
    runner = candidates[1]
    if runner.quality > best.quality:
        if best.cost_usd > TINY_COST_USD:
            more = f"{runner.cost_usd / best.cost_usd:.1f}x more"
        else:  # a ratio against (nearly) nothing says nothing: "16160000.0x more"
            more = f"~${runner.cost_usd - best.cost_usd:.2g} more"
        why = f"scores {runner.quality:.2f} but costs {more} at cost_weight {cost_weight:g}"
    elif np.isclose(runner.cost_usd, best.cost_usd, rtol=1e-9, atol=0.0):
        why = f"scores {runner.quality:.2f} at the same expected cost"
    elif runner.cost_usd < best.cost_usd:
        why = f"is cheaper (~${runner.cost_usd:.2g}) but scores only {runner.quality:.2f}"
    else:
        why = f"scores {runner.quality:.2f} and costs more (~${runner.cost_usd:.2g})"
    return f"{head}; runner-up {runner.model} {why}."

"""Candidates' quality, cost and utility for one prompt; the choice; the reasoning sentence.

Utility is `quality - lambda(w) * expected cost in USD`: the Lagrangian of "best mean quality for a
mean budget", so across many prompts the money goes where it buys the most quality (long prompts
cost more everywhere and go cheaper sooner). `lambda(0) = 0` (best predicted quality, ties to the
cheaper model), `lambda(1) = inf` (cheapest); in between lambda grows log-uniformly over a span set
by the pool's typical costs, so the cost weights spread over the pool's cost range. For a fixed
prompt the chosen model's expected cost never rises when `w` rises.
"""

from __future__ import annotations

import numpy as np

from ._decision import Candidate

QUALITY_STEP_LO = 0.01  # at w -> 0, pay up to this quality for the pool's dearest typical cost
QUALITY_STEP_HI = 0.5  # at w -> 1, a quality gap this large is not worth the cheapest typical cost


def price_of_quality(cost_weight: float, typical_costs: np.ndarray) -> float:
    """lambda(w) in quality per USD for a pool whose models' typical request costs are given."""
    if cost_weight <= 0:
        return 0.0
    if cost_weight >= 1:
        return float("inf")
    hi = float(np.max(typical_costs))
    lo = max(float(np.min(typical_costs)), hi * 1e-4, 1e-12)
    lam_lo, lam_hi = QUALITY_STEP_LO / hi, QUALITY_STEP_HI / lo
    return float(lam_lo * (lam_hi / lam_lo) ** cost_weight)


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
    typical_costs: np.ndarray,
) -> list[Candidate]:
    utility = utilities(quality, cost, price_of_quality(cost_weight, typical_costs))
    order = sorted(range(len(models)), key=lambda j: (-utility[j], cost[j], -quality[j], models[j]))
    return [
        Candidate(models[j], float(quality[j]), float(cost[j]), float(utility[j]), sources[j]) for j in order
    ]


def level(complexity: float) -> str:
    return "low" if complexity < 0.33 else "moderate" if complexity < 0.66 else "high"


def reasoning(
    candidates: list[Candidate], capability: str, cap_p: float, complexity: float, cost_weight: float
) -> str:
    best = candidates[0]
    head = (
        f"{capability.capitalize()} request ({cap_p:.0%}), {level(complexity)} complexity "
        f"({complexity:.2f}): {best.model} has predicted quality {best.quality:.2f} "
        f"at ~${best.cost_usd:.2g}"
    )
    if best.quality_source == "prior":
        head += " (catalogue prior, no outcome data)"
    if len(candidates) == 1:
        return head + "; it was the only candidate."
    runner = candidates[1]
    if runner.quality > best.quality:
        ratio = runner.cost_usd / max(best.cost_usd, 1e-12)
        why = f"scores {runner.quality:.2f} but costs {ratio:.1f}x more at cost_weight {cost_weight:g}"
    elif runner.cost_usd < best.cost_usd:
        why = f"is cheaper (~${runner.cost_usd:.2g}) but scores only {runner.quality:.2f}"
    else:
        why = f"scores {runner.quality:.2f} and costs more (~${runner.cost_usd:.2g})"
    return f"{head}; runner-up {runner.model} {why}."

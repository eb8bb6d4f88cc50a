"""Candidates' quality, cost and utility for one prompt; the choice; the reasoning sentence.

Utility is `(1 - w) * quality - w * g`, where `g` is the candidate's expected cost on a log scale
normalised over the candidates of this request (0 = cheapest, 1 = dearest). For a fixed prompt the
chosen model's expected cost never rises when `w` rises: w = 0 picks the best predicted quality
(ties to the cheaper), w = 1 the cheapest.
"""

from __future__ import annotations

import numpy as np

from ._decision import Candidate


def normalised_log_cost(cost: np.ndarray) -> np.ndarray:
    lc = np.log(np.maximum(cost, 1e-12))
    lo, hi = lc.min(), lc.max()
    return (lc - lo) / (hi - lo) if hi > lo else np.zeros_like(lc)


def rank(models: list[str], quality: np.ndarray, cost: np.ndarray, sources: list[str],
         cost_weight: float) -> list[Candidate]:
    g = normalised_log_cost(cost)
    utility = np.round((1.0 - cost_weight) * quality - cost_weight * g, 12)
    order = sorted(range(len(models)), key=lambda j: (-utility[j], cost[j], models[j]))
    return [Candidate(models[j], float(quality[j]), float(cost[j]), float(utility[j]), sources[j]) for j in order]


def level(complexity: float) -> str:
    return "low" if complexity < 0.33 else "moderate" if complexity < 0.66 else "high"


def reasoning(candidates: list[Candidate], capability: str, cap_p: float, complexity: float,
              cost_weight: float) -> str:
    best = candidates[0]
    head = (f"{capability.capitalize()} request ({cap_p:.0%}), {level(complexity)} complexity "
            f"({complexity:.2f}): {best.model} has predicted quality {best.quality:.2f} "
            f"at ~${best.cost_usd:.2g}")
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
        why = f"scores {runner.quality:.2f} at ~${runner.cost_usd:.2g}"
    return f"{head}; runner-up {runner.model} {why}."

"""The values a routing decision returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRIOR_CONFIDENCE_SHRINK = 0.7  # confidence from catalogue priors is pulled toward 0.5 by this factor
LEARNED = ("learned", "ability")  # quality sources that rest on the model's own outcome data


@dataclass(frozen=True)
class Candidate:
    model: str
    quality: float  # predicted probability of a good answer (calibrated)
    cost_usd: float  # expected cost of this request on this model
    utility: float  # quality - lambda(cost_weight) * normalised log cost
    quality_source: str
    """What the quality rests on: "learned" (outcomes on training prompts like this one), "ability"
    (the model's learned ability on this kind of prompt, from all its outcomes), "relative" (no
    outcome data of its own: the model its catalogue entry is `like`) or "prior" (catalogue priors)."""

    @property
    def confidence(self) -> float:
        """The decision's confidence when this candidate is chosen: its predicted quality, pulled
        toward 0.5 by PRIOR_CONFIDENCE_SHRINK when it rests on no outcome data of its own."""
        if self.quality_source in LEARNED:
            return self.quality
        return 0.5 + PRIOR_CONFIDENCE_SHRINK * (self.quality - 0.5)


@dataclass(frozen=True)
class Decision:
    selected_model: str
    confidence: float
    reasoning: str
    candidates: tuple[Candidate, ...]  # best utility first
    capabilities: dict[str, float]
    complexity: float
    cost_weight: float
    input_tokens: int = 0
    features: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The `/v1/router` decision-only body."""
        return {
            "selected_model": self.selected_model,
            "reasoning": self.reasoning,
            "confidence": round(self.confidence, 4),
        }

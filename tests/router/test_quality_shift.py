"""Router.select(..., quality_shift=...): what feedback taught, added to the predicted qualities
before ranking (the shipped router, a real ONNX session)."""

from __future__ import annotations

import pytest

from router import InputError, Router

POOL = ["gpt-4o", "gpt-4o-mini", "claude-3-haiku"]
PROMPT = "Explain why the sky is blue to a ten-year-old."


@pytest.fixture(scope="module")
def shipped() -> Router:
    return Router.load()


def quality(decision: object, model: str) -> float:
    return next(c.quality for c in decision.candidates if c.model == model)  # type: ignore[attr-defined]


def test_a_shift_moves_the_predicted_quality_and_the_choice(shipped: Router) -> None:
    plain = shipped.select(PROMPT, POOL, 0.0)
    loser = plain.candidates[-1].model
    lifted = shipped.select(PROMPT, POOL, 0.0, quality_shift={loser: 0.5})
    assert quality(lifted, loser) == pytest.approx(min(quality(plain, loser) + 0.5, 0.999))
    assert lifted.selected_model == loser
    sunk = shipped.select(PROMPT, POOL, 0.0, quality_shift={plain.selected_model: -0.9})
    assert sunk.selected_model != plain.selected_model
    assert 0 < quality(sunk, plain.selected_model) < quality(plain, plain.selected_model)


def test_no_shift_and_an_empty_one_decide_alike(shipped: Router) -> None:
    plain = shipped.select(PROMPT, POOL, 0.3)
    assert shipped.select(PROMPT, POOL, 0.3, quality_shift={}) == plain
    assert shipped.select(PROMPT, POOL, 0.3, quality_shift={"not-in-pool": 0.2}) == plain


def test_at_cost_weight_one_the_cheapest_still_wins(shipped: Router) -> None:
    plain = shipped.select(PROMPT, POOL, 1.0)
    shifted = shipped.select(
        PROMPT, POOL, 1.0, quality_shift={m: 0.4 for m in POOL if m != plain.selected_model}
    )
    assert shifted.selected_model == plain.selected_model


@pytest.mark.parametrize(
    "bad", [{"gpt-4o": 2.0}, {"gpt-4o": float("nan")}, {"gpt-4o": True}, {1: 0.1}, [0.1]]
)
def test_a_bad_shift_is_an_input_error(shipped: Router, bad: object) -> None:
    with pytest.raises(InputError) as err:
        shipped.select(PROMPT, POOL, 0.0, quality_shift=bad)  # type: ignore[arg-type]
    assert err.value.param == "quality_shift"

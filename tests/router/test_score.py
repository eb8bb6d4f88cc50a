"""The reasoning sentence of a decision (router/_score.py `reasoning`), from hand-made candidates."""

from __future__ import annotations

import re

import pytest

from router._decision import Candidate
from router._score import reasoning


def _explain(best_cost: float, runner_cost: float) -> str:
    best = Candidate("free-model", 0.60, best_cost, 0.60, "learned")
    runner = Candidate("gpt-4o", 0.80, runner_cost, 0.55, "learned")
    return reasoning([best, runner], "code", 0.9, 0.5, 0.5)


@pytest.mark.parametrize("best_cost", [0.0, 1e-12, 1e-10])
def test_a_free_choice_gives_the_runner_ups_extra_cost_in_dollars(best_cost: float) -> None:
    text = _explain(best_cost, 0.0016)
    assert "runner-up gpt-4o scores 0.80 but costs ~$0.0016 more at cost_weight 0.5" in text, text
    assert re.search(r"\d+(\.\d+)?x more", text) is None, text


def test_a_priced_choice_gives_the_ratio() -> None:
    text = _explain(0.0001, 0.0016)
    assert "runner-up gpt-4o scores 0.80 but costs 16.0x more at cost_weight 0.5" in text, text


def test_a_runner_up_at_the_same_cost_is_not_said_to_cost_more() -> None:
    best = Candidate("o1-mini", 0.93, 0.006, 0.5, "ability")
    runner = Candidate("o3-mini", 0.93, 0.006, 0.5, "relative")
    text = reasoning([best, runner], "math", 0.9, 0.2, 0.0)
    assert text.endswith("runner-up o3-mini scores 0.93 at the same expected cost."), text

"""training/metrics.py on examples small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import WEIGHTS, area, choose, curve_metrics, ece, hull, sweep

# Two models over four prompts: A costs 1 and scores 0.5 on average, B costs 3 and scores 0.9.
SCORES = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.6]])
COSTS = np.array([[1.0, 3.0]] * 4)
MODELS = ["A", "B"]
SINGLE = [{"cost": 1.0, "quality": 0.5}, {"cost": 3.0, "quality": 0.9}]


def _pts(*xy: tuple[float, float]) -> list[dict[str, float]]:
    return [{"cost": c, "quality": q} for c, q in xy]


def test_hull_of_two_points_is_the_chord() -> None:
    xs, ys = hull([3.0, 1.0], [0.9, 0.5])
    assert xs.tolist() == [1.0, 3.0]
    assert ys.tolist() == [0.5, 0.9]


@pytest.mark.parametrize(
    ("cost", "quality"),
    [(2.0, 0.6), (2.0, 0.7), (4.0, 0.8), (3.0, 0.85), (1.0, 0.4)],
    ids=["below-the-chord", "on-the-chord", "dearer-and-worse", "same-cost-worse", "same-cost-worse-cheap"],
)
def test_a_dominated_point_does_not_change_the_hull(cost: float, quality: float) -> None:
    xs, ys = hull([1.0, 3.0, cost], [0.5, 0.9, quality])
    assert xs.tolist() == [1.0, 3.0]
    assert ys.tolist() == [0.5, 0.9]


def test_a_point_above_the_chord_joins_the_hull() -> None:
    xs, ys = hull([1.0, 2.0, 3.0], [0.5, 0.8, 0.9])
    assert xs.tolist() == [1.0, 2.0, 3.0]
    assert ys.tolist() == [0.5, 0.8, 0.9]


def test_area_is_the_mean_height_of_the_hull() -> None:
    assert area(np.array([1.0, 3.0]), np.array([0.5, 0.9]), 1.0, 3.0) == pytest.approx(0.7)
    # ((0.5 + 0.8) / 2 + (0.8 + 0.9) / 2) / 2
    assert area(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.8, 0.9]), 1.0, 3.0) == pytest.approx(0.75)


def test_area_is_zero_below_the_cheapest_point_and_flat_after_the_dearest() -> None:
    # nothing on [1, 2], then (0.8 + 0.9) / 2 on [2, 3]
    assert area(np.array([2.0, 3.0]), np.array([0.8, 0.9]), 1.0, 3.0) == pytest.approx(0.425)
    # 0.7 on [1, 2], then flat at 0.9 on [2, 3]
    assert area(np.array([1.0, 2.0]), np.array([0.5, 0.9]), 1.0, 3.0) == pytest.approx(0.8)


def test_a_router_that_only_picks_single_models_has_the_zero_hulls_aiq() -> None:
    m = curve_metrics(_pts((1.0, 0.5), (3.0, 0.9)), SCORES, COSTS, MODELS)
    assert m["single_models"] == {"A": SINGLE[0], "B": SINGLE[1]}
    assert m["aiq_zero"] == pytest.approx(0.7)
    assert m["aiq"] == pytest.approx(m["aiq_zero"])
    # the chord climbs from A's quality to B's: half the gap on average
    assert m["apgr"] == pytest.approx(0.5)
    assert (m["best_model"], m["cheapest_model"]) == ("B", "A")


def test_a_dominated_router_point_does_not_change_aiq() -> None:
    m = curve_metrics(_pts((1.0, 0.5), (2.0, 0.6), (3.0, 0.9)), SCORES, COSTS, MODELS)
    assert m["aiq"] == pytest.approx(0.7)


def test_a_router_point_above_the_chord_raises_aiq_and_apgr() -> None:
    m = curve_metrics(_pts((1.0, 0.5), (2.0, 0.8), (3.0, 0.9)), SCORES, COSTS, MODELS)
    assert m["aiq"] == pytest.approx(0.75)
    assert m["aiq_zero"] == pytest.approx(0.7)
    assert m["apgr"] == pytest.approx(0.625, abs=2e-3)  # ((0 + 0.75) / 2 + (0.75 + 1) / 2) / 2, on a grid


def test_apgr_is_undefined_when_the_cheapest_model_is_also_the_best() -> None:
    scores = SCORES[:, ::-1]  # A now scores 0.9 at cost 1
    m = curve_metrics(_pts((1.0, 0.9)), scores, COSTS, MODELS)
    assert m["apgr"] is None
    assert m["best_model"] == m["cheapest_model"] == "A"


def test_ece_of_a_calibrated_forecast_is_zero() -> None:
    confidence = np.array([0.25] * 4 + [0.75] * 4)
    outcome = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    value, table = ece(confidence, outcome)
    assert value == pytest.approx(0.0, abs=1e-12)
    assert [(r["bin"], r["n"]) for r in table] == [(2, 4), (7, 4)]


def test_ece_of_soft_scores_matching_their_forecast_is_zero() -> None:
    value, _ = ece(np.array([0.3, 0.3, 0.62]), np.array([0.3, 0.3, 0.62]))
    assert value == pytest.approx(0.0, abs=1e-12)


def test_ece_of_a_miscalibrated_forecast() -> None:
    """Ten prompts at 0.9 that succeed half the time (gap 0.4), ten at 0.15 that never do (0.15)."""
    confidence = np.array([0.9] * 10 + [0.15] * 10)
    outcome = np.array([1, 0] * 5 + [0] * 10, dtype=float)
    value, table = ece(confidence, outcome)
    assert value == pytest.approx((0.4 + 0.15) / 2)
    assert [(r["bin"], r["n"], r["observed"]) for r in table] == [(1, 10, 0.0), (9, 10, 0.5)]


def test_ece_puts_a_confidence_of_one_in_the_last_bin() -> None:
    value, table = ece(np.array([1.0, 1.0]), np.array([1.0, 0.0]))
    assert value == pytest.approx(0.5)
    assert table[0]["bin"] == 9


def test_choose_at_zero_takes_the_best_quality_and_ties_to_the_cheaper() -> None:
    q = np.array([[0.6, 0.9, 0.9], [0.8, 0.2, 0.5]])
    c = np.array([[1.0, 5.0, 3.0], [1.0, 2.0, 3.0]])
    assert choose(q, c, 0.0).tolist() == [2, 0]


def test_choose_at_one_takes_the_cheapest() -> None:
    q = np.array([[0.6, 0.9, 0.9], [0.1, 0.2, 0.9]])
    c = np.array([[2.0, 5.0, 3.0], [3.0, 2.0, 1.0]])
    assert choose(q, c, 1.0).tolist() == [0, 2]


def test_choose_never_picks_a_dearer_model_as_the_weight_rises() -> None:
    rng = np.random.default_rng(0)
    q = rng.uniform(0.2, 0.95, (300, 5))
    c = rng.uniform(1e-5, 1e-2, (300, 5))
    picked = np.stack([c[np.arange(300), choose(q, c, w)] for w in WEIGHTS])
    assert np.all(np.diff(picked, axis=0) <= 0)
    assert np.any(picked[0] != picked[-1])


def test_sweep_scores_the_chosen_models() -> None:
    q_hat = np.array([[0.2, 0.9]] * 4)  # predicts B better everywhere
    c_hat = COSTS.copy()
    points = sweep(q_hat, c_hat, SCORES, COSTS)
    assert [p["cost_weight"] for p in points] == list(WEIGHTS)
    assert points[0] == {"cost_weight": 0.0, "cost": 3.0, "quality": 0.9}  # all B
    assert points[-1] == {"cost_weight": 1.0, "cost": 1.0, "quality": 0.5}  # all A

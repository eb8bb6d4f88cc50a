"""The `near` bounds (training/mix.py): chosen on held-out folds, written to quality.json, read by
the router."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from router._quality import local_weight
from training.fit import brier
from training.mix import GRID, Fold, choose, closeness


def fold(seed: int, cut: float) -> Fold:
    """Held-out rows whose neighbour estimate is right where their neighbours are closer than `cut`
    and noise below it, and whose ability is a coarse 0.5 everywhere."""
    rng = np.random.default_rng(seed)
    n = 4000
    sim = rng.uniform(0.1, 0.9, n)
    truth = rng.integers(0, 2, (n, 2)).astype(float)
    quality = np.where(sim[:, None] >= cut, 0.9 * truth + 0.05, rng.uniform(0, 1, (n, 2)))
    return Fold(lambda q: -brier(q, truth), quality, np.full((n, 2), 0.5), sim, np.ones((n, 2)))


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.7])
def test_the_bounds_follow_where_the_neighbours_stop_being_right(cut: float) -> None:
    (lo, hi), scores = choose([fold(0, cut), fold(1, cut)])
    assert (lo, hi) in GRID
    assert lo <= cut + 0.05 and hi >= cut - 0.05, (cut, lo, hi)
    assert len(scores) == len(set(GRID) | {(0.45, 0.7)})


def test_without_folds_the_default_stays() -> None:
    assert choose([]) == ((0.45, 0.7), {})


def test_the_local_weight_is_the_routers() -> None:
    sim = np.array([0.1, 0.45, 0.575, 0.7, 0.9])
    share = np.array([[1.0, 0.5]] * 5)
    got = local_weight(sim, share, (0.45, 0.70))
    np.testing.assert_allclose(got[:, 0], [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(got[:, 1], [0, 0, 0.25, 0.5, 0.5])


def test_closeness_is_the_mean_of_the_ten_closest() -> None:
    rng = np.random.default_rng(0)
    fit = rng.normal(size=(50, 8))
    fit /= np.linalg.norm(fit, axis=1, keepdims=True)
    seen = np.zeros((50, 2), bool)
    seen[:, 0] = True
    seen[::2, 1] = True
    sim, share = closeness(fit, seen, fit[:3])
    want = np.sort(fit[:3] @ fit.T, axis=1)[:, -10:].mean(axis=1)
    np.testing.assert_allclose(sim, want)
    assert (share[:, 0] == 1).all() and ((share[:, 1] >= 0) & (share[:, 1] <= 1)).all()


def test_the_chosen_bounds_are_in_the_artifacts_and_the_report(trained_dir: Path) -> None:
    table = json.loads((trained_dir / "quality.json").read_text())
    lo, hi = table["near"]
    assert (lo, hi) in {*GRID, (0.45, 0.7)}
    report = (trained_dir / "report" / "report.md").read_text()
    assert f"neighbours count from a mean similarity of {lo:g} and in full from {hi:g}" in report


def test_near_given_on_the_command_line_is_kept(fixture_dir: Path, train, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "near"
    result = train(fixture_dir, out, "--near", "0.5,0.8", "--folds", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "quality.json").read_text())["near"] == [0.5, 0.8]
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["hyperparameters"]["near"] == [0.5, 0.8]
    assert metrics["hyperparameters"]["near_scores"] == {}  # nothing was chosen


@pytest.mark.parametrize("value", ["0.8,0.5", "0.5", "a,b", "0.2,1.5", "-0.1,0.4"])
def test_bad_near_is_refused_before_anything_is_read(  # type: ignore[no-untyped-def]
    fixture_dir: Path, train, assert_cli_error, tmp_path: Path, value: str
) -> None:
    result = train(fixture_dir, tmp_path / "out", f"--near={value}")
    assert_cli_error(
        result, why=f"--near: must be two similarities LO,HI with 0 <= LO < HI <= 1, got {value!r}"
    )
    assert not (tmp_path / "out").exists()

"""`pureai evaluate`: a trained router's quality-cost metrics on outcome data."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router import Router
from training import data
from training.evaluate import evaluate

Pureai = Callable[..., subprocess.CompletedProcess[str]]
AssertCliError = Callable[..., None]


@pytest.fixture(scope="module")
def evaluated(
    pureai: Pureai, trained_dir: Path, fixture_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the summary printed, the --json file) of `pureai evaluate` on the fixture."""
    report = tmp_path_factory.mktemp("evaluate") / "metrics.json"
    result = pureai("evaluate", "--data", fixture_dir, "--artifacts", trained_dir, "--json", report)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), json.loads(report.read_text(encoding="utf-8"))


def test_prints_a_summary(evaluated: tuple[dict[str, Any], dict[str, Any]]) -> None:
    summary, _ = evaluated
    assert set(summary) == {"prompts", "aiq", "aiq_zero", "apgr", "selected_ece"}
    assert summary["prompts"] == 230
    assert 0 < summary["aiq"] <= 1
    assert 0 < summary["aiq_zero"] <= 1
    assert 0 <= summary["selected_ece"] <= 1
    assert summary["apgr"] is None or summary["apgr"] > 0


def test_on_its_training_prompts_the_router_beats_the_single_models(
    evaluated: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """On the prompts it learned from, the router's curve is at least the single models' hull."""
    summary, _ = evaluated
    assert summary["aiq"] >= summary["aiq_zero"]


def test_writes_the_full_metrics(
    evaluated: tuple[dict[str, Any], dict[str, Any]], fixture_models: list[str]
) -> None:
    summary, full = evaluated
    assert full["prompts"] == summary["prompts"]
    assert round(full["curve"]["aiq"], 4) == summary["aiq"]
    assert sorted(full["models"]) == sorted(fixture_models)
    assert [p["cost_weight"] for p in full["sweep"]] == [round(0.05 * i, 2) for i in range(21)]
    assert set(full["curve"]["single_models"]) == set(fixture_models)
    assert full["costs_imputed"] == 0


@pytest.mark.parametrize("dataset", ["zeroeval-gsm8k", "zeroeval-crux", "zeroeval-math-l5"])
def test_the_sweep_is_what_the_router_does(fixture_router: Router, fixture_dir: Path, dataset: str) -> None:
    """Each sweep point is the mean score and cost of the models the router picks at that
    cost_weight, also on data other than the whole training set (here: one dataset of it), once
    the router has routed these prompts (its cost_weight scale calibrated on them)."""
    rt = fixture_router
    everything = data.load(fixture_dir)
    outcomes = everything.subset(np.flatnonzero([p.startswith(dataset) for p in everything.prompt_ids]))
    result = evaluate(outcomes, rt)
    assert result["prompts"] == len(outcomes.texts) > 0
    col = {m: j for j, m in enumerate(outcomes.models)}
    rows = np.arange(len(outcomes.texts))
    for point in result["sweep"]:
        routed = rt.fresh()
        picked = routed.select_many(outcomes.texts, models=outcomes.models, cost_weight=point["cost_weight"])
        assert routed.calibrated_on(outcomes.models) == (len(rows) if len(rows) >= 32 else 0)
        j = np.array([col[d.selected_model] for d in picked])
        assert point["quality"] == pytest.approx(float(outcomes.scores[rows, j].mean())), point
        assert point["cost"] == pytest.approx(float(outcomes.costs[rows, j].mean())), point


def test_no_shared_models_is_an_error(
    pureai: Pureai, trained_dir: Path, tmp_path: Path, assert_cli_error: AssertCliError
) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_text(
        json.dumps({"prompt": "hi", "model": "some-other-model", "score": 1}) + "\n", encoding="utf-8"
    )
    result = pureai("evaluate", "--data", logs, "--artifacts", trained_dir)
    assert_cli_error(result, file=str(logs), why="none of the artifacts' models has outcomes here")


def test_compares_with_a_baseline_on_the_same_prompts(
    pureai: Pureai, trained_dir: Path, fixture_dir: Path, tmp_path: Path
) -> None:
    """The same artifacts as candidate and baseline: no difference, and equal cost at equal quality."""
    report = tmp_path / "compare.json"
    result = pureai("evaluate", "--data", fixture_dir, "--artifacts", trained_dir, "--baseline", trained_dir,
                    "--json", report)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["baseline"]["aiq"] == summary["aiq"]
    assert summary["aiq_delta"] == 0 and summary["selected_ece_delta"] == 0
    assert summary["cost_ratio_at_equal_quality"] == 1.0 and summary["baseline_qualities_reached"] == 1.0
    full = json.loads(report.read_text(encoding="utf-8"))
    assert full["comparison"]["aiq_delta"] == 0 and full["baseline"]["prompts"] == full["prompts"]


def test_cost_at_quality_reads_the_sweep_between_its_points() -> None:
    from training.evaluate import compare, cost_at_quality

    sweep = [{"cost": 1.0, "quality": 0.5}, {"cost": 3.0, "quality": 0.7}, {"cost": 2.0, "quality": 0.9}]
    assert cost_at_quality(sweep, 0.4) == 1.0
    assert cost_at_quality(sweep, 0.5) == 1.0
    assert cost_at_quality(sweep, 0.6) == pytest.approx(1.25)  # between (1, 0.5) and (2, 0.9)
    assert cost_at_quality(sweep, 0.9) == 2.0
    assert cost_at_quality(sweep, 0.95) is None
    cheaper = [{"cost": p["cost"] / 2, "quality": p["quality"]} for p in sweep]
    base = {
        "prompts": 3,
        "models": ["a"],
        "sweep": sweep,
        "curve": {"aiq": 0.5},
        "selected_ece": 0.1,
        "ece": 0.1,
    }
    cand = {**base, "sweep": cheaper, "curve": {"aiq": 0.6}}
    out = compare(cand, base)
    assert out["cost_ratio_at_equal_quality"] == pytest.approx(0.5)
    assert out["aiq_delta"] == pytest.approx(0.1) and out["baseline_qualities_reached"] == 1.0
    with pytest.raises(ValueError):
        compare({**cand, "prompts": 4}, base)

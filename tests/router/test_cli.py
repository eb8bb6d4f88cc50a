"""`pureai route`, run as a subprocess over the session's trained artifacts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from router import DEFAULT_COST_WEIGHT

Pureai = Callable[..., subprocess.CompletedProcess[str]]
PROMPT = "Find all real x such that x^4 - 5x^2 + 4 = 0."


def test_route_json(pureai: Pureai, trained_dir: Path) -> None:
    result = pureai(
        "route",
        PROMPT,
        "--artifacts",
        trained_dir,
        "--models",
        "gpt-4o,gpt-4o-mini",
        "--cost-weight",
        "0.3",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["selected_model"] in ("gpt-4o", "gpt-4o-mini")
    assert 0 < body["confidence"] < 1
    assert body["selected_model"] in body["reasoning"]
    assert [c["model"] for c in body["candidates"]][0] == body["selected_model"]
    assert sorted(c["model"] for c in body["candidates"]) == ["gpt-4o", "gpt-4o-mini"]
    assert sum(body["capabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert 0 <= body["complexity"] <= 1


def test_route_defaults_to_the_apis_cost_weight(pureai: Pureai, trained_dir: Path) -> None:
    models = "gpt-4o,gpt-4o-mini"
    default = pureai("route", PROMPT, "--artifacts", trained_dir, "--models", models, "--json")
    half = pureai(
        "route", PROMPT, "--artifacts", trained_dir, "--models", models, "--cost-weight", "0.5", "--json"
    )
    assert default.returncode == 0 and half.returncode == 0, default.stderr + half.stderr
    assert json.loads(default.stdout)["cost_weight"] == DEFAULT_COST_WEIGHT == 0.5
    assert json.loads(default.stdout) == json.loads(half.stdout)
    assert f"default {DEFAULT_COST_WEIGHT}" in pureai("route", "--help").stdout


def test_route_text(pureai: Pureai, trained_dir: Path) -> None:
    result = pureai(
        "route",
        PROMPT,
        "--artifacts",
        trained_dir,
        "--models",
        "gpt-4o,gpt-4o-mini,codestral-latest",
        "--top",
        "2",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    selected = lines[0].removeprefix("selected_model:").strip()
    assert selected in ("gpt-4o", "gpt-4o-mini", "codestral-latest")
    assert lines[1].startswith("confidence:")
    assert lines[2].startswith("reasoning:") and selected in lines[2]
    table = lines[lines.index(next(x for x in lines if x.startswith("candidate"))) + 1 :]
    assert len(table) == 2  # --top 2
    assert table[0].split()[0] == selected


def test_route_at_cost_weight_one_takes_the_cheapest(pureai: Pureai, trained_dir: Path) -> None:
    result = pureai(
        "route",
        PROMPT,
        "--artifacts",
        trained_dir,
        "--models",
        "gpt-4o,gpt-4o-mini",
        "--cost-weight",
        "1",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    cheapest = min(body["candidates"], key=lambda c: c["cost_usd"])
    assert body["selected_model"] == cheapest["model"]


def test_route_errors_exit_2_without_traceback(
    pureai: Pureai, trained_dir: Path, tmp_path: Path, assert_cli_error: Callable[..., None]
) -> None:
    bad_weight = pureai("route", PROMPT, "--artifacts", trained_dir, "--cost-weight", "1.5")
    assert_cli_error(bad_weight, why="cost_weight must be a number between 0 and 1")
    typo = pureai("route", PROMPT, "--artifacts", trained_dir, "--models", "gpt-4o-minii")
    assert_cli_error(typo, why="unknown model 'gpt-4o-minii'; did you mean 'gpt-4o-mini'")
    missing = pureai("route", PROMPT, "--artifacts", tmp_path / "nowhere")
    assert_cli_error(missing, why="not a directory of router artifacts")
    empty = pureai("route", "   ", "--artifacts", trained_dir)
    assert_cli_error(empty, why="prompt is empty")

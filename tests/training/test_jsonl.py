"""JSON Lines outcome data (the format in training/data.py's docstring): errors, reading, training."""

from __future__ import annotations

import json
import math
import random
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router import Router
from training import data
from training.errors import DataError

Train = Callable[..., subprocess.CompletedProcess[str]]
AssertCliError = Callable[..., None]
GOOD = {"prompt": "What is 2 + 2?", "model": "gpt-4o-mini", "score": 1.0, "cost_usd": 0.0001}
CATALOGUE_NAMES = {"gpt-4o-mini-2024-07-18": "gpt-4o-mini", "gpt-4o-2024-08-06": "gpt-4o"}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _rows(*rows: dict[str, Any]) -> list[str]:
    return [json.dumps(r) for r in rows]


@pytest.mark.parametrize(
    ("lines", "line", "field", "why"),
    [
        ([*_rows(GOOD, {**GOOD, "prompt": "b"}), '{"prompt": "c", "model": '], 3, None, "not valid JSON"),
        (_rows(GOOD, {"prompt": "b", "score": 0.5}), 2, "model", "required, a non-empty string"),
        (_rows(GOOD, {**GOOD, "prompt": "b", "score": -0.2}), 2, "score", "must be in [0, 1], got -0.2"),
        (_rows({**GOOD, "task": "poetry"}), 1, "task", "must be one of code, math, reasoning"),
    ],
    ids=["invalid-json", "no-model", "score-negative", "task-poetry"],
)
def test_bad_jsonl_stops_the_cli(
    tmp_path: Path,
    train: Train,
    assert_cli_error: AssertCliError,
    lines: list[str],
    line: int,
    field: str | None,
    why: str,
) -> None:
    path = _write(tmp_path / "logs.jsonl", lines)
    out = tmp_path / "out"
    result = train(path, out)
    assert_cli_error(result, file=str(path), line=line, field=field, why=why)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs.jsonl"]


@pytest.mark.parametrize(
    ("lines", "line", "field", "why"),
    [
        (_rows(GOOD, {**GOOD, "prompt": "  "}), 2, "prompt", "required, a non-empty string"),
        (_rows(GOOD, {**GOOD, "model": 7}), 2, "model", "required, a non-empty string"),
        (_rows({**GOOD, "score": 1.5}), 1, "score", "must be in [0, 1], got 1.5"),
        (_rows({**GOOD, "score": "0.5"}), 1, "score", "must be a number, got '0.5'"),
        (_rows({**GOOD, "score": True}), 1, "score", "must be a number, got True"),
        (['{"prompt": "a", "model": "m", "score": NaN}'], 1, "score", "must be in [0, 1], got nan"),
        (_rows(GOOD, {"prompt": "b", "model": "gpt-4o"}), 2, "score", "required, a number in [0, 1]"),
        (_rows(GOOD, {**GOOD, "prompt": "b", "score": None}), 2, "score", "required, a number in [0, 1]"),
        (_rows({**GOOD, "cost_usd": -1}), 1, "cost_usd", "must be >= 0, got -1"),
        (_rows({**GOOD, "output_tokens": 12.5}), 1, "output_tokens", "must be an integer, got 12.5"),
        (_rows({**GOOD, "prompt_id": 12}), 1, "prompt_id", "must be a string"),
        ([*_rows(GOOD, GOOD), "[1, 2, 3]"], 3, None, "each line must be a JSON object"),
    ],
    ids=[
        "blank-prompt",
        "model-number",
        "score-1.5",
        "score-string",
        "score-bool",
        "score-nan",
        "no-score",
        "score-null",
        "cost-negative",
        "tokens-fraction",
        "prompt-id-number",
        "not-an-object",
    ],
)
def test_bad_jsonl_rows(tmp_path: Path, lines: list[str], line: int, field: str | None, why: str) -> None:
    path = _write(tmp_path / "logs.jsonl", lines)
    with pytest.raises(DataError) as info:
        data.load(path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), line, field)
    assert why in str(info.value)


def test_an_empty_jsonl_file(tmp_path: Path, train: Train, assert_cli_error: AssertCliError) -> None:
    path = _write(tmp_path / "logs.jsonl", [])
    result = train(path, tmp_path / "out")
    assert_cli_error(result, file=str(path), why="empty: no outcome rows")
    assert not (tmp_path / "out").exists()


def test_a_model_that_cannot_be_priced(
    tmp_path: Path, train: Train, assert_cli_error: AssertCliError
) -> None:
    path = _write(
        tmp_path / "logs.jsonl",
        _rows(
            {"prompt": "a", "model": "mystery-llm", "score": 0.2},
            {"prompt": "b", "model": "mystery-llm", "score": 0.7},
        ),
    )
    result = train(path, tmp_path / "out")
    assert_cli_error(
        result,
        file=str(path),
        field="model",
        why="unknown model 'mystery-llm': no cost_usd in the data and not in the catalogue, "
        "so it cannot be priced",
    )
    assert not (tmp_path / "out").exists()


# -- reading ----------------------------------------------------------------------------------
def test_rows_become_a_prompt_by_model_matrix(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "logs.jsonl",
        [
            *_rows(
                {
                    "prompt": "Sort a list in Python",
                    "model": "a",
                    "score": 1,
                    "cost_usd": 0.002,
                    "output_tokens": 40,
                    "task": "code",
                }
            ),
            "",
            *_rows(
                {"prompt": "Sort a list in Python", "model": "a", "score": 0, "cost_usd": 0.004},
                {"prompt": "Sort a list in Python", "model": "b", "score": 0.5, "group": "sorting"},
                {"prompt": "What is 2 + 2?", "model": "b", "score": 1, "task": "math"},
            ),
        ],
    )
    d = data.load(path)
    assert d.texts == ["Sort a list in Python", "What is 2 + 2?"]
    assert d.models == ["a", "b"]
    assert d.tasks == ["code", "math"]
    assert d.groups == ["code", "math"]  # the first row of a prompt sets its labels
    np.testing.assert_array_equal(d.scores, [[0.5, 0.5], [np.nan, 1.0]])  # a repeated pair is averaged
    np.testing.assert_allclose(d.costs, [[0.003, np.nan], [np.nan, np.nan]], rtol=1e-12)
    np.testing.assert_array_equal(d.out_tokens, [[40, np.nan], [np.nan, np.nan]])


def test_prompt_id_joins_rows(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "logs.jsonl",
        _rows(
            {"prompt_id": "p1", "prompt": "Hello", "model": "a", "score": 1},
            {"prompt_id": "p1", "prompt": "Hello there", "model": "b", "score": 0},
            {"prompt_id": "p2", "prompt": "Hello", "model": "a", "score": 0},
        ),
    )
    d = data.load(path)
    assert d.prompt_ids == ["p1", "p2"]
    np.testing.assert_array_equal(d.scores, [[1, 0], [0, np.nan]])


def test_a_folder_of_jsonl_files(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    _write(folder / "monday.jsonl", _rows({"prompt": "a", "model": "m", "score": 1}))
    _write(
        folder / "tuesday.jsonl",
        _rows({"prompt": "a", "model": "n", "score": 0}, {"prompt": "b", "model": "m", "score": 0.25}),
    )
    (folder / "notes.txt").write_text("not data", encoding="utf-8")
    d = data.load(folder)
    assert d.texts == ["a", "b"]
    np.testing.assert_array_equal(d.scores, [[1, 0], [0.25, np.nan]])
    assert d.data_hash != data.load(folder / "monday.jsonl").data_hash


# -- training ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def user_logs(
    fixture_prompts: list[dict[str, str]],
    fixture_outcomes: list[dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """200 lines of logs: 100 fixture prompts x (gpt-4o-mini, gpt-4o) under their catalogue ids,
    with the fixture's scores and costs, shuffled with a fixed seed."""
    kept = {r["prompt_id"]: r for r in fixture_prompts if r["train_ok"] == "True"}
    picked = sorted(kept)[::2][:100]
    index = {(o["prompt_id"], o["model"]): o for o in fixture_outcomes}
    rows = []
    for pid in picked:
        for source, name in CATALOGUE_NAMES.items():
            o = index[(pid, source)]
            row = {
                "prompt": kept[pid]["prompt"],
                "model": name,
                "score": float(o["score"]),
                "cost_usd": float(o["cost_usd"]),
                "task": kept[pid]["task"],
            }
            if o["output_tokens"]:
                row["output_tokens"] = int(float(o["output_tokens"]))
            rows.append(row)
    random.Random(0).shuffle(rows)
    path = tmp_path_factory.mktemp("logs") / "logs.jsonl"
    return _write(path, _rows(*rows))


@pytest.fixture(scope="module")
def trained_on_logs(user_logs: Path, train: Train, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jsonl") / "router"
    result = train(user_logs, out, "--base", "none")  # these rows alone (tests/training/test_base.py: with a base)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["models"], summary["prompts"]) == (2, 100)
    return out


def test_jsonl_training_writes_a_router(trained_on_logs: Path, user_logs: Path) -> None:
    assert len(user_logs.read_text(encoding="utf-8").splitlines()) == 200
    manifest = json.loads((trained_on_logs / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["data"]["source"] == str(user_logs)
    assert manifest["data"]["models"] == ["gpt-4o", "gpt-4o-mini"]
    assert manifest["data"]["prompts"] == 100


def test_a_router_trained_on_logs_routes_between_its_models(
    trained_on_logs: Path, trainable_texts: list[str]
) -> None:
    rt = Router.load(trained_on_logs)
    decisions = rt.select_many(trainable_texts[1::2][:20], models=["gpt-4o-mini", "gpt-4o"], cost_weight=0.0)
    for d in decisions:
        assert d.selected_model in ("gpt-4o-mini", "gpt-4o")
        # the models' own outcome rows: neighbours or abilities, as the folds chose (`near`)
        assert [c.quality_source in ("learned", "ability") for c in d.candidates] == [True, True]
        assert not math.isnan(d.confidence)
    cheap = rt.select_many(trainable_texts[1::2][:20], models=["gpt-4o-mini", "gpt-4o"], cost_weight=1.0)
    assert {d.selected_model for d in cheap} == {"gpt-4o-mini"}  # 16x cheaper per token

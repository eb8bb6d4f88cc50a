"""`pureai train --base`: learning from your own rows together with a base set (training/base.py),
run as the real CLI. The shipped artifacts are the default base of JSON Lines data; a router trained
on the fixture serves as a small base where many trainings are needed."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router import Router
from router._artifacts import default_dir, sha256
from router._text import SHAPE, shape
from training.onnx_heads import HEADS

Train = Callable[..., subprocess.CompletedProcess[str]]
AssertCliError = Callable[..., None]
PHRASES = [
    "good morning", "where is the station", "I would like a coffee", "the weather is nice today",
    "how much does this cost", "my name is Anna", "see you tomorrow", "thank you very much",
    "I am looking for a hotel", "the train is late", "can you help me", "I love this city",
    "what time is it", "the museum opens at nine", "please close the door", "I lost my keys",
    "we are going to the beach", "this soup is delicious", "my brother lives in Berlin", "the book is on the table",
]  # fmt: skip
TRANSLATE = "Translate into German: the children are playing in the garden"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def translations(mini: str) -> list[dict[str, Any]]:
    """40 rows of feedback on 20 translation prompts: `mini` always failed (0), `my-finetune`, a
    model only this user has, mostly did well."""
    rows = []
    for i, phrase in enumerate(PHRASES):
        prompt = {"prompt": f"Translate into German: {phrase}", "prompt_id": f"req_{i}", "group": "key_1"}
        rows.append({**prompt, "model": mini, "score": 0.0, "cost_usd": 2e-5, "output_tokens": 12})
        rows.append(
            {
                **prompt,
                "model": "my-finetune",
                "score": [1.0, 0.75][i % 2],
                "cost_usd": 1e-5,
                "output_tokens": 11,
            }
        )
    return rows


def quality(artifacts: Path, prompt: str, model: str) -> float:
    d = Router.load(artifacts).select(prompt, models=[model], cost_weight=0.0)
    return d.candidates[0].quality


# -- the shipped base (the default for JSON Lines) ---------------------------------------------
@pytest.fixture(scope="module")
def on_shipped(train: Train, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("on-shipped")
    data = _write(folder / "traffic.jsonl", translations("gpt-4o-mini"))
    result = train(data, folder / "router")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    shipped = _json(default_dir() / "quality.json")["models"]
    assert (summary["base_rows"], summary["user_rows"]) == (8000, 20)
    assert summary["models"] == len(shipped) + 1
    return folder / "router"


def test_learns_the_shipped_models_and_a_user_only_model(on_shipped: Path) -> None:
    """On a prompt of the user's traffic both models' quality is learned from outcomes. (A new
    translation sits near the line: its outcome-data coverage for gpt-4o-mini is 0.49 with this
    machine's int8 arithmetic and above 0.5 with another's, so the label is not tested there.)"""
    shipped = _json(default_dir() / "quality.json")["models"]
    assert _json(on_shipped / "quality.json")["models"] == [*shipped, "my-finetune"]
    seen = f"Translate into German: {PHRASES[2]}"
    d = Router.load(on_shipped).select(seen, models=["gpt-4o-mini", "my-finetune"], cost_weight=0.0)
    assert [(c.model, c.quality_source) for c in d.candidates] == [
        ("my-finetune", "learned"),
        ("gpt-4o-mini", "learned"),
    ]


def test_keeps_what_the_shipped_router_knows_elsewhere(on_shipped: Path) -> None:
    """Away from the user's translations, the shipped models' learned quality stays within a few
    hundredths of the shipped router's (the base set is 8,000 of its 31,620 training prompts)."""
    prompts = [
        "What is the derivative of x^3 + 2x?",
        "Write a Python function that checks whether a string is a palindrome",
        "Which planet is closest to the sun?",
        "Explain the causes of World War I",
    ]
    shipped, learned = _json(default_dir() / "quality.json")["models"], []
    for folder in (default_dir(), on_shipped):
        rt = Router.load(folder)
        emb = rt.embedder.embed(prompts)
        learned.append(rt.quality.features(emb, shape(prompts, rt.quality.shape)).quality[:, : len(shipped)])
    assert float(np.abs(learned[0] - learned[1]).mean()) < 0.07


def test_the_report_counts_base_and_user_rows(on_shipped: Path) -> None:
    rows = {"base": 8000, "user": 20, "user_weight": 10.0, "base_source": str(default_dir())}
    assert _json(on_shipped / "report" / "metrics.json")["rows"] == rows
    assert _json(on_shipped / "manifest.json")["data"]["rows"] == rows
    assert "8000 from the base set" in (on_shipped / "report" / "report.md").read_text(encoding="utf-8")


def test_user_rows_lower_a_model_they_score_zero(on_shipped: Path) -> None:
    """The user's feedback says gpt-4o-mini fails at translations; the shipped router thinks it
    does well. Retrained, its predicted quality there falls; on a math question it barely moves."""
    before, after = (
        quality(default_dir(), TRANSLATE, "gpt-4o-mini"),
        quality(on_shipped, TRANSLATE, "gpt-4o-mini"),
    )
    assert after < before - 0.2, (before, after)
    math = "What is the derivative of x^3 + 2x?"
    assert abs(quality(on_shipped, math, "gpt-4o-mini") - quality(default_dir(), math, "gpt-4o-mini")) < 0.1


def test_the_memory_keeps_every_user_row_with_its_weight(on_shipped: Path) -> None:
    with np.load(on_shipped / "knn.npz") as knn:
        weights = knn["weights"]
        assert knn["embeddings"].shape == (8020, 384)
    assert sorted(set(weights.tolist())) == [1.0, 10.0]
    assert int((weights == 10.0).sum()) == 20


# -- a small base: the session's router trained on the fixture ----------------------------------
def test_user_weight_moves_quality_monotonically(
    trained_dir: Path,
    fixture_prompts: list[dict[str, str]],
    train: Train,
    tmp_path: Path,
) -> None:
    """Where the base says gpt-4o-mini answers math well and the user says it fails, the more a
    user row weighs, the lower its predicted quality on the user's kind of prompt."""
    mini = "gpt-4o-mini-2024-07-18"
    math = [r for r in fixture_prompts if r["train_ok"] == "True" and r["task"] == "math"]
    rows = [
        {"prompt": r["prompt"], "model": mini, "score": 0.0, "cost_usd": 1e-4, "group": "key_1"}
        for r in math[:30]
    ]
    data = _write(tmp_path / "traffic.jsonl", rows)
    probe = math[-1]["prompt"]
    seen = [quality(trained_dir, probe, mini)]
    for weight in ("1", "10", "100"):
        out = tmp_path / f"w{weight}"
        result = train(data, out, "--base", trained_dir, "--user-weight", weight, "--folds", "1")
        assert result.returncode == 0, result.stderr
        assert _json(out / "report" / "metrics.json")["rows"]["user_weight"] == float(weight)
        seen.append(quality(out, probe, mini))
    assert seen == sorted(seen, reverse=True) and seen[0] - seen[-1] > 0.2, seen


def test_a_retrained_router_serves_as_a_base_with_its_weights(
    trained_dir: Path, train: Train, tmp_path: Path
) -> None:
    """Artifacts trained with a base keep every row's weight, so they can be the next base."""
    first, second = tmp_path / "first", tmp_path / "second"
    data = _write(tmp_path / "monday.jsonl", translations("gpt-4o-mini-2024-07-18"))
    assert train(data, first, "--base", trained_dir, "--user-weight", "4").returncode == 0
    more = [
        {**r, "prompt": r["prompt"] + "!", "prompt_id": r["prompt_id"] + "b"} for r in translations("gpt-4o")
    ]
    data = _write(tmp_path / "tuesday.jsonl", more)
    result = train(data, second, "--base", first, "--user-weight", "2")
    assert result.returncode == 0, result.stderr
    assert _json(second / "report" / "metrics.json")["rows"]["base"] == 230 + 20
    with np.load(second / "knn.npz") as knn:
        counts = dict(zip(*np.unique(knn["weights"], return_counts=True), strict=True))
    assert counts == {1.0: 230, 2.0: 20, 4.0: 20}
    assert _json(second / "quality.json")["models"][-2:] == ["my-finetune", "gpt-4o"]


def test_a_canonical_folder_has_no_base_by_default(trained_dir: Path) -> None:
    rows = _json(trained_dir / "report" / "metrics.json")["rows"]
    assert rows == {"base": 0, "user": 230, "user_weight": 1.0, "base_source": None}


# -- errors -----------------------------------------------------------------------------------
def _old_artifacts(trained_dir: Path, folder: Path) -> Path:
    """A copy of trained artifacts whose knn.npz has only what the router reads (no base set)."""
    shutil.copytree(trained_dir, folder)
    with np.load(trained_dir / "knn.npz") as knn:
        keep = {k: knn[k] for k in ("embeddings", "scores", "input_tokens")}
    np.savez_compressed(folder / "knn.npz", **keep)
    manifest = _json(folder / "manifest.json")
    manifest["files"]["knn.npz"] = {
        "sha256": sha256(folder / "knn.npz"),
        "bytes": (folder / "knn.npz").stat().st_size,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("--user-weight", "-1"), "--user-weight: must be a number > 0, got -1"),
        (("--user-weight", "0"), "--user-weight: must be a number > 0, got 0"),
        (("--user-weight", "nan"), "--user-weight: must be a number > 0, got nan"),
        (("--base", "none", "--user-weight", "5"), "--user-weight: weighs your rows against a base set, and"),
        (
            ("--base", "{tmp}/no-such-artifacts"),
            "--base: {tmp}/no-such-artifacts: not a folder of router artifacts",
        ),
        (("--base", "{tmp}"), "--base: {tmp}/manifest.json: missing"),
        (
            ("--base", "{old}"),
            "--base: {old}/knn.npz: no base set (missing groups, tasks, costs, out_tokens)",
        ),
    ],
    ids=["negative", "zero", "nan", "weight-without-base", "missing-dir", "not-artifacts", "no-base-set"],
)
def test_bad_base_options(
    trained_dir: Path,
    train: Train,
    assert_cli_error: AssertCliError,
    tmp_path: Path,
    args: tuple[str, ...],
    why: str,
) -> None:
    old = _old_artifacts(trained_dir, tmp_path / "old")
    data = _write(tmp_path / "traffic.jsonl", translations("gpt-4o-mini-2024-07-18"))
    fill = {"tmp": str(tmp_path), "old": str(old)}
    result = train(data, tmp_path / "out", *(a.format(**fill) for a in args))
    assert_cli_error(result, why=why.format(**fill))
    assert not (tmp_path / "out").exists()


def test_a_weight_without_a_base_on_a_canonical_folder(
    fixture_dir: Path, train: Train, assert_cli_error: AssertCliError, tmp_path: Path
) -> None:
    result = train(fixture_dir, tmp_path / "out", "--user-weight", "3")
    assert_cli_error(result, why="--user-weight: weighs your rows against a base set, and there is none")
    assert not (tmp_path / "out").exists()


def test_a_small_memory_keeps_every_user_row(trained_dir: Path, train: Train, tmp_path: Path) -> None:
    """Past --knn-max rows, the neighbour memory drops base rows, never the user's."""
    data = _write(tmp_path / "traffic.jsonl", translations("gpt-4o-mini-2024-07-18"))
    out = tmp_path / "out"
    result = train(data, out, "--base", trained_dir, "--knn-max", "100")
    assert result.returncode == 0, result.stderr
    with np.load(out / "knn.npz") as knn:
        assert knn["embeddings"].shape == (100, 384)
        assert int((knn["weights"] == 10.0).sum()) == 20


def without_shape(trained: Path, out: Path) -> Path:
    """A copy of `trained` as pureai wrote artifacts before prompt shape features: heads that read
    the embedding alone, no `shape` in quality.json or knn.npz."""
    import onnx
    from onnx import numpy_helper

    shutil.copytree(trained, out)
    table = _json(out / "quality.json")
    dims = len(table.pop("shape"))
    (out / "quality.json").write_text(json.dumps(table), encoding="utf-8")
    with np.load(out / "knn.npz") as knn:
        arrays = {k: knn[k] for k in knn.files if k != "shape"}
    np.savez_compressed(out / "knn.npz", **arrays)
    heads = onnx.load(str(out / "heads.onnx"))
    for i, init in enumerate(heads.graph.initializer):
        if init.name in {f"{h}_W" for h in HEADS}:
            heads.graph.initializer[i].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(init)[:-dims], init.name)
            )
    heads.graph.input[0].type.tensor_type.shape.dim[1].dim_value -= dims
    onnx.save(heads, str(out / "heads.onnx"))
    manifest = _json(out / "manifest.json")
    for name in ("quality.json", "knn.npz", "heads.onnx"):
        manifest["files"][name] = {"sha256": sha256(out / name), "bytes": (out / name).stat().st_size}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out


def test_artifacts_from_before_shape_features_route_and_serve_as_a_base(
    trained_dir: Path, train: Train, tmp_path: Path
) -> None:
    """Artifacts trained before prompt shape features still load and decide, and a training on them
    as its base learns without shape features: the base rows carry no text to measure them on."""
    old = without_shape(trained_dir, tmp_path / "old")
    decision = Router.load(old).select(TRANSLATE)
    assert decision.selected_model and 0 < decision.confidence < 1
    out = tmp_path / "on-old"
    result = train(
        _write(tmp_path / "mine.jsonl", translations("gpt-4o-mini-2024-07-18")), out, "--base", old
    )
    assert result.returncode == 0, result.stderr
    assert _json(out / "quality.json")["shape"] == []
    with np.load(out / "knn.npz") as knn:
        assert "shape" not in knn.files and knn["embeddings"].shape[1] == 384
    assert Router.load(out).select(TRANSLATE).selected_model
    new = tmp_path / "on-new"
    assert (
        train(
            _write(tmp_path / "again.jsonl", translations("gpt-4o-mini-2024-07-18")),
            new,
            "--base",
            trained_dir,
        ).returncode
        == 0
    )
    assert _json(new / "quality.json")["shape"] == list(SHAPE)

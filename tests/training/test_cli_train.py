"""`pureai train` on the fixture, run as a subprocess (the session's training, plus a few more)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router import Router
from router._artifacts import default_dir

Train = Callable[..., subprocess.CompletedProcess[str]]
ARTIFACTS = ("embedder.onnx", "tokenizer.json", "heads.onnx", "quality.json", "knn.npz", "manifest.json")
REPORT = ("metrics.json", "report.md", "quality_cost.png", "calibration.png")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_writes_every_file(trained_dir: Path) -> None:
    for name in ARTIFACTS:
        assert (trained_dir / name).is_file(), name
    for name in REPORT:
        assert (trained_dir / "report" / name).is_file(), name
    for name in ("quality_cost.png", "calibration.png"):
        assert (trained_dir / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_leaves_no_temporary_folder_behind(trained_dir: Path) -> None:
    assert [p.name for p in trained_dir.parent.iterdir()] == [trained_dir.name]


def test_manifest_sha256s_match_the_files(trained_dir: Path) -> None:
    files = _json(trained_dir / "manifest.json")["files"]
    assert sorted(files) == sorted(ARTIFACTS[:-1])
    for name, entry in files.items():
        assert entry["sha256"] == _sha(trained_dir / name), name
        assert entry["bytes"] == (trained_dir / name).stat().st_size


def test_copies_the_shipped_embedder(trained_dir: Path) -> None:
    for name in ("embedder.onnx", "tokenizer.json"):
        assert _sha(trained_dir / name) == _sha(default_dir() / name)


def test_drops_the_prompts_not_licensed_for_training(
    trained_dir: Path, fixture_prompts: list[dict[str, str]]
) -> None:
    flagged = [r for r in fixture_prompts if r["train_ok"] != "True"]
    assert len(flagged) == 10
    data = _json(trained_dir / "manifest.json")["data"]
    assert data["prompts"] == len(fixture_prompts) - len(flagged) == 230
    assert "dropped 10 prompts with train_ok = false" in data["notes"]
    with np.load(trained_dir / "knn.npz") as knn:
        assert knn["embeddings"].shape == (230, 384)
        assert knn["scores"].shape == (230, 4)


def test_prints_a_summary(trained: Any) -> None:
    summary = trained.summary
    assert summary["out"] == str(trained.out)
    assert (summary["models"], summary["prompts"]) == (4, 230)
    assert 0 <= summary["brier"] <= 0.25
    assert 0 < summary["aiq"] <= 1 and 0 < summary["aiq_zero"] <= 1


def test_metrics_and_report(trained_dir: Path, fixture_models: list[str]) -> None:
    metrics = _json(trained_dir / "report" / "metrics.json")
    assert metrics["models"] == sorted(fixture_models)
    assert 0 <= metrics["brier"] <= 0.25
    assert 0 <= metrics["ece"] <= 0.2
    assert metrics["validation_prompts"] + metrics["train_prompts"] == 230
    assert [p["cost_weight"] for p in metrics["sweep"]] == [round(0.05 * i, 2) for i in range(21)]
    curve = metrics["curve"]
    assert 0 < curve["aiq_zero"] <= 1 and 0 < curve["aiq"] <= 1
    assert set(curve["single_models"]) == set(fixture_models)
    report = (trained_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert f"AIQ **{curve['aiq']:.4f}**" in report
    assert "![quality_cost.png](quality_cost.png)" in report


def test_calibration_per_dataset_of_the_held_out_rows(
    trained_dir: Path, fixture_prompts: list[dict[str, str]]
) -> None:
    """Each dataset of the held-out fold with enough outcomes gets its own Brier score and ECE, and
    their outcome counts add up to at most the fold's."""
    metrics = _json(trained_dir / "report" / "metrics.json")
    per = metrics["ece_by_source"]
    assert set(per) <= {r["dataset"] for r in fixture_prompts} and len(per) >= 2, per
    assert all(0 <= v["ece"] <= 1 and 0 <= v["brier"] <= 1 and v["outcomes"] >= 20 for v in per.values())
    assert sum(v["outcomes"] for v in per.values()) <= 4 * metrics["validation_prompts"]
    report = (trained_dir / "report" / "report.md").read_text(encoding="utf-8")
    name, v = next(iter(per.items()))
    assert f"| {name} | {v['outcomes']} | {v['brier']:.4f} | {v['ece']:.4f} |" in report


def test_onnx_heads_agree_with_the_fitted_model(trained_dir: Path) -> None:
    metrics = _json(trained_dir / "report" / "metrics.json")
    assert 0 <= metrics["onnx_max_abs_diff"] < 1e-4


def test_quality_table_describes_the_data(trained_dir: Path, fixture_prompts: list[dict[str, str]]) -> None:
    table = _json(trained_dir / "quality.json")
    # the seed prompts (training/seeds/) give the capability head every capability
    assert table["capabilities"] == [
        "code",
        "math",
        "reasoning",
        "knowledge",
        "writing",
        "chat",
        "extraction",
    ]
    datasets = {f"{r['dataset']}:{r['subtask'] or r['task']}" for r in fixture_prompts}
    assert table["groups"] == sorted(datasets)
    assert table["cost"]["from"] == "data"
    assert table["cost"]["known"] == [True] * 4


def test_same_seed_same_artifacts_and_force_replaces(
    trained_dir: Path, fixture_dir: Path, train: Train, tmp_path: Path
) -> None:
    out = tmp_path / "again"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run", encoding="utf-8")
    result = train(fixture_dir, out, "--seed", "0", "--force")
    assert result.returncode == 0, result.stderr
    assert not (out / "stale.txt").exists()
    for name in ("quality.json", "heads.onnx", "knn.npz"):
        assert (out / name).read_bytes() == (trained_dir / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]  # the old folder is gone too


@pytest.mark.slow
def test_another_seed_another_split(
    trained_dir: Path, fixture_dir: Path, train: Train, tmp_path: Path
) -> None:
    result = train(fixture_dir, tmp_path / "seed1", "--seed", "1")
    assert result.returncode == 0, result.stderr
    ours, theirs = _json(tmp_path / "seed1" / "quality.json"), _json(trained_dir / "quality.json")
    assert ours["calibration"] != theirs["calibration"]
    assert _json(tmp_path / "seed1" / "manifest.json")["seed"] == 1


@pytest.mark.slow
def test_registry_names_and_registry_costs(
    fixture_dir: Path, fixture_prompts: list[dict[str, str]], train: Train, tmp_path: Path
) -> None:
    """--registry-names maps the data's dated names to catalogue ids; --cost-from registry prices
    every request from the catalogue (input tokens x input price + output tokens x output price)."""
    out = tmp_path / "registry"
    result = train(
        fixture_dir,
        out,
        "--registry-names",
        "--cost-from",
        "registry",
        "--models",
        "gpt-4o-mini,gpt-4o,claude-3-haiku",
    )
    assert result.returncode == 0, result.stderr
    assert _json(out / "manifest.json")["data"]["models"] == ["gpt-4o-mini", "gpt-4o", "claude-3-haiku"]
    table = _json(out / "quality.json")
    assert table["models"] == ["gpt-4o-mini", "gpt-4o", "claude-3-haiku"]
    assert table["cost"]["from"] == "registry"
    rt = Router.load(out)
    prompt = fixture_prompts[0]["prompt"]
    d = rt.select(prompt, models=["gpt-4o-mini", "gpt-4o"])
    cost = {c.model: c.cost_usd for c in d.candidates}
    # gpt-4o's prices are 16.67x gpt-4o-mini's, input and output alike; output tokens are learned per
    # model, so the ratio of expected costs sits within a factor 3 of the price ratio
    mini, big = rt.catalogue.models["gpt-4o-mini"], rt.catalogue.models["gpt-4o"]
    price_ratio = big.input_per_mtok / mini.input_per_mtok
    assert price_ratio / 3 < cost["gpt-4o"] / cost["gpt-4o-mini"] < price_ratio * 3
    # the models' own outcome rows: neighbours or abilities, as the folds chose (`near`)
    assert [c.quality_source in ("learned", "ability") for c in d.candidates] == [True, True]


def test_every_kept_prompt_has_all_four_outcomes(
    trained_dir: Path, fixture_outcomes: list[dict[str, str]], fixture_prompts: list[dict[str, str]]
) -> None:
    """So the learned models cover every group, and every held-out prompt is on the curve."""
    kept = {r["prompt_id"] for r in fixture_prompts if r["train_ok"] == "True"}
    assert len([o for o in fixture_outcomes if o["prompt_id"] in kept]) == 4 * 230
    assert np.allclose(_json(trained_dir / "quality.json")["coverage"], 1.0)
    metrics = _json(trained_dir / "report" / "metrics.json")
    assert metrics["curve_prompts"] == metrics["validation_prompts"]


def test_capability_seeds_teach_typical_requests(trained_dir: Path) -> None:
    """Trained on math and code benchmarks only, the head still tells a chat or a writing request
    apart, thanks to the seed prompts (which are not these texts)."""
    from router import Router

    rt = Router.load(trained_dir)
    cases = {
        "hey! how's your day going so far?": "chat",
        "Could you tell me a funny story about a penguin?": "writing",  # a story is writing
        "Write a short poem about the winter sea": "writing",
        "Who was the president of France in 1995?": "knowledge",
        "Implement quicksort in Python": "code",
    }
    for prompt, want in cases.items():
        caps = rt.select(prompt).capabilities
        assert max(caps, key=caps.__getitem__) == want, (prompt, caps)

"""benchmarks/real_prompts: the prompt set's shape, and run.py as a subprocess on a few prompts
over the shipped artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from models_registry import CAPABILITIES

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "real_prompts"
LIMIT = 21  # one prompt per (capability, difficulty)


def test_prompt_set_shape() -> None:
    rows = [json.loads(line) for line in (BENCH / "prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(set(r) == {"prompt", "capability", "difficulty", "source"} for r in rows)
    assert {r["source"] for r in rows} == {"written for pureai benchmarks"}
    assert {r["capability"] for r in rows} == set(CAPABILITIES)
    assert {r["difficulty"] for r in rows} == {"trivial", "easy", "hard"}
    assert len({r["prompt"] for r in rows}) == len(rows), "a prompt is listed twice"
    per_cap = Counter(r["capability"] for r in rows)
    assert all(per_cap[c] >= 40 for c in ("code", "math", "writing")), per_cap
    assert all(n >= 20 for n in per_cap.values()), per_cap
    levels = Counter((r["capability"], r["difficulty"]) for r in rows)
    assert all(levels[c, d] >= 5 for c in CAPABILITIES for d in ("trivial", "hard")), levels


def _words(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace()).split())


def test_no_prompt_of_the_set_is_one_training_reads() -> None:
    """Not even with other case or punctuation: every labelled prompt of the capability and
    complexity heads (seeds and shared real prompts) differs from every prompt of the set."""
    from training.prompt_labels import label_set

    rows = [json.loads(line) for line in (BENCH / "prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    read = {_words(t) for t in label_set().texts}
    assert len(read) > 500
    assert [r["prompt"] for r in rows if _words(r["prompt"]) in read] == []


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("real_prompts") / "r.json"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--limit", str(LIMIT), "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text(encoding="utf-8")), proc.stdout


def test_capability_head(result: tuple[dict, str]) -> None:
    r, _ = result
    assert r["prompts"] == LIMIT
    cap = r["capability"]
    assert set(cap["top1"]) == set(CAPABILITIES)
    for c, v in cap["top1"].items():
        row = cap["confusion"][c]
        assert v["n"] == sum(row.values()) == LIMIT // len(CAPABILITIES)
        assert v["top1"] == pytest.approx(row[c] / v["n"])
    hits = sum(cap["confusion"][c][c] for c in CAPABILITIES)
    assert cap["top1_overall"] == pytest.approx(hits / LIMIT)


def test_complexity(result: tuple[dict, str]) -> None:
    cx = result[0]["complexity"]
    for level in ("trivial", "easy", "hard"):
        assert cx[level]["n"] == len(CAPABILITIES)
        assert 0 <= cx[level]["p10"] <= cx[level]["mean"] <= cx[level]["p90"] <= 1
        assert cx[level]["std"] >= 0
    assert cx["hard_minus_trivial"] == pytest.approx(cx["hard"]["mean"] - cx["trivial"]["mean"])


def test_quality_sources(result: tuple[dict, str]) -> None:
    from models_registry import load_catalogue

    r, _ = result
    assert len(r["pool"]) == 12
    learned = set(json.loads((ROOT / "router" / "artifacts" / "quality.json").read_text())["models"])
    catalogue = load_catalogue()
    expected = [m for m in r["pool"] if {m, *catalogue.models[m].aliases} & learned]
    assert r["pool_with_outcome_data"] == expected
    qs = r["quality_source"]
    for shares in (qs["all_pool_models"], qs["models_with_outcome_data"]):
        assert set(shares) <= {"learned", "ability", "relative", "prior"}
        assert sum(shares.values()) == pytest.approx(1.0)
    assert set(qs["models_with_outcome_data"]) <= {"learned", "ability"}  # its own data, always
    assert set(qs["per_model_learned"]) == set(r["pool"])
    # a model without outcome data has no learned column: its quality is a relative's or the prior
    assert all(qs["per_model_learned"][m] == 0 for m in r["pool"] if m not in expected)
    assert all(qs["per_model_learned"][m] == 1 for m in expected)


def test_choices_follow_cost_weight(result: tuple[dict, str]) -> None:
    r, _ = result
    ch = r["choices"]
    assert list(ch) == ["0.0", "0.5", "1.0"]
    for v in ch.values():
        assert set(v["share"]) <= set(r["pool"])
        assert sum(v["share"].values()) == pytest.approx(1.0)
        assert v["distinct_models"] == len(v["share"])
        assert all(sum(s.values()) == pytest.approx(1.0) for s in v["per_capability"].values())
    # a larger cost weight never picks a dearer model for the same prompt, so never on average
    assert (
        ch["0.0"]["mean_chosen_cost_usd"]
        >= ch["0.5"]["mean_chosen_cost_usd"]
        >= ch["1.0"]["mean_chosen_cost_usd"]
    )
    assert len(r["decisions_cost_weight_0.5"]) == LIMIT


def test_targets_printed_beside_measures(result: tuple[dict, str]) -> None:
    r, stdout = result
    names = [t["target"] for t in r["targets"]]
    assert len(names) == 5
    for t in r["targets"]:
        threshold = float(t["target"].rsplit(">=", 1)[1].strip().rstrip("%")) / (
            100 if "%" in t["target"] else 1
        )
        assert t["pass"] == (t["value"] >= threshold)
        assert t["target"] in stdout
    assert "| target | measured |" in stdout

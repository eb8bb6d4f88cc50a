"""The extra-2025 outcome folder (training/extra2025.py): its rows, their licences, merging them with a
canonical folder by prompt id, the catalogue aliases of their model names, and `pureai train` on
both at once. The folder here is a small one made by the `extra` fixture in the same layout
(made-up rows; nothing is copied from ../shared)."""

from __future__ import annotations

import csv
import gzip
import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models_registry import load_catalogue
from training import data, extra2025
from training.data import CAPABILITIES, OutcomeData
from training.errors import DataError
from training.train import model_rows, rename_to_registry

Train = Callable[..., subprocess.CompletedProcess[str]]
AssertCliError = Callable[..., None]

SOURCES_MD = """# SOURCES: a small extra-2025 folder for tests

| path | upstream | licence | what it is |
|---|---|---|---|
| zeroeval_2025/crux_correct_new_models.csv | x | Apache-2.0 (repo). Data: CRUXEval MIT | 0/1 |
| zeroeval_2025/crux_output_chars_new_models.csv | same | same | chars |
| mmlu_pro_hist/correct_gpt4o_deepseekv2.csv.gz | x | Apache-2.0 (repo). MMLU-Pro data MIT | 0/1 |
| routerarena/sub10_scores_2models.csv | x | Apache-2.0 (repo LICENSE) | scores |
| evalplus_evalperf/per_task_scores.csv.gz | x | Apache-2.0; MBPP CC BY 4.0 | pass@1 |
| vectara_hhem_v1/hhem_scores_long.csv.gz | x | Apache-2.0 (repo) | hhem |
"""
ROUTERARENA = [  # global_index, dataset, prompt
    ("AIME_1", "AIME", "Find the number of ordered pairs (a, b) of positive integers with a + b = 1000."),
    (
        "NarrativeQA_7",
        "NarrativeQA",
        "Read the story below and say who found the lighthouse keeper's logbook.",
    ),
    ("WMT19-de-en_3", "WMT19-de-en", "Translate into English: Der Zug hat heute zehn Minuten Verspätung."),
    ("MMLUPro_law_9", "MMLUPro_law", "Which doctrine lets a court refuse to hear a case brought too late?"),
]
EVALPERF = [
    ("HumanEval/0", "def has_close_elements(numbers, threshold):\n    ..."),
    ("Mbpp/3", "Write a function."),
]
EVALPERF_MODELS = ["mistralai--Codestral-22B-v0.1_vllm_temp_1.0", "deepseek-chat-v3_openai_temp_1.0"]


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    return path


@pytest.fixture
def zeroeval_ids(fixture_prompts: list[dict[str, str]]) -> list[str]:
    """Five CRUXEval ids of the canonical fixture: four it trains on, then one flagged train_ok=False."""
    crux = [r for r in fixture_prompts if r["dataset"] == "zeroeval-crux"]
    kept = [r["prompt_id"] for r in crux if r["train_ok"] == "True"][:4]
    return [*kept, next(r["prompt_id"] for r in crux if r["train_ok"] != "True")]


@pytest.fixture
def extra(tmp_path: Path, zeroeval_ids: list[str]) -> Path:
    """A folder in the extra-2025 layout: 5 ZeroEval CRUXEval rows x 2 models (on canonical fixture
    prompts), 3 MMLU-Pro questions (not in the fixture), 4 RouterArena prompts x 2 models, 2 EvalPerf
    tasks x 2 models, and 3 HHEM summaries of 2 models."""
    folder = tmp_path / "extra-2025"
    folder.mkdir()
    (folder / "SOURCES.md").write_text(SOURCES_MD, encoding="utf-8")
    ids = [pid.split(":", 1)[1] for pid in zeroeval_ids]
    new = ["claude-3-5-haiku-20241022", "claude-3-5-sonnet-20241022"]
    _csv(
        folder / "zeroeval_2025/crux_correct_new_models.csv",
        ["id", *new],
        [[i, k % 2, 1] for k, i in enumerate(ids)],
    )
    _csv(
        folder / "zeroeval_2025/crux_output_chars_new_models.csv", ["id", *new], [[i, 400, 801] for i in ids]
    )
    mmlu = ["question_id", "gpt-4o-2024-05-13", "deepseek-chat-v2-2024-05"]
    _csv(
        folder / "mmlu_pro_hist/correct_gpt4o_deepseekv2.csv.gz",
        mmlu,
        [[70, 1, "0.0"], [71, 0, ""], [72, 1, "1.0"]],
    )
    _csv(
        folder / "mmlu_pro_hist/output_chars_gpt4o_deepseekv2.csv.gz",
        mmlu,
        [[70, 40, 80], [71, 4, ""], [72, 8, 9]],
    )
    _csv(
        folder / "routerarena/sub10_prompts.csv.gz",
        ["global_index", "dataset", "prompt", "ground_truth", "metric"],
        [[g, d, p, "x", "exact_match"] for g, d, p in ROUTERARENA],
    )
    scores = [
        [g, m, s, "exact_match", 100, 50 + k, 0.0001 * (k + 1), "True", 200]
        for k, (g, _, _) in enumerate(ROUTERARENA)
        for m, s in (("gemini-2.0-flash-001", 1.0), ("claude-3-haiku-20240307", 0.25))
    ]
    header = ["global_index", "model", "score", "metric", "input_tokens", "output_tokens"]
    _csv(
        folder / "routerarena/sub10_scores_2models.csv",
        [*header, "inference_cost_usd", "success", "answer_chars"],
        scores,
    )
    _csv(
        folder / "evalplus_evalperf/task_prompts.csv",
        ["task_id", "prompt", "entry_point", "source_file"],
        [[t, p, "f", "x"] for t, p in EVALPERF],
    )
    _csv(
        folder / "evalplus_evalperf/per_task_scores.csv.gz",
        ["task_id", "model", "pass@1", "dps", "dps_norm", "n_profiled", "mean_solution_chars"],
        [
            [t, m, 100.0 - 40 * k, "", "", 0, 398 if k else ""]
            for t, _ in EVALPERF
            for k, m in enumerate(EVALPERF_MODELS)
        ],
    )
    _csv(
        folder / "vectara_hhem_v1/hhem_scores_long.csv.gz",
        ["model", "article_id", "hhem_score", "is_valid", "word_count", "summary_chars", "hhem_version"],
        [
            ["google/gemini-2.0-flash-001", 1, 0.9, "True", 80, 500, "HHEM-2.3"],
            ["google/gemini-2.0-flash-001", 2, 0.3, "True", 80, 500, "HHEM-2.3"],
            ["google/gemini-2.0-flash-001", 3, "", "False", 0, 0, "HHEM-2.3"],
            ["acme/unknown-model", 1, 0.7, "True", 80, 500, "HHEM-2.3"],
        ],
    )
    return folder


def _edit(path: Path, line: int, column: str, value: str) -> Path:
    """Set one cell (line 1 is the header) of a CSV file in place."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
        rows = list(csv.reader(f))
    rows[line - 1][rows[0].index(column)] = value
    with opener(path, "wt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# -- rows -------------------------------------------------------------------------------------
def test_rows_of_each_source(extra: Path, zeroeval_ids: list[str]) -> None:
    rows = list(extra2025.rows(extra))
    by_source: dict[str, list[extra2025.Row]] = {}
    for r in rows:
        by_source.setdefault(r.source, []).append(r)
    assert {k: len(v) for k, v in by_source.items()} == {
        "zeroeval_2025": 10,
        "mmlu_pro_hist": 5,  # the empty deepseek cell is no outcome
        "routerarena": 8,
        "evalplus_evalperf": 4,
    }
    zero = by_source["zeroeval_2025"][0]
    assert (zero.prompt_id, zero.text, zero.model, zero.score) == (
        zeroeval_ids[0],
        None,
        "claude-3-5-haiku-20241022",
        0,
    )
    assert zero.output_tokens == 100  # 400 characters / 4
    assert {r.prompt_id for r in by_source["mmlu_pro_hist"]} == {"mmlu-pro:70", "mmlu-pro:71", "mmlu-pro:72"}
    arena = by_source["routerarena"][2]
    assert (arena.prompt_id, arena.task, arena.group) == (
        "routerarena:NarrativeQA_7",
        "extraction",
        "routerarena:NarrativeQA",
    )
    assert (arena.cost_usd, arena.output_tokens) == (0.0002, 51)  # the source's own cost and tokens
    code = by_source["evalplus_evalperf"]
    assert [(r.model, r.score) for r in code[:2]] == [("Codestral-22B-v0.1", 1.0), ("deepseek-chat-v3", 0.6)]
    assert (code[0].task, code[0].group, code[3].group) == ("code", "evalperf:humaneval", "evalperf:mbpp")
    assert math.isnan(code[0].output_tokens) and code[1].output_tokens == 100  # chars/4 where known
    assert all(math.isnan(r.cost_usd) for r in code)


def test_every_routerarena_label_has_a_capability() -> None:
    assert len(extra2025.ROUTERARENA_TASKS) == 78
    assert set(extra2025.ROUTERARENA_TASKS.values()) == set(CAPABILITIES) - {"chat"}


def test_evalperf_configurations_become_model_names() -> None:
    assert extra2025.evalperf_model("mistralai--Mistral-Large-Instruct-2407_vllm_temp_1.0") == (
        "Mistral-Large-Instruct-2407"
    )
    assert extra2025.evalperf_model("o1-mini-2024-09-12_openai_temp_1.0-perf-instruct") == (
        "o1-mini-2024-09-12-perf-instruct"
    )


def test_a_source_not_licensed_for_training_gives_no_rows(extra: Path) -> None:
    md = extra / "SOURCES.md"
    md.write_text(md.read_text().replace("Apache-2.0 (repo LICENSE)", "CC-BY-NC-4.0"), encoding="utf-8")
    assert extra2025.usable_sources(extra) == ["zeroeval_2025", "mmlu_pro_hist", "evalplus_evalperf"]
    assert "routerarena" not in {r.source for r in extra2025.rows(extra)}


def test_hhem_evidence_is_per_model(extra: Path) -> None:
    ev = extra2025.hhem_evidence(extra)["google/gemini-2.0-flash-001"]
    assert (ev.articles, ev.answer_rate, ev.hallucination_rate) == (3, 2 / 3, 0.5)
    assert ev.mean_hhem == pytest.approx(0.6)
    by_id = extra2025.hhem_evidence(extra, load_catalogue(None))
    assert list(by_id) == ["gemini-2.0-flash"]  # the unknown model is left out


# -- merging with a canonical folder ------------------------------------------------------------
def test_load_merges_both_folders_by_prompt_id(
    fixture_dir: Path, extra: Path, zeroeval_ids: list[str]
) -> None:
    merged = data.load(f"{fixture_dir},{extra}")
    alone = data.load(fixture_dir)
    assert len(merged.texts) == len(alone.texts) + 4 + 2  # RouterArena and EvalPerf bring new prompts
    assert merged.prompt_ids[: len(alone.texts)] == alone.prompt_ids  # the joined prompts stay one row
    row = merged.prompt_ids.index(zeroeval_ids[0])
    j = merged.models.index("claude-3-5-sonnet-20241022")
    assert merged.scores[row, j] == 1 and merged.out_tokens[row, j] == 200
    assert zeroeval_ids[-1] not in merged.prompt_ids  # train_ok=False in canonical: dropped there too
    assert "8 rows joined prompts of the other sources, 7 dropped" in merged.notes[-1]
    assert merged.source == f"{fixture_dir}, {extra}"


def test_extra_alone_keeps_its_own_prompts(extra: Path) -> None:
    alone = data.load(extra)
    assert sorted(alone.prompt_ids) == sorted(
        [f"routerarena:{g}" for g, _, _ in ROUTERARENA] + [f"evalperf:{t}" for t, _ in EVALPERF]
    )
    assert "0 rows joined prompts of the other sources, 15 dropped" in alone.notes[-1]


def test_model_rows_count_each_source(
    fixture_dir: Path,
    extra: Path,
    fixture_prompts: list[dict[str, str]],
    fixture_outcomes: list[dict[str, str]],
) -> None:
    merged = rename_to_registry(data.load(f"{fixture_dir},{extra}"), load_catalogue(None))
    counts = model_rows(merged)
    assert counts["claude-3-5-haiku"] == {"rows": 4, "sources": {"extra-2025/zeroeval_2025": 4}}
    assert counts["codestral-latest"] == {"rows": 2, "sources": {"extra-2025/evalplus_evalperf": 2}}
    dataset = {r["prompt_id"]: r["dataset"] for r in fixture_prompts if r["train_ok"] == "True"}
    want: dict[str, int] = {"extra-2025/routerarena": 4}
    for o in fixture_outcomes:
        if o["model"] == "claude-3-haiku-20240307" and o["prompt_id"] in dataset:
            key = f"canonical/{dataset[o['prompt_id']]}"
            want[key] = want.get(key, 0) + 1
    assert counts["claude-3-haiku"] == {"rows": sum(want.values()), "sources": dict(sorted(want.items()))}


# -- catalogue aliases ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("gpt-4o-2024-05-13", "gpt-4o"),
        ("deepseek-chat-v2-2024-05", "deepseek-chat"),
        ("deepseek-chat-v3", "deepseek-chat"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("Codestral-22B-v0.1", "codestral-latest"),
        ("Mistral-Large-Instruct-2407", "mistral-large-latest"),
        ("Mistral-Small-Instruct-2409", "mistral-small-latest"),
        ("Qwen2.5-72B-Instruct", "qwen-2.5-72b-instruct"),
        ("Llama-3.1-70B-Instruct", "llama-3.1-70b-instruct"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("o1-mini-2024-09-12", "o1-mini"),
        ("grok-2-1212", None),  # not in the catalogue
    ],
)
def test_data_names_map_to_catalogue_ids(name: str, model_id: str | None) -> None:
    assert load_catalogue(None).by_alias(name) == model_id


def test_two_names_of_one_model_on_a_prompt_keep_the_closer_one() -> None:
    """Prompt 0 has both gpt-4o versions: the newer (listed first) wins, not their mean; prompt 1 has
    only the older one, which fills it. Cost and tokens come with the score."""
    nan = math.nan
    outcomes = OutcomeData(
        ["p0", "p1"],
        ["a", "b"],
        ["math", "math"],
        ["g", "g"],
        ["gpt-4o-2024-05-13", "gpt-4o-2024-08-06"],
        np.array([[0.0, 1.0], [0.5, nan]]),
        np.array([[0.3, 0.1], [0.2, nan]]),
        np.array([[30.0, 10.0], [20.0, nan]]),
        origins=np.array([[1, 0], [1, -1]], dtype=np.int32),
        origin_names=["new", "old"],
    )
    out = rename_to_registry(outcomes, load_catalogue(None))
    assert out.models == ["gpt-4o"]
    assert out.scores[:, 0].tolist() == [1.0, 0.5]
    assert (out.costs[:, 0].tolist(), out.out_tokens[:, 0].tolist()) == ([0.1, 0.2], [10.0, 20.0])
    assert model_rows(out)["gpt-4o"] == {"rows": 2, "sources": {"new": 1, "old": 1}}


def test_a_path_with_a_comma_is_one_source(tmp_path: Path) -> None:
    odd = tmp_path / "a,b.jsonl"
    odd.write_text('{"prompt": "x", "model": "m", "score": 1}\n', encoding="utf-8")
    assert data.sources(odd) == [odd]
    assert data.sources("x, y") == [Path("x"), Path("y")]


# -- the CLI ----------------------------------------------------------------------------------
def test_cli_trains_on_canonical_and_extra_together(
    fixture_dir: Path, extra: Path, train: Train, tmp_path: Path
) -> None:
    out = tmp_path / "both"
    models = "gpt-4o-mini,gpt-4o,claude-3-haiku,claude-3-5-haiku,gemini-2.0-flash,codestral-latest"
    result = train(
        f"{fixture_dir},{extra}",
        out,
        "--registry-names",
        "--cost-from",
        "registry",
        "--models",
        models,
        "--folds",
        "1",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["models"], summary["prompts"], summary["base_rows"]) == (6, 236, 0)
    manifest = _json(out / "manifest.json")
    assert manifest["data"]["source"] == f"{fixture_dir}, {extra}"
    counts = _json(out / "report" / "metrics.json")["model_rows"]
    assert list(counts) == models.split(",")
    assert counts["gemini-2.0-flash"] == {"rows": 4, "sources": {"extra-2025/routerarena": 4}}
    assert counts["claude-3-haiku"]["sources"]["extra-2025/routerarena"] == 4
    assert manifest["data"]["model_rows"] == counts
    report = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert "| claude-3-5-haiku | 4 | extra-2025/zeroeval_2025 4 |" in report


@pytest.mark.parametrize(
    ("file", "line", "column", "value", "why"),
    [
        ("routerarena/sub10_scores_2models.csv", 3, "score", "1.7", "must be a number in [0, 1], got '1.7'"),
        ("evalplus_evalperf/per_task_scores.csv.gz", 2, "pass@1", "abc", "not a number: 'abc'"),
        (
            "routerarena/sub10_prompts.csv.gz",
            4,
            "dataset",
            "NewBench",
            "no capability for the label 'NewBench'",
        ),
    ],
    ids=["score-1.7", "pass-abc", "unknown-label"],
)
def test_a_bad_extra_file_stops_the_cli(
    fixture_dir: Path,
    extra: Path,
    train: Train,
    tmp_path: Path,
    assert_cli_error: AssertCliError,
    file: str,
    line: int,
    column: str,
    value: str,
    why: str,
) -> None:
    bad = _edit(extra / file, line, column, value)
    out = tmp_path / "out"
    result = train(f"{fixture_dir},{extra}", out)
    assert_cli_error(result, file=str(bad), line=line, field=column, why=why)
    assert not out.exists()


def test_extra_without_sources_md_is_refused(extra: Path) -> None:
    (extra / "SOURCES.md").unlink()
    with pytest.raises(DataError, match="SOURCES.md: missing"):
        data.load(extra)

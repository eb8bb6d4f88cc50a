"""The extra-2025 outcome folder (`shared/routing-data/extra-2025/`) read as canonical outcome rows.

Four of its sources become rows (`rows(folder)`), each keeping the model names its files use:

* `zeroeval_2025/` (GSM8K, MATH-L5, CRUXEval; the models added since the canonical copy) and
  `mmlu_pro_hist/` (gpt-4o and deepseek-chat V2 on MMLU-Pro) score prompts that the canonical
  folder already holds: their rows carry a canonical prompt id (`zeroeval-gsm8k:<id>`,
  `mmlu-pro:<question_id>`) and no text, and join that prompt when both folders are loaded;
* `routerarena/` (809 prompts of 78 task labels, with real per-prompt costs and token counts) and
  `evalplus_evalperf/` (118 code tasks, pass@1 over 100 samples) bring prompts of their own.

`vectara_hhem_v1/` has no prompt texts, so it gives no rows: `hhem_evidence(folder)` gives each
model's aggregate factual-consistency scores instead, evidence about a model as a whole.

Licences are read from the folder's SOURCES.md: a source whose licence is not permissive gives no
rows (`usable_sources`). Output tokens are the source's count where it has one, else
round(output characters / 4), as in the canonical build.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import CAPABILITIES, _csv_number, _csv_rows
from .errors import DataError

ROW_SOURCES = ("zeroeval_2025", "mmlu_pro_hist", "routerarena", "evalplus_evalperf")

# ZeroEval file prefix -> the canonical dataset whose prompt ids its `id` column completes.
ZEROEVAL_SETS = {"gsm": "zeroeval-gsm8k", "math-l5": "zeroeval-math-l5", "crux": "zeroeval-crux"}

# RouterArena `dataset` label -> capability (training/data.py CAPABILITIES), by what the prompts ask.
# Reading comprehension over a given passage counts as extraction, translation as writing.
ROUTERARENA_TASKS = {
    "AIME": "math",
    "AsDiv": "math",
    "FinQA": "math",  # numeric questions over a financial report
    "GSM8K": "math",
    "MATH": "math",
    "MathQA": "math",
    "MMLUPro_math": "math",
    "OpenTDB_Science: Mathematics": "math",
    "LiveCodeBench": "code",
    "ChessInstruct": "reasoning",
    "Ethics_commonsense": "reasoning",
    "Ethics_deontology": "reasoning",
    "Ethics_justice": "reasoning",
    "Ethics_virtue": "reasoning",
    "MMLU_formal_logic": "reasoning",
    "SocialiQA": "reasoning",
    "SuperGLUE-CausalReasoning": "reasoning",
    "SuperGLUE-Entailment": "reasoning",
    "SuperGLUE-Wic": "reasoning",
    "SuperGLUE-Wsc": "reasoning",
    "NarrativeQA": "extraction",
    "SuperGLUE-ClozeTest": "extraction",
    "SuperGLUE-QA": "extraction",
    "SuperGLUE-RC": "extraction",
    **{f"WMT19-{pair}-en": "writing" for pair in ("cs", "de", "fi", "gu", "kk", "lt", "ru", "zh")},
    **{
        label: "knowledge"
        for label in (
            "ArcMMLU",
            "GeoBench",
            "GeoGraphyData_100k",
            "MedMCQA",
            "MMLU_management",
            "MusicTheoryBench",
            "PubMedQA",
        )
    },
    **{
        f"MMLUPro_{cat}": "knowledge"
        for cat in (
            "biology",
            "business",
            "chemistry",
            "computer science",
            "economics",
            "engineering",
            "health",
            "history",
            "law",
            "philosophy",
            "physics",
            "psychology",
        )
    },
    **{
        f"OpenTDB_{cat}": "knowledge"
        for cat in (
            "Animals",
            "Art",
            "Celebrities",
            "General Knowledge",
            "Geography",
            "History",
            "Science & Nature",
            "Science: Computers",
            "Sports",
            "Vehicles",
        )
    },
    **{
        f"OpenTDB_Entertainment: {cat}": "knowledge"
        for cat in (
            "Board Games",
            "Books",
            "Cartoon & Animations",
            "Comics",
            "Film",
            "Japanese Anime & Manga",
            "Music",
            "Musicals & Theatres",
            "Television",
            "Video Games",
        )
    },
    **{
        f"QANTA_{cat}": "knowledge"
        for cat in (
            "Fine Arts",
            "Geography",
            "History",
            "Literature",
            "Philosophy",
            "Science",
            "Social Science",
        )
    },
}
assert set(ROUTERARENA_TASKS.values()) <= set(CAPABILITIES)


@dataclass(frozen=True)
class Row:
    """One outcome. `text` is None for a row that scores a prompt of another folder (by its id)."""

    prompt_id: str
    model: str
    score: float  # in [0, 1]
    source: str  # the sub-folder it came from, e.g. "routerarena"
    text: str | None = None
    task: str = ""
    group: str = ""
    cost_usd: float = math.nan
    output_tokens: float = math.nan


def is_extra2025(path: Path) -> bool:
    """Whether `path` is a folder in the extra-2025 layout (SOURCES.md beside its sub-folders)."""
    return path.is_dir() and any((path / sub).is_dir() for sub in ROW_SOURCES)


def rows(folder: Path) -> Iterator[Row]:
    """Every outcome row of the folder's usable sources (those present and permissively licensed)."""
    readers = {
        "zeroeval_2025": zeroeval_rows,
        "mmlu_pro_hist": mmlu_pro_rows,
        "routerarena": routerarena_rows,
        "evalplus_evalperf": evalperf_rows,
    }
    for sub in usable_sources(folder):
        yield from readers[sub](folder / sub)


# -- licences ---------------------------------------------------------------------------------
_NOT_FOR_TRAINING = re.compile(r"\bNC\b|-NC|BY-SA|none stated|no licence", re.IGNORECASE)
_PERMISSIVE = re.compile(r"Apache-2\.0|\bMIT\b|CC[ -]BY 4\.0|CC-BY-4\.0")


def usable_sources(folder: Path) -> list[str]:
    """The row sources present in `folder` whose every SOURCES.md row has a permissive licence."""
    licences = source_licences(folder)
    return [
        sub
        for sub in ROW_SOURCES
        if (folder / sub).is_dir()
        and all(_PERMISSIVE.search(x) and not _NOT_FOR_TRAINING.search(x) for x in licences.get(sub, []))
        and licences.get(sub)
    ]


def source_licences(folder: Path) -> dict[str, list[str]]:
    """Sub-folder -> the licence cells of its rows in SOURCES.md's table ("same" repeats the row above)."""
    path = folder / "SOURCES.md"
    if not path.is_file():
        raise DataError(path, "missing: the licence of each extra-2025 source is read from it")
    out: dict[str, list[str]] = {}
    last = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or "/" not in cells[0]:
            continue
        licence = last if cells[2].lower() == "same" else cells[2]
        last = licence
        out.setdefault(cells[0].split("/")[0], []).append(licence)
    return out


# -- the four row sources ---------------------------------------------------------------------
def _cell(row: dict[str, str], key: str, file: Path, line: int, scale: float = 1.0) -> float:
    """The cell as a number in [0, scale] (NaN when empty); a DataError naming file, line, field."""
    v = _csv_number(row, key, file, line)
    if v > scale:
        raise DataError(file, f"must be a number in [0, {scale:g}], got {row[key].strip()!r}", line, key)
    return v


def _count(row: dict[str, str], key: str, file: Path, line: int) -> float:
    """A non-negative count (NaN when empty)."""
    return _cell(row, key, file, line, math.inf)


def _chars_to_tokens(chars: float) -> float:
    return math.nan if math.isnan(chars) else float(round(chars / 4))


def _wide(file: Path, key: str) -> Iterator[tuple[int, str, str, dict[str, str]]]:
    """(line, row id, model, row) for each model column of a wide `key` x model CSV."""
    for n, row in _csv_rows(file, (key,)):
        for model in row:
            if model != key:
                yield n, row[key], model, row


def _chars(file: Path, key: str) -> dict[tuple[str, str], float]:
    """(row id, model) -> output characters, from a wide output-chars CSV."""
    return {(rid, m): _count(row, m, file, n) for n, rid, m, row in _wide(file, key)}


def _scored(correct: Path, key: str, chars_file: Path, prefix: str, source: str) -> Iterator[Row]:
    """Rows of a wide `key` x model correctness CSV, with output tokens from its output-chars CSV
    when there is one; prompt ids are `prefix:<row id>`."""
    chars = _chars(chars_file, key) if chars_file.is_file() else {}
    for n, rid, model, row in _wide(correct, key):
        score = _cell(row, model, correct, n)
        if not math.isnan(score):
            out = _chars_to_tokens(chars.get((rid, model), math.nan))
            yield Row(f"{prefix}:{rid}", model, score, source, output_tokens=out)


def zeroeval_rows(folder: Path) -> Iterator[Row]:
    """The new models' 0/1 correctness on GSM8K, MATH-L5 and CRUXEval, joined to canonical ids."""
    for prefix, dataset in ZEROEVAL_SETS.items():
        correct = folder / f"{prefix}_correct_new_models.csv"
        if correct.is_file():
            chars = folder / f"{prefix}_output_chars_new_models.csv"
            yield from _scored(correct, "id", chars, dataset, folder.name)


def mmlu_pro_rows(folder: Path) -> Iterator[Row]:
    """gpt-4o (May 2024) and deepseek-chat V2 on MMLU-Pro (pred == answer), joined on question_id."""
    correct = folder / "correct_gpt4o_deepseekv2.csv.gz"
    chars = folder / "output_chars_gpt4o_deepseekv2.csv.gz"
    yield from _scored(correct, "question_id", chars, "mmlu-pro", folder.name)


def routerarena_rows(folder: Path) -> Iterator[Row]:
    """RouterArena's sub_10 prompts with two models' scores, real costs and token counts."""
    pfile = folder / "sub10_prompts.csv.gz"
    prompts: dict[str, tuple[str, str, str]] = {}
    for n, row in _csv_rows(pfile, ("global_index", "dataset", "prompt")):
        label = row["dataset"]
        task = ROUTERARENA_TASKS.get(label)
        if task is None:
            raise DataError(
                pfile,
                f"no capability for the label {label!r}: add it to ROUTERARENA_TASKS in training/extra2025.py",
                n,
                "dataset",
            )
        prompts[row["global_index"]] = (row["prompt"], task, f"routerarena:{label}")
    sfile = folder / "sub10_scores_2models.csv"
    for n, row in _csv_rows(sfile, ("global_index", "model", "score")):
        prompt = prompts.get(row["global_index"])
        if prompt is None:
            raise DataError(sfile, f"no prompt {row['global_index']!r} in {pfile.name}", n, "global_index")
        if (row.get("success") or "True").strip() != "True":
            continue  # the call failed: no answer to score
        score = _meteor_safe(row, sfile, n)
        text, task, group = prompt
        yield Row(
            f"routerarena:{row['global_index']}",
            row["model"],
            score,
            folder.name,
            text,
            task,
            group,
            _count(row, "inference_cost_usd", sfile, n),
            _count(row, "output_tokens", sfile, n),
        )


def _meteor_safe(row: dict[str, str], file: Path, line: int) -> float:
    """RouterArena's score; upstream's METEOR scores a few answers just below 0 (one at -0.033):
    within 0.05 of [0, 1] it is clipped, further out it is an error."""
    raw = (row.get("score") or "").strip()
    try:
        v = float(raw)
    except ValueError:
        raise DataError(file, f"required, a number in [0, 1], got {raw!r}", line, "score") from None
    if not -0.05 <= v <= 1.05:
        raise DataError(file, f"must be a number in [0, 1], got {raw!r}", line, "score")
    return min(max(v, 0.0), 1.0)


def evalperf_model(config: str) -> str:
    """An EvalPerf configuration as a model name: `mistralai--Codestral-22B-v0.1_vllm_temp_1.0`
    -> `Codestral-22B-v0.1` (the maker and the run settings dropped, a prompt variant kept:
    `o1-mini-2024-09-12_openai_temp_1.0-perf-instruct` -> `o1-mini-2024-09-12-perf-instruct`)."""
    return re.sub(r"_[a-z]+_temp_[0-9.]+", "", config.split("--")[-1])


def evalperf_rows(folder: Path) -> Iterator[Row]:
    """EvalPerf's 118 code tasks: pass@1 (of 100 samples) / 100 as the score."""
    pfile = folder / "task_prompts.csv"
    prompts = {row["task_id"]: row["prompt"] for _, row in _csv_rows(pfile, ("task_id", "prompt"))}
    sfile = folder / "per_task_scores.csv.gz"
    for n, row in _csv_rows(sfile, ("task_id", "model", "pass@1")):
        task_id = row["task_id"]
        text = prompts.get(task_id)
        if text is None:
            raise DataError(sfile, f"no prompt for task {task_id!r} in {pfile.name}", n, "task_id")
        score = _cell(row, "pass@1", sfile, n, 100.0)
        if math.isnan(score):
            continue
        out = _chars_to_tokens(_count(row, "mean_solution_chars", sfile, n))
        group = "evalperf:" + task_id.split("/")[0].lower()
        model = evalperf_model(row["model"])
        yield Row(f"evalperf:{task_id}", model, score / 100, folder.name, text, "code", group, math.nan, out)


# -- model-level evidence ---------------------------------------------------------------------
@dataclass(frozen=True)
class HhemEvidence:
    """One model's summaries in the Vectara HHEM v1 leaderboard (no prompt texts: model level only).

    - `articles`: summaries asked for; `answer_rate`: the share it answered.
    - `mean_hhem`: mean HHEM-2.3 factual-consistency score of the answered ones, in [0, 1].
    - `hallucination_rate`: the share of answered summaries scoring below 0.5.
    """

    articles: int
    answer_rate: float
    mean_hhem: float
    hallucination_rate: float


def hhem_evidence(folder: Path, catalogue: Any = None) -> dict[str, HhemEvidence]:
    """Per model, its HHEM aggregates from `vectara_hhem_v1/hhem_scores_long.csv.gz`, keyed by the
    file's name (`anthropic/claude-3-5-haiku`), or with a catalogue by the catalogue id its name or
    its last part is an alias of (models the catalogue does not know are left out; where two names
    mean one id, the one with more articles is kept). SOURCES.md warns that OpenELM-3B and
    Llama-3.2-1B do not match upstream's own figures."""
    file = folder / "vectara_hhem_v1" / "hhem_scores_long.csv.gz"
    sums: dict[str, list[float]] = {}  # model -> [rows, answered, hhem sum, below 0.5]
    for n, row in _csv_rows(file, ("model", "hhem_score", "is_valid")):
        s = sums.setdefault(row["model"], [0, 0, 0.0, 0])
        s[0] += 1
        if row["is_valid"].strip() == "True":
            h = _cell(row, "hhem_score", file, n)
            if not math.isnan(h):
                s[1], s[2], s[3] = s[1] + 1, s[2] + h, s[3] + (h < 0.5)
    stats = {
        m: HhemEvidence(
            int(s[0]), s[1] / s[0], s[2] / s[1] if s[1] else math.nan, s[3] / s[1] if s[1] else math.nan
        )
        for m, s in sums.items()
    }
    if catalogue is None:
        return stats
    out: dict[str, HhemEvidence] = {}
    for name, ev in stats.items():
        mid = catalogue.by_alias(name) or catalogue.by_alias(name.split("/")[-1])
        if mid is not None and (mid not in out or out[mid].articles < ev.articles):
            out[mid] = ev
    return out

"""Outcome data: (prompt, model, score[, cost, output tokens]) rows -> one prompt x model matrix.

Three input formats, and any mix of them (`load("a,b")`: several sources, merged by prompt id):

* a folder in the format of `shared/routing-data/canonical/` (`prompts.csv[.gz]`,
  `outcomes.csv[.gz]`, optional `models.csv`). Rows with `train_ok` false are dropped;
* JSON Lines (a `.jsonl` file, or a folder of them), one outcome per line:

      {"prompt": "Write a haiku", "model": "gpt-4o-mini", "score": 0.8,
       "cost_usd": 0.00012, "output_tokens": 41, "task": "writing", "group": "poetry"}

  `prompt`, `model` and `score` (in [0, 1]) are required; `cost_usd` (>= 0), `output_tokens`
  (integer >= 0), `task` (one of the router's capabilities), `group` (any label: a finer task) and
  `prompt_id` are optional. Rows with the same `prompt_id` (or, without one, the same text) are one
  prompt; a repeated (prompt, model) pair is averaged;
* a folder in the layout of `shared/routing-data/extra-2025/` (training/extra2025.py). Its rows
  that score a canonical prompt by id join that prompt when a canonical folder is loaded too.

Each outcome cell remembers where it came from (`origins`: `canonical/mmlu-pro`,
`extra-2025/routerarena`, a JSON Lines file name) for the training report.

Rows from a base set (`pureai train --base`, training/base.py) have no text: they carry their
embedding and input tokens instead, and every row may carry a weight.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError

CAPABILITIES = ("code", "math", "reasoning", "knowledge", "writing", "chat", "extraction")


@dataclass
class OutcomeData:
    prompt_ids: list[str]
    texts: list[str]
    tasks: list[str]  # "" where unknown
    groups: list[str]
    models: list[str]
    scores: np.ndarray  # (n, M), NaN = no outcome
    costs: np.ndarray  # (n, M), NaN = unknown
    out_tokens: np.ndarray  # (n, M), NaN = unknown
    source: str = ""
    data_hash: str = ""
    notes: list[str] = field(default_factory=list)
    # per-row arrays set when a base set is merged in (None otherwise):
    embeddings: np.ndarray | None = None  # (n, dim); NaN rows are embedded from their text
    input_tokens: np.ndarray | None = None  # (n,); None: estimated from the text
    weights: np.ndarray | None = None  # (n,); None: every row weighs 1
    from_base: np.ndarray | None = None  # (n,) bool: the row came from the base set
    origins: np.ndarray | None = None  # (n, M) int: index into origin_names, -1 = no outcome
    origin_names: list[str] = field(default_factory=list)

    def subset(self, rows: np.ndarray) -> OutcomeData:
        pick = [int(i) for i in rows]

        def rows_of(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[pick]

        return OutcomeData(
            [self.prompt_ids[i] for i in pick],
            [self.texts[i] for i in pick],
            [self.tasks[i] for i in pick],
            [self.groups[i] for i in pick],
            list(self.models),
            self.scores[pick],
            self.costs[pick],
            self.out_tokens[pick],
            self.source,
            self.data_hash,
            list(self.notes),
            rows_of(self.embeddings),
            rows_of(self.input_tokens),
            rows_of(self.weights),
            rows_of(self.from_base),
            rows_of(self.origins),
            list(self.origin_names),
        )


class _Builder:
    """Collects rows, then builds the matrices."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.texts: list[str] = []
        self.tasks: list[str] = []
        self.groups: list[str] = []
        self.cells: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
        self.origin: dict[tuple[int, str], int] = {}  # the first origin of each cell
        self.origin_names: dict[str, int] = {}

    def prompt(self, pid: str, text: str, task: str, group: str) -> int:
        i = self.index.get(pid)
        if i is None:
            i = self.index[pid] = len(self.texts)
            self.texts.append(text)
            self.tasks.append(task)
            self.groups.append(group)
        return i

    def outcome(self, i: int, model: str, score: float, cost: float, out: float, origin: str = "") -> None:
        self.cells.setdefault((i, model), []).append((score, cost, out))
        self.origin.setdefault((i, model), self.origin_names.setdefault(origin, len(self.origin_names)))

    def build(self, models: list[str] | None, source: str, data_hash: str) -> OutcomeData:
        seen = sorted({m for _, m in self.cells})
        cols = models if models is not None else seen
        col = {m: j for j, m in enumerate(cols)}
        n = len(self.texts)
        mats = [np.full((n, len(cols)), np.nan) for _ in range(3)]
        origins = np.full((n, len(cols)), -1, dtype=np.int32)
        for (i, m), vals in self.cells.items():
            j = col.get(m)
            if j is None:
                continue
            origins[i, j] = self.origin[i, m]
            arr = np.array(vals, dtype=np.float64)
            for k in range(3):
                v = arr[:, k][~np.isnan(arr[:, k])]
                if len(v):
                    mats[k][i, j] = v.mean()
        keep = ~np.isnan(mats[0]).all(axis=1)
        rows = np.flatnonzero(keep)
        ids = list(self.index)
        return OutcomeData(
            [ids[i] for i in rows],
            [self.texts[i] for i in rows],
            [self.tasks[i] for i in rows],
            [self.groups[i] for i in rows],
            list(cols),
            mats[0][rows],
            mats[1][rows],
            mats[2][rows],
            source,
            data_hash,
            origins=origins[rows],
            origin_names=list(self.origin_names),
        )


def file_hash(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths):
        digest.update(p.name.encode())
        digest.update(p.read_bytes())
    return digest.hexdigest()


def select_models(data: OutcomeData, models: list[str]) -> OutcomeData:
    """Keep these models' columns (in this order) and the prompts that have an outcome for one."""
    missing = [m for m in models if m not in data.models]
    if missing:
        raise DataError(
            data.source,
            f"--models names {', '.join(missing)}, which have no outcome rows here "
            f"(known: {', '.join(data.models[:20])}{' …' if len(data.models) > 20 else ''})",
            field="model",
        )
    cols = [data.models.index(m) for m in models]
    data.models = list(models)
    data.scores, data.costs, data.out_tokens = (
        data.scores[:, cols],
        data.costs[:, cols],
        data.out_tokens[:, cols],
    )
    if data.origins is not None:
        data.origins = data.origins[:, cols]
    return data.subset(np.flatnonzero(~np.isnan(data.scores).all(axis=1)))


def is_canonical(path: Path) -> bool:
    """Whether `path` is a folder in the canonical benchmark format (else JSON Lines)."""
    return path.is_dir() and _find(path, "prompts") is not None


def is_benchmark(path: Path) -> bool:
    """Whether `path` is a benchmark folder: canonical or extra-2025 (not a user's JSON Lines)."""
    from . import extra2025

    return is_canonical(path) or extra2025.is_extra2025(path)


def sources(spec: Path | str) -> list[Path]:
    """The sources `--data` names: one path, or several separated by commas (a path that exists
    as written is one source, commas and all)."""
    if Path(spec).exists() or "," not in str(spec):
        return [Path(spec)]
    return [Path(p.strip()) for p in str(spec).split(",") if p.strip()]


def load(path: Path | str, models: list[str] | None = None) -> OutcomeData:
    """Load one source or several (comma-separated), merged by prompt id: the same prompt in two
    sources is one row with the models of both. Extra-2025 folders come last, so that their rows
    scoring canonical prompts find them."""
    from . import extra2025

    paths = sources(path)
    for p in paths:
        if not p.exists():
            raise DataError(p, "no such file or folder")
    b = _Builder()
    files: list[Path] = []
    notes: list[str] = []
    labels: list[str] = []
    for p in sorted(paths, key=extra2025.is_extra2025):
        if is_canonical(p):
            files += _fill_canonical(p, b, notes)
            labels.append(str(p))
        elif extra2025.is_extra2025(p):
            files += _fill_extra(p, b, notes)
            labels.append(str(p))
        else:
            found = sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
            if not found:
                raise DataError(
                    p, "neither a canonical folder (prompts.csv[.gz]) nor a folder of .jsonl files"
                )
            _fill_jsonl(found, b)
            files += found
            labels += [str(f) for f in found]
    data = b.build(None, ", ".join(labels), file_hash(files))
    data.notes += notes
    if models is not None:
        data = select_models(data, models)
    if not data.texts:
        raise DataError(path, "no usable outcome rows")
    return data


def _fill_extra(folder: Path, b: _Builder, notes: list[str]) -> list[Path]:
    """Add an extra-2025 folder's rows; rows scoring a prompt id not loaded (yet) are dropped."""
    from . import extra2025

    joined = dropped = 0
    for row in extra2025.rows(folder):
        if row.text is None:
            i = b.index.get(row.prompt_id)
            if i is None:
                dropped += 1
                continue
            joined += 1
        else:
            i = b.prompt(row.prompt_id, row.text, row.task, row.group or row.task or "all")
        b.outcome(i, row.model, row.score, row.cost_usd, row.output_tokens, f"{folder.name}/{row.source}")
    used = extra2025.usable_sources(folder)
    notes.append(
        f"{folder}: sources {', '.join(used) or 'none'}; {joined} rows joined prompts of the other "
        f"sources, {dropped} dropped (their prompt is not loaded: pass the canonical folder too)"
    )
    return [
        folder / "SOURCES.md",
        *(f for sub in used for f in sorted((folder / sub).iterdir()) if f.is_file()),
    ]


# -- JSON Lines -------------------------------------------------------------------------------
def _number(
    row: dict[str, Any], key: str, file: Path, line: int, lo: float, hi: float | None, integer: bool = False
) -> float:
    v = row.get(key)
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, int | float) or (integer and float(v) != int(v)):
        raise DataError(file, f"must be {'an integer' if integer else 'a number'}, got {v!r}", line, key)
    if not math.isfinite(v) or v < lo or (hi is not None and v > hi):
        bound = f"in [{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
        raise DataError(file, f"must be {bound}, got {v!r}", line, key)
    return float(v)


def _jsonl_rows(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(file, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(file, f"not valid JSON ({exc.msg}, column {exc.colno})", n) from None
        if not isinstance(row, dict):
            raise DataError(file, "each line must be a JSON object", n)
        yield n, row


def load_jsonl(files: list[Path]) -> OutcomeData:
    b = _Builder()
    _fill_jsonl(files, b)
    return b.build(None, ", ".join(str(f) for f in files), file_hash(files))


def _fill_jsonl(files: list[Path], b: _Builder) -> None:
    for file in files:
        count = 0
        for n, row in _jsonl_rows(file):
            count += 1
            for key in ("prompt", "model"):
                if not isinstance(row.get(key), str) or not row[key].strip():
                    raise DataError(file, "required, a non-empty string", n, key)
            if row.get("score") is None:
                raise DataError(file, "required, a number in [0, 1]", n, "score")
            score = _number(row, "score", file, n, 0.0, 1.0)
            cost = _number(row, "cost_usd", file, n, 0.0, None)
            out = _number(row, "output_tokens", file, n, 0.0, None, integer=True)
            task = row.get("task") or ""
            if task and task not in CAPABILITIES:
                raise DataError(file, f"must be one of {', '.join(CAPABILITIES)}, got {task!r}", n, "task")
            group = row.get("group") or task or "all"
            if not isinstance(group, str):
                raise DataError(file, "must be a string", n, "group")
            pid = row.get("prompt_id")
            if pid is not None and not isinstance(pid, str):
                raise DataError(file, "must be a string", n, "prompt_id")
            i = b.prompt(
                pid or "text:" + hashlib.sha1(row["prompt"].encode()).hexdigest(), row["prompt"], task, group
            )
            b.outcome(i, row["model"], score, cost, out, file.name)
        if count == 0:
            raise DataError(file, "empty: no outcome rows")


# -- canonical CSV folder ---------------------------------------------------------------------
def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.csv.gz", f"{stem}.csv"):
        if (folder / name).is_file():
            return folder / name
    return None


def _csv_rows(file: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    import csv

    opener = gzip.open if file.suffix == ".gz" else open
    try:
        with opener(file, "rt", encoding="utf-8-sig", newline="") as f:  # type: ignore[operator]
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            for col in required:
                if col not in header:
                    raise DataError(
                        file, f"missing column (header has {', '.join(header) or 'nothing'})", 1, col
                    )
            n = 1
            for row in reader:
                n = reader.line_num
                yield n, row
            if n == 1:
                raise DataError(file, "empty: no rows after the header")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(file, f"cannot be read ({exc})") from None


def load_canonical(folder: Path) -> OutcomeData:
    b = _Builder()
    notes: list[str] = []
    files = _fill_canonical(folder, b, notes)
    data = b.build(None, str(folder), file_hash(files))
    data.notes += notes
    return data


def _fill_canonical(folder: Path, b: _Builder, notes: list[str]) -> list[Path]:
    """Add a canonical folder's train_ok rows; the files read."""
    pfile, ofile = _find(folder, "prompts"), _find(folder, "outcomes")
    if pfile is None or ofile is None:
        raise DataError(folder, "a canonical folder needs prompts.csv[.gz] and outcomes.csv[.gz]")
    allowed: dict[str, tuple[int, str]] = {}
    dropped = 0
    for n, row in _csv_rows(pfile, ("prompt_id", "prompt")):
        if row.get("train_ok", "True").strip().lower() not in ("true", "1", "yes"):
            dropped += 1
            continue
        task = (row.get("task") or "").strip()
        if task and task not in CAPABILITIES:
            raise DataError(pfile, f"must be one of {', '.join(CAPABILITIES)}, got {task!r}", n, "task")
        dataset, sub = (row.get("dataset") or "").strip(), (row.get("subtask") or "").strip()
        group = ":".join(x for x in (dataset, sub or task) if x) or "all"
        origin = f"{folder.name}/{dataset or 'all'}"
        allowed[row["prompt_id"]] = (b.prompt(row["prompt_id"], row["prompt"], task, group), origin)
    known_models = None
    mfile = _find(folder, "models")
    if mfile is not None:
        known_models = {r["model"] for _, r in _csv_rows(mfile, ("model",))}
    for n, row in _csv_rows(ofile, ("prompt_id", "model", "score")):
        found = allowed.get(row["prompt_id"])
        if found is None:
            continue
        i, origin = found
        model = row["model"]
        if known_models is not None and model not in known_models:
            raise DataError(ofile, f"unknown model {model!r}: not in {mfile}", n, "model")
        vals = {k: _csv_number(row, k, ofile, n) for k in ("score", "cost_usd", "output_tokens")}
        if math.isnan(vals["score"]) or not 0 <= vals["score"] <= 1:
            raise DataError(ofile, f"must be a number in [0, 1], got {row['score']!r}", n, "score")
        b.outcome(i, model, vals["score"], vals["cost_usd"], vals["output_tokens"], origin)
    notes.append(f"dropped {dropped} prompts with train_ok = false")
    return [p for p in (pfile, ofile, mfile) if p is not None]


def _csv_number(row: dict[str, str], key: str, file: Path, line: int) -> float:
    raw = (row.get(key) or "").strip()
    if not raw:
        return math.nan
    try:
        v = float(raw)
    except ValueError:
        raise DataError(file, f"not a number: {raw!r}", line, key) from None
    if not math.isfinite(v) or v < 0:
        raise DataError(file, f"must be a finite number >= 0, got {raw!r}", line, key)
    return v

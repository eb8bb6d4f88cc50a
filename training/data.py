"""Outcome data: (prompt, model, score[, cost, output tokens]) rows -> one prompt x model matrix.

Two input formats:

* a folder in the format of `shared/routing-data/canonical/` (`prompts.csv[.gz]`,
  `outcomes.csv[.gz]`, optional `models.csv`). Rows with `train_ok` false are dropped;
* JSON Lines (a `.jsonl` file, or a folder of them), one outcome per line:

      {"prompt": "Write a haiku", "model": "gpt-4o-mini", "score": 0.8,
       "cost_usd": 0.00012, "output_tokens": 41, "task": "writing", "group": "poetry"}

  `prompt`, `model` and `score` (in [0, 1]) are required; `cost_usd` (>= 0), `output_tokens`
  (integer >= 0), `task` (one of the router's capabilities), `group` (any label: a finer task) and
  `prompt_id` are optional. Rows with the same `prompt_id` (or, without one, the same text) are one
  prompt; a repeated (prompt, model) pair is averaged.

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
        )


class _Builder:
    """Collects rows, then builds the matrices."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.texts: list[str] = []
        self.tasks: list[str] = []
        self.groups: list[str] = []
        self.cells: dict[tuple[int, str], list[tuple[float, float, float]]] = {}

    def prompt(self, pid: str, text: str, task: str, group: str) -> int:
        i = self.index.get(pid)
        if i is None:
            i = self.index[pid] = len(self.texts)
            self.texts.append(text)
            self.tasks.append(task)
            self.groups.append(group)
        return i

    def outcome(self, i: int, model: str, score: float, cost: float, out: float) -> None:
        self.cells.setdefault((i, model), []).append((score, cost, out))

    def build(self, models: list[str] | None, source: str, data_hash: str) -> OutcomeData:
        seen = sorted({m for _, m in self.cells})
        cols = models if models is not None else seen
        col = {m: j for j, m in enumerate(cols)}
        n = len(self.texts)
        mats = [np.full((n, len(cols)), np.nan) for _ in range(3)]
        for (i, m), vals in self.cells.items():
            j = col.get(m)
            if j is None:
                continue
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
    return data.subset(np.flatnonzero(~np.isnan(data.scores).all(axis=1)))


def is_canonical(path: Path) -> bool:
    """Whether `path` is a folder in the canonical benchmark format (else JSON Lines)."""
    return path.is_dir() and _find(path, "prompts") is not None


def load(path: Path | str, models: list[str] | None = None) -> OutcomeData:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or folder")
    if is_canonical(path):
        data = load_canonical(path)
    elif path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise DataError(
                path, "neither a canonical folder (prompts.csv[.gz]) nor a folder of .jsonl files"
            )
        data = load_jsonl(files)
    else:
        data = load_jsonl([path])
    if models is not None:
        data = select_models(data, models)
    if not data.texts:
        raise DataError(path, "no usable outcome rows")
    return data


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
            b.outcome(i, row["model"], score, cost, out)
        if count == 0:
            raise DataError(file, "empty: no outcome rows")
    return b.build(None, ", ".join(str(f) for f in files), file_hash(files))


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
    pfile, ofile = _find(folder, "prompts"), _find(folder, "outcomes")
    if pfile is None or ofile is None:
        raise DataError(folder, "a canonical folder needs prompts.csv[.gz] and outcomes.csv[.gz]")
    b = _Builder()
    allowed: dict[str, int] = {}
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
        allowed[row["prompt_id"]] = b.prompt(row["prompt_id"], row["prompt"], task, group)
    known_models = None
    mfile = _find(folder, "models")
    if mfile is not None:
        known_models = {r["model"] for _, r in _csv_rows(mfile, ("model",))}
    for n, row in _csv_rows(ofile, ("prompt_id", "model", "score")):
        i = allowed.get(row["prompt_id"])
        if i is None:
            continue
        model = row["model"]
        if known_models is not None and model not in known_models:
            raise DataError(ofile, f"unknown model {model!r}: not in {mfile}", n, "model")
        vals = {k: _csv_number(row, k, ofile, n) for k in ("score", "cost_usd", "output_tokens")}
        if math.isnan(vals["score"]) or not 0 <= vals["score"] <= 1:
            raise DataError(ofile, f"must be a number in [0, 1], got {row['score']!r}", n, "score")
        b.outcome(i, model, vals["score"], vals["cost_usd"], vals["output_tokens"])
    files = [p for p in (pfile, ofile, mfile) if p is not None]
    data = b.build(None, str(folder), file_hash(files))
    data.notes.append(f"dropped {dropped} prompts with train_ok = false")
    return data


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

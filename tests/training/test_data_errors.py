"""Bad input to `pureai train`: one line on stderr naming file, line and field; exit code 2; and
--out neither created nor touched. The CLI runs as a subprocess for the cases users meet first;
the rest of the validation is checked on `training.data.load` (the same code, no process start)."""

from __future__ import annotations

import csv
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from training import data
from training.errors import DataError

Train = Callable[..., subprocess.CompletedProcess[str]]
Snapshot = Callable[[Path], dict[str, str]]
AssertCliError = Callable[..., None]
Edit = Callable[[list[list[str]]], None]


@pytest.fixture
def canonical(fixture_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the fixture folder, free to damage."""
    return Path(shutil.copytree(fixture_dir, tmp_path / "data"))


def _edit_outcomes(folder: Path, edit: Edit) -> Path:
    """Rewrite outcomes.csv after edit(rows) (rows[0] is the header, rows[k] is line k + 1)."""
    path = folder / "outcomes.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    edit(rows)
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


def _set(line: int, column: str, value: str) -> Edit:
    def edit(rows: list[list[str]]) -> None:
        rows[line - 1][rows[0].index(column)] = value

    return edit


def _drop_score(rows: list[list[str]]) -> None:
    col = rows[0].index("score")
    for row in rows:
        del row[col]


def _header_only(rows: list[list[str]]) -> None:
    del rows[1:]


@pytest.mark.parametrize(
    ("edit", "line", "field", "why"),
    [
        (_drop_score, 1, "score", "missing column (header has prompt_id, model, output_tokens"),
        (_set(6, "score", "1.5"), 6, "score", "must be a number in [0, 1], got '1.5'"),
        (_set(8, "score", "abc"), 8, "score", "not a number: 'abc'"),
        (_header_only, None, None, "empty: no rows after the header"),
    ],
    ids=["no-score-column", "score-1.5", "score-abc", "header-only"],
)
def test_bad_outcomes_csv_stops_the_cli(
    canonical: Path,
    tmp_path: Path,
    train: Train,
    assert_cli_error: AssertCliError,
    edit: Edit,
    line: int | None,
    field: str | None,
    why: str,
) -> None:
    outcomes = _edit_outcomes(canonical, edit)
    out = tmp_path / "out"
    result = train(canonical, out)
    assert_cli_error(result, file=str(outcomes), line=line, field=field, why=why)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary folder either


@pytest.mark.parametrize(
    ("edit", "line", "field", "why"),
    [
        (_set(12, "score", "-0.2"), 12, "score", "got '-0.2'"),
        (_set(17, "score", ""), 17, "score", "must be a number in [0, 1], got ''"),
        (_set(20, "score", "nan"), 20, "score", "got 'nan'"),
        (_set(10, "cost_usd", "-0.001"), 10, "cost_usd", "must be a finite number >= 0, got '-0.001'"),
        (_set(11, "output_tokens", "many"), 11, "output_tokens", "not a number: 'many'"),
        (_set(4, "model", "gpt-5-secret"), 4, "model", "unknown model 'gpt-5-secret': not in"),
    ],
    ids=[
        "score-negative",
        "score-empty",
        "score-nan",
        "cost-negative",
        "tokens-text",
        "model-not-in-models-csv",
    ],
)
def test_bad_outcomes_csv_rows(canonical: Path, edit: Edit, line: int, field: str, why: str) -> None:
    outcomes = _edit_outcomes(canonical, edit)
    with pytest.raises(DataError) as info:
        data.load(canonical)
    assert (info.value.file, info.value.line, info.value.field) == (str(outcomes), line, field)
    assert why in str(info.value)


def test_a_bad_task_in_prompts_csv_names_its_line(
    canonical: Path, fixture_prompts: list[dict[str, str]]
) -> None:
    """Prompts span several lines; the error names the line that holds the bad cell."""
    path = canonical / "prompts.csv"
    rows = [dict(r) for r in fixture_prompts]
    k = next(i for i, r in enumerate(rows) if r["train_ok"] == "True" and r["task"] == "math")
    rows[k]["task"] = "poetry"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (line,) = [
        n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if ",poetry," in text
    ]
    with pytest.raises(DataError) as info:
        data.load(canonical)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), line, "task")
    assert "got 'poetry'" in str(info.value)


def test_a_folder_without_data(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither a canonical folder") as info:
        data.load(tmp_path / "empty")
    assert info.value.file == str(tmp_path / "empty")


def test_a_utf8_bom_is_not_part_of_the_first_column(canonical: Path) -> None:
    """Spreadsheets save "CSV UTF-8" with a byte-order mark; it must not rename the first column."""
    for name in ("prompts.csv", "outcomes.csv"):
        path = canonical / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(data.load(canonical).texts) == 230


def test_data_that_does_not_exist(tmp_path: Path, train: Train, assert_cli_error: AssertCliError) -> None:
    result = train(tmp_path / "no-such-data", tmp_path / "out")
    assert_cli_error(result, file=str(tmp_path / "no-such-data"), why="no such file or folder")
    assert not (tmp_path / "out").exists()


def test_models_not_in_the_data(
    fixture_dir: Path, tmp_path: Path, train: Train, assert_cli_error: AssertCliError
) -> None:
    result = train(fixture_dir, tmp_path / "out", "--models", "gpt-4o-2024-08-06,gpt-5")
    assert_cli_error(
        result, file=str(fixture_dir), field="model", why="--models names gpt-5, which have no outcome"
    )
    assert not (tmp_path / "out").exists()


def test_cost_from_registry_needs_catalogue_models(
    fixture_dir: Path, tmp_path: Path, train: Train, assert_cli_error: AssertCliError
) -> None:
    """Meta-Llama-3-8B-Instruct is in the fixture but not in the catalogue."""
    result = train(fixture_dir, tmp_path / "out", "--cost-from", "registry")
    assert_cli_error(
        result, field="model", why="unknown model 'Meta-Llama-3-8B-Instruct': --cost-from registry"
    )
    assert not (tmp_path / "out").exists()


def test_a_non_empty_out_needs_force(
    fixture_dir: Path, tmp_path: Path, train: Train, snapshot: Snapshot, assert_cli_error: AssertCliError
) -> None:
    out = tmp_path / "out"
    (out / "report").mkdir(parents=True)
    (out / "quality.json").write_text('{"mine": true}', encoding="utf-8")
    (out / "report" / "notes.md").write_text("keep me", encoding="utf-8")
    before = snapshot(out)
    result = train(fixture_dir, out)
    assert_cli_error(result, file=str(out), why="exists and is not empty (use --force to replace it)")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_bad_data_with_force_leaves_an_existing_out_untouched(
    canonical: Path, tmp_path: Path, train: Train, snapshot: Snapshot, assert_cli_error: AssertCliError
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "quality.json").write_text('{"mine": true}', encoding="utf-8")
    before = snapshot(out)
    outcomes = _edit_outcomes(canonical, _set(6, "score", "1.5"))
    result = train(canonical, out, "--force")
    assert_cli_error(result, file=str(outcomes), line=6, field="score")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]

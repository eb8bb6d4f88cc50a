"""Fixtures shared by tests/router and tests/training.

The canonical fixture data set (tests/fixtures/canonical), one router trained on it per session by
the real `pureai train` (a subprocess into a temporary folder), and a runner for the real CLI.
Shared through fixtures, not imports, so that these tests run under pytest's importlib mode.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "canonical"

Pureai = Callable[..., subprocess.CompletedProcess[str]]
Train = Callable[..., subprocess.CompletedProcess[str]]
Snapshot = Callable[[Path], dict[str, str]]
AssertCliError = Callable[..., None]


@dataclass(frozen=True)
class Trained:
    """A router trained on the fixture by `pureai train`: its folder and the summary it printed."""

    out: Path
    summary: dict[str, Any]


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    """The canonical fixture folder (240 ZeroEval prompts, 4 models, 10 prompts with train_ok=False)."""
    return FIXTURE


@pytest.fixture(scope="session")
def fixture_prompts() -> list[dict[str, str]]:
    """Rows of the fixture's prompts.csv, in file order (train_ok rows and the others)."""
    with (FIXTURE / "prompts.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def fixture_outcomes() -> list[dict[str, str]]:
    with (FIXTURE / "outcomes.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def fixture_models() -> list[str]:
    """The four model names of the fixture, as written in its outcome data."""
    with (FIXTURE / "models.csv").open(encoding="utf-8", newline="") as f:
        return [row["model"] for row in csv.DictReader(f)]


@pytest.fixture(scope="session")
def trainable_texts(fixture_prompts: list[dict[str, str]]) -> list[str]:
    """Prompt texts of the fixture that training keeps (train_ok=True), in file order."""
    return [row["prompt"] for row in fixture_prompts if row["train_ok"] == "True"]


@pytest.fixture(scope="session")
def pureai(tmp_path_factory: pytest.TempPathFactory) -> Pureai:
    """pureai(*args, cwd=REPO) runs `python -m router.cli *args` and returns the finished process.
    The default embedding cache points into a temporary folder, never at ~/.cache."""
    env = {**os.environ, "PUREAI_CACHE": str(tmp_path_factory.mktemp("home-cache")), "HF_HUB_OFFLINE": "1"}

    def run(*args: object, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "router.cli", *(str(a) for a in args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=900,
        )

    return run


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for every training of the session: the fixture is embedded once."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def train(pureai: Pureai, embedding_cache: Path) -> Train:
    """train(data, out, *more_args) runs `pureai train --quiet` with the session's embedding cache."""

    def run(data: Path, out: Path, *more: object) -> subprocess.CompletedProcess[str]:
        return pureai("train", "--data", data, "--out", out, "--cache", embedding_cache, "--quiet", *more)

    return run


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, train: Train) -> Trained:
    """The fixture data trained once per session (seed 0) by the real CLI."""
    out = tmp_path_factory.mktemp("trained-parent") / "trained"
    result = train(FIXTURE, out, "--seed", "0")
    assert result.returncode == 0, result.stderr
    return Trained(out, json.loads(result.stdout))


@pytest.fixture(scope="session")
def trained_dir(trained: Trained) -> Path:
    return trained.out


@pytest.fixture(scope="session")
def fixture_router(trained_dir: Path) -> Any:
    """A Router over the session's trained artifacts and the built-in catalogue."""
    import router

    return router.Router.load(trained_dir)


def _snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under folder ({} if it does not exist)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def snapshot() -> Snapshot:
    """snapshot(folder) -> {relative path: sha256} of the files under it ({} when it is absent)."""
    return _snapshot


def _assert_cli_error(
    result: subprocess.CompletedProcess[str],
    file: str | None = None,
    line: int | None = None,
    field: str | None = None,
    why: str | None = None,
) -> None:
    stderr = result.stderr
    assert result.returncode == 2, (result.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    assert result.stdout == ""
    assert stderr.startswith("pureai: error: "), stderr
    assert stderr.count("\n") == 1, stderr  # one line, no stack
    if file is not None:
        where = f"{file}:{line}:" if line is not None else f"{file}:"
        assert where in stderr, stderr
    if field is not None:
        assert f"field {field!r}:" in stderr, stderr
    if why is not None:
        assert why in stderr, stderr


@pytest.fixture(scope="session")
def assert_cli_error() -> AssertCliError:
    """assert_cli_error(result, file=None, line=None, field=None, why=None): exit code 2, one line
    `pureai: error: <file>:<line>: field '<field>': <why>` on stderr, nothing on stdout, no traceback."""
    return _assert_cli_error

"""`pureai export-embedder`: the int8 embedder export is deterministic, so it reproduces the shipped one."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from router._artifacts import default_dir

Pureai = Callable[..., subprocess.CompletedProcess[str]]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_export_reproduces_the_shipped_embedder(pureai: Pureai, tmp_path: Path) -> None:
    out = tmp_path / "embedder"
    result = pureai("export-embedder", "--out", out)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["path"] == str(out / "embedder.onnx")
    assert summary["quantised"] is True
    assert summary["bytes"] == (out / "embedder.onnx").stat().st_size
    assert summary["min_cosine_vs_sentence_transformers"] > 0.98
    assert sorted(p.name for p in out.iterdir()) == ["embedder.onnx", "tokenizer.json"]
    assert _sha(out / "embedder.onnx") == _sha(default_dir() / "embedder.onnx")
    assert _sha(out / "tokenizer.json") == _sha(default_dir() / "tokenizer.json")

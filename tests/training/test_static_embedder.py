"""`pureai distil-embedder`: a static embedder distilled from the shipped transformer, run by the
same `Embedder` class in onnxruntime."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from router._artifacts import default_dir, sha256
from router._embed import Embedder

Pureai = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory, pureai: Pureai) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("static")
    result = pureai("distil-embedder", "--from", default_dir(), "--out", out)
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def static(distilled: tuple[Path, dict]) -> Embedder:
    out, _ = distilled
    return Embedder(out / "embedder.onnx", out / "tokenizer.json")


@pytest.mark.slow
def test_the_cli_writes_a_static_embedder_and_the_tokenizer(distilled: tuple[Path, dict]) -> None:
    out, summary = distilled
    assert summary == {"path": str(out / "embedder.onnx"), "bytes": (out / "embedder.onnx").stat().st_size,
                       "vocabulary": 30522, "dim": 384}  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["embedder.onnx", "tokenizer.json"]
    assert sha256(out / "tokenizer.json") == sha256(default_dir() / "tokenizer.json")
    meta = {p.key: p.value for p in onnx.load(str(out / "embedder.onnx")).metadata_props}
    assert meta["kind"] == "static"
    assert meta["distilled_from_sha256"] == sha256(default_dir() / "embedder.onnx")
    assert (meta["max_tokens"], meta["head_tokens"]) == ("64", "41")


@pytest.mark.slow
def test_an_embedding_is_the_normalised_sum_of_its_pieces_rows(
    distilled: tuple[Path, dict], static: Embedder
) -> None:
    out, _ = distilled
    table = numpy_helper.to_array(onnx.load(str(out / "embedder.onnx")).graph.initializer[0]).astype(np.float32)
    text = "Write Python code to sort a list " * 30  # longer than the cut: only the kept pieces count
    (ids,) = static.token_ids([text])
    assert len(ids) == static.MAX_TOKENS
    expected = table[ids].sum(axis=0)
    expected /= np.linalg.norm(expected)
    (got,) = static.embed([text])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert static.kind == "static"
    assert not table[[static.cls_id, static.sep_id]].any()  # [CLS] and [SEP] weigh nothing


@pytest.mark.slow
def test_it_keeps_the_transformers_sense_of_topic(static: Embedder) -> None:
    code, other_code, geography = static.embed(
        [
            "Write Python code to sort a list",
            "Implement a function in JavaScript that reverses an array",
            "What is the capital of Brazil?",
        ]
    )
    assert float(code @ other_code) > float(code @ geography) + 0.1


@pytest.mark.slow
def test_a_static_embedder_cannot_be_distilled_again(
    distilled: tuple[Path, dict], pureai: Pureai, tmp_path: Path
) -> None:
    out, _ = distilled
    result = pureai("distil-embedder", "--from", out, "--out", tmp_path / "again")
    assert result.returncode != 0
    assert f"{out / 'embedder.onnx'}: already a static embedder" in result.stderr
    assert not (tmp_path / "again").exists()


def test_a_missing_source_is_named(pureai: Pureai, tmp_path: Path) -> None:
    result = pureai("distil-embedder", "--from", tmp_path, "--out", tmp_path / "out")
    assert result.returncode != 0
    assert f"{tmp_path / 'embedder.onnx'}: missing" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_router_trains_and_decides_on_the_static_embedder(
    distilled: tuple[Path, dict], train: Callable[..., subprocess.CompletedProcess[str]], fixture_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    out, _ = distilled
    result = train(fixture_dir, tmp_path / "fast", "--embedder", out, "--seed", "0")
    assert result.returncode == 0, result.stderr
    assert sha256(tmp_path / "fast" / "embedder.onnx") == sha256(out / "embedder.onnx")
    from router import Router

    rt = Router.load(tmp_path / "fast")
    d = rt.select("Solve for x: 3x + 7 = 22", cost_weight=0.5)
    assert rt.embedder.kind == "static"
    assert d.selected_model in {c.model for c in d.candidates}
    assert 0.0 < d.confidence < 1.0


@pytest.mark.slow
def test_a_base_set_of_another_embedder_is_refused(
    distilled: tuple[Path, dict], train: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    out, _ = distilled
    data = tmp_path / "traffic.jsonl"
    rows = [{"prompt": f"Translate 'hello {i}' into French", "model": "gpt-4o-mini", "score": 1.0} for i in range(5)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = train(data, tmp_path / "fast", "--embedder", out)  # --base shipped: MiniLM's embeddings
    assert result.returncode != 0
    assert "--base:" in result.stderr and "embedded by another embedder" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "fast").exists()

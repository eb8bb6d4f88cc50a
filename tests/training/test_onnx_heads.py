"""heads.onnx: linear heads (softmax / sigmoid) built as an ONNX graph, checked against numpy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from router._text import SHAPE
from training.errors import ExportError
from training.onnx_heads import HEADS, Linear, build, verify

DIM = 384


def _heads(seed: int, sizes: dict[str, int]) -> dict[str, Linear]:
    rng = np.random.default_rng(seed)
    kinds = {"capabilities": "softmax", "groups": "softmax", "quality": "sigmoid", "complexity": "sigmoid"}
    return {
        name: Linear(rng.normal(0, 0.3, (DIM, k)), rng.normal(0, 0.5, k), kinds[name])
        for name, k in sizes.items()
    }


def _unit_rows(seed: int, n: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


SIZES = {"capabilities": 7, "groups": 5, "quality": 4, "complexity": 1}


@pytest.fixture
def built(tmp_path: Path) -> tuple[dict[str, Linear], Path]:
    heads = _heads(0, SIZES)
    path = tmp_path / "heads.onnx"
    build(heads, DIM, path)
    return heads, path


def test_graph_outputs_match_numpy(built: tuple[dict[str, Linear], Path]) -> None:
    heads, path = built
    emb = _unit_rows(1, 50)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["embedding"]
    names = [o.name for o in session.get_outputs()]
    assert names == list(HEADS)
    got = dict(zip(names, session.run(None, {"embedding": emb}), strict=True))
    for name in HEADS:
        assert got[name].shape == (50, SIZES[name])
        np.testing.assert_allclose(got[name], heads[name](emb), atol=1e-5)
    np.testing.assert_allclose(got["capabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert np.all((got["quality"] > 0) & (got["quality"] < 1))


def test_verify_reports_the_largest_difference(built: tuple[dict[str, Linear], Path]) -> None:
    heads, path = built
    assert 0 <= verify(heads, path, _unit_rows(2, 64)) < 1e-4


def test_verify_refuses_a_graph_of_other_heads(built: tuple[dict[str, Linear], Path]) -> None:
    _, path = built
    with pytest.raises(ExportError, match=r"head 'capabilities' differs from the fitted model"):
        verify(_heads(1, SIZES), path, _unit_rows(2, 16))


def test_the_trained_heads_fit_the_quality_table(trained_dir: Path) -> None:
    table = json.loads((trained_dir / "quality.json").read_text(encoding="utf-8"))
    session = ort.InferenceSession(str(trained_dir / "heads.onnx"), providers=["CPUExecutionProvider"])
    out = dict(
        zip(
            [o.name for o in session.get_outputs()],
            session.run(
                None,
                {
                    "embedding": np.hstack([_unit_rows(3, 8), np.full((8, len(table["shape"])), 0.2)]).astype(
                        np.float32
                    )
                },
            ),
            strict=True,
        )
    )
    assert table["shape"] == list(SHAPE)  # the heads read the prompts' shape features after the embedding
    assert session.get_inputs()[0].shape[1] == DIM + len(SHAPE)
    assert out["capabilities"].shape == (8, len(table["capabilities"]))
    assert out["groups"].shape == (8, len(table["groups"]))
    assert out["quality"].shape == (8, len(table["models"]))
    assert out["complexity"].shape == (8, 1)

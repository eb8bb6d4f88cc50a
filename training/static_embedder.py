"""Distil a static embedder from a transformer one: one vector per word piece.

model2vec's recipe, computed with our own ONNX embedder (no torch, no network):
- each word piece of the vocabulary goes through the transformer alone (`[CLS] piece [SEP]`);
- the vectors are centred and rotated onto their principal axes (all dimensions kept);
- each is scaled by a smooth-inverse-frequency weight `a / (a + p)`, with `p` from Zipf's law over
  the vocabulary's order (WordPiece vocabularies list frequent pieces first), so that common pieces
  weigh less; [CLS], [SEP] and [PAD] weigh nothing.

A prompt's embedding is then the normalised sum of its pieces' vectors: one `Gather` and one
`ReduceSum` in onnxruntime, ~0.1 ms where the transformer takes 5-15 ms. Its inputs and output are
the transformer's (`input_ids`, `attention_mask` -> `embedding`), so `router._embed.Embedder` runs
either file; the metadata `kind=static` tells them apart. The table is stored as float16.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from router._embed import Embedder

if TYPE_CHECKING:
    import onnx

SIF_A = 1e-4  # model2vec's default smooth-inverse-frequency coefficient


@dataclass(frozen=True)
class DistilResult:
    path: Path
    bytes: int
    vocabulary: int
    dim: int


def piece_vectors(embedder: Embedder, progress: Any = None) -> np.ndarray:
    """(vocabulary, dim) float32: the transformer's embedding of each word piece on its own.

    One piece per run, as `Embedder.embed` runs one text: the int8 graph quantises activations
    with one scale per tensor, so a batch would make each row depend on its neighbours."""
    size = embedder.tokenizer.get_vocab_size()
    out = np.empty((size, embedder.dim), dtype=np.float32)
    row = np.array([[embedder.cls_id, 0, embedder.sep_id]], dtype=np.int64)
    feed = {"input_ids": row, "attention_mask": np.ones_like(row)}
    pieces = range(size) if progress is None else progress(range(size), desc="word pieces", unit="piece")
    for i in pieces:
        row[0, 1] = i
        (out[i : i + 1],) = embedder.session.run(None, feed)
    return out


def table(vectors: np.ndarray, zero_ids: list[int], a: float = SIF_A) -> np.ndarray:
    """Centred, rotated onto principal axes, weighted by smooth inverse (Zipf) frequency."""
    x = vectors.astype(np.float64)
    x -= x.mean(axis=0)
    _, _, axes = np.linalg.svd(x, full_matrices=False)
    x = x @ axes.T
    x *= np.sign(
        x[np.abs(x).argmax(axis=0), np.arange(x.shape[1])]
    )  # a sign per axis that LAPACK does not pick
    rank = np.arange(1, len(x) + 1)
    p = 1.0 / (rank * np.log(len(x)))
    x *= (a / (a + p))[:, None]
    x[zero_ids] = 0.0
    return x.astype(np.float32)


def graph(weights: np.ndarray, metadata: dict[str, str]) -> onnx.ModelProto:
    """The ONNX model: normalise(sum over unmasked tokens of weights[id])."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["picked16"], axis=0),
        helper.make_node("Cast", ["picked16"], ["picked"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask", "last"], ["mask3"]),
        helper.make_node("Mul", ["picked", "mask3"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "tokens"], ["summed"], keepdims=0),
        helper.make_node("LpNormalization", ["summed"], ["embedding"], axis=1, p=2),
    ]
    initializers = [
        numpy_helper.from_array(weights.astype(np.float16), "table"),
        numpy_helper.from_array(np.array([2], np.int64), "last"),
        numpy_helper.from_array(np.array([1], np.int64), "tokens"),
    ]
    g = helper.make_graph(
        nodes,
        "static_embedder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", weights.shape[1]])],
        initializers,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="pureai")
    model.ir_version = 8
    helper.set_model_props(model, metadata)
    return model


def distil(src: Path, out_dir: Path, progress: Any = None) -> DistilResult:
    """Write `embedder.onnx` (static) and `tokenizer.json` into `out_dir` from the transformer in `src`."""
    import onnx

    from router._artifacts import sha256

    embedder = Embedder(src / "embedder.onnx", src / "tokenizer.json")
    if embedder.kind == "static":
        raise ValueError(f"{src / 'embedder.onnx'}: already a static embedder; distil from a transformer")
    zero = [embedder.cls_id, embedder.sep_id, embedder.tokenizer.token_to_id("[PAD]") or 0]
    weights = table(piece_vectors(embedder, progress), zero)
    model = graph(
        weights,
        {
            "kind": "static",
            "max_tokens": str(embedder.MAX_TOKENS),
            "head_tokens": str(embedder.HEAD_TOKENS),
            "distilled_from_sha256": sha256(src / "embedder.onnx"),
            "sif_a": repr(SIF_A),
        },
    )
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "embedder.onnx"
    tmp = target.with_name(".embedder.onnx.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(target)
    if (src / "tokenizer.json").resolve() != (out_dir / "tokenizer.json").resolve():
        shutil.copyfile(src / "tokenizer.json", out_dir / "tokenizer.json")
    return DistilResult(target, target.stat().st_size, weights.shape[0], weights.shape[1])

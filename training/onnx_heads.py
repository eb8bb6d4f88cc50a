"""Build heads.onnx: embedding -> capabilities, groups, quality, complexity (all linear heads).

capabilities = softmax(E @ Wc + bc)      groups  = softmax(E @ Wg + bg)
quality      = sigmoid(E @ Wq + bq)      complexity = sigmoid(E @ wx + bx)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ExportError


@dataclass(frozen=True)
class Linear:
    weight: np.ndarray  # (dim, k)
    bias: np.ndarray  # (k,)
    activation: str  # "softmax" | "sigmoid"

    def __call__(self, emb: np.ndarray) -> np.ndarray:
        z = emb.astype(np.float64) @ self.weight + self.bias
        if self.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-z))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


HEADS = ("capabilities", "groups", "quality", "complexity")


def build(heads: dict[str, Linear], dim: int, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, outputs = [], [], []
    for name in HEADS:
        h = heads[name]
        inits += [
            numpy_helper.from_array(h.weight.astype(np.float32), f"{name}_W"),
            numpy_helper.from_array(h.bias.astype(np.float32), f"{name}_b"),
        ]
        nodes += [
            helper.make_node("MatMul", ["embedding", f"{name}_W"], [f"{name}_mm"]),
            helper.make_node("Add", [f"{name}_mm", f"{name}_b"], [f"{name}_z"]),
        ]
        if h.activation == "softmax":
            nodes.append(helper.make_node("Softmax", [f"{name}_z"], [name], axis=1))
        else:
            nodes.append(helper.make_node("Sigmoid", [f"{name}_z"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", h.weight.shape[1]]))
    graph = helper.make_graph(
        nodes,
        "pureai_heads",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        outputs,
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pureai-train"
    )
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def verify(heads: dict[str, Linear], path: Path, emb: np.ndarray, tol: float = 1e-4) -> float:
    """Largest |ONNX - numpy| over `emb`; raises ExportError above `tol`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(
        zip(
            [o.name for o in session.get_outputs()],
            session.run(None, {"embedding": emb.astype(np.float32)}),
            strict=True,
        )
    )
    worst = 0.0
    for name in HEADS:
        diff = float(np.max(np.abs(got[name] - heads[name](emb)))) if len(emb) else 0.0
        worst = max(worst, diff)
        if diff > tol:
            raise ExportError(
                f"{path}: head {name!r} differs from the fitted model by {diff:.2e} (> {tol:g})"
            )
    return worst

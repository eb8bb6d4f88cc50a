"""Build router/knn_search.onnx: the neighbour search of the kNN quality estimate, in onnxruntime.

    neighbours = TopK(embedding @ memory^T, k)

The graph holds no data: `memory` (knn.npz's embeddings) and `k` are inputs, so one small file in
the router package serves every artifacts folder, old ones included. onnxruntime's product is
~2.5x faster than numpy's single-threaded einsum over 8,000 x 384 floats (numpy's BLAS product
would wake a thread pool that fights onnxruntime for the cores). Regenerate the file with
`python -m training.onnx_knn` (needs the [train] extra); tests/router/test_knn_search.py checks that
the committed file is what this builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PATH = Path(__file__).resolve().parents[1] / "router" / "knn_search.onnx"


def graph() -> Any:
    """The ModelProto."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Gemm", ["embedding", "memory"], ["similarity"], transB=1),
        helper.make_node("TopK", ["similarity", "k"], ["top_similarity", "neighbours"], axis=1, sorted=0),
    ]
    g = helper.make_graph(
        nodes,
        "pureai_knn_search",
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", "dim"]),
            helper.make_tensor_value_info("memory", TensorProto.FLOAT, ["rows", "dim"]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("top_similarity", TensorProto.FLOAT, ["batch", "k_out"]),
            helper.make_tensor_value_info("neighbours", TensorProto.INT64, ["batch", "k_out"]),
        ],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="pureai-train")
    model.ir_version = 9
    return model


def build(path: Path = PATH) -> None:
    import onnx

    model = graph()
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


if __name__ == "__main__":
    build()
    print(f"wrote {PATH}")

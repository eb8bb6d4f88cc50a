"""Build router/knn_search.onnx: the first stage of the kNN quality estimate's neighbour search.

    candidates = TopK(quantize(embedding) @ memory_q * scales, n)

The memory (knn.npz's embeddings) is held as int8 rows with one scale each, a quarter of its
float32 size: a decision's search reads 3 MB instead of 12, which matters because the embedder,
run just before, has pushed the memory out of the CPU's caches. The graph holds no data: `memory_q`
and `scales` are placeholder initializers that router/_quality.py replaces with an artifacts
folder's memory when it opens the session (`SessionOptions.add_initializer`), so this one small
file serves every folder. As initializers, not inputs, they are constants to onnxruntime, which
packs the int8 matrix for its GEMM once, at load: fed as an input, it was packed again on every
decision (0.66 ms a search instead of 0.21 on 8,000 rows).
router/_quality.py then ranks the `n` candidates (a margin over k) by their exact float32
similarity, so the neighbours are exactly those of a full float32 search.

Regenerate the file with `python -m training.onnx_knn` (needs the [train] extra);
tests/router/test_knn_search.py checks that the committed file is what this builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PATH = Path(__file__).resolve().parents[1] / "router" / "knn_search.onnx"


def graph() -> Any:
    """The ModelProto."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["embedding"], ["e_q", "e_scale", "e_zero"]),
        helper.make_node("MatMulInteger", ["e_q", "memory_q", "e_zero"], ["dot_q"]),
        helper.make_node("Cast", ["dot_q"], ["dot"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["dot", "scales"], ["similarity"]),
        helper.make_node("TopK", ["similarity", "n"], ["top_similarity", "candidates"], axis=1, sorted=0),
    ]
    g = helper.make_graph(
        nodes,
        "pureai_knn_search",
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", "dim"]),
            helper.make_tensor_value_info("n", TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("top_similarity", TensorProto.FLOAT, ["batch", "n_out"]),
            helper.make_tensor_value_info("candidates", TensorProto.INT64, ["batch", "n_out"]),
        ],
        initializer=[  # placeholders: (dim, rows) int8 and (rows,) float32, given at load
            numpy_helper.from_array(np.zeros((1, 1), np.int8), "memory_q"),
            numpy_helper.from_array(np.zeros(1, np.float32), "scales"),
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

"""router/knn_search.onnx, the neighbour search in onnxruntime (training/onnx_knn.py): it is what
the builder makes, and it finds numpy's neighbours (the same similarities; on exact ties it keeps
the lower index, as ONNX's TopK does)."""

from __future__ import annotations

import numpy as np

from router import Router
from router._quality import SEARCH
from training import onnx_knn


def test_the_committed_graph_is_what_the_builder_makes() -> None:
    assert SEARCH.read_bytes() == onnx_knn.graph().SerializeToString()


def test_the_search_finds_numpys_neighbours(fixture_router: Router, trainable_texts: list[str]) -> None:
    q = fixture_router.quality
    emb = fixture_router.embedder.embed(trainable_texts[:50])
    k = min(q.k, len(q.knn_emb))
    assert 0 < k < len(q.knn_emb)
    feed = {"embedding": emb, "memory": q.knn_emb, "k": np.array([k], dtype=np.int64)}
    (got,) = q.knn_search.run(["neighbours"], feed)
    assert got.shape == (50, k) and len({tuple(sorted(row)) for row in got}) > 1
    sims = emb @ q.knn_emb.T
    want = -np.sort(-sims, axis=1)[:, :k]
    found = -np.sort(-np.take_along_axis(sims, got, axis=1), axis=1)
    np.testing.assert_allclose(found, want, atol=1e-5)


def test_a_memory_smaller_than_k_gives_every_row(fixture_router: Router) -> None:
    q = fixture_router.quality
    emb = fixture_router.embedder.embed(["What is 2 + 2?"])
    memory = q.knn_emb[:5]
    feed = {"embedding": emb, "memory": memory, "k": np.array([5], dtype=np.int64)}
    (got,) = q.knn_search.run(["neighbours"], feed)
    assert sorted(got[0].tolist()) == [0, 1, 2, 3, 4]

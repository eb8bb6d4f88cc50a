"""The neighbour search of the kNN quality estimate (router/_quality.py `neighbours`): an int8 stage
in onnxruntime (router/knn_search.onnx, built by training/onnx_knn.py), then the candidates ranked
by their float32 similarity. It must find exactly what a full float32 search finds."""

from __future__ import annotations

import numpy as np
import pytest

from router import Router
from router._quality import SEARCH, quantize_rows
from training import onnx_knn


def same_as_a_full_search(got: np.ndarray, emb: np.ndarray, memory: np.ndarray, k: int) -> None:
    """`got` holds, per row, the k most similar memory rows of a full float32 search: the same
    rows wherever the k-th and the next similarity differ by more than float rounding, and always
    the same similarities (the order within the k does not count: the neighbours are averaged)."""
    sims = emb @ memory.T
    order = np.argsort(-sims, axis=1, kind="stable")
    want = np.take_along_axis(sims, order[:, :k], axis=1)
    found = -np.sort(-np.take_along_axis(sims, got, axis=1), axis=1)
    np.testing.assert_allclose(found, want, atol=1e-6)
    edge = np.take_along_axis(sims, order[:, k - 1 : k + 1], axis=1)
    for i in np.flatnonzero(edge[:, 0] - edge[:, 1] > 1e-6):
        assert set(got[i].tolist()) == set(order[i, :k].tolist())


def test_the_committed_graph_is_what_the_builder_makes() -> None:
    assert SEARCH.read_bytes() == onnx_knn.graph().SerializeToString()


@pytest.fixture(scope="module")
def shipped() -> Router:
    return Router.load()


def test_the_shipped_memory_gives_a_full_searchs_neighbours(shipped: Router) -> None:
    q = shipped.quality
    texts = [
        f"Question {i}: how many {w} fit in a box?" for i, w in enumerate(["apples", "cats", "words"] * 20)
    ]
    texts += [
        "Write Python code to sort a list",
        "Translate 'good morning' into French",
        "Prove sqrt(2) is irrational",
    ]
    emb = shipped.embedder.embed(texts)
    assert len(q.knn_emb) > 1000 and q.k < len(q.knn_emb)
    same_as_a_full_search(q.neighbours(emb), emb, q.knn_emb, q.k)


def test_random_directions_too(shipped: Router) -> None:
    """Away from real prompts (random unit vectors, where similarities crowd together)."""
    q = shipped.quality
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, q.knn_emb.shape[1])).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    same_as_a_full_search(q.neighbours(emb), emb, q.knn_emb, q.k)


def test_quantized_rows_keep_the_similarities_within_a_few_thousandths(shipped: Router) -> None:
    q = shipped.quality
    rows, scales = quantize_rows(q.knn_emb)
    assert rows.dtype == np.int8 and rows.shape == q.knn_emb.shape[::-1]
    approx = (rows.T.astype(np.float32) * scales[:, None]) @ q.knn_emb[0]
    np.testing.assert_allclose(approx, q.knn_emb @ q.knn_emb[0], atol=0.003)


def test_a_memory_row_left_out_is_never_its_own_neighbour(shipped: Router) -> None:
    """The lambda tables are calibrated on training prompts with their own rows left out: each
    finds what a full search of the memory without that row finds."""
    q = shipped.quality
    pick = np.random.default_rng(1).permutation(len(q.knn_emb))[:30]
    emb = q.knn_emb[pick]
    with_self = q.neighbours(emb)
    # a row is its own neighbour (or a duplicate of it, earlier in the memory, is)
    assert (with_self == pick[:, None]).any(axis=1).sum() >= 25
    got = q.neighbours(emb, exclude=pick)
    assert got.shape == (len(pick), q.k) and not (got == pick[:, None]).any()
    for i, row in enumerate(pick):
        rest = np.delete(np.arange(len(q.knn_emb)), row)
        same_as_a_full_search(np.searchsorted(rest, got[i : i + 1]), emb[i : i + 1], q.knn_emb[rest], q.k)

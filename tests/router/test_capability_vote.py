"""The labelled prompts' vote on a prompt's capability (router/_quality.py `vote`), blended with the
capability head: the function itself, and the shipped artifacts that carry the labelled prompts."""

from __future__ import annotations

import numpy as np
import pytest

from router import Router
from router._quality import VOTE_SHARE, vote


def test_each_neighbour_votes_its_similarity_squared_times_its_class_weight() -> None:
    sims = np.array([[0.9, 0.5, 0.3], [0.0, -0.2, 0.0]])
    classes = np.array([[0, 1, 1], [0, 1, 2]])
    got = vote(sims, classes, 3, np.array([1.0, 2.0, 1.0]))
    w = np.array([0.81, 2 * (0.25 + 0.09), 0.0])
    assert got[0] == pytest.approx(w / w.sum())
    assert got[1].tolist() == [0.0, 0.0, 0.0]  # no neighbour with a positive similarity: no vote


@pytest.fixture(scope="module")
def shipped() -> Router:
    return Router.load()


def test_the_shipped_artifacts_carry_labelled_prompts_that_vote(shipped: Router) -> None:
    q = shipped.quality
    assert q.label_search is not None and len(q.label_emb) > 1000
    assert set(np.unique(q.label_classes)) == set(range(len(q.capabilities)))
    norms = np.linalg.norm(q.label_emb, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-2)  # unit embeddings, as the embedder gives them


def test_the_decision_blends_the_head_and_the_vote(shipped: Router) -> None:
    from router._text import shape

    q = shipped.quality
    texts = ["write a limerick about a cat who hates mondays", "Prove that sqrt(2) is irrational."]
    emb = shipped.embedder.embed(texts)
    head = q.heads(emb, shape(texts, q.shape))["capabilities"].astype(np.float64)
    voted = q.capability_vote(emb)
    assert voted is not None and np.allclose(voted.sum(axis=1), 1.0)
    blended = q.features(emb, shape(texts, q.shape)).capabilities
    assert blended == pytest.approx((1 - VOTE_SHARE) * head + VOTE_SHARE * voted)
    top = [q.capabilities[i] for i in blended.argmax(axis=1)]
    assert top == ["writing", "math"]

"""What a candidate's quality rests on (`quality_source`), and that it depends only on the prompt,
that candidate and the artifacts, never on the rest of the catalogue: a router trained on the
fixture (the session's real `pureai train`) over variations of the built-in catalogue."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from models_registry import Catalogue, load_catalogue
from router import Router

LEARNED = ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "claude-3-haiku-20240307"]
PROMPTS = [
    "Write Python code to sort a list",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast. How many are left?",
    "Write a sonnet about the sea at night",
    "hi there!",
]


def facts(router: Router, prompt: str, models: list[str]) -> dict[str, tuple[float, float, str]]:
    """Per candidate: quality, the decision's confidence were it chosen, and the quality source."""
    d = router.select(prompt, models=models, cost_weight=0.0)
    return {c.model: (round(c.quality, 9), round(c.confidence, 9), c.quality_source) for c in d.candidates}


def trimmed(catalogue: Catalogue, keep: list[str]) -> Catalogue:
    return Catalogue({m: e for m, e in catalogue.models.items() if m in keep})


def test_a_candidates_quality_does_not_depend_on_the_rest_of_the_catalogue(fixture_router: Router) -> None:
    """Trimming the catalogue to the candidates (a user keeping the providers they have), or to the
    candidates and one unrelated model, leaves every candidate's quality and confidence as it was,
    for models with outcome data and for one without (codestral-latest: catalogue prior)."""
    full = load_catalogue()
    pool = ["gpt-4o", "gpt-4o-mini", "claude-3-haiku", "codestral-latest"]
    variants = [
        fixture_router,
        fixture_router.with_catalogue(trimmed(full, pool)),
        fixture_router.with_catalogue(trimmed(full, [*pool, "mixtral-8x7b-instruct"])),
        fixture_router.with_catalogue(trimmed(full, pool[2:])).with_catalogue(trimmed(full, pool)),
    ]
    for prompt in PROMPTS:
        seen = [facts(r, prompt, pool) for r in variants]
        assert all(s == seen[0] for s in seen[1:]), prompt
        assert seen[0]["codestral-latest"][2] == "prior"


def test_a_prompt_unlike_the_training_data_gets_each_models_learned_ability(fixture_router: Router) -> None:
    """The fixture holds maths and CRUX items only: a request for a poem is unlike all of them, yet
    the models with outcome rows are judged by their ability (from all their rows), not by priors,
    and their order follows their standing in the data (gpt-4o above claude-3-haiku)."""
    got = facts(fixture_router, "Write a sonnet about the sea at night", LEARNED)
    assert {src for _, _, src in got.values()} == {"ability"}
    assert got["gpt-4o-2024-08-06"][0] > got["claude-3-haiku-20240307"][0]


def test_training_prompts_rest_on_their_neighbours_and_a_stranger_does_not(
    fixture_router: Router, trainable_texts: list[str]
) -> None:
    """The fixture's own prompts' neighbours count in their estimates; a greeting's do not."""
    from router._text import shape

    q = fixture_router.quality
    texts = [*trainable_texts[:20], "hi there! how's your day going?"]
    f = q.features(fixture_router.embedder.embed(texts), shape(texts, q.shape))
    assert f.local[:-1].max(axis=1).mean() > 0.2 and f.local[-1].max() == 0
    assert np.all((f.local >= 0) & (f.local <= 1))


def test_the_abilities_are_in_the_artifacts_with_the_rows_behind_them(trained_dir: Path) -> None:
    table = json.loads((trained_dir / "quality.json").read_text())
    ab = table["abilities"]
    assert ab["capabilities"] == table["capabilities"]
    theta, rows = np.array(ab["theta"]), np.array(ab["rows"])
    assert theta.shape == rows.shape == (len(table["models"]), len(table["capabilities"]))
    assert rows.sum() > 0 and np.isfinite(theta).all()
    assert ab["pooled_slope"] < 0  # harder prompts, fewer good answers
    assert ab["span"][0] < 0 < ab["span"][1]


def relative_of(router: Router, like: str | None, offset: float = 0.0) -> Router:
    """The router over the built-in catalogue in which gpt-4.1-mini (no outcome data) is `like` a model."""
    cat = load_catalogue()
    entry = dataclasses.replace(cat.models["gpt-4.1-mini"], like=like, like_offset=offset)
    return router.with_catalogue(Catalogue({**cat.models, "gpt-4.1-mini": entry}))


@pytest.mark.parametrize("prompt", PROMPTS)
def test_a_model_without_data_is_estimated_from_its_declared_relative(
    fixture_router: Router, prompt: str
) -> None:
    """gpt-4.1-mini `like` gpt-4o-mini gets gpt-4o-mini's quality, shifted by `like_offset` logits,
    says so in quality_source and in the reasoning, and is as unsure as a prior (confidence pulled
    toward 0.5)."""
    pool = ["gpt-4.1-mini", "gpt-4o-mini"]
    same = relative_of(fixture_router, "gpt-4o-mini")
    got = facts(same, prompt, pool)
    assert got["gpt-4.1-mini"][2] == "relative"
    assert got["gpt-4.1-mini"][0] == pytest.approx(got["gpt-4o-mini"][0], abs=1e-9)
    quality, confidence, _ = got["gpt-4.1-mini"]
    assert abs(confidence - 0.5) < abs(quality - 0.5)
    better = relative_of(fixture_router, "gpt-4o-mini", offset=0.5)
    up = facts(better, prompt, pool)["gpt-4.1-mini"][0]
    logit = np.log(quality / (1 - quality)) + 0.5
    assert up == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-6)
    d = better.select(prompt, models=["gpt-4.1-mini"])
    assert "no outcome data for gpt-4.1-mini; estimated from gpt-4o-mini" in d.reasoning


def test_a_relative_without_data_leaves_the_prior(fixture_router: Router) -> None:
    """`like` naming a model the artifacts know nothing of changes nothing: the prior stands."""
    plain = facts(relative_of(fixture_router, None), PROMPTS[0], ["gpt-4.1-mini"])
    odd = facts(relative_of(fixture_router, "no-such-model"), PROMPTS[0], ["gpt-4.1-mini"])
    assert plain == odd and plain["gpt-4.1-mini"][2] == "prior"


def test_the_shipped_router_over_a_trimmed_catalogue_decides(fixture_router: Router) -> None:
    """A user's catalogue of two models: the shipped router still decides (learned models it cannot
    price, having neither catalogue prices nor costs in their data, are left out of the defaults and
    of the reference prompts), and naming one of them is a clear InputError, not a crash."""
    from router import InputError

    shipped = Router.load(catalogue=None)
    cat = load_catalogue()
    mine = shipped.with_catalogue(trimmed(cat, ["gpt-4o-mini", "codestral-latest"]))
    d = mine.select("Write Python code to sort a list")
    unpriced = [
        m
        for j, m in enumerate(shipped.quality.models)
        if not shipped.cost_known[j] and m not in ("gpt-4o-mini", "codestral-latest")
    ]
    assert unpriced, "the shipped artifacts learn models whose data has no costs"
    assert d.selected_model not in unpriced
    assert {"gpt-4o-mini", "codestral-latest"} <= set(mine.default_models())
    assert not set(unpriced) & set(mine.default_models())
    assert mine.select("hi", models=["gpt-4o-mini", "codestral-latest"]).selected_model
    with pytest.raises(InputError, match="no prices"):
        mine.select("hello", models=[unpriced[0], "gpt-4o-mini"])

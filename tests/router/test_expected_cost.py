"""A candidate's expected cost: catalogue prices x tokens, with a reasoning model's hidden reasoning
tokens (`reasoning_tokens`) added to the answer length learned from outcome data."""

from __future__ import annotations

import dataclasses

import pytest

from models_registry import Catalogue
from router import Router

PROMPT = "Prove that every bounded monotone sequence of real numbers converges."


@pytest.fixture(scope="module")
def shipped() -> Router:
    return Router.load()


def with_entry(rt: Router, name: str, **changes: object) -> Router:
    models = dict(rt.catalogue.models)
    models[name] = dataclasses.replace(models[name], **changes)  # type: ignore[arg-type]
    return rt.with_catalogue(Catalogue(models))


def candidate(rt: Router, name: str, pool: list[str]) -> tuple[float, float, str]:
    c = next(c for c in rt.select(PROMPT, pool, 0.5).candidates if c.model == name)
    return c.quality, c.cost_usd, c.quality_source


@pytest.mark.parametrize(("name", "source"), [("o1-mini", "ability"), ("o3-mini", "relative")])
def test_a_reasoning_model_is_priced_for_its_hidden_reasoning(shipped: Router, name: str, source: str) -> None:
    entry = shipped.catalogue.models[name]
    assert entry.reasoning_tokens == 1200
    pool = [name, "gpt-4o"]
    quality, cost, got = candidate(shipped, name, pool)
    assert got in (source, "learned")
    bare_quality, bare_cost, _ = candidate(with_entry(shipped, name, reasoning_tokens=0), name, pool)
    assert quality == bare_quality
    assert cost - bare_cost == pytest.approx(1200 * entry.output_per_mtok / 1e6, rel=1e-6)
    assert cost > 5 * bare_cost  # its outcome rows count only ~130 answer tokens


def test_without_outcome_data_the_catalogues_answer_length_already_holds_the_reasoning(shipped: Router) -> None:
    alone = with_entry(shipped, "o3-mini", like=None)
    _, cost, source = candidate(alone, "o3-mini", ["o3-mini"])
    assert source == "prior"
    again = with_entry(alone, "o3-mini", reasoning_tokens=0)
    assert candidate(again, "o3-mini", ["o3-mini"])[1] == cost

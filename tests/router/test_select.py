"""Router.select / select_many on a router trained on the fixture (a real ONNX session)."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest

import router
from router import Decision, InputError, Router, UnknownModelError

CAPABILITIES = {"code", "math", "reasoning", "knowledge", "writing", "chat", "extraction"}
PRIOR_ONLY = "codestral-latest"  # in the catalogue, no outcome rows in the fixture
WEIGHTS = [round(0.05 * i, 2) for i in range(21)]
PROMPTS = [
    "Write Python code to sort a list",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast. How many are left?",
    "Find all real x such that x^4 - 5x^2 + 4 = 0.",
]


@pytest.fixture(scope="module")
def pool(fixture_models: list[str]) -> list[str]:
    """The fixture's four models (learned) and one catalogue model without outcome data (prior)."""
    return [*fixture_models, PRIOR_ONLY]


@pytest.fixture(scope="module")
def sample(trainable_texts: list[str]) -> list[str]:
    """40 fixture prompts spread over its three datasets."""
    return trainable_texts[::5][:40]


def _cost(d: Decision, model: str) -> float:
    return next(c.cost_usd for c in d.candidates if c.model == model)


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("cost_weight", [0.0, 0.5, 1.0])
def test_decision_is_complete_and_consistent(
    fixture_router: Router, pool: list[str], prompt: str, cost_weight: float
) -> None:
    d = fixture_router.select(prompt, models=pool, cost_weight=cost_weight)
    assert isinstance(d, Decision)
    assert d.selected_model in pool
    assert sorted(c.model for c in d.candidates) == sorted(pool)
    assert d.candidates[0].model == d.selected_model
    utilities = [c.utility for c in d.candidates]
    assert utilities == sorted(utilities, reverse=True)
    assert set(d.capabilities) == CAPABILITIES
    assert all(0.0 <= p <= 1.0 for p in d.capabilities.values())
    assert sum(d.capabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert d.features["capability"] == max(d.capabilities, key=d.capabilities.__getitem__)
    assert 0.0 <= d.complexity <= 1.0
    assert 0.0 < d.confidence < 1.0
    assert all(0.0 < c.quality < 1.0 and c.cost_usd > 0 for c in d.candidates)
    assert d.cost_weight == cost_weight
    assert d.input_tokens == max(1, round(len(prompt) / 4))
    assert d.reasoning.strip()
    assert d.selected_model in d.reasoning


def test_fixture_prompts_read_as_math_or_code(
    fixture_router: Router, fixture_prompts: list[dict[str, str]]
) -> None:
    """The fixture has only math and code prompts: the capability head learned to tell them apart."""
    rows = [r for r in fixture_prompts if r["train_ok"] == "True"][::4]
    decisions = fixture_router.select_many([r["prompt"] for r in rows])
    agree = sum(d.features["capability"] == r["task"] for d, r in zip(decisions, rows, strict=True))
    assert agree >= 0.9 * len(rows)


def test_selected_cost_never_rises_with_cost_weight(
    fixture_router: Router, pool: list[str], sample: list[str]
) -> None:
    by_weight = [fixture_router.select_many(sample, models=pool, cost_weight=w) for w in WEIGHTS]
    for i, prompt in enumerate(sample):
        costs = [_cost(ds[i], ds[i].selected_model) for ds in by_weight]
        for w, before, after in zip(WEIGHTS[1:], costs, costs[1:], strict=False):
            assert after <= before * (1 + 1e-12), (prompt[:60], w, costs)
    # the sweep must move: some prompts change model between the two ends
    moved = sum(
        a.selected_model != b.selected_model for a, b in zip(by_weight[0], by_weight[-1], strict=True)
    )
    assert moved >= len(sample) // 4


def test_cost_weight_one_picks_the_cheapest_and_zero_the_best(
    fixture_router: Router, pool: list[str], sample: list[str]
) -> None:
    for d in fixture_router.select_many(sample, models=pool, cost_weight=1.0):
        assert _cost(d, d.selected_model) == min(c.cost_usd for c in d.candidates)
    for d in fixture_router.select_many(sample, models=pool, cost_weight=0.0):
        assert d.candidates[0].quality == max(c.quality for c in d.candidates)


def test_models_without_outcome_data_use_the_catalogue_prior(fixture_router: Router, pool: list[str]) -> None:
    d = fixture_router.select(PROMPTS[0], models=pool)
    source = {c.model: c.quality_source for c in d.candidates}
    # a code request is unlike the fixture's maths and CRUX items: the models with outcome rows
    # are judged by their learned ability, the one without by its catalogue prior
    assert source == {**{m: "ability" for m in pool[:-1]}, PRIOR_ONLY: "prior"}


def test_a_prior_only_choice_is_less_confident_than_its_quality(fixture_router: Router) -> None:
    d = fixture_router.select(PROMPTS[0], models=[PRIOR_ONLY])
    (only,) = d.candidates
    assert only.quality_source == "prior"
    assert abs(d.confidence - 0.5) < abs(only.quality - 0.5)  # pulled toward 0.5
    assert "prior" in d.reasoning


def test_a_learned_choice_is_as_confident_as_its_quality(
    fixture_router: Router, fixture_models: list[str]
) -> None:
    d = fixture_router.select(PROMPTS[1], models=fixture_models)
    assert d.candidates[0].quality_source in ("learned", "ability")  # its own outcome data
    assert d.confidence == d.candidates[0].quality


def test_catalogue_id_and_outcome_data_name_are_one_model(fixture_router: Router) -> None:
    """gpt-4o-2024-08-06 (the data's name) is an alias of the catalogue's gpt-4o."""
    by_data_name = fixture_router.select(PROMPTS[1], models=["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"])
    by_id = fixture_router.select(PROMPTS[1], models=["gpt-4o", "gpt-4o-mini"])
    assert [c.quality for c in by_id.candidates] == [c.quality for c in by_data_name.candidates]
    assert [c.quality_source for c in by_id.candidates] == [c.quality_source for c in by_data_name.candidates]
    assert {c.quality_source for c in by_id.candidates} <= {"learned", "ability"}


def test_select_many_gives_what_select_gives(
    trained_dir: Path, fixture_models: list[str], sample: list[str]
) -> None:
    """A prompt's decision must not depend on the other prompts routed with it. Two fresh routers,
    so neither answers from the other's feature cache."""
    many = Router.load(trained_dir).select_many(sample, models=fixture_models)
    one = Router.load(trained_dir)
    for prompt, d in zip(sample, many, strict=True):
        alone = one.select(prompt, models=fixture_models)
        assert d.selected_model == alone.selected_model, prompt[:60]
        assert [c.quality for c in d.candidates] == pytest.approx(
            [c.quality for c in alone.candidates], abs=1e-4
        )


def test_select_many_of_nothing_is_nothing(fixture_router: Router) -> None:
    assert fixture_router.select_many([]) == []


def test_select_many_rejects_a_single_string(fixture_router: Router) -> None:
    """`select_many("Hello")` would otherwise route each character as a prompt (five decisions)."""
    with pytest.raises(InputError, match="list"):
        fixture_router.select_many("Hello")


def test_every_entry_point_defaults_to_the_apis_cost_weight(fixture_router: Router, pool: list[str]) -> None:
    from service.protocol import RouterRequest

    assert router.DEFAULT_COST_WEIGHT == 0.5  # POST /v1/router's default
    assert fixture_router.select(PROMPTS[0], pool).cost_weight == 0.5
    assert [d.cost_weight for d in fixture_router.select_many(PROMPTS, pool)] == [0.5] * len(PROMPTS)
    for fn in (router.select, router.select_many, Router.select, Router.select_many):
        assert inspect.signature(fn).parameters["cost_weight"].default == 0.5, fn
    assert RouterRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}]}).cost_weight == 0.5


def test_default_pool_is_every_enabled_model(fixture_router: Router) -> None:
    d = fixture_router.select(PROMPTS[0])
    names = {c.model for c in d.candidates}
    enabled = {m.id for m in fixture_router.catalogue.enabled()}
    assert enabled <= names
    assert "claude-3-opus" not in names  # disabled in the catalogue
    assert d.selected_model in names


@pytest.mark.parametrize("cost_weight", [-0.1, 1.5, math.nan, math.inf, True, "0.5", None])
def test_cost_weight_outside_0_1_is_an_input_error(fixture_router: Router, cost_weight: object) -> None:
    with pytest.raises(InputError, match="cost_weight must be a number between 0 and 1") as info:
        fixture_router.select(PROMPTS[0], cost_weight=cost_weight)  # type: ignore[arg-type]
    assert info.value.param == "cost_weight"


@pytest.mark.parametrize(
    ("models", "message"),
    [([], "models is empty"), ("gpt-4o-mini", "models must be a list"), (["gpt-4o-mini", 3], "model names")],
)
def test_bad_model_lists_are_input_errors(fixture_router: Router, models: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        fixture_router.select(PROMPTS[0], models=models)  # type: ignore[arg-type]
    assert info.value.param == "models"


def test_unknown_model_is_named(fixture_router: Router) -> None:
    with pytest.raises(UnknownModelError, match="'no-such-model'") as info:
        fixture_router.select(PROMPTS[0], models=["gpt-4o-mini", "no-such-model"])
    assert info.value.model == "no-such-model"
    assert isinstance(info.value, router.RouterError)


def test_a_typo_gets_a_suggestion(fixture_router: Router) -> None:
    with pytest.raises(UnknownModelError, match=r"unknown model 'gpt-4o-minii'; did you mean 'gpt-4o-mini'"):
        fixture_router.select(PROMPTS[0], models=["gpt-4o-minii"])


def test_duplicate_models_are_one_candidate(fixture_router: Router) -> None:
    d = fixture_router.select(PROMPTS[0], models=["gpt-4o", "gpt-4o-mini", "gpt-4o"])
    assert [c.model for c in d.candidates].count("gpt-4o") == 1
    assert len(d.candidates) == 2


def test_with_catalogue_adds_a_model_without_changing_the_others(
    fixture_router: Router, pool: list[str]
) -> None:
    from dataclasses import replace

    from models_registry import Catalogue

    base = fixture_router.catalogue
    added = replace(
        base.models[PRIOR_ONLY], id="pureai/added", aliases=(), input_per_mtok=0.0, output_per_mtok=0.0
    )
    wider = fixture_router.with_catalogue(Catalogue({**base.models, added.id: added}))
    assert wider.catalogue.models["pureai/added"] is added and fixture_router.catalogue is base
    with pytest.raises(UnknownModelError):
        fixture_router.select(PROMPTS[0], [*pool, "pureai/added"], 0.5)
    decision = wider.select(PROMPTS[0], [*pool, "pureai/added"], 1.0)
    assert decision.selected_model == "pureai/added"  # free, so the cheapest
    for weight in (0.0, 0.5):
        assert wider.select(PROMPTS[0], pool, weight) == fixture_router.select(PROMPTS[0], pool, weight)

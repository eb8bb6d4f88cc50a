"""The cost_weight scale fitted on a pool's traffic (router/_calibration.py, `_score.lambda_table`):
a cost_weight lands on the same point of the traffic's own cost range whatever its cost scale, the
reference mode depends on nothing routed before, and the table's switch-point computation agrees
with the direct one."""

from __future__ import annotations

import numpy as np
import pytest

from router import Router, _calibration, _score

POOL = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "gemini-1.5-flash"]
TOPICS = ["a database migration", "a marketing plan", "a court ruling", "a clinical trial", "a city budget"]


def chit_chat(n: int) -> list[str]:
    return [f"hi! quick one #{i}: what's a good name for a cat?" for i in range(n)]


def documents(n: int) -> list[str]:
    """Reports of 40 to 1,200 sentences to summarise."""
    sentence = "Paragraph {} discusses the figures, the risks and the people involved."
    lengths = np.geomspace(40, 1200, n).astype(int)
    return [
        f"Summarise this report on {TOPICS[i % len(TOPICS)]}:\n" + " ".join(sentence.format(k) for k in range(m))
        for i, m in enumerate(lengths)
    ]


def mean_cost(rt: Router, prompts: list[str], w: float) -> float:
    return float(np.mean([d.candidates[0].cost_usd for d in rt.select_many(prompts, POOL, w)]))


def position(rt: Router, prompts: list[str], w: float) -> float:
    """Where the mean expected cost of the choices at `w` lies between the w = 0 choices' (0) and the
    cheapest candidates' (1), on a log scale."""
    top, bottom = mean_cost(rt, prompts, 0.0), mean_cost(rt, prompts, 1.0)
    return float(np.log(top / mean_cost(rt, prompts, w)) / np.log(top / bottom))


@pytest.fixture(scope="module")
def loaded() -> Router:
    return Router.load()


def test_choice_costs_from_switch_points_match_the_direct_sweep() -> None:
    rng = np.random.default_rng(7)
    for k in (1, 2, 5, 12):
        q = rng.uniform(0.3, 0.95, (300, k))
        c = rng.lognormal(-8, 1.5, (300, k))
        q[:40, -1] = q[:40, 0]  # ties in quality
        c[40:60] = c[40:60, :1]  # ties in cost
        lams = np.geomspace(1e-2, 1e7, 300)
        direct = np.array([_score._choice_cost(q, c, lam) for lam in lams])
        np.testing.assert_allclose(_score._choice_costs(q, c, lams), direct, rtol=1e-12)


def test_a_cost_weight_lands_mid_range_on_traffic_of_any_cost_scale(loaded: Router) -> None:
    for traffic in (chit_chat(160), documents(160)):
        rt = Router(loaded.artifacts, loaded.catalogue)
        rt.select_many(traffic, POOL, 0.5)
        assert rt.calibrated_on(POOL) == 160
        spots = [position(rt, traffic, w) for w in (0.25, 0.5, 0.75)]
        assert 0.3 <= spots[1] <= 0.7, (traffic[0][:40], spots)
        assert spots[0] < spots[1] < spots[2], (traffic[0][:40], spots)


def test_reference_calibration_cannot_land_mid_range_on_both(loaded: Router) -> None:
    """Why the default fits on traffic: one table from reference prompts puts w = 0.5 at different
    points of a chit-chat workload's and a document workload's ranges."""
    rt = Router(loaded.artifacts, loaded.catalogue, calibration="reference")
    spots = [position(rt, traffic, 0.5) for traffic in (chit_chat(160), documents(160))]
    assert rt.calibrated_on(POOL) == 0
    assert not all(0.3 <= spot <= 0.7 for spot in spots), spots


def test_the_reference_mode_decides_alike_whatever_was_routed_before(loaded: Router) -> None:
    rt = Router(loaded.artifacts, loaded.catalogue, calibration="reference")
    prompt = "Write a SQL query that lists each customer's three latest orders"
    before = rt.select(prompt, POOL, 0.4)
    rt.select_many(documents(120), POOL, 0.4)
    after = rt.select(prompt, POOL, 0.4)
    assert after.selected_model == before.selected_model
    assert [c.utility for c in after.candidates] == [c.utility for c in before.candidates]


def test_traffic_moves_the_scale_not_the_candidates(loaded: Router) -> None:
    rt = Router(loaded.artifacts, loaded.catalogue)
    prompt = "Write a SQL query that lists each customer's three latest orders"
    before = rt.select(prompt, POOL, 0.4)
    rt.select_many(documents(120), POOL, 0.4)
    after = rt.select(prompt, POOL, 0.4)
    assert {(c.model, c.quality, c.cost_usd, c.quality_source) for c in after.candidates} == {
        (c.model, c.quality, c.cost_usd, c.quality_source) for c in before.candidates
    }
    assert rt.calibrated_on(POOL) > 0


def test_the_table_is_refitted_as_traffic_doubles_then_every_quarter_window() -> None:
    pool = _calibration.Calibrations("traffic", pools=4)
    key = ("a", "b")
    rng = np.random.default_rng(0)
    reference = (rng.uniform(0.5, 0.9, (256, 2)), rng.lognormal(-7, 1, (256, 2)))
    fitted, used = [], []
    for _ in range(_calibration.WINDOW + _calibration.WINDOW // 2):
        pool.observe(key, rng.uniform(0.5, 0.9, (1, 2)), rng.lognormal(-5, 1, (1, 2)))
        pool.table(key, lambda: reference)
        fitted.append(pool._by_pool[key].fitted_at)
        used.append(pool.traffic(key))
    assert sorted(set(fitted)) == [-1, 32, 64, 128, 256, 512, 640, 768]
    assert sorted(set(used)) == [0, 32, 64, 128, 256, 512]  # the window holds the last 512


def test_more_pools_than_kept_drop_the_one_used_longest_ago() -> None:
    pool = _calibration.Calibrations("traffic", pools=2)
    for name in ("a", "b", "a", "c"):
        pool.observe((name,), np.ones((40, 1)), np.ones((40, 1)))
    assert list(pool._by_pool) == [("a",), ("c",)]
    assert pool._by_pool[("a",)].seen == 80


def test_an_unknown_calibration_mode_is_refused(loaded: Router) -> None:
    with pytest.raises(ValueError, match="calibration must be one of traffic, reference, not 'daily'"):
        Router(loaded.artifacts, loaded.catalogue, calibration="daily")


def test_a_new_catalogue_keeps_the_traffic_of_pools_it_leaves_alone(loaded: Router) -> None:
    from dataclasses import replace

    from models_registry import Catalogue

    rt = Router(loaded.artifacts, loaded.catalogue)
    other = ["gpt-4o", "gpt-4o-mini"]
    for pool in (POOL, other):
        rt.select_many(documents(64), pool, 0.5)
    models = dict(rt.catalogue.models)
    models["gemini-1.5-flash"] = replace(models["gemini-1.5-flash"], input_per_mtok=9.0)
    rebound = rt.with_catalogue(Catalogue(models))
    assert rebound.calibrated_on(other) == rt.calibrated_on(other) == 64
    assert rebound.calibrated_on(POOL) == 0 and rt.calibrated_on(POOL) == 64  # flash's price changed
    rebound.select_many(chit_chat(64), other, 0.5)
    assert rt.calibrated_on(other) == 64  # a copy, not shared


def test_fresh_forgets_the_traffic_and_keeps_the_sessions(loaded: Router) -> None:
    rt = Router(loaded.artifacts, loaded.catalogue)
    rt.select_many(documents(40), POOL, 0.5)
    again = rt.fresh()
    assert rt.calibrated_on(POOL) == 40 and again.calibrated_on(POOL) == 0
    assert again.embedder is rt.embedder and again.quality is rt.quality

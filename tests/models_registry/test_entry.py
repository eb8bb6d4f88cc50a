import dataclasses

import pytest

from models_registry import CAPABILITIES, ModelEntry, Provider


def make_entry(**overrides: object) -> ModelEntry:
    fields: dict[str, object] = {
        "id": "acme-small",
        "owned_by": "acme",
        "litellm_model": "acme/small",
        "context_window": 8192,
        "input_per_mtok": 2.0,
        "output_per_mtok": 8.0,
        "cached_input_per_mtok": 0.5,
        "quality_priors": dict.fromkeys(CAPABILITIES, 0.5),
    }
    fields.update(overrides)
    return ModelEntry(**fields)  # type: ignore[arg-type]


def test_cost_usd() -> None:
    entry = make_entry()
    assert entry.cost_usd(1_000_000, 0) == pytest.approx(2.0)
    assert entry.cost_usd(0, 1_000_000) == pytest.approx(8.0)
    assert entry.cost_usd(1000, 500) == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)


def test_cost_usd_bills_cached_input_at_the_cached_price() -> None:
    # 1000 input tokens of which 400 came from the cache
    assert make_entry().cost_usd(1000, 0, cached_input_tokens=400) == pytest.approx(
        (600 * 2.0 + 400 * 0.5) / 1e6
    )


@pytest.mark.parametrize(("inp", "out", "cached"), [(-1, 0, 0), (0, -1, 0), (10, 0, 11)])
def test_cost_usd_rejects_impossible_counts(inp: int, out: int, cached: int) -> None:
    with pytest.raises(ValueError):
        make_entry().cost_usd(inp, out, cached)


def test_defaults() -> None:
    entry = make_entry()
    assert entry.enabled is True
    assert entry.expected_output_tokens == 400
    assert entry.aliases == ()
    assert entry.providers == ()
    assert entry.api_base is None and entry.api_key_env is None
    assert entry.price_source == "catalogue"
    assert entry.primary is None
    assert not entry.is_custom
    assert make_entry(id="pureai/x").is_custom


def test_entries_are_frozen() -> None:
    entry = make_entry()
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.input_per_mtok = 0.0  # type: ignore[misc]


def test_provider_to_api_is_the_v1_providers_shape() -> None:
    assert Provider(id="openai", type="primary").to_api() == {
        "id": "openai",
        "type": "primary",
        "enabled": True,
        "params": {},
    }
    backup = Provider(
        id="azure",
        type="backup",
        enabled=False,
        params={"api_version": "2024-10-21"},
        litellm_model="azure/gpt-4o",
        api_key_env="AZURE_API_KEY",
    )
    api = backup.to_api()
    assert api == {"id": "azure", "type": "backup", "enabled": False, "params": {"api_version": "2024-10-21"}}
    api["params"]["x"] = 1  # the caller's copy
    assert backup.params == {"api_version": "2024-10-21"}


def test_primary() -> None:
    primary = Provider(id="acme", type="primary")
    entry = make_entry(providers=[Provider(id="host", type="backup"), primary])
    assert entry.providers == (Provider(id="host", type="backup"), primary)
    assert entry.primary == primary

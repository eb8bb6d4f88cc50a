import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from models_registry import CatalogueError, load_catalogue
from models_registry._prices import PRICE_MAP_FILE, litellm_price_map_path, lookup

LITELLM_MODEL = 'litellm_model = "{}"\n'
# A model that leaves prices and context window to litellm.
UNPRICED = """
[[models]]
id = "{id}"
owned_by = "test"
quality_priors = {{ default = 0.5 }}
"""


@pytest.fixture(scope="module")
def price_json() -> dict[str, Any]:
    path = litellm_price_map_path()
    assert path is not None
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_the_price_map_is_litellms_bundled_file() -> None:
    path = litellm_price_map_path()
    assert path is not None and path.name == PRICE_MAP_FILE
    assert path.parent.name == "litellm"


def test_default_catalogue_prices_match_the_json(price_json: dict[str, Any]) -> None:
    entry = load_catalogue().get("gpt-4o-mini")
    raw = price_json["gpt-4o-mini"]
    assert entry.price_source == "litellm:gpt-4o-mini"
    assert entry.input_per_mtok == pytest.approx(raw["input_cost_per_token"] * 1e6)
    assert entry.output_per_mtok == pytest.approx(raw["output_cost_per_token"] * 1e6)
    assert entry.cached_input_per_mtok == pytest.approx(raw["cache_read_input_token_cost"] * 1e6)
    assert entry.context_window == raw["max_input_tokens"]
    assert entry.input_per_mtok == 0.15  # no float noise left by the conversion


def test_lookup_without_the_provider_prefix(
    write_catalogue: Callable[..., Path], price_json: dict[str, Any]
) -> None:
    text = UNPRICED.format(id="mini") + LITELLM_MODEL.format("openai/gpt-4o-mini")
    entry = load_catalogue(write_catalogue(text)).get("mini")
    assert entry.litellm_model == "openai/gpt-4o-mini"
    assert entry.price_source == "litellm:gpt-4o-mini"
    assert entry.output_per_mtok == pytest.approx(price_json["gpt-4o-mini"]["output_cost_per_token"] * 1e6)


def test_price_key_prices_a_model_from_another_key(
    write_catalogue: Callable[..., Path], price_json: dict[str, Any]
) -> None:
    key = "anthropic.claude-3-5-haiku-20241022-v1:0"
    text = (
        UNPRICED.format(id="haiku")
        + LITELLM_MODEL.format("anthropic/claude-3-5-haiku-20241022")
        + f'price_key = "{key}"\n'
    )
    entry = load_catalogue(write_catalogue(text)).get("haiku")
    assert entry.litellm_model == "anthropic/claude-3-5-haiku-20241022"
    assert entry.price_source == f"litellm:{key}"
    assert entry.input_per_mtok == pytest.approx(price_json[key]["input_cost_per_token"] * 1e6)


def test_catalogue_prices_win(write_catalogue: Callable[..., Path], price_json: dict[str, Any]) -> None:
    raw = price_json["gpt-4o"]
    both = UNPRICED.format(id="both") + LITELLM_MODEL.format("gpt-4o")
    both += "input_per_mtok = 1.5\noutput_per_mtok = 6\ncontext_window = 1000\n"
    partial = UNPRICED.format(id="partial") + LITELLM_MODEL.format("gpt-4o") + "output_per_mtok = 7.0\n"
    cat = load_catalogue(write_catalogue(both + partial))
    entry = cat.get("both")
    assert (entry.input_per_mtok, entry.output_per_mtok, entry.context_window) == (1.5, 6.0, 1000)
    assert entry.cached_input_per_mtok == 1.5  # no cached price set: the input price
    assert entry.price_source == "catalogue"
    entry = cat.get("partial")
    assert entry.output_per_mtok == 7.0
    assert entry.input_per_mtok == pytest.approx(raw["input_cost_per_token"] * 1e6)
    assert entry.cached_input_per_mtok == pytest.approx(raw["cache_read_input_token_cost"] * 1e6)
    assert entry.context_window == raw["max_input_tokens"]
    assert entry.price_source == "litellm:gpt-4o"


def test_no_cache_price_in_the_map_means_the_input_price(write_catalogue: Callable[..., Path]) -> None:
    entry = load_catalogue(write_catalogue(UNPRICED.format(id="gpt-4-turbo"))).get("gpt-4-turbo")
    assert entry.cached_input_per_mtok == entry.input_per_mtok > 0


def test_context_window_from_the_map_unless_set(write_catalogue: Callable[..., Path]) -> None:
    text = UNPRICED.format(id="gpt-4.1-mini") + "context_window = 32000\n"
    assert load_catalogue(write_catalogue(text)).get("gpt-4.1-mini").context_window == 32000


def test_unknown_to_litellm_without_prices_is_unpriced(write_catalogue: Callable[..., Path]) -> None:
    text = UNPRICED.format(id="acme-9000") + "context_window = 8192\n"
    entry = load_catalogue(write_catalogue(text)).get("acme-9000")
    assert (entry.priced, entry.free, entry.price_source) == (False, False, "unpriced")
    assert (entry.input_per_mtok, entry.output_per_mtok) == (0.0, 0.0)


def test_one_price_left_out_is_unpriced(write_catalogue: Callable[..., Path]) -> None:
    text = UNPRICED.format(id="acme-9000") + "context_window = 8192\ninput_per_mtok = 1.0\n"
    assert load_catalogue(write_catalogue(text)).get("acme-9000").priced is False


def test_free_needs_no_prices_and_costs_nothing(write_catalogue: Callable[..., Path]) -> None:
    text = UNPRICED.format(id="acme-9000") + "context_window = 8192\nfree = true\n"
    entry = load_catalogue(write_catalogue(text)).get("acme-9000")
    assert (entry.priced, entry.free, entry.price_source) == (True, True, "free")
    assert entry.cost_usd(1000, 1000) == 0.0


def test_unknown_price_key_leaves_the_model_unpriced(write_catalogue: Callable[..., Path]) -> None:
    text = UNPRICED.format(id="gpt-4o") + 'price_key = "no-such-key"\ncontext_window = 8192\n'
    assert load_catalogue(write_catalogue(text)).get("gpt-4o").priced is False


def test_unknown_price_key_without_context_window(
    write_catalogue: Callable[..., Path], assert_names: Callable[..., None]
) -> None:
    path = write_catalogue(UNPRICED.format(id="gpt-4o") + 'price_key = "no-such-key"\n')
    with pytest.raises(CatalogueError, match=r"'no-such-key' \(price_key\)") as info:
        load_catalogue(path)
    assert_names(info.value, path, "gpt-4o", "context_window")


def test_features_come_from_the_map_under_each_providers_model(write_catalogue: Callable[..., Path]) -> None:
    text = (
        UNPRICED.format(id="gpt-4o") + 'litellm_model = "gpt-4o"\n'
        '[[models.providers]]\nid = "openai"\ntype = "primary"\n'
        '[[models.providers]]\nid = "local"\ntype = "backup"\nlitellm_model = "openai/local-model"\n'
        "supports_vision = false\nmax_output_tokens = 1024\n"
    )
    entry = load_catalogue(write_catalogue(text)).get("gpt-4o")
    primary, local = entry.providers
    assert (primary.features.vision, primary.features.function_calling) == (True, True)
    assert primary.features.max_output_tokens is not None and primary.features.max_output_tokens > 1024
    assert (
        entry.features == primary.features and entry.max_output_tokens == primary.features.max_output_tokens
    )
    # the backup's own keys win; what it leaves out falls back to the model's map entry
    assert (local.features.vision, local.features.max_output_tokens, local.features.function_calling) == (
        False,
        1024,
        True,
    )


def test_catalogue_feature_keys_win_over_the_map(write_catalogue: Callable[..., Path]) -> None:
    text = UNPRICED.format(id="gpt-4o") + "supports_function_calling = false\nreasoning = true\n"
    features = load_catalogue(write_catalogue(text)).get("gpt-4o").features
    assert (features.function_calling, features.reasoning, features.vision) == (False, True, True)


def test_missing_context_window(
    write_catalogue: Callable[..., Path], assert_names: Callable[..., None]
) -> None:
    text = UNPRICED.format(id="acme-9000") + "input_per_mtok = 1\noutput_per_mtok = 1\n"
    path = write_catalogue(text)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    assert_names(info.value, path, "acme-9000", "context_window")


def test_lookup_ignores_unusable_values() -> None:
    price_map = {
        "a": {"input_cost_per_token": None, "output_cost_per_token": "free", "max_input_tokens": "many"},
        "b": {"input_cost_per_token": 1e-06, "output_cost_per_token": True, "max_input_tokens": 4096},
    }
    a = lookup(price_map, "host/a")
    assert a is not None and a.key == "a"
    assert (a.input_per_mtok, a.output_per_mtok, a.cached_input_per_mtok, a.context_window) == (
        None,
        None,
        None,
        None,
    )
    b = lookup(price_map, "b")
    assert b is not None
    assert (b.input_per_mtok, b.output_per_mtok, b.context_window) == (1.0, None, 4096)
    assert lookup(price_map, "c") is None


def test_a_fully_priced_catalogue_loads_without_litellm(
    write_catalogue: Callable[..., Path], model: str
) -> None:
    path = write_catalogue(model)
    code = (
        "import sys\n"
        "sys.modules['litellm'] = None  # as if litellm were not installed\n"
        "from models_registry import load_catalogue\n"
        f"entry = next(iter(load_catalogue({str(path)!r}).models.values()))\n"
        "assert entry.priced and entry.features.vision is None, entry\n"
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=repo
    )
    assert result.returncode == 0, result.stderr

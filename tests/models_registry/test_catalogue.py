from collections.abc import Callable
from pathlib import Path

import pytest

from models_registry import Catalogue, CatalogueError, UnknownModelError, load_catalogue

SMALL_ALIASES = 'aliases = ["acme-small-2024-01-01", "Acme-Small"]\n'
LARGE = """
[[models]]
id = "acme-large"
owned_by = "acme"
enabled = false
input_per_mtok = 10
output_per_mtok = 30
context_window = 32768
aliases = ["acme-large-v1"]
quality_priors = { default = 0.8 }
"""


@pytest.fixture
def cat(write_catalogue: Callable[..., Path], model: str) -> Catalogue:
    return load_catalogue(write_catalogue(model + SMALL_ALIASES + LARGE))


def test_get(cat: Catalogue) -> None:
    assert cat.get("acme-large").id == "acme-large"
    assert cat.get("acme-large") is cat.models["acme-large"]


def test_get_unknown_names_it_and_suggests_close_ids(cat: Catalogue) -> None:
    with pytest.raises(UnknownModelError) as info:
        cat.get("acme-smal")
    message = str(info.value)
    assert "'acme-smal'" in message
    assert "did you mean 'acme-small'" in message
    assert info.value.model_id == "acme-smal"
    assert info.value.suggestions[0] == "acme-small"
    assert str(cat.source) not in message  # a message that may reach an API client
    assert isinstance(info.value, KeyError) and isinstance(info.value, CatalogueError)


def test_get_unknown_without_close_match(cat: Catalogue) -> None:
    with pytest.raises(KeyError, match="unknown model 'zzz'$"):
        cat.get("zzz")


def test_by_alias(cat: Catalogue) -> None:
    assert cat.by_alias("acme-small-2024-01-01") == "acme-small"
    assert cat.by_alias("Acme-Small") == "acme-small"
    assert cat.by_alias("acme-large-v1") == "acme-large"
    assert cat.by_alias("acme-large") == "acme-large"  # an id is its own name
    assert cat.by_alias("acme-small-2023") is None
    assert cat.by_alias("acme-SMALL") is None  # exact names only


def test_enabled_keeps_file_order_and_skips_disabled(cat: Catalogue) -> None:
    assert list(cat.models) == ["acme-small", "acme-large"]
    assert [entry.id for entry in cat.enabled()] == ["acme-small"]

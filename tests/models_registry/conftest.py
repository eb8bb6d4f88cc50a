"""Fixtures: catalogues written to real files under tmp_path, and a check of error messages.

Shared through fixtures, not imports, so that these tests run under any pytest import mode.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from models_registry import CatalogueError

# The package is not installed in the venv and pytest's config has no `pythonpath = ["."]` (yet):
# put the repo root first on sys.path so that `import models_registry` finds this checkout.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

# One valid model priced entirely in the catalogue (litellm's price map is not needed for it).
MODEL = """
[[models]]
id = "acme-small"
owned_by = "acme"
input_per_mtok = 1.0
output_per_mtok = 2.0
context_window = 8192
quality_priors = { default = 0.5 }
"""

WriteCatalogue = Callable[..., Path]
AssertNames = Callable[["CatalogueError", Path, "str | None", "str | None"], None]


@pytest.fixture
def model() -> str:
    """TOML of one valid [[models]] table priced in the catalogue (keys may be appended to it)."""
    return MODEL


@pytest.fixture
def write_catalogue(tmp_path: Path) -> WriteCatalogue:
    """write_catalogue(text, name="catalogue.toml") -> the path of a file holding the dedented text."""

    def write(text: str, name: str = "catalogue.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


def _assert_names(error: CatalogueError, path: Path, entry: str | None, field: str | None) -> None:
    message = str(error)
    assert str(path) in message
    assert error.path == str(path)
    if entry is not None:
        assert entry in message
        assert error.entry == entry
    if field is not None:
        assert field in message
        assert error.field == field


@pytest.fixture
def assert_names() -> AssertNames:
    """assert_names(error, path, entry, field): the message names the file, the entry and the field
    (None: not checked), and the error's attributes carry them."""
    return _assert_names

import subprocess
import sys
from pathlib import Path

import models_registry


def test_all_is_exactly_the_public_api() -> None:
    assert models_registry.__all__ == [
        "CAPABILITIES",
        "CUSTOM_PREFIX",
        "Catalogue",
        "CatalogueError",
        "Features",
        "ModelEntry",
        "Provider",
        "UnknownModelError",
        "default_catalogue_path",
        "load_catalogue",
        "load_entry",
    ]
    for name in models_registry.__all__:
        assert getattr(models_registry, name) is not None


def test_capabilities() -> None:
    assert models_registry.CAPABILITIES == (
        "code",
        "math",
        "reasoning",
        "knowledge",
        "writing",
        "chat",
        "extraction",
    )


def test_error_hierarchy() -> None:
    assert issubclass(models_registry.UnknownModelError, models_registry.CatalogueError)
    assert issubclass(models_registry.UnknownModelError, KeyError)


def test_ships_py_typed_and_the_default_catalogue() -> None:
    package = Path(models_registry.__file__).parent
    assert (package / "py.typed").is_file()
    assert models_registry.default_catalogue_path() == package / "catalogue.toml"
    assert models_registry.default_catalogue_path().is_file()


def test_neither_import_nor_loading_imports_litellm() -> None:
    code = (
        "import sys\n"
        "import models_registry\n"
        "from models_registry import _prices\n"
        "assert _prices.litellm_price_map.cache_info().currsize == 0, 'price map read at import'\n"
        "models_registry.load_catalogue()\n"
        "assert _prices.litellm_price_map.cache_info().currsize == 1\n"
        "leaked = sorted(m for m in sys.modules if m == 'litellm' or m.startswith('litellm.'))\n"
        "assert not leaked, leaked\n"
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=repo
    )
    assert result.returncode == 0, result.stderr

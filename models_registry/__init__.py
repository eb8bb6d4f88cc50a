"""The model catalogue: which models exist, what they cost, how to reach them, how good they are.

    from models_registry import load_catalogue
    cat = load_catalogue()                  # the built-in models_registry/catalogue.toml
    cat = load_catalogue("my.toml")         # a catalogue of your own, same format
    entry = cat.get("gpt-4o-mini")          # ModelEntry; UnknownModelError if absent
    entry.cost_usd(1200, entry.expected_output_tokens)
    cat.by_alias("gpt-4o-mini-2024-07-18")  # "gpt-4o-mini": outcome-data name -> id
    load_entry({"id": "pureai/x", ...})     # one [[models]] table, checked and priced the same way

The file format is documented at the top of `catalogue.toml`. Prices left out of a file come from
litellm's bundled price map, read as a JSON file; litellm itself is never imported.
"""

from ._catalogue import Catalogue
from ._entry import CAPABILITIES, CUSTOM_PREFIX, Features, ModelEntry, Provider
from ._load import default_catalogue_path, load_catalogue, load_entry
from .errors import CatalogueError, UnknownModelError

__all__ = [
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

"""`load_catalogue`: a catalogue TOML file -> a checked, fully priced `Catalogue`.

Steps: read and parse the file, check each `[[models]]` table, check ids across tables, fill
prices and context windows left unset from litellm's price map (read only if needed), build the
`Catalogue`. Any failure raises `CatalogueError` before anything is returned.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

from . import _prices
from ._catalogue import Catalogue
from ._entry import Features, ModelEntry, Provider
from ._validate import EntrySpec, check_no_secrets, entry_label, validate_entry
from .errors import CatalogueError

__all__ = ["default_catalogue_path", "load_catalogue", "load_entry"]

_TOP_LEVEL_KEYS = frozenset({"models"})


def default_catalogue_path() -> Path:
    """The built-in catalogue shipped with the package."""
    return Path(__file__).resolve().with_name("catalogue.toml")


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """Load, check and price a catalogue file (the built-in one when `path` is None)."""
    source = Path(path) if path is not None else default_catalogue_path()
    document = _read(source)
    specs = _validate_all(document, source)
    price_map = _price_map_if_needed(specs, source)
    entries = [_priced(spec, price_map, source) for spec in specs]
    return Catalogue(models={entry.id: entry for entry in entries}, source=source)


def load_entry(table: dict[str, Any], source: str | os.PathLike[str] | None = None) -> ModelEntry:
    """One `[[models]]` table (as TOML would give it) -> a checked, priced `ModelEntry`, by the same
    checks and pricing as a table of a catalogue file. `source` names where it came from in a
    `CatalogueError` (the gateway's admin API builds its `pureai/` deployments this way)."""
    where = Path(source) if source is not None else None
    spec = validate_entry(table, 0, where)
    return _priced(spec, _price_map_if_needed([spec], where), where)


def _read(source: Path) -> dict[str, Any]:
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise CatalogueError("catalogue file not found", path=source) from None
    except OSError as exc:
        raise CatalogueError(f"cannot read the catalogue file: {exc.strerror or exc}", path=source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"not UTF-8 text: {exc}", path=source) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"TOML syntax error: {exc}", path=source) from None


def _validate_all(document: dict[str, Any], source: Path) -> list[EntrySpec]:
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            check_no_secrets({key: document[key]}, source, None)
            raise CatalogueError(
                f"unknown top-level key {key!r}; models are [[models]] tables", path=source, field=key
            )
    models = document.get("models")
    if not isinstance(models, list) or not models:
        raise CatalogueError("no [[models]] tables", path=source, field="models")
    specs: list[EntrySpec] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(models):
        spec = validate_entry(raw, index, source)
        if spec.id in first_index:
            raise CatalogueError(
                f"duplicate id (models[{index}] repeats models[{first_index[spec.id]}])",
                path=source,
                entry=entry_label(raw, index),
                field="id",
            )
        first_index[spec.id] = index
        specs.append(spec)
    return specs


_LITELLM_FIELDS = ("input_per_mtok", "output_per_mtok", "context_window")


def _needs_price_map(spec: EntrySpec) -> bool:
    if spec.free:
        return spec.context_window is None
    return any(getattr(spec, name) is None for name in _LITELLM_FIELDS)


def _price_map_if_needed(specs: list[EntrySpec], source: Path | None) -> dict[str, Any] | None:
    """litellm's map: required when some entry leaves a price or context window to it, else read
    if it can be (for the features it knows), else None."""
    needy = next((spec for spec in specs if _needs_price_map(spec)), None)
    try:
        return _prices.litellm_price_map()
    except (OSError, ValueError) as exc:
        if needy is None:
            return None
        unset = [name for name in _LITELLM_FIELDS if getattr(needy, name) is None]
        raise CatalogueError(
            f"not set in the catalogue, and litellm's price map cannot be read ({exc})",
            path=source,
            entry=needy.id,
            field=unset[0],
        ) from None


def _priced(spec: EntrySpec, price_map: dict[str, Any] | None, source: Path | None) -> ModelEntry:
    """Fill what the entry leaves unset from litellm; an entry with both prices set is all-catalogue.
    A price neither gives leaves the entry unpriced (`priced=False`, prices 0); a free entry costs 0."""
    found: _prices.LitellmPrices | None = None
    key = spec.price_key or spec.litellm_model
    if price_map is not None:
        found = _prices.lookup(price_map, key)
    if spec.context_window is None and (found is None or found.context_window is None):
        where = f"{key!r}" + (" (price_key)" if spec.price_key else "")
        why = "is not in litellm's price map" if found is None else "has no usable value for it there"
        raise CatalogueError(
            f"not set in the catalogue, and {where} {why}; set context_window in the catalogue "
            "or price_key to a litellm price map key",
            path=source,
            entry=spec.id,
            field="context_window",
        )
    context_window = _first(spec.context_window, found, "context_window")
    if spec.free:
        input_price = output_price = cached_price = 0.0
        price_source = "free"
    else:
        from_litellm = spec.input_per_mtok is None or spec.output_per_mtok is None
        priced_by = found if from_litellm else None  # an all-catalogue price keeps litellm out
        input_price = _first(spec.input_per_mtok, priced_by, "input_per_mtok")
        output_price = _first(spec.output_per_mtok, priced_by, "output_per_mtok")
        cached_price = _first(spec.cached_input_per_mtok, priced_by, "cached_input_per_mtok")
        if cached_price is None:  # no cache discount known: cached tokens cost what input tokens cost
            cached_price = input_price
        price_source = f"litellm:{priced_by.key}" if priced_by is not None else "catalogue"
    priced = spec.free or (input_price is not None and output_price is not None)
    if not priced:
        price_source = "unpriced"
    providers = tuple(_with_features(spec, p, price_map) for p in spec.providers)
    primary = next((p for p in providers if p.type == "primary"), None)
    return ModelEntry(
        id=spec.id,
        owned_by=spec.owned_by,
        litellm_model=spec.litellm_model,
        context_window=int(context_window),
        input_per_mtok=float(input_price or 0.0),
        output_per_mtok=float(output_price or 0.0),
        cached_input_per_mtok=float(cached_price or 0.0),
        quality_priors=spec.quality_priors,
        enabled=spec.enabled,
        aliases=spec.aliases,
        providers=providers,
        api_base=spec.api_base,
        api_key_env=spec.api_key_env,
        price_source=price_source,
        expected_output_tokens=spec.expected_output_tokens,
        reasoning_tokens=spec.reasoning_tokens,
        free=spec.free,
        priced=priced,
        features=primary.features if primary is not None else spec.features,
        like=spec.like,
        like_offset=spec.like_offset,
        prior_source=spec.prior_source,
    )


def _with_features(spec: EntrySpec, provider: Provider, price_map: dict[str, Any] | None) -> Provider:
    """The provider with what its model accepts there: the provider's own keys, then the model's,
    then litellm's map under the provider's model string, then under the model's."""
    layers: list[Any] = [provider.features, spec.features]
    if price_map is not None:
        own = provider.litellm_model or spec.litellm_model
        for name in dict.fromkeys((own, spec.price_key or spec.litellm_model)):
            found = _prices.lookup(price_map, name)
            if found is not None:
                layers.append(found)

    def first(name: str) -> Any:
        return next((v for layer in layers if (v := getattr(layer, name)) is not None), None)

    features = Features(
        vision=first("vision"),
        function_calling=first("function_calling"),
        response_schema=first("response_schema"),
        max_output_tokens=first("max_output_tokens"),
        reasoning=first("reasoning"),
    )
    return dataclasses.replace(provider, features=features)


def _first(own: Any, found: _prices.LitellmPrices | None, field: str) -> Any:
    """The catalogue's value if set, else litellm's (None if neither has one)."""
    if own is not None or found is None:
        return own
    return getattr(found, field)

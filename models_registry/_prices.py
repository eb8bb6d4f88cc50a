"""Prices, context windows and features (vision, tools, ...) from litellm's bundled price map, read as a JSON file.

litellm is never imported (that takes seconds and may fetch prices over the network): the package
is only located with `importlib.util.find_spec`, and its `model_prices_and_context_window_backup.json`
is read once, on first use, when some catalogue entry leaves a price or context window unset.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PRICE_MAP_FILE", "LitellmPrices", "litellm_price_map", "litellm_price_map_path", "lookup"]

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True)
class LitellmPrices:
    """What the price map says about one key; None where it says nothing usable."""

    key: str
    input_per_mtok: float | None
    output_per_mtok: float | None
    cached_input_per_mtok: float | None
    context_window: int | None
    vision: bool | None = None
    function_calling: bool | None = None
    response_schema: bool | None = None
    max_output_tokens: int | None = None
    reasoning: bool | None = None


def litellm_price_map_path() -> Path | None:
    """The price map file of the installed litellm, or None if litellm is not installed."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_MAP_FILE
    return path if path.is_file() else None


@functools.cache
def litellm_price_map() -> dict[str, Any]:
    """The parsed price map (read once per process); `OSError`/`ValueError` if it cannot be read."""
    path = litellm_price_map_path()
    if path is None:
        raise FileNotFoundError(f"litellm's {PRICE_MAP_FILE} was not found (is litellm installed?)")
    with path.open("rb") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def lookup(price_map: dict[str, Any], litellm_model: str) -> LitellmPrices | None:
    """The map's entry for `litellm_model` as is, else without its `provider/` prefix, else None."""
    candidates = [litellm_model]
    if "/" in litellm_model:
        candidates.append(litellm_model.split("/", 1)[1])
    for key in candidates:
        raw = price_map.get(key)
        if isinstance(raw, dict):
            return LitellmPrices(
                key=key,
                input_per_mtok=_per_mtok(raw.get("input_cost_per_token")),
                output_per_mtok=_per_mtok(raw.get("output_cost_per_token")),
                cached_input_per_mtok=_per_mtok(raw.get("cache_read_input_token_cost")),
                context_window=_positive_int(raw.get("max_input_tokens")),
                vision=_flag(raw.get("supports_vision")),
                function_calling=_flag(raw.get("supports_function_calling")),
                response_schema=_flag(raw.get("supports_response_schema")),
                max_output_tokens=_positive_int(raw.get("max_output_tokens") or raw.get("max_tokens")),
                reasoning=_flag(raw.get("supports_reasoning")),
            )
    return None


def _per_mtok(per_token: object) -> float | None:
    """USD per token -> USD per 1M tokens, rounded off float noise (2.5e-07 * 1e6 = 0.25)."""
    if isinstance(per_token, bool) or not isinstance(per_token, int | float):
        return None
    value = float(per_token)
    if not math.isfinite(value) or value < 0:
        return None
    return round(value * 1_000_000, 9)


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if value >= 1 and float(value).is_integer() else None

"""One `[[models]]` table of a catalogue file -> an `EntrySpec` (checked, not yet priced).

Every check raises `CatalogueError` naming the file, the entry (its id, or `models[i]` counted from
0 when the id is unusable) and the field.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._entry import CAPABILITIES, CUSTOM_PREFIX, Features, Provider
from .errors import CatalogueError

__all__ = [
    "FEATURE_KEYS",
    "MODEL_KEYS",
    "PROVIDER_KEYS",
    "EntrySpec",
    "check_no_secrets",
    "entry_label",
    "validate_entry",
]

MODEL_KEYS = frozenset(
    {
        "id", "owned_by", "litellm_model", "price_key", "context_window", "input_per_mtok",
        "output_per_mtok", "cached_input_per_mtok", "enabled", "quality_priors", "aliases",
        "providers", "api_base", "api_key_env", "expected_output_tokens", "reasoning_tokens", "free", "reasoning",
        "max_output_tokens", "supports_vision", "supports_function_calling", "supports_response_schema",
        "like", "like_offset", "prior_source",
    }
)  # fmt: skip
FEATURE_KEYS = (
    "supports_vision",
    "supports_function_calling",
    "supports_response_schema",
    "max_output_tokens",
)
"""Keys of a model or provider table that say what it accepts (over litellm's map)."""
PROVIDER_KEYS = frozenset(
    {"id", "type", "enabled", "params", "litellm_model", "api_base", "api_key_env", *FEATURE_KEYS}
)
PROVIDER_TYPES = ("primary", "backup")
DEFAULT_PRIOR_KEY = "default"
DEFAULT_EXPECTED_OUTPUT_TOKENS = 400

_SECRET_KEYS = frozenset({"api_key", "apikey", "api-key", "secret", "secret_key", "password", "token"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SECRET_PARAM = re.compile(
    r"(?:^|[-_])(?:key|apikey|token|secret|password|passwd|sig|signature|credentials?)$|^(?:auth|code)$",
    re.IGNORECASE,
)
"""Query parameter names that carry a credential: key, api_key, api-key, access_token, sig, ..."""


@dataclass(frozen=True)
class EntrySpec:
    """A checked `[[models]]` table; None marks a price or context window left to litellm."""

    id: str
    owned_by: str
    litellm_model: str
    price_key: str | None
    context_window: int | None
    input_per_mtok: float | None
    output_per_mtok: float | None
    cached_input_per_mtok: float | None
    enabled: bool
    quality_priors: dict[str, float]
    aliases: tuple[str, ...]
    providers: tuple[Provider, ...]
    api_base: str | None
    api_key_env: str | None
    expected_output_tokens: int
    free: bool = False
    reasoning_tokens: int = 0
    features: Features = Features()
    """What the table itself says the model accepts (None where it says nothing)."""
    like: str | None = None
    like_offset: float = 0.0
    prior_source: str | None = None


class _Fields:
    """Typed reads of one table, each failing with file + entry + field in the message."""

    def __init__(self, table: dict[str, Any], path: Path | None, entry: str, prefix: str = "") -> None:
        self.table, self.path, self.entry, self.prefix = table, path, entry, prefix

    def fail(self, field: str, message: str) -> CatalogueError:
        return CatalogueError(message, path=self.path, entry=self.entry, field=self.prefix + field)

    def check_keys(self, allowed: frozenset[str]) -> None:
        for key in self.table:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(allowed))}"
                raise self.fail(key, f"unknown key {key!r}; {hint}")

    def get(self, key: str, kind: type | tuple[type, ...], what: str, required: bool = False) -> Any:
        if key not in self.table:
            if required:
                raise self.fail(key, f"is required ({what})")
            return None
        value = self.table[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(key, f"expected {what}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(key, f"expected {what}, got {_type_name(value)} {value!r}")
        return value

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.get(key, str, "a string", required)
        if value is not None and not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, bool, "true or false")
        return default if value is None else value

    def count(self, key: str) -> int | None:
        value = self.get(key, int, "a positive integer")
        if value is not None and value < 1:
            raise self.fail(key, f"expected a positive integer, got {value}")
        return value

    def amount(self, key: str) -> int:
        """An integer >= 0 (default 0)."""
        value = self.get(key, int, "an integer >= 0")
        if value is not None and value < 0:
            raise self.fail(key, f"expected an integer >= 0, got {value}")
        return value or 0

    def price(self, key: str) -> float | None:
        value = self.get(key, (int, float), "a number of USD per 1M tokens")
        if value is not None and (not math.isfinite(value) or value < 0):
            raise self.fail(key, f"must be a finite price >= 0, got {value}")
        return None if value is None else float(value)

    def env_name(self, key: str) -> str | None:
        value = self.text(key)
        if value is not None and not _ENV_NAME.match(value):
            raise self.fail(key, "must be the NAME of an environment variable (like OPENAI_API_KEY), "
                            "not the key itself")  # fmt: skip
        return value


def entry_label(raw: object, index: int) -> str:
    """The model id when it is a usable string, else `models[index]`."""
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip():
        return str(raw["id"])
    return f"models[{index}]"


def check_no_secrets(value: object, path: Path | None, entry: str | None, where: str = "") -> None:
    """Reject any key that would hold a credential: catalogues name env vars, never secrets."""
    for key_path, key in _walk_keys(value, where):
        low = key.lower()
        if low in _SECRET_KEYS or low.endswith(("_api_key", "-api-key", "_secret", "_password")):
            raise CatalogueError(
                "looks like a secret; catalogues never hold credentials: set api_key_env to the NAME "
                "of the environment variable that holds it",
                path=path,
                entry=entry,
                field=key_path,
            )


def validate_entry(raw: object, index: int, path: Path | None) -> EntrySpec:
    label = entry_label(raw, index)
    if not isinstance(raw, dict):
        raise CatalogueError(f"expected a [[models]] table, got {_type_name(raw)}", path=path, entry=label)
    check_no_secrets(raw, path, label)
    f = _Fields(raw, path, label)
    f.check_keys(MODEL_KEYS)
    model_id = f.text("id", required=True)
    assert model_id is not None
    owned_by = f.text("owned_by", required=True)
    assert owned_by is not None
    custom = model_id.startswith(CUSTOM_PREFIX)
    if custom and not model_id[len(CUSTOM_PREFIX) :].strip():
        raise f.fail("id", f"needs a model name after {CUSTOM_PREFIX!r}")
    api_base = _url(f, "api_base")
    if api_base is None and custom:
        raise f.fail("api_base", f"is required for a {CUSTOM_PREFIX} deployment (its OpenAI-compatible URL)")
    default_model = "openai/" + model_id[len(CUSTOM_PREFIX) :] if custom else model_id
    aliases = f.get("aliases", list, "a list of model names") or []
    for i, alias in enumerate(aliases):
        if not isinstance(alias, str) or not alias.strip():
            raise f.fail(f"aliases[{i}]", f"expected a non-empty string, got {alias!r}")
    return EntrySpec(
        id=model_id,
        owned_by=owned_by,
        litellm_model=f.text("litellm_model") or default_model,
        price_key=f.text("price_key"),
        context_window=f.count("context_window"),
        input_per_mtok=f.price("input_per_mtok"),
        output_per_mtok=f.price("output_per_mtok"),
        cached_input_per_mtok=f.price("cached_input_per_mtok"),
        enabled=f.flag("enabled", True),
        quality_priors=_priors(f),
        aliases=tuple(dict.fromkeys(aliases)),
        providers=_providers(f, owned_by),
        api_base=api_base,
        api_key_env=f.env_name("api_key_env"),
        expected_output_tokens=f.count("expected_output_tokens") or DEFAULT_EXPECTED_OUTPUT_TOKENS,
        free=f.flag("free", False),
        reasoning_tokens=f.amount("reasoning_tokens"),
        features=_features(f),
        like=f.text("like"),
        like_offset=_offset(f),
        prior_source=f.text("prior_source"),
    )


def _offset(f: _Fields) -> float:
    """`like_offset`: logits added to the relative's quality, within [-3, 3]."""
    value = f.get("like_offset", (int, float), "a number of logits")
    if value is None:
        return 0.0
    if isinstance(value, bool) or not -3 <= value <= 3:
        raise f.fail("like_offset", f"expected a number of logits in [-3, 3], got {value!r}")
    if f.table.get("like") is None:
        raise f.fail("like_offset", "needs `like`: the model whose quality it shifts")
    return float(value)


def _features(f: _Fields) -> Features:
    """The feature keys a model or provider table sets; None for each it leaves out."""
    return Features(
        vision=f.get("supports_vision", bool, "true or false"),
        function_calling=f.get("supports_function_calling", bool, "true or false"),
        response_schema=f.get("supports_response_schema", bool, "true or false"),
        max_output_tokens=f.count("max_output_tokens"),
        reasoning=f.get("reasoning", bool, "true or false"),
    )


def _priors(f: _Fields) -> dict[str, float]:
    table = f.get("quality_priors", dict, "a table of capability = probability", required=True)
    allowed = (*CAPABILITIES, DEFAULT_PRIOR_KEY)
    for name, value in table.items():
        field = f"quality_priors.{name}"
        if name not in allowed:
            raise f.fail(field, f"unknown capability {name!r}; known: {', '.join(allowed)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise f.fail(field, f"expected a number in [0, 1], got {_type_name(value)} {value!r}")
        if not 0.0 <= value <= 1.0:
            raise f.fail(field, f"must be in [0, 1], got {value}")
    missing = [c for c in CAPABILITIES if c not in table]
    if missing and DEFAULT_PRIOR_KEY not in table:
        raise f.fail("quality_priors", f"missing {', '.join(missing)} (or a {DEFAULT_PRIOR_KEY!r} for them)")
    return {c: float(table.get(c, table.get(DEFAULT_PRIOR_KEY))) for c in CAPABILITIES}


def _providers(f: _Fields, owned_by: str) -> tuple[Provider, ...]:
    items = f.get("providers", list, "an array of [[models.providers]] tables")
    if items is None:
        return (Provider(id=owned_by, type="primary"),)
    if not items:
        raise f.fail("providers", "must not be empty (leave it out for a single primary provider)")
    providers: list[Provider] = []
    for j, item in enumerate(items):
        if not isinstance(item, dict):
            raise f.fail(f"providers[{j}]", f"expected a table, got {_type_name(item)}")
        p = _Fields(item, f.path, f.entry, prefix=f"providers[{j}].")
        p.check_keys(PROVIDER_KEYS)
        provider_id = p.text("id", required=True)
        kind = p.text("type", required=True)
        if kind not in PROVIDER_TYPES:
            raise p.fail("type", f"must be 'primary' or 'backup', got {kind!r}")
        if any(q.id == provider_id for q in providers):
            raise p.fail("id", f"duplicate provider id {provider_id!r}")
        params = p.get("params", dict, "a table") or {}
        _check_plain_data(params, p, "params")
        providers.append(
            Provider(
                id=str(provider_id),
                type="primary" if kind == "primary" else "backup",
                enabled=p.flag("enabled", True),
                params=params,
                litellm_model=p.text("litellm_model"),
                api_base=_url(p, "api_base"),
                api_key_env=p.env_name("api_key_env"),
                features=_features(p),
            )
        )
    primaries = [q.id for q in providers if q.type == "primary"]
    if len(primaries) > 1:
        raise f.fail("providers", f"more than one primary provider: {', '.join(map(repr, primaries))}")
    if not primaries:
        raise f.fail("providers", "needs one provider with type = 'primary'")
    return tuple(providers)


def _url(f: _Fields, key: str) -> str | None:
    """An http(s) URL without credentials: no `user:password@` and no query parameter named like a
    key (`?key=`, `?api_key=`, `?token=`, ...). A URL is shown by GET /v1/admin/deployments, kept in
    files that go into version control and logged; the key belongs in the variable `api_key_env`
    names. The message never repeats the credential."""
    url = f.text(key)
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise f.fail(key, f"must be an http:// or https:// URL, got {url!r}")
        if "@" in parts.netloc:
            raise f.fail(key, "must not hold credentials (user:password@host): set api_key_env to the "
                         "NAME of the environment variable that holds the key")  # fmt: skip
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            if _SECRET_PARAM.search(name):
                raise f.fail(key, f"must not hold credentials (the query parameter {name!r}): set "
                             "api_key_env to the NAME of the environment variable that holds the key")  # fmt: skip
    return url


def _check_plain_data(value: object, f: _Fields, where: str) -> None:
    """params must survive JSON (the `GET /v1/providers` answer): no TOML dates or times."""
    if isinstance(value, datetime.date | datetime.time):
        raise f.fail(where, "dates and times are not allowed here (use a string)")
    if isinstance(value, float) and not math.isfinite(value):
        raise f.fail(where, "inf and nan are not allowed here")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain_data(item, f, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain_data(item, f, f"{where}[{i}]")


def _walk_keys(value: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            key_path = f"{where}.{key}" if where else str(key)
            yield key_path, str(key)
            yield from _walk_keys(item, key_path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk_keys(item, f"{where}[{i}]")


def _type_name(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array",
             dict: "a table"}  # fmt: skip
    return names.get(type(value), type(value).__name__)

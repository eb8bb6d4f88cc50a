"""`pureai/<name>` deployments registered at run time through the admin API, beside the catalogue's.

    POST   /v1/admin/deployments        {"id", "api_base", "input_per_mtok", "output_per_mtok", "api_key", ...}
    GET    /v1/admin/deployments
    DELETE /v1/admin/deployments/{id}

A deployment gives both prices, or says `"free": true`: one left unpriced would cost $0 in the
router's cost term and win most decisions, so it is refused with a 400 naming the missing price.
A deployment is kept in the store as its `[[models]]` table in the catalogue file's format, with the
API keys given with it beside the table (never in it, never in an answer). It becomes a `ModelEntry`
through `models_registry.load_entry`, the catalogue loader's own checks and pricing, and joins the
catalogue's models: the executor calls its `api_base` as it calls a `pureai/` model of the file,
GET /v1/models and /v1/providers list it, the router may choose it.

Each worker re-reads the registered deployments from the store when its view is older than
`PUREAI_DEPLOYMENT_CACHE_S` (2 s), at the next authenticated request, as keys are re-read; the
worker that registers or removes one re-reads at once. A store that cannot be read leaves the last
view in place. A stored deployment that no longer builds (its id now in the catalogue file) is left
out and logged.

Its endpoints pass the gateway's SSRF policy (service/ssrf.py): no `user:password@`, and no private,
loopback, link-local or metadata address (a literal one, in any spelling, or one its host name
resolves to) unless `PUREAI_ALLOW_PRIVATE_UPSTREAMS` allows it: else a 400 `upstream_not_allowed`
naming the field. Each new view checks the stored ones again and leaves out one now refused.

Its API keys are sealed (service/sealing.py) with `PUREAI_SECRET_KEY` before they reach the store;
without that setting a key is refused (400 naming `api_key`: name a variable with `api_key_env`).
A key an earlier version stored in clear is still used, and logged as such at each new view.
Every key the gateway holds is redacted by value from the logs and from upstream messages relayed
to clients (`logs.hide`): these keys, and the value of every variable an `api_key_env` names.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from models_registry import CUSTOM_PREFIX, Catalogue, CatalogueError, ModelEntry, load_entry

from . import logs
from .errors import BadRequest, Conflict
from .sealing import Sealer, SealError, sealed
from .ssrf import Refused, Upstreams
from .store import Deployment, Store, StoreError

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "DEFAULT_QUALITY",
    "Deployments",
    "NewDeployment",
    "catalogue_json",
    "deployment_json",
    "env_credentials",
]

log = logging.getLogger("pureai.service")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}\Z")
"""A deployment's name (the model is `pureai/<name>`): what an OpenAI-compatible server calls it."""
DEFAULT_CONTEXT_WINDOW = 131_072
"""When none is given: large, so that the gateway refuses no prompt the server might take."""
DEFAULT_QUALITY = 0.5
"""The quality prior of every capability when none is given."""
SOURCE = "the deployment"  # where a CatalogueError says the table came from


class NewProvider(BaseModel):
    """Another host of the deployment's model, tried after it (or, with type "primary", before)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100)
    type: Literal["primary", "backup"] = "backup"
    api_base: str | None = Field(None, max_length=2000)
    api_key: str | None = Field(None, min_length=1, max_length=4096)
    api_key_env: str | None = Field(None, max_length=200)
    enabled: bool = True


class NewDeployment(BaseModel):
    """The body of POST /v1/admin/deployments."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    api_base: str = Field(min_length=1, max_length=2000)
    api_key: str | None = Field(None, min_length=1, max_length=4096)
    api_key_env: str | None = Field(None, max_length=200)
    owned_by: str = Field("pureai", min_length=1, max_length=100)
    context_window: int | None = Field(None, ge=1)
    input_per_mtok: float | None = Field(None, ge=0)
    output_per_mtok: float | None = Field(None, ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0)
    free: StrictBool = False
    """Costs nothing, by intent: then no prices are needed (and any given must be 0)."""
    expected_output_tokens: int | None = Field(None, ge=1)
    quality_priors: dict[str, float] | None = None
    providers: list[NewProvider] | None = Field(None, max_length=20)


PRICES = ("input_per_mtok", "output_per_mtok")


def _check_prices(spec: NewDeployment) -> None:
    """Both prices, or `free`: a deployment whose prices were left out would cost $0 and win the
    router's cost term, so it is refused (400 naming the first missing price) rather than priced 0."""
    if spec.free:
        for field in (*PRICES, "cached_input_per_mtok"):
            if getattr(spec, field):
                raise BadRequest(
                    f'{field}: a free deployment costs nothing; leave its prices out, or drop "free"',
                    param=field,
                    code="invalid_value",
                )
        return
    for field in PRICES:
        if getattr(spec, field) is None:
            raise BadRequest(
                f"{field}: a deployment needs both prices in USD per 1M tokens (input_per_mtok and "
                'output_per_mtok), or "free": true for one that costs nothing',
                param=field,
                code="missing_field",
            )


def _table(spec: NewDeployment, model_id: str) -> dict[str, Any]:
    """The deployment as a catalogue `[[models]]` table (its prices checked by `_check_prices`)."""
    table: dict[str, Any] = {
        "id": model_id,
        "owned_by": spec.owned_by,
        "api_base": spec.api_base,
        "context_window": spec.context_window or DEFAULT_CONTEXT_WINDOW,
        "input_per_mtok": 0.0 if spec.free else spec.input_per_mtok,
        "output_per_mtok": 0.0 if spec.free else spec.output_per_mtok,
        "quality_priors": spec.quality_priors or {"default": DEFAULT_QUALITY},
    }
    if spec.free:
        table["free"] = True
    optional = {
        "api_key_env": spec.api_key_env,
        "cached_input_per_mtok": spec.cached_input_per_mtok,
        "expected_output_tokens": spec.expected_output_tokens,
    }
    table.update({k: v for k, v in optional.items() if v is not None})
    if spec.providers:
        providers = [
            {k: v for k, v in p.model_dump(exclude={"api_key"}).items() if v is not None}
            for p in spec.providers
        ]
        if not any(p.type == "primary" for p in spec.providers):  # the deployment's own endpoint
            providers.append({"id": spec.owned_by, "type": "primary"})  # after them: their indexes stay
        table["providers"] = providers
    return table


def _secrets(spec: NewDeployment, entry: ModelEntry) -> dict[str, str]:
    """Provider id -> the API key to send it: its own, else the deployment's (unless it names an
    environment variable of its own), as `api_key_env` is inherited in the catalogue."""
    own = {p.id: p for p in spec.providers or ()}
    out: dict[str, str] = {}
    for provider in entry.providers:
        given = own.get(provider.id)
        key = given.api_key if given is not None else None
        if key is None and provider.api_key_env is None:
            key = spec.api_key
        if key is not None:
            out[provider.id] = key
    return out


def _entry_json(entry: ModelEntry, source: str, secrets: dict[str, str]) -> dict[str, Any]:
    """A `pureai/` model as the deployment API shows it; `secrets` are the keys the store holds
    for it (by provider id), of which only whether one is set."""
    return {
        "id": entry.id.removeprefix(CUSTOM_PREFIX),
        "object": "deployment",
        "model": entry.id,
        "source": source,
        "enabled": entry.enabled,
        "owned_by": entry.owned_by,
        "api_base": entry.api_base,
        "api_key_set": any(secrets.values()),
        "api_key_env": entry.api_key_env,
        "context_window": entry.context_window,
        "input_per_mtok": entry.input_per_mtok,
        "output_per_mtok": entry.output_per_mtok,
        "cached_input_per_mtok": entry.cached_input_per_mtok,
        "free": entry.free,
        "priced": entry.priced,
        "expected_output_tokens": entry.expected_output_tokens,
        "quality_priors": dict(entry.quality_priors),
        "providers": [
            {
                "id": p.id,
                "type": p.type,
                "enabled": p.enabled,
                "api_base": p.api_base or entry.api_base,
                "api_key_set": p.id in secrets,
                "api_key_env": p.api_key_env or entry.api_key_env,
            }
            for p in sorted(entry.providers, key=lambda p: p.type != "primary")
        ],
    }


def deployment_json(deployment: Deployment, entry: ModelEntry) -> dict[str, Any]:
    """The API's view of a registered deployment: everything but its keys, of which only whether
    one is set."""
    return {**_entry_json(entry, "registered", deployment.secrets), "created": int(deployment.created)}


def catalogue_json(entry: ModelEntry) -> dict[str, Any]:
    """The same view of a `pureai/` model of the catalogue file (`"source": "catalogue"`): its keys
    come from the environment (`api_key_env`), the store holds none, and it has no `created`."""
    return {**_entry_json(entry, "catalogue", {}), "created": None}


def _endpoints(spec: NewDeployment) -> list[tuple[str, str]]:
    """(field, URL) of each endpoint a request gives."""
    out = [("api_base", spec.api_base)]
    out += [
        (f"providers[{i}].api_base", p.api_base) for i, p in enumerate(spec.providers or ()) if p.api_base
    ]
    return out


def _refused(field: str, exc: Refused) -> BadRequest:
    return BadRequest(f"{field}: {exc}", param=field, code="upstream_not_allowed")


def env_credentials(models: Iterable[ModelEntry]) -> list[str]:
    """The values of the environment variables the models' `api_key_env`s name, set or not."""
    names = set()
    for entry in models:
        names.add(entry.api_key_env)
        names.update(p.api_key_env for p in entry.providers)
    return [value for name in names if name and (value := os.environ.get(name))]


def _bad(exc: CatalogueError) -> BadRequest:
    """A registry check's failure as a 400 naming the field of the request."""
    field = exc.field or "id"
    return BadRequest(f"{field}: {exc.reason}", param=field, code="invalid_value")


class Deployments:
    """One worker's view of the registered deployments, and the catalogue they make with the file's.

    `on_change(catalogue, credentials)` hears every new view: the file's models and the registered
    ones, and the API keys by "<model id>/<provider id>". `upstreams` is the SSRF policy (None: none,
    for tests of other parts); `sealer` seals API keys for the store (None: keys are refused)."""

    def __init__(
        self,
        base: Catalogue,
        store: Store,
        cache_s: float,
        on_change: Callable[[Catalogue, dict[str, str]], None],
        *,
        upstreams: Upstreams | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.base = base
        self.store = store
        self.cache_s = cache_s
        self._on_change = on_change
        self.upstreams = upstreams
        self.sealer = sealer
        logs.hide(env_credentials(base.models.values()))  # the provider keys the file's models name
        self.registered: list[Deployment] = []
        self.entries: dict[str, ModelEntry] = {}
        self._read_at = -float("inf")  # monotonic time of the last read of the store
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls,
        base: Catalogue,
        store: Store,
        settings: Settings,
        on_change: Callable[[Catalogue, dict[str, str]], None],
    ) -> Deployments:
        """The gateway's: the SSRF policy from `allow_private_upstreams`, trusting the endpoints
        of `base` (the operator's file), and keys sealed with `secret_key`."""
        return cls(
            base,
            store,
            settings.deployment_cache_s,
            on_change,
            upstreams=Upstreams.parse(settings.allow_private_upstreams).trusting(base),
            sealer=Sealer.from_setting(settings.secret_key),
        )

    def build(self, spec: NewDeployment) -> tuple[Deployment, ModelEntry]:
        """A new deployment from a request, checked as a catalogue entry; BadRequest (400) for a bad
        field, Conflict (409) `model_exists` for a name the catalogue file already has."""
        if spec.id.startswith(CUSTOM_PREFIX):
            spec = spec.model_copy(update={"id": spec.id.removeprefix(CUSTOM_PREFIX)})
        if not NAME.match(spec.id):
            raise BadRequest(
                "id: a deployment's name is 1-100 letters, digits, '.', '_', ':' or '-', starting with "
                f"a letter or a digit (the model is then {CUSTOM_PREFIX}<id>); got {spec.id!r}",
                param="id",
                code="invalid_value",
            )
        model_id = CUSTOM_PREFIX + spec.id
        providers = spec.providers or []
        if not any(p.type == "primary" for p in providers):
            for i, provider in enumerate(providers):
                if provider.id == spec.owned_by:
                    raise BadRequest(
                        f"providers[{i}].id: {provider.id!r} names the deployment's own endpoint (owned_by); "
                        "choose another id, or give it type 'primary'",
                        param=f"providers[{i}].id",
                        code="invalid_value",
                    )
        if model_id in self.base.models or self.base.by_alias(model_id) is not None:
            raise Conflict(
                f"the model {model_id!r} is in the catalogue file; choose another id",
                code="model_exists",
                param="id",
            )
        _check_prices(spec)
        try:
            entry = load_entry(_table(spec, model_id), SOURCE)
        except CatalogueError as exc:
            raise _bad(exc) from None
        if self.upstreams is not None:
            for field, url in _endpoints(spec):
                try:
                    self.upstreams.check_url(url)
                except Refused as exc:
                    raise _refused(field, exc) from None
        secrets = _secrets(spec, entry)
        if secrets and self.sealer is None:
            field = (
                "api_key"
                if spec.api_key
                else next(f"providers[{i}].api_key" for i, p in enumerate(spec.providers or ()) if p.api_key)
            )
            raise BadRequest(
                f"{field}: this gateway stores no API key, since PUREAI_SECRET_KEY (which encrypts them) "
                "is not set; set it, or give api_key_env: the NAME of an environment variable holding the key",
                param=field,
                code="invalid_value",
            )
        if self.sealer is not None:
            secrets = {provider: self.sealer.seal(key) for provider, key in secrets.items()}
        return Deployment(model_id, _table(spec, model_id), secrets, time.time()), entry

    async def check_endpoints(self, spec: NewDeployment) -> None:
        """The SSRF policy's look-up of each endpoint's host name: a 400 `upstream_not_allowed`
        naming the field when one resolves to an address the policy refuses, or does not resolve."""
        if self.upstreams is None:
            return
        for field, url in _endpoints(spec):
            try:
                await self.upstreams.check(url)
            except Refused as exc:
                raise _refused(field, exc) from None

    def entry(self, deployment: Deployment) -> ModelEntry:
        return load_entry(deployment.spec, SOURCE)

    def listing(self, registered: list[Deployment]) -> list[dict[str, Any]]:
        """The data of GET /v1/admin/deployments: the registered deployments, then the catalogue
        file's `pureai/` models (`"source": "catalogue"`: listed, not removable here), so that a
        client sees the base URL, prices and context window of both kinds."""
        data = [deployment_json(d, self.entry(d)) for d in registered]
        data += [catalogue_json(e) for e in self.base.models.values() if e.is_custom]
        return data

    async def refresh(self, force: bool = False) -> None:
        """Re-read the store if this view is older than `cache_s` (or `force`); a failed read keeps
        the view (a forced one raises)."""
        if not force and time.monotonic() - self._read_at < self.cache_s:
            return
        async with self._lock:
            if not force and time.monotonic() - self._read_at < self.cache_s:
                return  # another request read it meanwhile
            try:
                registered = await self.store.list_deployments()
            except StoreError as exc:
                if force:
                    raise
                log.warning("registered deployments not re-read (the last ones stay): %s", exc)
                registered = self.registered
            self._read_at = time.monotonic()
            if registered != self.registered:
                self._use(registered)

    def _use(self, registered: list[Deployment]) -> None:
        entries: dict[str, ModelEntry] = {}
        credentials: dict[str, str] = {}
        clear: list[str] = []
        for deployment in registered:
            if deployment.id in self.base.models:
                log.error("registered deployment %s is left out: the catalogue file has it", deployment.id)
                continue
            try:
                entry = self.entry(deployment)
                self._check_stored(entry)
                keys = {p: self._open(key) for p, key in deployment.secrets.items()}
            except (CatalogueError, Refused, SealError) as exc:
                log.error("registered deployment %s is left out: %s", deployment.id, exc)
                continue
            entries[deployment.id] = entry
            credentials.update({f"{deployment.id}/{p}": key for p, key in keys.items()})
            if any(not sealed(key) for key in deployment.secrets.values()):
                clear.append(deployment.id)
        if clear:
            log.warning(
                "registered deployments with API keys stored in clear by an earlier version: %s; "
                "register them again (with PUREAI_SECRET_KEY set) to store their keys encrypted",
                ", ".join(clear),
            )
        self.registered, self.entries = registered, entries
        logs.hide(credentials.values())
        logs.hide(env_credentials(entries.values()))
        catalogue = Catalogue(models={**self.base.models, **entries}, source=self.base.source)
        self._on_change(catalogue, credentials)

    def _check_stored(self, entry: ModelEntry) -> None:
        """A stored deployment's endpoints against this gateway's policy (it may have changed, or a
        gateway with another setting may have registered it); names are checked at connect time."""
        if self.upstreams is not None:
            for url in (entry.api_base, *(p.api_base for p in entry.providers)):
                if url:
                    self.upstreams.check_url(url)

    def _open(self, stored: str) -> str:
        if self.sealer is not None:
            return self.sealer.open(stored)
        if sealed(stored):
            raise SealError("its API key is encrypted and PUREAI_SECRET_KEY is not set")
        return stored

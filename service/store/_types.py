"""The values a store keeps, and the interface every store implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KeyRecord:
    """One API key, as stored: never the secret itself, only its SHA-256 hash."""

    id: str
    """Public key id, e.g. "k_3f9a1c2b4d5e"; also the prefix of the secret ("pk-<id>-...")."""
    tenant: str
    name: str
    admin: bool = False
    """Admin keys may use the admin API; tenant keys may not."""
    allowed_models: tuple[str, ...] | None = None
    """None = every enabled model."""
    rpm: int | None = None
    """Requests per minute; None = unlimited."""
    tpm: int | None = None
    """Tokens (prompt + completion) per minute; None = unlimited."""
    budget_usd: float | None = None
    """Spend cap in USD over the key's lifetime; None = no cap."""
    created: float = 0.0
    """Unix time."""
    revoked: float | None = None
    """Unix time of revocation; None while the key is live."""
    secret_hash: str = field(default="", repr=False)
    """Hex SHA-256 of the full secret."""


@dataclass(frozen=True)
class UsageRow:
    """One request through the gateway, successful or not."""

    request_id: str
    key_id: str
    tenant: str
    created: float
    """Unix time the request arrived."""
    endpoint: str
    """"chat.completions", "completions" or "router"."""
    model: str | None
    """The model that served (or would have served) the request."""
    provider: str | None
    status: int
    """HTTP status returned to the client (200 for a stream that started)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    input_cost_usd: float = 0.0
    output_cost_usd: float = 0.0
    cache_input_cost_usd: float = 0.0
    total_cost_usd: float = 0.0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    stream: bool = False
    attempts: int = 1
    """Upstream attempts made (1 + failovers)."""
    error: str | None = None
    """Error code when the request failed, e.g. "upstream_error", "client_disconnected"."""
    routed: bool = False
    """True when /v1/router chose the model."""
    router_version: str | None = None
    """The version of the router that chose the model (routed requests; rows before it: None)."""
    predicted_quality: float | None = None
    """The quality the router predicted for the model it chose, before feedback's shift (routed)."""


@dataclass(frozen=True)
class UsageTotals:
    """Sums over the ledger rows a filter matches (`Store.usage_totals`)."""

    requests: int
    """Rows: every request, answered or refused."""
    prompt_tokens: int
    completion_tokens: int
    total_cost_usd: float


@dataclass(frozen=True)
class Feedback:
    """A score a client gave one of its requests' answers, under a metric ("score" by default)."""

    request_id: str
    metric: str
    score: float
    """In [0, 1]: thumbs up is 1.0, down 0.0."""
    key_id: str
    """The key that made (and so may rate) the request."""
    created: float
    """Unix time of the latest write (a second write for the same request and metric replaces it)."""
    comment: str | None = None


@dataclass(frozen=True)
class TrainingRow:
    """An answered request with its prompt (kept only with prompt logging on) and its "score"
    feedback: one line of `pureai export`, in the JSONL format `pureai train` reads."""

    request_id: str
    key_id: str
    created: float
    model: str
    prompt: str
    score: float
    cost_usd: float
    output_tokens: int


@dataclass(frozen=True)
class Scored:
    """A routed request's "score" feedback beside what the router predicted for its model."""

    model: str
    predicted: float
    score: float


@dataclass(frozen=True)
class RouterStat:
    """Routed requests of one (router version, model) over a time range, and their "score" feedback."""

    version: str | None
    model: str | None
    requests: int
    scored: int
    """Requests among them with a "score" feedback."""
    mean_score: float | None


@dataclass(frozen=True)
class Deployment:
    """A `pureai/<name>` custom deployment registered through the admin API (not the catalogue)."""

    id: str
    """The model id, "pureai/<name>"."""
    spec: dict[str, Any]
    """Its `[[models]]` table in the catalogue's format (never a secret: see `secrets`)."""
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """Provider id -> API key given with the deployment; kept in the store as given."""
    created: float = 0.0
    """Unix time."""


class Store(ABC):
    """Keys and the usage ledger. All methods are coroutines; open before use, close after."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and run migrations (idempotent; safe when several processes start at once)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise `StoreError` when the store cannot be reached."""

    # -- keys --------------------------------------------------------------------------------
    @abstractmethod
    async def add_key(self, record: KeyRecord) -> None:
        """Insert a key (its `secret_hash` set). `StoreError` if the id exists."""

    @abstractmethod
    async def get_key(self, key_id: str) -> KeyRecord | None:
        """The key with this id, revoked or not; None if there is none."""

    @abstractmethod
    async def list_keys(self, tenant: str | None = None) -> list[KeyRecord]:
        """Keys (revoked ones included), oldest first; only `tenant`'s when given."""

    @abstractmethod
    async def revoke_key(self, key_id: str, when: float) -> bool:
        """Mark a live key revoked; False if there is no such live key."""

    @abstractmethod
    async def count_admin_keys(self) -> int:
        """Live admin keys."""

    # -- ledger ------------------------------------------------------------------------------
    @abstractmethod
    async def record_usage(self, row: UsageRow) -> None:
        """Append a row; returns once it is durable (committed)."""

    @abstractmethod
    async def usage(
        self,
        *,
        key_id: str | None = None,
        tenant: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[UsageRow]:
        """Rows filtered by key, tenant and `since <= created < until`, newest first, at most `limit`."""

    @abstractmethod
    async def usage_totals(
        self,
        *,
        key_id: str | None = None,
        tenant: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> UsageTotals:
        """Sums over every row `usage` filters in with the same filters, however many it returns."""

    @abstractmethod
    async def spend_usd(self, key_id: str) -> float:
        """The sum of `total_cost_usd` over the key's rows."""

    @abstractmethod
    async def usage_of(self, request_id: str) -> list[UsageRow]:
        """The ledger rows of one request (one, or none if it was never recorded)."""

    # -- budget reservations (service/budget.py) --------------------------------------------------
    @abstractmethod
    async def reserve_usd(
        self, key_id: str, request_id: str, amount: float, limit: float, now: float, expires: float
    ) -> tuple[bool, float, float]:
        """In one transaction, serialised per key: hold `amount` USD for `request_id` until
        `expires` iff the key's ledger spend plus its open reservations plus `amount` is at most
        `limit`. Returns (admitted, spent, held): the ledger's sum and the open reservations of
        the key before this one. A reservation counts until `expires` (compared with the `now` of
        later calls) or until a ledger row of its request is written, which settles it."""

    @abstractmethod
    async def release_reservation(self, request_id: str, unit: str = "usd") -> None:
        """Delete a request's reservation (its request ended without a ledger row)."""

    @abstractmethod
    async def renew_reservations(self, request_ids: Sequence[str], expires: float, unit: str = "usd") -> None:
        """Move the expiry of these requests' reservations to `expires` (those still there)."""

    # -- deployments -------------------------------------------------------------------------
    @abstractmethod
    async def add_deployment(self, deployment: Deployment) -> bool:
        """Insert a deployment; False (nothing written) if one with its id exists."""

    @abstractmethod
    async def list_deployments(self) -> list[Deployment]:
        """Every registered deployment, oldest first."""

    @abstractmethod
    async def remove_deployment(self, deployment_id: str) -> bool:
        """Delete a deployment; False if there is none with this id."""

    # -- feedback ----------------------------------------------------------------------------
    @abstractmethod
    async def put_feedback(self, feedback: Feedback) -> bool:
        """Insert or replace the feedback for (`request_id`, `metric`); True if it is new."""

    # -- prompts (only with PUREAI_LOG_PROMPTS on) ------------------------------------------
    @abstractmethod
    async def record_prompt(self, request_id: str, key_id: str, created: float, prompt: str) -> None:
        """Keep the prompt of a request (a second write for the same request is ignored)."""

    @abstractmethod
    async def forget_prompts(self, before: float) -> int:
        """Delete prompts of requests made before `before` (the retention); how many."""

    @abstractmethod
    async def training_rows(
        self, since: float | None = None, until: float | None = None
    ) -> list[TrainingRow]:
        """Answered requests in `[since, until)` that have a prompt and a "score", oldest first."""

    @abstractmethod
    async def scored(self, version: str, limit: int) -> list[Scored]:
        """The latest `limit` "score" feedbacks on requests routed by `version`, newest first."""

    @abstractmethod
    async def router_stats(self, since: float | None = None, until: float | None = None) -> list[RouterStat]:
        """Routed requests in `[since, until)` per (router version, model), with their mean "score"."""

    @abstractmethod
    async def feedback(
        self,
        *,
        key_id: str | None = None,
        request_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[Feedback]:
        """Feedback filtered by key, request and `since <= created < until`, newest first."""

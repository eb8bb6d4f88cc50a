"""`Settings`: every knob of the gateway, read once from `PUREAI_*` environment variables.

settings = Settings()                              # from the environment
settings = Settings(database_url="sqlite:///x.db") # tests build their own
app = create_app(settings)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PUREAI_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    """The address `pureai serve` listens on (`0.0.0.0` for every interface)."""
    port: int = Field(8000, ge=0, le=65535)
    """The port `pureai serve` listens on."""
    workers: int = Field(1, ge=1, le=64)
    """Worker processes sharing the listening socket (limits are exact across them only with Redis)."""
    log_level: str = "info"
    """debug, info, warning or error; debug opens every logger, litellm's included."""
    log_format: Literal["json", "text"] = "json"
    """Log lines as JSON objects (ts, level, logger, message, request_id, ...) or as text."""
    metrics_key: SecretStr | None = None
    """If set, GET /metrics needs it (Bearer or x-api-key); default: /metrics is open."""

    catalogue: Path | None = None
    """A catalogue TOML of your own; default: the built-in one."""
    artifacts: Path | None = None
    """Router artifacts from `pureai train`; default: the shipped ones."""
    router_threads: int = Field(1, ge=1, le=16)
    """onnxruntime threads of the prompt embedder, per worker."""
    router_calibration: Literal["traffic", "reference"] = "traffic"
    """What each pool's cost_weight scale is fitted on: its own recent traffic in this worker (once
    it has routed a few dozen prompts), or the reference training prompts only (a decision then
    depends on nothing routed before it)."""

    data_dir: Path = Path(".pureai")
    """Where the embedded SQLite store lives when `database_url` is not set."""
    database_url: str | None = None
    """`sqlite:///path.db` or `postgresql://...`; default: SQLite in `data_dir`."""
    redis_url: SecretStr | None = None
    """Rate-limit state in Redis (shared by workers and hosts); default: in-process."""
    rate_limit_fail_open: bool = True
    """Redis unreachable: admit (True) or refuse with 503 (False); a warning once a minute either way."""
    redis_timeout_s: float = Field(0.5, gt=0)
    """How long one Redis call (rate limits, token and budget reservations) may take before Redis
    counts as unreachable."""
    redis_cooldown_s: float = Field(2.0, gt=0)
    """After a Redis call failed or timed out, a worker does not call Redis for this long (its
    requests fail open or closed at once, per `rate_limit_fail_open`); then one call probes it."""

    admin_key: SecretStr | None = None
    """An admin key from the environment (never stored); else the first start creates one."""
    default_rpm: int | None = Field(None, ge=1)
    """Requests per minute for keys created without a limit."""
    default_tpm: int | None = Field(None, ge=1)
    """Tokens per minute for keys created without a limit."""
    allow_private_upstreams: str = ""
    """Private, loopback, link-local or metadata addresses that deployments registered through the
    admin API may call: networks, addresses and host names, comma-separated
    (`10.0.0.0/8,::1,vllm.internal`); default none (service/ssrf.py). The catalogue file's own
    endpoints need no entry."""
    secret_key: SecretStr | None = None
    """Encrypts the API keys of deployments registered through the admin API in the store: 32+
    random characters; `new,old` re-keys (service/sealing.py). Unset: such keys are refused (name an
    environment variable with `api_key_env` instead)."""

    request_timeout_s: float = Field(120.0, gt=0)
    """Per upstream attempt: connect + whole answer (non-streamed) or time between stream events."""
    first_token_timeout_s: float | None = Field(None, gt=0)
    """Streams: an attempt with a provider left to try is cut if its first chunk takes longer (the
    last attempt never is); None: only the request timeout applies."""
    retries_per_provider: int = Field(1, ge=0, le=5)
    """Retries on the same provider after a 5xx or a connection error, before the next provider
    (never after a timeout, a 429 or a 4xx); 0: straight to the next provider."""
    retry_backoff_s: float = Field(0.05, ge=0)
    """Retry n waits a random time in [0, retry_backoff_s x 2^(n-1)] (full jitter, at most 1 s)."""
    breaker_failures: int = Field(3, ge=0)
    """Failures (5xx, connection errors, timeouts) within `breaker_window_s` that open a provider's
    circuit: it is skipped for `breaker_cooldown_s`, then one probe request tests it; 0: off."""
    breaker_window_s: float = Field(30.0, gt=0)
    """The window in which `breaker_failures` failures open a provider's circuit."""
    breaker_cooldown_s: float = Field(15.0, gt=0)
    """How long an open circuit skips its provider before one probe request."""
    rate_limit_cooldown_max_s: float = Field(60.0, ge=0)
    """A provider's 429 with Retry-After / retry-after-ms skips it until then, at most this long;
    0: the hint is ignored (the 429 counts as a failure)."""
    relay: bool = True
    """Call OpenAI-compatible endpoints (an `openai/` model with an `api_base` of its own) directly,
    relaying their frames (service/relay.py); false: every call goes through litellm."""
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    """Bodies larger than this get 413 before they are read."""
    key_cache_s: float = Field(2.0, ge=0)
    """How long a looked-up key is trusted before the store is read again (revocation delay)."""
    deployment_cache_s: float = Field(2.0, ge=0)
    """How long a worker's view of the deployments registered through the admin API is trusted
    before the store is read again (how soon other workers see one registered or removed)."""
    max_concurrency: int = Field(512, ge=1)
    """Requests in flight per worker (a stream counts until it ends); one more gets an immediate
    503 `overloaded` with Retry-After, never a queue. /health and /ready are not counted."""
    graceful_timeout_s: float = Field(30.0, ge=0)
    """On SIGTERM: new connections are refused at once (every worker's), open requests and streams
    get most of this long to finish; the rest are cut (a stream ends with an SSE error event
    `shutdown`, a request waiting upstream gets 503 `shutdown`; their ledger rows still written),
    and the process has exited by the end of it (service/server.py `Grace`)."""

    # Limits on the connection, enforced by service/server.py's protocol before any other work.
    max_header_bytes: int = Field(64 * 1024, ge=1024)
    """A request's head (request line and headers) larger than this gets 431."""
    max_headers: int = Field(100, ge=1)
    """A request with more header fields than this gets 431."""
    max_url_bytes: int = Field(8 * 1024, ge=256)
    """A request target longer than this gets 414."""
    header_timeout_s: float = Field(10.0, gt=0)
    """A request's head must be complete within this long of the connection's start (or of the end
    of the previous response on a keep-alive connection): else a connection that sent nothing is
    closed, and one that sent part of a head gets 408."""
    keep_alive_s: float = Field(5.0, gt=0)
    """An idle keep-alive connection is closed after this long."""
    body_timeout_s: float = Field(30.0, gt=0)
    """A request's body must be complete within this long of the end of its head: else 408, unless
    it was answered already (a wrong key is refused before its body is read)."""
    max_connections: int = Field(1000, ge=1)
    """Open connections per worker; one more takes the place of the connection that has waited
    longest for a request with nothing in flight, or is closed at once if all are busy."""

    log_prompts: bool = False
    """Keep each answered chat's last user turn in the store (for `pureai export`); off by default."""
    prompt_retention_days: float = Field(30.0, gt=0)
    """Prompts older than this are deleted (at start, then hourly, and before an export)."""

    feedback_learning: bool = True
    """Scores on routed requests shift each model's predicted quality in this process (see
    service/learning.py); off: decisions use the trained router alone."""
    feedback_prior: float = Field(10.0, gt=0)
    """Pseudo-count the feedback shift is shrunk by: with n scores, shift = sum(residuals) / (n + prior)."""
    feedback_half_life: float = Field(50.0, gt=0)
    """A residual's weight halves after this many newer scores (on any model): the shifts follow drift,
    and a model that lost its traffic is tried again once its bad record has faded."""
    feedback_refresh_s: float = Field(5.0, ge=0)
    """How often a worker rebuilds the shifts from every worker's feedback in the store (a worker
    counts the scores it receives itself at once); 0: before every routed decision."""
    explore_share: float = Field(0.02, ge=0, le=0.5)
    """Share of routed requests decided on a Thompson sample of the quality posterior (models with
    little feedback are tried most); bounded by cost_weight and, for keys with a budget, never dearer
    than the plain choice; 0: never explore."""
    explore_seed: int | None = None
    """Seed of the exploration draws (tests and benchmarks); default: fresh randomness."""

    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return str(self.data_dir / "pureai.db")

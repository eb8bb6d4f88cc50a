"""`Settings`: every knob of the gateway, read once from `PUREAI_*` environment variables.

settings = Settings()                              # from the environment
settings = Settings(database_url="sqlite:///x.db") # tests build their own
app = create_app(settings)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PUREAI_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    log_level: str = "info"

    catalogue: Path | None = None
    """A catalogue TOML of your own; default: the built-in one."""
    artifacts: Path | None = None
    """Router artifacts from `pureai train`; default: the shipped ones."""
    router_threads: int = Field(1, ge=1, le=16)

    data_dir: Path = Path(".pureai")
    """Where the embedded SQLite store lives when `database_url` is not set."""
    database_url: str | None = None
    """`sqlite:///path.db` or `postgresql://...`; default: SQLite in `data_dir`."""
    redis_url: SecretStr | None = None
    """Rate-limit state in Redis (shared by workers and hosts); default: in-process."""
    rate_limit_fail_open: bool = True
    """Redis unreachable: admit (True) or refuse with 503 (False)."""

    admin_key: SecretStr | None = None
    """An admin key from the environment (never stored); else the first start creates one."""
    default_rpm: int | None = Field(None, ge=1)
    """Requests per minute for keys created without a limit."""
    default_tpm: int | None = Field(None, ge=1)

    request_timeout_s: float = Field(120.0, gt=0)
    """Per upstream attempt: connect + whole answer (non-streamed) or time between stream events."""
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    """Bodies larger than this get 413 before they are read."""
    key_cache_s: float = Field(2.0, ge=0)
    """How long a looked-up key is trusted before the store is read again (revocation delay)."""

    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return str(self.data_dir / "pureai.db")

"""The gateway's store: API keys, the usage ledger, feedback, prompts and registered deployments,
in SQLite (default) or PostgreSQL.

    store = open_store("sqlite:///data/pureai.db")   # or "postgresql://user@host/db"
    await store.open()                                # connects, runs migrations
    ...
    await store.close()

Every failure is a `StoreError` (see `errors.py`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from ._types import (
    Deployment,
    Feedback,
    KeyRecord,
    RouterStat,
    Scored,
    Store,
    TrainingRow,
    UsageRow,
    UsageTotals,
)
from .errors import StoreError, redact
from .postgres import PostgresStore
from .sqlite import SQLiteStore

__all__ = [
    "Deployment",
    "Feedback",
    "KeyRecord",
    "PostgresStore",
    "RouterStat",
    "SQLiteStore",
    "Scored",
    "Store",
    "StoreError",
    "TrainingRow",
    "UsageRow",
    "UsageTotals",
    "open_store",
]

_SQLITE_PREFIX = "sqlite://"
_POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(url: str) -> Store:
    """The store `url` names, built but not opened.

    - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, or a bare filesystem path:
      a `SQLiteStore` (a relative path is relative to the working directory).
    - `postgresql://...` or `postgres://...`: a `PostgresStore`.

    `StoreError` for any other scheme, or a `sqlite://` URL without a path.
    """
    if "://" not in url:
        if not url.strip():
            raise StoreError("store URL is empty")
        return SQLiteStore(Path(url))
    scheme = url.split("://", 1)[0].lower()
    if scheme in _POSTGRES_SCHEMES:
        return PostgresStore(url)
    if scheme == "sqlite":
        rest = url[len(_SQLITE_PREFIX) :]
        if not rest.startswith("/") or rest == "/":
            raise StoreError(
                f"store URL {redact(url)!r}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        return SQLiteStore(Path(unquote(rest[1:])))
    raise StoreError(
        f"store URL {redact(url)!r}: unknown scheme {scheme!r}; "
        "expected sqlite://, postgresql:// or postgres://"
    )

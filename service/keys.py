"""API keys: how they are made, hashed, found and checked.

A key reads `pk-<id>-<secret>`: the id (12 hex digits) finds the stored record, the whole key's
SHA-256 is compared with `hmac.compare_digest`. The secret is shown once, when the key is created;
the store keeps only the hash. Keys are random (144 bits), so a fast hash is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import replace

from fastapi import Request

from .errors import Forbidden, Unauthorized
from .store import KeyRecord, Store

__all__ = ["KeyRing", "hash_key", "make_key", "presented_key"]

_KEY = re.compile(r"pk-([0-9a-f]{12})-[A-Za-z0-9_-]{16,64}\Z")
_DUMMY_HASH = hashlib.sha256(b"pk-000000000000-dummy").hexdigest()
ENV_ADMIN_ID = "admin-env"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def make_key(record: KeyRecord) -> tuple[KeyRecord, str]:
    """A new secret for `record` (its id and hash are set here): (stored record, secret)."""
    key_id = secrets.token_hex(6)
    key = f"pk-{key_id}-{secrets.token_urlsafe(18)}"
    return replace(record, id=key_id, secret_hash=hash_key(key), created=time.time()), key


def presented_key(request: Request) -> str | None:
    """The key from `x-api-key`, else from `Authorization: Bearer ...`."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class KeyRing:
    """Checks presented keys against the store, with a short cache of records (never of secrets)."""

    def __init__(self, store: Store, admin_key: str | None = None, cache_s: float = 2.0) -> None:
        self.store = store
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._admin_hash = hash_key(admin_key) if admin_key else None

    async def check(self, key: str | None) -> KeyRecord:
        """The live record of `key`; `Unauthorized` (401) for a missing, malformed, wrong or revoked key."""
        if not key:
            raise Unauthorized(
                "missing API key: send it as 'x-api-key: <key>' or 'Authorization: Bearer <key>'",
                code="missing_api_key",
            )
        if self._admin_hash is not None and hmac.compare_digest(hash_key(key), self._admin_hash):
            return KeyRecord(id=ENV_ADMIN_ID, tenant="admin", name="PUREAI_ADMIN_KEY", admin=True)
        match = _KEY.match(key)
        record = await self._record(match.group(1)) if match else None
        expected = record.secret_hash if record else _DUMMY_HASH
        if not hmac.compare_digest(hash_key(key), expected) or record is None or record.revoked:
            raise Unauthorized("invalid API key", code="invalid_api_key")
        return record

    async def check_admin(self, key: str | None) -> KeyRecord:
        record = await self.check(key)
        if not record.admin:
            raise Forbidden("this endpoint needs an admin key", code="admin_only")
        return record

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

    async def _record(self, key_id: str) -> KeyRecord | None:
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        record = await self.store.get_key(key_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_id] = (now, record)
        return record

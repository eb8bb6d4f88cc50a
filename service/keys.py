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
from collections.abc import Callable
from dataclasses import replace

from fastapi import Request

from .errors import Forbidden, Unauthorized
from .settings import Settings
from .store import KeyRecord, Store

__all__ = ["KeyRing", "hash_key", "make_key", "presented_key"]

_KEY = re.compile(r"pk-([0-9a-f]{12})-[A-Za-z0-9_-]{16,64}\Z")
_DUMMY = KeyRecord(
    id="", tenant="", name="", secret_hash=hashlib.sha256(b"pk-000000000000-dummy").hexdigest()
)
ENV_ADMIN_ID = "admin-env"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def make_key(record: KeyRecord) -> tuple[KeyRecord, str]:
    """A new secret for `record` (its id and hash are set here): (stored record, secret)."""
    key_id = secrets.token_hex(6)
    key = f"pk-{key_id}-{secrets.token_urlsafe(18)}"
    return replace(record, id=key_id, secret_hash=hash_key(key), created=time.time()), key


def new_key(
    settings: Settings,
    *,
    tenant: str,
    name: str,
    admin: bool,
    models: tuple[str, ...] | None,
    rpm: int | None,
    tpm: int | None,
    budget_usd: float | None,
) -> tuple[KeyRecord, str]:
    """A new key (the CLI's and the admin API's), limits left unset taking the settings' defaults."""
    return make_key(
        KeyRecord(
            id="",
            tenant=tenant,
            name=name,
            admin=admin,
            allowed_models=models,
            rpm=rpm if rpm is not None else settings.default_rpm,
            tpm=tpm if tpm is not None else settings.default_tpm,
            budget_usd=budget_usd,
        )
    )


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
    """Checks presented keys against the store.

    A key that checked out is cached for `cache_s`, by its SHA-256 (never the key): a key in use
    costs no store read. A key that did not is never cached, so every wrong key of the right shape
    does the same work whether its id exists (a near miss) or not (a far miss): one store read, one
    record, one `hmac.compare_digest` of SHA-256 digests (against a dummy record's for an unknown
    id). How much of a secret was right does not show in the time a refusal takes
    (benchmarks/security/key_timing.py). A missing or malformed key (its shape is public) is
    refused without a read. `observe("cache" | "store")` hears where each well-formed key's record
    came from.
    """

    def __init__(
        self,
        store: Store,
        admin_key: str | None = None,
        cache_s: float = 2.0,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, KeyRecord]] = {}  # hash of a good key -> (when, record)
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self._observe = observe or (lambda source: None)

    async def check(self, key: str | None) -> KeyRecord:
        """The live record of `key`; `Unauthorized` (401) for a missing, malformed, wrong or revoked key."""
        if not key:
            raise Unauthorized(
                "missing API key: send it as 'x-api-key: <key>' or 'Authorization: Bearer <key>'",
                code="missing_api_key",
            )
        digest = hash_key(key)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return KeyRecord(id=ENV_ADMIN_ID, tenant="admin", name="PUREAI_ADMIN_KEY", admin=True)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self.cache_s:
            self._observe("cache")
            return hit[1]
        match = _KEY.match(key)
        record = None
        if match:
            self._observe("store")
            record = await self.store.get_key(match.group(1))
            # an unknown id gets a record too, as the store builds one for a known id: the same work
            candidate = record or replace(_DUMMY, id=match.group(1))
        else:
            candidate = _DUMMY
        if not hmac.compare_digest(digest, candidate.secret_hash) or record is None or record.revoked:
            raise Unauthorized("invalid API key", code="invalid_api_key")
        if self.cache_s > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, record)
        return record

    async def check_admin(self, key: str | None) -> KeyRecord:
        record = await self.check(key)
        if not record.admin:
            raise Forbidden("this endpoint needs an admin key", code="admin_only")
        return record

    def forget(self, key_id: str) -> None:
        """Drop a (revoked) key from the cache at once."""
        self._cache = {h: hit for h, hit in self._cache.items() if hit[1].id != key_id}

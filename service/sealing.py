"""`Sealer`: the API keys of deployments registered through the admin API, encrypted before they
reach the store, with a key from the environment (`PUREAI_SECRET_KEY`).

    sealer = Sealer.from_setting(settings.secret_key)   # None when the setting is unset
    stored = sealer.seal("sk-...")                       # "fernet:gAAAA..."
    sealer.open(stored)                                  # "sk-..."

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`): a store file, a backup or a database
dump read without the setting holds no usable key, and a sealed value that was altered does not
open. The setting is any string of at least 32 characters (`openssl rand -base64 32`); the Fernet
key is derived from it with HKDF-SHA256. A comma-separated list re-keys: the first seals, each opens
(`new,old` while the old rows are re-registered).

A value without the `fernet:` prefix is a key stored in clear by an earlier version: `open` returns
it as it is, so those rows keep working (service/deployments.py logs which they are).
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import SecretStr

__all__ = ["MIN_LENGTH", "PREFIX", "SealError", "Sealer", "sealed"]

PREFIX = "fernet:"
MIN_LENGTH = 32
_INFO = b"pureai deployment api keys v1"


class SealError(ValueError):
    """A sealed value that none of the configured keys opens (another key, or altered)."""


def sealed(value: str) -> bool:
    return value.startswith(PREFIX)


class Sealer:
    def __init__(self, secrets: list[str]) -> None:
        from cryptography.fernet import Fernet, MultiFernet
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        if not secrets:
            raise ValueError("PUREAI_SECRET_KEY: no key")
        keys = []
        for i, secret in enumerate(secrets):
            if len(secret) < MIN_LENGTH:
                raise ValueError(
                    f"PUREAI_SECRET_KEY: key {i + 1} has {len(secret)} characters; use at least "
                    f"{MIN_LENGTH} random ones (openssl rand -base64 32)"
                )
            raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
            keys.append(Fernet(base64.urlsafe_b64encode(raw)))
        self._fernet: Any = MultiFernet(keys)

    @classmethod
    def from_setting(cls, value: SecretStr | None) -> Sealer | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return cls([part.strip() for part in value.get_secret_value().split(",") if part.strip()])

    def seal(self, value: str) -> str:
        token: bytes = self._fernet.encrypt(value.encode())
        return PREFIX + token.decode("ascii")

    def open(self, value: str) -> str:
        """The key a stored value holds: decrypted, or as it is when stored in clear."""
        if not sealed(value):
            return value
        from cryptography.fernet import InvalidToken

        try:
            plain: bytes = self._fernet.decrypt(value.removeprefix(PREFIX).encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise SealError("sealed with another PUREAI_SECRET_KEY, or altered") from None
        return plain.decode()

"""The store's one error type, and the helper that keeps passwords out of its messages.

Hierarchy::

    StoreError          every failure of a store: unreachable database, driver error,
                        duplicate key id, unknown URL scheme, store used before `open()`

Driver exceptions (`sqlite3.Error`, `psycopg.Error`, pool timeouts, `OSError`) never escape a store;
each is mapped once, in the store module, to a `StoreError` whose message is meant for an operator.
A message never contains a password: URLs and connection strings are shown through `redact`.
"""

from __future__ import annotations

import re

__all__ = ["StoreError", "redact"]

# `scheme://user:password@`: the password runs to the last "@" (an unencoded "@" or "/" in it is
# common); when in doubt, more is hidden rather than less.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#\s]*):.*@")
# `password=...` in a query string or a libpq keyword/value string.
_KEYWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.IGNORECASE)


class StoreError(Exception):
    """A store operation failed; the message says what and where, without secrets."""


def redact(url: str) -> str:
    """`url` with any password (`user:password@`, `password=...`) replaced by `***`."""
    return _KEYWORD.sub(r"\g<head>***", _USERINFO.sub(r"\g<head>:***@", url))

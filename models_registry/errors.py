"""The errors of `models_registry`, one hierarchy:

    CatalogueError(Exception)          the catalogue file cannot be used as it is
    └── UnknownModelError(KeyError)    `Catalogue.get` of an id that is not in the catalogue

`CatalogueError` is raised by `load_catalogue` for a missing file, a TOML syntax error or an entry
that fails validation or pricing; nothing is half-loaded. Its message names the file, the entry
(a model id, or `models[3]` when the id itself is missing) and the field, and the same three are
kept as attributes (`path`, `entry`, `field`) for callers that map errors to an API response.

`UnknownModelError` is also a `KeyError`, so `except KeyError` around a lookup keeps working; its
message names the model and lists close matches (`suggestions`), and leaves the file out.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CatalogueError", "UnknownModelError"]


class CatalogueError(Exception):
    """A catalogue that cannot be loaded or used. `str(err)` is `"<file>: <entry>: <field>: <why>"`."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        entry: str | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.entry = entry
        self.field = field
        self.reason = message
        where = [part for part in (self.path, entry, field) if part]
        super().__init__(": ".join([*where, message]))

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownModelError(CatalogueError, KeyError):
    """`Catalogue.get(model_id)` of an id the catalogue does not have."""

    def __init__(self, model_id: str, known: Iterable[str] = (), *, path: str | Path | None = None) -> None:
        self.model_id = model_id
        self.suggestions = tuple(difflib.get_close_matches(model_id, list(known), n=3, cutoff=0.6))
        message = f"unknown model {model_id!r}"
        if self.suggestions:
            message += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        # The file stays out of the message (it may reach an API client); it is kept as `path`.
        super().__init__(message)
        self.path = None if path is None else str(path)

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])

"""`Catalogue`: the loaded models, looked up by id or by an outcome-data alias."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._entry import ModelEntry
from .errors import CatalogueError, UnknownModelError

__all__ = ["Catalogue"]


@dataclass(frozen=True)
class Catalogue:
    """The models of one catalogue file, in file order. Build it with `load_catalogue`."""

    models: Mapping[str, ModelEntry]
    source: Path | None = None
    """The file it was loaded from."""
    _alias_to_id: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        models = dict(self.models)
        aliases: dict[str, str] = {}
        for model_id, entry in models.items():
            if model_id != entry.id:
                raise CatalogueError(f"keyed as {model_id!r} but its id is {entry.id!r}", path=self.source)
            for alias in entry.aliases:
                owner = aliases.get(alias) or (alias if alias in models else model_id)
                if owner != model_id:
                    raise CatalogueError(
                        f"alias {alias!r} already names model {owner!r}",
                        path=self.source,
                        entry=model_id,
                        field="aliases",
                    )
                aliases[alias] = model_id
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "_alias_to_id", aliases)

    def get(self, model_id: str) -> ModelEntry:
        """The entry of `model_id`; `UnknownModelError` (a `KeyError`) if there is none."""
        try:
            return self.models[model_id]
        except KeyError:
            raise UnknownModelError(model_id, self.models, path=self.source) from None

    def enabled(self) -> list[ModelEntry]:
        """The entries with `enabled = true`, custom deployments included, in file order."""
        return [entry for entry in self.models.values() if entry.enabled]

    def by_alias(self, name: str) -> str | None:
        """The id of the model an outcome-data model name means (an alias or an id), else None."""
        if name in self._alias_to_id:
            return self._alias_to_id[name]
        return name if name in self.models else None

"""pureai-router: pick the model for a prompt, trading predicted quality against expected cost.

    import router
    d = router.select("Write Python code to sort a list", models=["gpt-4o-mini", "codestral-latest"],
                      cost_weight=0.5)
    d.selected_model, d.confidence, d.reasoning, d.candidates, d.capabilities, d.complexity

`router.select` uses the artifacts shipped in the package and the built-in catalogue, loaded on
first use. `Router.load(path)` loads the artifacts of `pureai train`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ._decision import Candidate, Decision
from ._router import Router
from ._text import Prompt
from .errors import ArtifactError, InputError, RouterError, UnknownModelError

__all__ = [
    "ArtifactError",
    "Candidate",
    "Decision",
    "InputError",
    "Router",
    "RouterError",
    "UnknownModelError",
    "default_router",
    "select",
    "select_many",
]

_default: Router | None = None
_lock = threading.Lock()


def default_router() -> Router:
    """The Router over the shipped artifacts and the built-in catalogue (loaded once)."""
    global _default
    with _lock:
        if _default is None:
            _default = Router.load()
        return _default


def select(prompt: Prompt, models: Sequence[str] | None = None, cost_weight: float = 0.0) -> Decision:
    return default_router().select(prompt, models, cost_weight)


def select_many(
    prompts: Sequence[Prompt], models: Sequence[str] | None = None, cost_weight: float = 0.0
) -> list[Decision]:
    return default_router().select_many(prompts, models, cost_weight)

"""pureai-router: pick the model for a prompt, trading predicted quality against expected cost.

    import router
    d = router.select("Write Python code to sort a list", models=["gpt-4o-mini", "codestral-latest"],
                      cost_weight=0.5)
    d.selected_model, d.confidence, d.reasoning, d.candidates, d.capabilities, d.complexity

`router.select` uses the artifacts shipped in the package and the built-in catalogue, loaded on
first use. Without a `cost_weight`, every entry point (`select`, `select_many`, `Router.select`,
`pureai route`, POST /v1/router) uses `DEFAULT_COST_WEIGHT` (0.5). `Router.load(path)` loads the artifacts of `pureai train`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ._decision import Candidate, Decision
from ._router import Router
from ._score import DEFAULT_COST_WEIGHT
from ._text import Prompt
from .errors import ArtifactError, InputError, RouterError, UnknownModelError

__all__ = [
    "DEFAULT_COST_WEIGHT",
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


def select(
    prompt: Prompt, models: Sequence[str] | None = None, cost_weight: float = DEFAULT_COST_WEIGHT
) -> Decision:
    """The decision for one prompt (a string or OpenAI-style messages) over `models` (default: every
    enabled model). `cost_weight` in [0, 1]: 0 = best predicted quality, 1 = cheapest; default
    `DEFAULT_COST_WEIGHT` (0.5), as POST /v1/router and `pureai route`."""
    return default_router().select(prompt, models, cost_weight)


def select_many(
    prompts: Sequence[Prompt], models: Sequence[str] | None = None, cost_weight: float = DEFAULT_COST_WEIGHT
) -> list[Decision]:
    """`select` for many prompts at once (one embedding batch), with the same defaults."""
    return default_router().select_many(prompts, models, cost_weight)

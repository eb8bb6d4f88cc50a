"""The values a catalogue is made of: `ModelEntry` and its `Provider`s.

Both are frozen; their dict fields (`params`, `quality_priors`) are private copies, to be read only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CAPABILITIES", "CUSTOM_PREFIX", "Features", "ModelEntry", "Provider", "ProviderType"]

CAPABILITIES: tuple[str, ...] = ("code", "math", "reasoning", "knowledge", "writing", "chat", "extraction")
"""The capabilities a model has a quality prior for, in a fixed order."""

CUSTOM_PREFIX = "pureai/"
"""Ids starting with this are custom deployments behind an OpenAI-compatible `api_base`."""

ProviderType = Literal["primary", "backup"]


@dataclass(frozen=True)
class Features:
    """What a model on one provider accepts beyond plain text. None means unknown: neither the
    catalogue nor litellm's price map says."""

    vision: bool | None = None
    """Image parts in messages (`supports_vision`)."""
    function_calling: bool | None = None
    """`tools` / `tool_choice` (`supports_function_calling`)."""
    response_schema: bool | None = None
    """`response_format` of type json_schema (`supports_response_schema`)."""
    max_output_tokens: int | None = None
    """The most tokens one answer may have."""
    reasoning: bool | None = None
    """A reasoning model (`supports_reasoning`): no sampling parameters, `max_completion_tokens`."""

    def to_api(self) -> dict[str, Any]:
        return {
            "vision": self.vision,
            "function_calling": self.function_calling,
            "response_schema": self.response_schema,
            "max_output_tokens": self.max_output_tokens,
            "reasoning": self.reasoning,
        }


@dataclass(frozen=True)
class Provider:
    """One way to reach a model: its maker's API (`primary`) or another host (`backup`)."""

    id: str
    type: ProviderType
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    """Provider options passed through to the caller (and shown by `GET /v1/providers`)."""
    litellm_model: str | None = None
    """The litellm model string for this provider, when it differs from the entry's."""
    api_base: str | None = None
    """The provider's OpenAI-compatible endpoint, when it differs from the entry's `api_base`."""
    api_key_env: str | None = None
    """Name of the environment variable holding this provider's credential."""
    features: Features = Features()
    """What the model accepts on this provider (catalogue keys first, then litellm's map)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", copy.deepcopy(dict(self.params)))  # our own copy

    def to_api(self) -> dict[str, Any]:
        """The `GET /v1/providers` item: `{"id", "type", "enabled", "params"}`."""
        params = copy.deepcopy(self.params)  # the caller's to change
        return {"id": self.id, "type": self.type, "enabled": self.enabled, "params": params}


@dataclass(frozen=True)
class ModelEntry:
    """One model of the catalogue, with prices resolved (USD per 1M tokens)."""

    id: str
    owned_by: str
    litellm_model: str
    """The litellm model string of the primary provider, e.g. "anthropic/claude-3-haiku-20240307"."""
    context_window: int
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float
    quality_priors: dict[str, float]
    """Capability -> probability of a good answer on a typical prompt; every CAPABILITIES key."""
    enabled: bool = True
    aliases: tuple[str, ...] = ()
    """Model names used in outcome data that mean this model."""
    providers: tuple[Provider, ...] = ()
    api_base: str | None = None
    """OpenAI-compatible endpoint of a custom deployment."""
    api_key_env: str | None = None
    """Name of the environment variable holding the credential (never the secret itself)."""
    price_source: str = "catalogue"
    """"catalogue" when every price is set in the file, else "litellm:<price map key>"."""
    expected_output_tokens: int = 400
    """Typical answer length in tokens, for cost estimates before the answer exists (a reasoning
    model's includes its hidden reasoning)."""
    reasoning_tokens: int = 0
    """Hidden reasoning tokens a typical answer is billed for as output on top of the answer
    itself. Outcome data counts only the answer, so the router adds these to the answer length it
    learned (the model's own or its `like` relative's)."""
    free: bool = False
    """Said free in the catalogue (`free = true`): its prices are 0 by intent."""
    priced: bool = True
    """Both prices are known (from the catalogue or litellm's map), or the model is free. An
    unpriced model is never a routing candidate and never serves a key with a budget."""
    features: Features = Features()
    """What the model accepts on its primary provider (each provider has its own)."""
    like: str | None = None
    """A model (catalogue id or data name) whose learned quality stands in for this one's while it
    has no outcome data of its own: a predecessor or a sibling ("gpt-4o-mini" for gpt-4.1-mini)."""
    like_offset: float = 0.0
    """Logits added to the relative's quality (what published scores say of the difference)."""
    prior_source: str | None = None
    """Where the quality priors come from (a benchmark, a leaderboard, a relative)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "quality_priors", dict(self.quality_priors))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "providers", tuple(self.providers))

    @property
    def is_custom(self) -> bool:
        """A `pureai/` deployment (served from `api_base`)."""
        return self.id.startswith(CUSTOM_PREFIX)

    @property
    def max_output_tokens(self) -> int | None:
        """The most tokens one answer may have on the primary provider, if known."""
        return self.features.max_output_tokens

    @property
    def primary(self) -> Provider | None:
        """The provider with type "primary", if any."""
        return next((p for p in self.providers if p.type == "primary"), None)

    def cost_usd(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        """The price in USD of one call.

        `cached_input_tokens` are the part of `input_tokens` read from the provider's prompt cache
        (OpenAI's `usage.prompt_tokens_details.cached_tokens`); they are billed at the cached price.
        """
        if min(input_tokens, output_tokens, cached_input_tokens) < 0:
            raise ValueError("token counts must be >= 0")
        if cached_input_tokens > input_tokens:
            raise ValueError("cached_input_tokens is part of input_tokens and cannot exceed it")
        uncached = input_tokens - cached_input_tokens
        return (
            uncached * self.input_per_mtok
            + cached_input_tokens * self.cached_input_per_mtok
            + output_tokens * self.output_per_mtok
        ) / 1_000_000

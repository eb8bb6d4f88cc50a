"""Whether this gateway can run model M for this key and this request: one answer for `/v1/router`
(decision-only and executed alike), the completions endpoints and failover.

A model is eligible when it is priced (or free), the key may use it, one of its providers is
configured (the credentials that provider needs are present: see `Executor.targets`) and that
provider takes what the request needs:

- image parts in the messages      -> vision (`supports_vision`)
- `tools`, `tool_choice`, `functions` -> function calling (`supports_function_calling`)
- `response_format` json_schema    -> response schema (`supports_response_schema`)
- `max_tokens` / `max_completion_tokens` -> at most the model's `max_output_tokens`
- the prompt                        -> the context window (`window`)

What a model accepts comes from the catalogue, else litellm's bundled map, per provider
(`models_registry.Features`). The router only picks a model whose support is *known*; a request
that names a model itself is refused only when the model is known not to support what it needs.
Each reason has a code, shown in the decision body (`"eligible": false, "reason": ...`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from models_registry import Features, ModelEntry

from .errors import APIError, BadRequest, UpstreamError

__all__ = ["REASONS", "Needs", "Refusal", "lacks", "no_eligible_model", "refuse_named"]

REASONS = {
    "no_credentials": "no provider of it is configured",
    "unpriced": "it has no prices (set input_per_mtok and output_per_mtok, or free = true)",
    "no_vision": "it does not take images",
    "no_tools": "it does not take tools",
    "no_response_schema": "it does not take a json_schema response_format",
    "max_output_tokens": "max_tokens is above its output limit",
    "context_window": "the prompt does not fit its context window",
}
"""Reason code -> what it means, for the decision body and error messages."""

SAMPLING_DEFAULTS = {
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
}
"""Parameters a reasoning model rejects unless they hold these values."""


@dataclass(frozen=True)
class Needs:
    """What one request asks of the model beyond plain text."""

    vision: bool = False
    tools: bool = False
    response_schema: bool = False
    output_tokens: int | None = None
    """The answer length asked for (`max_completion_tokens`, else `max_tokens`)."""

    @classmethod
    def of(cls, payload: dict[str, Any]) -> Needs:
        """The needs of a chat or text completion payload (messages + upstream parameters)."""
        response_format = payload.get("response_format")
        asked = payload.get("max_completion_tokens") or payload.get("max_tokens")
        return cls(
            vision=_has_images(payload.get("messages") or ()),
            tools=any(
                payload.get(k) is not None for k in ("tools", "tool_choice", "functions", "function_call")
            ),
            response_schema=isinstance(response_format, dict)
            and response_format.get("type") == "json_schema",
            output_tokens=asked if isinstance(asked, int) and not isinstance(asked, bool) else None,
        )


def lacks(features: Features, needs: Needs, *, strict: bool) -> str | None:
    """The first need `features` does not meet (a reason code), or None. `strict`: support must be
    known (routing); otherwise only what is known to be missing counts (a model named by the client)."""

    def missing(flag: bool | None) -> bool:
        return flag is not True if strict else flag is False

    if needs.vision and missing(features.vision):
        return "no_vision"
    if needs.tools and missing(features.function_calling):
        return "no_tools"
    if needs.response_schema and missing(features.response_schema):
        return "no_response_schema"
    limit = features.max_output_tokens
    if needs.output_tokens is not None and limit is not None and needs.output_tokens > limit:
        return "max_output_tokens"
    return None


@dataclass(frozen=True)
class Refusal:
    """Why one candidate is left out."""

    model: str
    reason: str
    detail: str

    def to_api(self) -> dict[str, Any]:
        return {"model": self.model, "eligible": False, "reason": self.reason, "detail": self.detail}


def refuse_named(
    entry: ModelEntry, needs: Needs, features: Iterable[Features], payload: dict[str, Any]
) -> None:
    """A 400 when the model the client named cannot take this request on any configured provider
    (known not to: unknown support is tried), or a reasoning model is given a sampling parameter
    it rejects."""
    reasons = [lacks(f, needs, strict=False) for f in features]
    if reasons and all(reasons):
        reason = reasons[0]
        assert reason is not None
        raise BadRequest(
            f"{entry.id} cannot serve this request: {detail(reason, entry, needs)}",
            code="unsupported_by_model",
            param=_PARAM[reason],
        )
    if entry.features.reasoning:
        for name, default in SAMPLING_DEFAULTS.items():
            value = payload.get(name)
            if value is not None and value != default:
                raise BadRequest(
                    f"{entry.id} is a reasoning model and does not take {name}={value!r}; leave it out",
                    code="unsupported_parameter",
                    param=name,
                )


def reasoning_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload for a reasoning model: `max_tokens` sent as `max_completion_tokens`, and the sampling
    parameters it rejects dropped (the router chose it; the client did not ask for it)."""
    out = {k: v for k, v in payload.items() if k not in SAMPLING_DEFAULTS}
    if "max_tokens" in out:
        asked = out.pop("max_tokens")
        out.setdefault("max_completion_tokens", asked)
    return out


def no_eligible_model(refusals: Sequence[Refusal]) -> APIError:
    """The error when no candidate is left: 400 when the request's needs ruled them out (the client
    can change it), 503 when missing credentials or prices did (the gateway's set-up)."""
    setup = {"no_credentials", "unpriced"}
    listed = "; ".join(f"{r.model}: {r.detail}" for r in refusals[:8])
    more = f"; and {len(refusals) - 8} more" if len(refusals) > 8 else ""
    message = f"no candidate model can serve this request ({listed}{more})"
    if all(r.reason in setup for r in refusals):
        return UpstreamError(message, code="no_eligible_model", status=503, type="service_unavailable")
    first = next(r for r in refusals if r.reason not in setup)
    return BadRequest(message, code="no_eligible_model", param=_PARAM.get(first.reason))


_PARAM = {
    "no_vision": "messages",
    "no_tools": "tools",
    "no_response_schema": "response_format",
    "max_output_tokens": "max_tokens",
    "context_window": "messages",
}


def detail(reason: str, entry: ModelEntry, needs: Needs, missing_env: Sequence[str] = ()) -> str:
    """A sentence on why `entry` is left out (or cannot serve a request)."""
    if reason == "no_credentials" and missing_env:
        return f"no provider of it is configured (set {' or '.join(missing_env)})"
    if reason == "max_output_tokens":
        return (
            f"max_tokens {needs.output_tokens} is above its output limit of {entry.max_output_tokens} tokens"
        )
    return REASONS[reason]


def _has_images(messages: Iterable[Any]) -> bool:
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") in ("image_url", "image", "input_image") for p in content
        ):
            return True
    return False

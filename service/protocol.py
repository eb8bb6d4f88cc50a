"""The wire protocol: request bodies as pydantic models, and the parameters passed upstream.

Only the OpenAI parameters listed in `PASSTHROUGH` reach the provider; any other unknown field is
dropped (never an error, never forwarded: a client must not be able to set `api_base`, `api_key` or
litellm's own options through the body).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)

from .errors import BadRequest, validation_to_bad_request

__all__ = [
    "PASSTHROUGH",
    "ChatRequest",
    "CompletionRequest",
    "FeedbackRequest",
    "Message",
    "RouterRequest",
    "parse_body",
]

PASSTHROUGH = frozenset(
    {
        "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
        "max_completion_tokens", "n", "seed", "response_format", "tools", "tool_choice",
        "parallel_tool_calls", "functions", "function_call", "user", "reasoning_effort",
        "modalities", "audio", "prediction", "service_tier", "echo", "best_of", "suffix",
    }
)  # fmt: skip
"""OpenAI request fields forwarded to the provider as they are."""

T = TypeVar("T", bound=BaseModel)


class Message(BaseModel):
    """One chat turn. `content` is text or a list of parts (text, image_url, ...)."""

    model_config = ConfigDict(extra="allow")  # name, tool_calls, tool_call_id, ...

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _parts_have_type(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, part in enumerate(value):
                if not isinstance(part.get("type"), str):
                    raise ValueError(f"content part {i} needs a string 'type'")
        return value


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")

    max_tokens: StrictInt | None = Field(None, ge=1)
    temperature: StrictFloat | None = Field(None, ge=0, le=2)
    top_p: StrictFloat | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = None
    stream: StrictBool = False
    stream_options: dict[str, Any] | None = None

    @field_validator("stop")
    @classmethod
    def _stop_at_most_four(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def include_usage_chunk(self) -> bool:
        """True when the client asked for OpenAI's separate final usage chunk."""
        return bool((self.stream_options or {}).get("include_usage"))

    def upstream_params(self) -> dict[str, Any]:
        """The sampling parameters and passed-through OpenAI fields that are set."""
        params = {k: getattr(self, k) for k in ("max_tokens", "temperature", "top_p", "stop")}
        extra = self.model_extra or {}
        params.update({k: v for k, v in extra.items() if k in PASSTHROUGH})
        return {k: v for k, v in params.items() if v is not None}

    def dropped(self) -> list[str]:
        """Unknown fields that are not forwarded."""
        return sorted(k for k in (self.model_extra or {}) if k not in PASSTHROUGH)


class ChatRequest(_Sampling):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)

    def message_dicts(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_none=True) for m in self.messages]


class CompletionRequest(_Sampling):
    model: str = Field(min_length=1)
    prompt: str | list[str]

    @field_validator("prompt")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("must not be empty")
        return value


class RouterRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    execute: StrictBool = True
    models: list[str] | None = Field(None, min_length=1)
    cost_weight: StrictFloat = Field(0.5, ge=0, le=1)

    def message_dicts(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_none=True) for m in self.messages]


class FeedbackRequest(BaseModel):
    """POST /v1/feedback: a score in [0, 1] or thumbs up/down for one request's answer."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    score: StrictFloat | None = Field(None, ge=0, le=1)
    thumbs: Literal["up", "down"] | None = None
    metric: str = Field("score", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    comment: str | None = Field(None, max_length=10_000)

    def value(self) -> float:
        """The score (thumbs up 1.0, down 0.0); BadRequest unless exactly one of the two is given."""
        if (self.score is None) == (self.thumbs is None):
            raise BadRequest("give either 'score' (0 to 1) or 'thumbs' ('up' or 'down')", param="score")
        if self.score is not None:
            return float(self.score)
        return 1.0 if self.thumbs == "up" else 0.0


def parse_body(raw: bytes, model: type[T]) -> T:
    """Bytes -> a validated request, or a 400 that names the field at fault."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not valid UTF-8 (byte {exc.start})", code="invalid_encoding") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    except (ValueError, RecursionError):  # NaN/Infinity, over 4300 digits, nesting too deep
        message = "the body is not valid JSON: NaN, Infinity, a number too long or nesting too deep"
        raise BadRequest(message, code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    where = _lone_surrogate(data) if _SURROGATE_ESCAPE.search(text) else None
    if where is not None:
        raise BadRequest(
            "the body holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape): not valid Unicode",
            param=".".join(where) or None,
            code="invalid_encoding",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_to_bad_request(exc.errors()) from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _lone_surrogate(data: Any) -> tuple[str, ...] | None:
    """Where a string (or a key) of the parsed body holds a lone surrogate: no provider can be sent
    it, as UTF-8 cannot encode it. The path of the field, in document order; None when none does."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return path
        elif isinstance(value, dict):
            for k, v in reversed(value.items()):
                if _SURROGATE.search(k):
                    return path
                stack.append((v, (*path, k)))
        elif isinstance(value, list):
            stack.extend((v, (*path, str(i))) for i, v in reversed(list(enumerate(value))))
    return None

"""The API's responses as typed, immutable values (pydantic models).

Every model keeps the fields the server sends that it does not name (`extra="allow"`: read them as
attributes or with `model_dump()`), so a newer server never breaks an older SDK. Only what
identifies a result is required; everything else is optional.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ChatCompletion",
    "ChatCompletionChoice",
    "ChatCompletionChunk",
    "ChatCompletionChunkChoice",
    "ChatCompletionMessage",
    "ChoiceDelta",
    "Completion",
    "CompletionChoice",
    "CompletionChunk",
    "Feedback",
    "FeedbackList",
    "FunctionCall",
    "Model",
    "ModelList",
    "PromptTokensDetails",
    "Provider",
    "ProviderList",
    "RoutedCompletion",
    "RoutingCandidate",
    "RoutingDecision",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
]


class _Value(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


# -- usage and routing ------------------------------------------------------------------------------


class PromptTokensDetails(_Value):
    cached_tokens: int | None = None


class Usage(_Value):
    """Tokens, what they cost in USD (input, output, cached input, total) and how long it took."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    input_cost_usd: float | None = None
    output_cost_usd: float | None = None
    cache_input_cost_usd: float | None = None
    total_cost_usd: float | None = None
    latency_ms: float | None = None
    """From the request's arrival to the last token (ms)."""
    ttft_ms: float | None = None
    """Time to the first token (ms); None when no token came."""
    prompt_tokens_details: PromptTokensDetails | None = None


class RoutingCandidate(_Value):
    """One model the router weighed: predicted quality, expected cost, and the utility of both; or
    one it left out (`eligible` false), with the `reason` code and a `detail` sentence."""

    model: str
    quality: float | None = None
    cost_usd: float | None = None
    utility: float | None = None
    quality_source: str | None = None
    eligible: bool = True
    reason: str | None = None
    """Why it was left out: no_credentials, unpriced, no_vision, no_tools, no_response_schema,
    max_output_tokens or context_window."""
    detail: str | None = None


class RoutingDecision(_Value):
    """The model `/v1/router` chose, why, and how sure it is.

    The decision-only call (`execute=False`) also carries the candidates (best first), the prompt's
    capabilities and complexity, and the cost weight used; a routed completion carries the first three.
    """

    selected_model: str
    reasoning: str | None = None
    confidence: float | None = None
    candidates: list[RoutingCandidate] | None = None
    capabilities: dict[str, float] | None = None
    complexity: float | None = None
    cost_weight: float | None = None


# -- chat completions -------------------------------------------------------------------------------


class FunctionCall(_Value):
    name: str | None = None
    arguments: str | None = None
    """JSON text, as the model wrote it (possibly invalid)."""


class ToolCall(_Value):
    id: str | None = None
    type: str | None = "function"
    function: FunctionCall | None = None


class ToolCallDelta(_Value):
    """A piece of a tool call in a stream; the pieces with the same `index` add up to one call."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionCall | None = None


class ChatCompletionMessage(_Value):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    refusal: str | None = None
    reasoning_content: str | None = None


class ChatCompletionChoice(_Value):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletion(_Value):
    """A chat completion (`POST /v1/chat/completions` without `stream`)."""

    id: str
    object: str = "chat.completion"
    created: int | None = None
    model: str
    choices: list[ChatCompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class RoutedCompletion(ChatCompletion):
    """A chat completion from `/v1/router` (with `execute=True`): `routing` says which model and why."""

    routing: RoutingDecision


class ChoiceDelta(_Value):
    """What one chunk adds to a choice's message."""

    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    function_call: FunctionCall | None = None
    refusal: str | None = None
    reasoning_content: str | None = None


class ChatCompletionChunkChoice(_Value):
    index: int = 0
    delta: ChoiceDelta = ChoiceDelta()
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletionChunk(_Value):
    """One event of a streamed chat completion.

    The chunk with a `finish_reason` carries the `usage`; with `stream_options={"include_usage":
    True}` a last chunk with no choices carries it instead. The first chunk of a `/v1/router`
    stream carries the `routing` decision (None on every other chunk).
    """

    id: str
    object: str = "chat.completion.chunk"
    created: int | None = None
    model: str | None = None
    choices: list[ChatCompletionChunkChoice] = []
    usage: Usage | None = None
    routing: RoutingDecision | None = None
    system_fingerprint: str | None = None


# -- text completions -------------------------------------------------------------------------------


class CompletionChoice(_Value):
    index: int = 0
    text: str = ""
    finish_reason: str | None = None
    logprobs: Any = None


class Completion(_Value):
    """A text completion (`POST /v1/completions` without `stream`)."""

    id: str
    object: str = "text_completion"
    created: int | None = None
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class CompletionChunk(_Value):
    """One event of a streamed text completion (`usage` as for `ChatCompletionChunk`)."""

    id: str
    object: str = "text_completion.chunk"
    created: int | None = None
    model: str | None = None
    choices: list[CompletionChoice] = []
    usage: Usage | None = None
    system_fingerprint: str | None = None


# -- models and providers ---------------------------------------------------------------------------


class Model(_Value):
    id: str
    object: str = "model"
    created: int | None = None
    owned_by: str | None = None


class ModelList(_Value):
    """The models this key may use: iterate it, index it, or read `.data`."""

    object: str = "list"
    data: list[Model]

    def __iter__(self) -> Iterator[Model]:  # type: ignore[override]
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Model:
        return self.data[index]

    def ids(self) -> list[str]:
        """The models' ids, in the server's order."""
        return [m.id for m in self.data]


class Provider(_Value):
    """One provider of a model: the primary, or a backup the gateway fails over to."""

    id: str
    type: str | None = None
    """Either "primary" or "backup"."""
    enabled: bool = True
    params: dict[str, Any] = {}
    configured: bool | None = None
    """Whether the gateway has the credentials this provider needs (None from a server that does
    not say); else `missing` names the environment variables to set."""
    missing: list[str] | None = None
    features: dict[str, Any] | None = None
    """What the model takes on this provider: vision, function_calling, response_schema,
    max_output_tokens, reasoning (None where unknown)."""


class ProviderList(_Value):
    """The providers of a model, primary first: iterate it, index it, or read `.providers`."""

    providers: list[Provider]

    def __iter__(self) -> Iterator[Provider]:  # type: ignore[override]
        return iter(self.providers)

    def __len__(self) -> int:
        return len(self.providers)

    def __getitem__(self, index: int) -> Provider:
        return self.providers[index]


# -- feedback ---------------------------------------------------------------------------------------


class Feedback(_Value):
    """A score given to one request's answer (`client.feedback.create`)."""

    object: str = "feedback"
    request_id: str
    metric: str = "score"
    score: float
    """In [0, 1]; thumbs up is 1.0, down 0.0."""
    comment: str | None = None
    model: str | None = None
    """The model that answered the request."""
    created: float | None = None


class FeedbackList(_Value):
    """This key's feedback, newest first: iterate it, index it, or read `.data`."""

    object: str = "list"
    data: list[Feedback]

    def __iter__(self) -> Iterator[Feedback]:  # type: ignore[override]
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Feedback:
        return self.data[index]

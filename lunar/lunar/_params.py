"""The keyword arguments of each method, as TypedDicts (one list for the sync and async twins and
for every `@overload` of them), and `split`, which turns them into a JSON body and call options.

No `from __future__ import annotations` here: TypedDict must see `Required[...]` unquoted to know
which keys are required.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Required, TypedDict

import httpx

__all__ = [
    "ChatCompletionParams",
    "CompletionParams",
    "FeedbackParams",
    "MessageParam",
    "RequestOptions",
    "RouteParams",
    "StreamOptions",
    "split",
]


class MessageParam(TypedDict, total=False):
    """One chat turn: `{"role": "user", "content": "Hello!"}`. Methods take these or any mapping
    (a `list[dict[str, str]]` built at run time type-checks too)."""

    role: Required[Literal["system", "developer", "user", "assistant", "tool", "function"]]
    content: str | list[dict[str, Any]] | None
    """Text, or a list of parts such as `{"type": "text", "text": "..."}`."""
    name: str
    tool_calls: list[dict[str, Any]]
    tool_call_id: str


class StreamOptions(TypedDict, total=False):
    include_usage: bool
    """Send the usage in a last chunk of its own (with no choices), as OpenAI does."""


class RequestOptions(TypedDict, total=False):
    """Options of one call, never sent in the body."""

    timeout: float | httpx.Timeout | None
    """This call's timeout (None: the client's)."""
    extra_headers: Mapping[str, str]
    extra_query: Mapping[str, str]
    extra_body: Mapping[str, Any]
    """Fields added to (or replacing fields of) the JSON body."""


class _Sampling(TypedDict, total=False):
    max_tokens: int
    temperature: float
    top_p: float
    stop: str | Sequence[str]
    stream_options: StreamOptions
    n: int
    seed: int
    user: str
    presence_penalty: float
    frequency_penalty: float
    logit_bias: Mapping[str, float]


class _ChatSampling(_Sampling, total=False):
    max_completion_tokens: int
    tools: Iterable[Mapping[str, Any]]
    tool_choice: str | Mapping[str, Any]
    parallel_tool_calls: bool
    response_format: Mapping[str, Any]
    logprobs: bool
    top_logprobs: int
    reasoning_effort: str


# The required keys come first, the call options last: the order an editor shows them in.


class _Chat(TypedDict):
    model: str
    messages: Iterable[MessageParam | Mapping[str, Any]]


class ChatCompletionParams(_Chat, _ChatSampling, RequestOptions, total=False):
    pass


class _Text(TypedDict):
    model: str
    prompt: str | Sequence[str]


class _TextOnly(TypedDict, total=False):
    echo: bool
    best_of: int
    suffix: str
    logprobs: int


class CompletionParams(_Text, _Sampling, _TextOnly, RequestOptions, total=False):
    pass


class _Route(TypedDict):
    messages: Iterable[MessageParam | Mapping[str, Any]]


class _RouteOnly(TypedDict, total=False):
    models: Sequence[str]
    """Choose among these models only (default: every model the key may use)."""
    cost_weight: float
    """0 = best quality ... 1 = cheapest (the server's default: 0.5)."""


class RouteParams(_Route, _RouteOnly, _ChatSampling, RequestOptions, total=False):
    pass


class _Feedback(TypedDict):
    request_id: str
    """The `id` of a completion (its `x-request-id` header)."""


class _FeedbackOnly(TypedDict, total=False):
    score: float
    """0 (bad) ... 1 (good); give this or `thumbs`."""
    thumbs: Literal["up", "down"]
    metric: str
    """What the score measures (default "score"); one score is kept per request and metric."""
    comment: str


class FeedbackParams(_Feedback, _FeedbackOnly, RequestOptions, total=False):
    pass


_OPTIONS = RequestOptions.__optional_keys__


def split(method: str, kind: Any, params: Mapping[str, Any]) -> tuple[dict[str, Any], RequestOptions]:
    """(JSON body, options) from the keyword arguments `params` of `method`, checked against the
    TypedDict `kind` as Python checks a signature (TypeError). None values are left out."""
    known = kind.__required_keys__ | kind.__optional_keys__
    unknown = [name for name in params if name not in known]
    if unknown:
        raise TypeError(f"{method}() got an unexpected keyword argument {unknown[0]!r} (use extra_body=)")
    missing = [name for name in sorted(kind.__required_keys__) if params.get(name) is None]
    if missing:
        raise TypeError(f"{method}() missing required keyword argument {missing[0]!r}")
    body: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for name, value in params.items():
        if name in _OPTIONS:
            options[name] = value
        elif value is not None:
            body[name] = _plain(value)
    body.update(options.pop("extra_body", None) or {})
    return body, RequestOptions(**options)  # type: ignore[typeddict-item]


def _plain(value: Any) -> Any:
    """Iterables and mappings of any kind as the lists and dicts JSON needs."""
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [_plain(v) for v in value]
    return value

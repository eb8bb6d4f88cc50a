"""The wire protocol: request bodies as pydantic models, and the parameters passed upstream.

Only the OpenAI parameters listed in `PASSTHROUGH` reach the provider; any other unknown field is
dropped (never an error, never forwarded: a client must not be able to set `api_base`, `api_key` or
litellm's own options through the body). Those a provider would fail on when malformed (`tools`,
`tool_choice`, `response_format`, and chat turns without content) are checked for OpenAI's shape
first: a 400 here costs no upstream attempt and never counts toward a provider's circuit breaker.

Every identifier a client sends is capped, here, before anything is written: a longer one is a 400
naming its field. The caps (constants below) are OpenAI's where it has one (function names 64):

    model, models[i]                          MAX_MODEL_CHARS        256
    user                                      MAX_USER_CHARS         256
    tools[i].function.name, tool_choice's,    MAX_NAME_CHARS          64
      functions[i].name, function_call.name,
      messages[i].tool_calls[j].function.name,
      response_format.json_schema.name
    stop (each sequence)                      MAX_STOP_CHARS         256
    request_id (feedback)                     MAX_ID_CHARS           128
    metric (feedback)                         MAX_METRIC_CHARS       100
    comment (feedback)                        MAX_COMMENT_CHARS   10,000

(A key's `tenant` and `name` are set by an admin, capped at 200 in service/routes/admin.py.) An
error that quotes a client's string quotes at most its first 100 characters (`errors.shown`).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from router import DEFAULT_COST_WEIGHT

from .errors import PARAM_CHARS, BadRequest, clipped, shown, validation_to_bad_request

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_ID_CHARS",
    "MAX_METRIC_CHARS",
    "MAX_MODEL_CHARS",
    "MAX_NAME_CHARS",
    "MAX_STOP_CHARS",
    "MAX_USER_CHARS",
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

MAX_MODEL_CHARS = 256
"""A model name (`model`, each of `models`): the catalogue's ids and `pureai/` names are far shorter."""
MAX_USER_CHARS = 256
"""`user`, the end user's id passed upstream."""
MAX_NAME_CHARS = 64
"""A function or tool name, a json_schema's name: OpenAI's own limit."""
MAX_STOP_CHARS = 256
"""One stop sequence."""
MAX_ID_CHARS = 128
"""A request id in feedback (ours are 28 characters: `req_` and 24 hex digits)."""
MAX_METRIC_CHARS = 100
"""A feedback metric's name."""
MAX_COMMENT_CHARS = 10_000
"""A feedback comment."""

ModelName = Annotated[str, Field(min_length=1, max_length=MAX_MODEL_CHARS)]


class Message(BaseModel):
    """One chat turn. `content` is text or a list of parts (text, image_url, ...).

    A system, developer, user or tool turn needs `content` (absent or null: a 400 naming
    `messages.<i>.content`); an assistant turn may go without it only when it calls a tool
    (`tool_calls` or the legacy `function_call`). A legacy `function` turn is left as it comes.
    """

    model_config = ConfigDict(extra="allow")  # name, tool_call_id, ...

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    # Declared before `content` so that its check sees them; forwarded exactly as they come.
    tool_calls: Any = None
    function_call: Any = None
    content: str | list[dict[str, Any]] | None = Field(None, validate_default=True)

    @field_validator("tool_calls")
    @classmethod
    def _tool_calls(cls, value: Any) -> Any:
        for i, call in enumerate(value if isinstance(value, list) else ()):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                _check_name(function.get("name"), f"tool_calls[{i}].function.name")
        return value

    @field_validator("function_call")
    @classmethod
    def _function_call(cls, value: Any) -> Any:
        if isinstance(value, dict):
            _check_name(value.get("name"), "function_call.name")
        return value

    @field_validator("content")
    @classmethod
    def _content(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, list):
            for i, part in enumerate(value):
                if not isinstance(part.get("type"), str):
                    raise ValueError(f"content part {i} needs a string 'type'")
        elif value is None:
            role = info.data.get("role")
            calls = info.data.get("tool_calls") or info.data.get("function_call")
            if role in _CONTENT_REQUIRED:
                raise PydanticCustomError(
                    "missing", f"a {role} message needs a string or a list of content parts"
                )
            if role == "assistant" and not calls:
                raise PydanticCustomError(
                    "missing", "an assistant message needs content unless it has tool_calls"
                )
        return value


_CONTENT_REQUIRED = frozenset({"system", "developer", "user", "tool"})


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")

    max_tokens: StrictInt | None = Field(None, ge=1)
    temperature: StrictFloat | None = Field(None, ge=0, le=2)
    top_p: StrictFloat | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = None
    stream: StrictBool = False
    stream_options: dict[str, Any] | None = None
    # Forwarded as they come (see PASSTHROUGH), once their shape is checked: a provider that fails
    # on a malformed one would cost every retry and failover attempt and count toward its breaker.
    tools: Any = None
    tool_choice: Any = None
    response_format: Any = None
    functions: Any = None  # the legacy forms of tools and tool_choice
    function_call: Any = None
    user: str | None = Field(None, max_length=MAX_USER_CHARS)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        for i, stop in enumerate([value] if isinstance(value, str) else value or ()):
            if len(stop) > MAX_STOP_CHARS:
                raise ValueError(f"stop sequence {i} is longer than {MAX_STOP_CHARS} characters")
        return value

    @field_validator("functions")
    @classmethod
    def _functions(cls, value: Any) -> Any:
        for i, function in enumerate(value if isinstance(value, list) else ()):
            if isinstance(function, dict):
                _check_name(function.get("name"), f"functions[{i}].name")
        return value

    @field_validator("function_call")
    @classmethod
    def _function_call(cls, value: Any) -> Any:
        if isinstance(value, dict):
            _check_name(value.get("name"), "function_call.name")
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: Any) -> Any:
        if value is not None:
            _check_tools(value)
        return value

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None:
            _check_tool_choice(value, info.data.get("tools"))
        return value

    @field_validator("response_format")
    @classmethod
    def _response_format(cls, value: Any) -> Any:
        if value is not None:
            _check_response_format(value)
        return value

    def include_usage_chunk(self) -> bool:
        """True when the client asked for OpenAI's separate final usage chunk."""
        return bool((self.stream_options or {}).get("include_usage"))

    def upstream_params(self) -> dict[str, Any]:
        """The sampling parameters and passed-through OpenAI fields that are set."""
        params = {k: getattr(self, k) for k in _DECLARED}
        extra = self.model_extra or {}
        params.update({k: v for k, v in extra.items() if k in PASSTHROUGH})
        return {k: v for k, v in params.items() if v is not None}

    def dropped(self) -> list[str]:
        """Unknown fields that are not forwarded."""
        return sorted(k for k in (self.model_extra or {}) if k not in PASSTHROUGH)


_DECLARED = (
    "max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice", "response_format", "functions",
    "function_call", "user",
)  # fmt: skip
"""The fields of `_Sampling` that are sent upstream (the other passed-through ones are extras)."""
TOOL_CHOICES = ("none", "auto", "required")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


def _check_name(name: Any, where: str) -> None:
    """ValueError when `name` is a string longer than MAX_NAME_CHARS (other shapes: the provider's)."""
    if isinstance(name, str) and len(name) > MAX_NAME_CHARS:
        raise ValueError(f"{where} is longer than {MAX_NAME_CHARS} characters")


def _check_tools(tools: Any) -> None:
    """ValueError unless `tools` is OpenAI's: a non-empty list of {"type": "function", "function":
    {"name": ..., "description"?: str, "parameters"?: object}}."""
    if not isinstance(tools, list) or not tools:
        raise ValueError("must be a non-empty list of tools")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise ValueError(f'{where} must be an object with "type": "function"')
        function = tool.get("function")
        if not isinstance(function, dict):
            raise ValueError(f"{where}.function must be an object")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}.function.name must be a non-empty string")
        _check_name(name, f"{where}.function.name")
        if "description" in function and not isinstance(function["description"], str):
            raise ValueError(f"{where}.function.description must be a string")
        if "parameters" in function and not isinstance(function["parameters"], dict):
            raise ValueError(f"{where}.function.parameters must be a JSON Schema object")


def _check_tool_choice(choice: Any, tools: Any) -> None:
    """ValueError unless `choice` is "none", "auto", "required" (with tools) or {"type": "function",
    "function": {"name": <one of the tools>}}."""
    names = {t["function"]["name"] for t in tools} if isinstance(tools, list) else set()
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise ValueError(f"must be one of {', '.join(map(repr, TOOL_CHOICES))} or a named function")
        if choice == "required" and not names:
            raise ValueError("'required' needs tools")
        return
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or not isinstance(name, str):
        raise ValueError(
            f'must be one of {", ".join(map(repr, TOOL_CHOICES))} or {{"type": "function", '
            '"function": {"name": ...}}'
        )
    _check_name(name, "function.name")
    if name not in names:
        raise ValueError(f"names the function {shown(name)}, which is not in 'tools'")


def _check_response_format(value: Any) -> None:
    """ValueError unless `value` is {"type": "text" | "json_object"} or {"type": "json_schema",
    "json_schema": {"name": ..., "schema"?: object, ...}}."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in RESPONSE_FORMATS:
        raise ValueError(f"must be an object whose 'type' is one of {', '.join(map(repr, RESPONSE_FORMATS))}")
    if kind != "json_schema":
        return
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise ValueError("json_schema needs an object with a non-empty string 'name'")
    _check_name(spec["name"], "json_schema.name")
    if "schema" in spec and not isinstance(spec["schema"], dict):
        raise ValueError("json_schema.schema must be a JSON Schema object")


class ChatRequest(_Sampling):
    model: ModelName
    messages: list[Message] = Field(min_length=1)

    def message_dicts(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_none=True) for m in self.messages]


class CompletionRequest(_Sampling):
    model: ModelName
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
    models: list[ModelName] | None = Field(None, min_length=1)
    cost_weight: StrictFloat = Field(DEFAULT_COST_WEIGHT, ge=0, le=1)

    def message_dicts(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_none=True) for m in self.messages]


class FeedbackRequest(BaseModel):
    """POST /v1/feedback: a score in [0, 1] or thumbs up/down for one request's answer."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    score: StrictFloat | None = Field(None, ge=0, le=1)
    thumbs: Literal["up", "down"] | None = None
    metric: str = Field("score", min_length=1, max_length=MAX_METRIC_CHARS, pattern=r"^[A-Za-z0-9_.:-]+$")
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)

    def value(self) -> float:
        """The score (thumbs up 1.0, down 0.0); BadRequest unless exactly one of the two is given."""
        if (self.score is None) == (self.thumbs is None):
            raise BadRequest(
                "give either 'score' (0 to 1) or 'thumbs' ('up' or 'down')",
                param="score",
                code="invalid_value",
            )
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
            param=clipped(".".join(where), PARAM_CHARS) or None,
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

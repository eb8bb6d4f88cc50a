"""lunar: the Python SDK of the pureai gateway.

    from lunar import Lunar

    client = Lunar()  # PUREAI_API_KEY, PUREAI_BASE_URL
    response = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}]
    )
    response.choices[0].message.content, response.usage.total_cost_usd

    for chunk in client.completions.create(model="gpt-4o-mini", prompt="Hello", stream=True):
        print(chunk.choices[0].text, end="")

    decision = client.router.route(messages=[...], models=["gpt-4o-mini", "codestral-latest"],
                                   cost_weight=0.5, execute=False)

    client.feedback.create(request_id=response.id, score=1.0)   # or thumbs="up"

`AsyncLunar` is the same for asyncio. Errors are typed (see `LunarError`'s subclasses).
"""

from ._client import AsyncLunar, Lunar
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APIStreamError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    LunarError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ._http import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._params import MessageParam
from ._streaming import AsyncStream, Stream
from ._types import (
    ChatCompletion,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionChunkChoice,
    ChatCompletionMessage,
    ChoiceDelta,
    Completion,
    CompletionChoice,
    CompletionChunk,
    Feedback,
    FeedbackList,
    FunctionCall,
    Model,
    ModelList,
    PromptTokensDetails,
    Provider,
    ProviderList,
    RoutedCompletion,
    RoutingCandidate,
    RoutingDecision,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AsyncLunar",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
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
    "InternalServerError",
    "Lunar",
    "LunarError",
    "MessageParam",
    "Model",
    "ModelList",
    "NotFoundError",
    "PermissionDeniedError",
    "PromptTokensDetails",
    "Provider",
    "ProviderList",
    "RateLimitError",
    "RoutedCompletion",
    "RoutingCandidate",
    "RoutingDecision",
    "Stream",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "__version__",
]

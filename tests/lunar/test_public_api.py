"""The `lunar` package surface: exactly what it exports, its exception tree, py.typed, and an import
that pulls in neither the router nor litellm nor onnxruntime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lunar

REPO = Path(__file__).resolve().parents[2]


def test_all_is_exactly_the_public_api() -> None:
    assert lunar.__all__ == [
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
    for name in lunar.__all__:
        assert getattr(lunar, name) is not None
    public = {n for n in dir(lunar) if not n.startswith("_")}
    assert public - set(lunar.__all__) == set()  # the private modules are not re-exported by name


def test_the_exception_tree() -> None:
    tree = {
        lunar.APIError: lunar.LunarError,
        lunar.APIConnectionError: lunar.APIError,
        lunar.APITimeoutError: lunar.APIConnectionError,
        lunar.APIResponseValidationError: lunar.APIError,
        lunar.APIStreamError: lunar.APIError,
        lunar.APIStatusError: lunar.APIError,
        lunar.BadRequestError: lunar.APIStatusError,
        lunar.AuthenticationError: lunar.APIStatusError,
        lunar.PermissionDeniedError: lunar.APIStatusError,
        lunar.NotFoundError: lunar.APIStatusError,
        lunar.RateLimitError: lunar.APIStatusError,
        lunar.InternalServerError: lunar.APIStatusError,
    }
    for kind, parent in tree.items():
        assert kind.__bases__ == (parent,), kind
    assert lunar.LunarError.__bases__ == (Exception,)


def test_the_package_is_typed() -> None:
    assert (Path(lunar.__file__).parent / "py.typed").is_file()


def test_importing_lunar_pulls_in_nothing_heavy() -> None:
    code = (
        "import sys, lunar\n"
        "heavy = [m for m in ('router', 'service', 'models_registry', 'litellm', 'onnxruntime', 'numpy',"
        " 'torch', 'fastapi') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "", result.stdout

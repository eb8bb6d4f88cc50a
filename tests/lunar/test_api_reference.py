"""Every example of the API reference's Python SDK section, run as written against a real gateway
process and the fake upstreams (../shared/spec/api-reference.txt; the reference's text lost its
indentation, restored here). `Lunar()` reads PUREAI_API_KEY and PUREAI_BASE_URL; the placeholder
"your-key" is replaced by a real key, as a reader would."""

from __future__ import annotations

from typing import Any

import pytest

import lunar
from tests.service.gateway_server import Gateway

DEPLOYED_MODELS = """
from lunar import Lunar

client = Lunar()

# Using your deployed model
response = client.chat.completions.create(
    model="pureai/gemma-3-4b-it",
    messages=[{"role": "user", "content": "Hello!"}]
)

# Text completions with streaming
for chunk in client.completions.create(
    model="pureai/DeepSeek-R1-Distill-Llama-8B",
    prompt="Explain quantum computing",
    max_tokens=1024,
    stream=True
):
    print(chunk.choices[0].text, end="")
"""

SDK_USAGE = """
from lunar import Lunar

client = Lunar(api_key="your-key")

# Chat completions
response = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Hello!"}]
)

# Text completions
response = client.completions.create(
    model="gpt-4o-mini",
    prompt="Hello"
)

# List models
models = client.models.list()

# List providers
providers = client.providers.list(model="gpt-4o-mini")
"""

CATALOGUE = [
    "gpt-4o-mini",
    "codestral-latest",
    "gpt-4o",
    "claude-3-haiku",
    "pureai/gemma-3-4b-it",
    "pureai/DeepSeek-R1-Distill-Llama-8B",
    "unconfigured-model",  # enabled, though its provider key is not set
]


def run(example: str) -> dict[str, Any]:
    """Execute an example; its variables, after closing its client."""
    namespace: dict[str, Any] = {}
    try:
        exec(compile(example, "<api-reference>", "exec"), namespace)
    finally:
        if isinstance(namespace.get("client"), lunar.Lunar):
            namespace["client"].close()
    return namespace


def test_deployed_models_example(
    gateway: Gateway, fresh: Any, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = run(DEPLOYED_MODELS)
    response = ns["response"]
    assert isinstance(response, lunar.ChatCompletion)
    assert response.model == "pureai/gemma-3-4b-it"
    assert response.choices[0].message.content == "Hello from A: Hello!"
    assert response.usage is not None and response.usage.total_cost_usd is not None
    assert capsys.readouterr().out == "Hello from B: Explain quantum computing"
    a, b = fresh
    assert [r["body"]["model"] for r in a.requests()] == ["gemma-3-4b-it"]
    (streamed,) = b.requests()
    assert streamed["body"]["model"] == "DeepSeek-R1-Distill-Llama-8B"
    assert streamed["body"]["max_tokens"] == 1024 and streamed["body"]["stream"] is True


def test_sdk_usage_example(gateway: Gateway, fresh: Any, env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(
        "PUREAI_API_KEY"
    )  # the example passes its key; the base URL comes from PUREAI_BASE_URL
    ns = run(SDK_USAGE.replace('"your-key"', repr(env)))
    assert isinstance(ns["response"], lunar.Completion)
    assert ns["response"].choices[0].text == "Hello from A: Hello"
    assert isinstance(ns["models"], lunar.ModelList)
    assert [m.id for m in ns["models"]] == CATALOGUE
    providers = ns["providers"]
    assert isinstance(providers, lunar.ProviderList)
    assert [(p.id, p.type, p.enabled, p.params) for p in providers] == [
        ("openai", "primary", True, {}),
        ("groq", "backup", True, {}),
    ]
    assert len(fresh[0].requests()) == 2  # the chat and the text completion reached the primary


def test_sdk_usage_example_without_a_key_fails_at_construction() -> None:
    with pytest.raises(lunar.LunarError, match="PUREAI_API_KEY"):
        run(DEPLOYED_MODELS)

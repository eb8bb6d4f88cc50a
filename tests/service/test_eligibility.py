"""Eligibility: the gateway routes, executes and fails over only to what can answer the request.

Two real gateways: one on the built-in catalogue with only OPENAI_API_KEY set (its OpenAI calls go to
a fake upstream through OPENAI_BASE_URL, as a user's would go to api.openai.com), and one on a
catalogue of models with known, unknown and missing features, each on a fake upstream that records
what it received.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.service.conftest import gateway_env, store_url
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway

ROUTER = "/v1/router"
CHAT = "/v1/chat/completions"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}

# Credentials a machine may hold for the built-in catalogue's other providers: none of them is set
# for the "only OPENAI_API_KEY" gateway.
OTHER_CREDENTIALS = (
    "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "AZURE_API_KEY", "AZURE_API_BASE",
    "AZURE_API_VERSION", "AZURE_AI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION_NAME", "VERTEXAI_PROJECT", "VERTEXAI_LOCATION", "GOOGLE_APPLICATION_CREDENTIALS",
    "GROQ_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY", "DEEPINFRA_API_KEY",
    "FIREWORKS_AI_API_KEY", "MISTRAL_API_KEY", "DEEPSEEK_API_KEY", "COHERE_API_KEY",
    "PUREAI_DEPLOYMENT_API_KEY",
)  # fmt: skip

PROMPTS = [
    "What is the capital of Brazil?",
    "Implement a lock-free concurrent hash map in C++ with correct memory ordering.",
    "Prove that the square root of 2 is irrational.",
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "hey, how's it going?",
    "Extract every date from: 'Signed 3 March 2021, amended 14 July 2022, void after 2030-01-01.'",
    "Summarise the causes of the French Revolution in three bullet points.",
    "What is 17 * 23?",
    "Explain the difference between TCP and UDP to a beginner.",
    "Refactor this Python: def f(x): return [i for i in range(len(x)) if x[i] % 2 == 0]",
]


def h(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def user(*parts: Any) -> list[dict[str, Any]]:
    content: Any = parts[0] if len(parts) == 1 and isinstance(parts[0], str) else list(parts)
    return [{"role": "user", "content": content}]


# --- the built-in catalogue with one provider key ---------------------------------------------------


@pytest.fixture(scope="module")
def openai_only(
    upstreams: tuple[FakeUpstream, FakeUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    data = tmp_path_factory.mktemp("openai-only")
    env: dict[str, str | None] = {
        "PUREAI_DATABASE_URL": store_url(data),
        "PUREAI_CATALOGUE": None,  # the built-in one
        "PUREAI_EXPLORE_SHARE": "0",
        "PUREAI_RETRIES_PER_PROVIDER": "0",
        "PUREAI_BREAKER_FAILURES": "0",
        "OPENAI_API_KEY": "sk-only-openai-Q3",
        "OPENAI_BASE_URL": upstreams[0].url,
        "OPENAI_API_BASE": upstreams[0].url,
        **dict.fromkeys(OTHER_CREDENTIALS),
    }
    with Gateway.start(env) as gw:
        yield gw


OPENAI_RUNNABLE = {"gpt-4o-mini", "gpt-4o", "o1-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3-mini"}


def test_with_only_openai_every_decision_and_execution_is_an_openai_model(
    openai_only: Gateway, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    key = openai_only.new_key(tenant="t-openai-only")
    chosen = set()
    for prompt in PROMPTS:
        for weight in (0.0, 0.3, 0.5, 0.8, 1.0):
            r = openai_only.http.post(
                ROUTER,
                headers=h(key),
                json={"messages": user(prompt), "cost_weight": weight, "execute": False},
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["selected_model"] in OPENAI_RUNNABLE, (prompt, weight, body["selected_model"])
            eligible = {c["model"] for c in body["candidates"] if c["eligible"]}
            assert eligible <= OPENAI_RUNNABLE and body["selected_model"] in eligible
            chosen.add(body["selected_model"])
    left_out = {c["model"]: c for c in body["candidates"] if not c["eligible"]}
    # Gemini's Vertex AI backups name no key variable: they are not configured by that
    assert left_out["gemini-2.0-flash"]["reason"] == "no_credentials"
    assert "GEMINI_API_KEY" in left_out["gemini-2.0-flash"]["detail"]
    assert "VERTEXAI_PROJECT" in left_out["gemini-2.0-flash"]["detail"]
    assert left_out["claude-3-5-sonnet"]["reason"] == "no_credentials"
    assert "AWS_ACCESS_KEY_ID" in left_out["claude-3-5-sonnet"]["detail"]
    assert len(chosen) >= 2  # the weights move the choice

    upstreams[0].reset()
    for prompt in PROMPTS[:5]:
        decided = openai_only.http.post(
            ROUTER, headers=h(key), json={"messages": user(prompt), "execute": False}
        )
        ran = openai_only.http.post(ROUTER, headers=h(key), json={"messages": user(prompt)})
        assert ran.status_code == 200, ran.text
        assert ran.json()["model"] == decided.json()["selected_model"] == ran.headers["x-pureai-model"]
    received = {r["model"] for r in upstreams[0].requests()}
    assert received and received <= OPENAI_RUNNABLE


def test_a_restricted_pool_runs_its_configured_member(
    openai_only: Gateway, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    key = openai_only.new_key(tenant="t-restricted")
    pool = ["mistral-small-latest", "claude-3-5-sonnet", "gpt-4o-mini"]
    r = openai_only.http.post(ROUTER, headers=h(key), json={"messages": user("Hi there"), "models": pool})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "gpt-4o-mini"
    none = openai_only.http.post(
        ROUTER, headers=h(key), json={"messages": user("Hi"), "models": pool[:2], "execute": False}
    )
    assert none.status_code == 503, none.text
    error = none.json()["error"]
    assert error["code"] == "no_eligible_model"
    assert "MISTRAL_API_KEY" in error["message"] and "ANTHROPIC_API_KEY" in error["message"]


def test_ready_and_providers_say_what_is_configured(openai_only: Gateway) -> None:
    ready = openai_only.http.get("/ready").json()
    assert ready["configured_providers"] == ["openai"]
    assert ready["unconfigured_providers"]["vertex_ai"] == ["VERTEXAI_LOCATION", "VERTEXAI_PROJECT"]
    assert "AZURE_API_KEY" in ready["unconfigured_providers"]["azure"]
    assert ready["runnable_models"] == len(OPENAI_RUNNABLE)
    key = openai_only.new_key(tenant="t-providers")
    providers = openai_only.http.get("/v1/providers", params={"model": "gpt-4o"}, headers=h(key)).json()
    assert [(p["id"], p["configured"]) for p in providers["providers"]] == [
        ("openai", True),
        ("azure", False),
    ]
    assert "AZURE_API_BASE" in providers["providers"][1]["missing"]


def test_o1_mini_is_callable_and_its_parameters_are_mapped_or_refused(
    openai_only: Gateway, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    key = openai_only.new_key(tenant="t-o1")
    refused = openai_only.http.post(
        CHAT, headers=h(key), json={"model": "o1-mini", "messages": user("2+2?"), "temperature": 0.2}
    )
    assert refused.status_code == 400, refused.text
    assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == (
        "unsupported_parameter",
        "temperature",
    )
    upstreams[0].reset()
    r = openai_only.http.post(
        CHAT, headers=h(key), json={"model": "o1-mini", "messages": user("2+2?"), "max_tokens": 50}
    )
    assert r.status_code == 200, r.text
    [sent] = upstreams[0].requests()
    assert sent["model"] == "o1-mini"
    assert sent["body"].get("max_completion_tokens") == 50 and "max_tokens" not in sent["body"]
    tools = openai_only.http.post(
        CHAT, headers=h(key), json={"model": "o1-mini", "messages": user("hi"), "tools": TOOLS}
    )
    assert tools.status_code == 400 and tools.json()["error"]["param"] == "tools"


def test_a_routed_reasoning_model_gets_no_sampling_parameters(
    openai_only: Gateway, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    key = openai_only.new_key(tenant="t-o1-routed")
    upstreams[0].reset()
    body = {"messages": user("Prove there are infinitely many primes."), "models": ["o1-mini"]}
    r = openai_only.http.post(ROUTER, headers=h(key), json={**body, "temperature": 0.7, "max_tokens": 80})
    assert r.status_code == 200, r.text
    [sent] = upstreams[0].requests()
    assert "temperature" not in sent["body"] and sent["body"]["max_completion_tokens"] == 80


# --- request features -------------------------------------------------------------------------------

FEATURES_CATALOGUE = """
[[models]]
id = "seer"
owned_by = "test"
litellm_model = "openai/seer"
input_per_mtok = 5.0
output_per_mtok = 15.0
context_window = 128000
api_base = "{a}"
supports_vision = true
supports_function_calling = true
supports_response_schema = true
max_output_tokens = 1000
quality_priors = {{ default = 0.9 }}

[[models]]
id = "plain"
owned_by = "test"
litellm_model = "openai/plain"
input_per_mtok = 0.10
output_per_mtok = 0.20
context_window = 128000
api_base = "{b}"
supports_vision = false
supports_function_calling = false
supports_response_schema = false
max_output_tokens = 100
quality_priors = {{ default = 0.9 }}

[[models]]
id = "unknown"
owned_by = "test"
litellm_model = "openai/unknown-model"
input_per_mtok = 0.05
output_per_mtok = 0.10
context_window = 128000
api_base = "{b}"
quality_priors = {{ default = 0.9 }}

[[models]]
id = "mixed"
owned_by = "test"
litellm_model = "openai/mixed"
input_per_mtok = 8.0
output_per_mtok = 20.0
context_window = 128000
quality_priors = {{ default = 0.9 }}

[[models.providers]]
id = "sees"
type = "primary"
api_base = "{a}"
supports_vision = true

[[models.providers]]
id = "blind"
type = "backup"
api_base = "{b}"
supports_vision = false

[[models]]
id = "no-prices"
owned_by = "test"
litellm_model = "openai/no-prices"
context_window = 128000
api_base = "{b}"
quality_priors = {{ default = 0.99 }}

[[models]]
id = "local-free"
owned_by = "test"
litellm_model = "openai/local-free"
free = true
context_window = 128000
api_base = "{b}"
quality_priors = {{ default = 0.2 }}
"""


@pytest.fixture(scope="module")
def featured(
    upstreams: tuple[FakeUpstream, FakeUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("features")
    catalogue = folder / "catalogue.toml"
    catalogue.write_text(FEATURES_CATALOGUE.format(a=upstreams[0].url, b=upstreams[1].url))
    with Gateway.start(gateway_env(catalogue, folder)) as gw:
        yield gw


@pytest.fixture()
def fkey(featured: Gateway) -> str:
    return featured.new_key(tenant="t-features")


def decide(gw: Gateway, key: str, **body: Any) -> dict[str, Any]:
    r = gw.http.post(ROUTER, headers=h(key), json={"execute": False, **body})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def reasons(decision: dict[str, Any]) -> dict[str, str]:
    return {c["model"]: c["reason"] for c in decision["candidates"] if not c["eligible"]}


def test_unpriced_is_never_a_candidate_and_free_is(featured: Gateway, fkey: str) -> None:
    cheapest = decide(featured, fkey, messages=user("Hello"), cost_weight=1.0)
    assert cheapest["selected_model"] == "local-free"
    assert reasons(cheapest) == {"no-prices": "unpriced"}
    for weight in (0.0, 0.5):  # its prior of 0.99 would win at weight 0 if it were a candidate
        assert (
            decide(featured, fkey, messages=user("Hello"), cost_weight=weight)["selected_model"]
            != "no-prices"
        )


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"messages": user({"type": "text", "text": "What is in this picture?"}, IMAGE)}, "no_vision"),
        ({"messages": user("Weather in Paris?"), "tools": TOOLS}, "no_tools"),
        ({"messages": user("Weather in Paris?"), "tools": TOOLS, "tool_choice": "auto"}, "no_tools"),
        ({"messages": user("Give me JSON"), "response_format": SCHEMA}, "no_response_schema"),
        ({"messages": user("Write an essay"), "max_tokens": 500}, "max_output_tokens"),
    ],
)
def test_routing_chooses_only_models_that_take_the_request(
    featured: Gateway, fkey: str, extra: dict[str, Any], reason: str
) -> None:
    decision = decide(featured, fkey, cost_weight=1.0, **extra)
    left_out = reasons(decision)
    assert left_out["plain"] == reason
    if reason == "max_output_tokens":  # an unknown limit is no reason to leave a model out
        assert decision["selected_model"] == "local-free"
        return
    assert left_out["unknown"] == reason  # support not known: the router does not bet on it
    assert decision["selected_model"] in {"seer", "mixed"}


def test_an_executed_image_request_reaches_only_a_provider_that_sees(
    featured: Gateway, fkey: str, fresh: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, b = fresh
    messages = user({"type": "text", "text": "Describe this"}, IMAGE)
    for stream in (False, True):
        r = featured.http.post(
            ROUTER, headers=h(fkey), json={"messages": messages, "cost_weight": 1.0, "stream": stream}
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-pureai-model"] == "seer"
    assert [x["model"] for x in a.requests()] == ["seer", "seer"] and b.requests() == []
    tools = featured.http.post(
        ROUTER, headers=h(fkey), json={"messages": user("Weather?"), "tools": TOOLS, "cost_weight": 1.0}
    )
    assert tools.status_code == 200 and a.requests()[-1]["body"]["tools"] == TOOLS
    assert b.requests() == []


def test_failover_skips_a_backup_that_cannot_take_the_request(
    featured: Gateway, fkey: str, fresh: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, b = fresh
    a.script({"status": 500, "model": "mixed"})
    seeing = user({"type": "text", "text": "Describe this"}, IMAGE)
    r = featured.http.post(CHAT, headers=h(fkey), json={"model": "mixed", "messages": seeing})
    assert r.status_code == 502, r.text
    assert len(a.requests()) == 1 and b.requests() == []  # the blind backup was never sent the image
    a.script({"status": 500, "model": "mixed"})
    text = featured.http.post(CHAT, headers=h(fkey), json={"model": "mixed", "messages": user("Hello")})
    assert text.status_code == 200, text.text
    assert text.headers["x-pureai-provider"] == "blind"


def test_a_named_model_is_refused_only_for_what_it_is_known_not_to_take(
    featured: Gateway, fkey: str, fresh: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, b = fresh
    seeing = user({"type": "text", "text": "Describe this"}, IMAGE)
    cases = [
        ({"messages": seeing}, "messages"),
        ({"messages": user("Weather?"), "tools": TOOLS}, "tools"),
        ({"messages": user("JSON"), "response_format": SCHEMA}, "response_format"),
        ({"messages": user("Essay"), "max_tokens": 101}, "max_tokens"),
    ]
    for body, param in cases:
        r = featured.http.post(CHAT, headers=h(fkey), json={"model": "plain", **body})
        assert r.status_code == 400, r.text
        assert (r.json()["error"]["code"], r.json()["error"]["param"]) == ("unsupported_by_model", param)
    assert b.requests() == []
    # support unknown: the client chose the model, so the request is tried
    r = featured.http.post(CHAT, headers=h(fkey), json={"model": "unknown", "messages": seeing})
    assert r.status_code == 200, r.text
    assert b.requests()[-1]["model"] == "unknown-model"


def test_no_eligible_model_names_what_is_missing(featured: Gateway, fkey: str) -> None:
    seeing = user({"type": "text", "text": "Describe this"}, IMAGE)
    r = featured.http.post(ROUTER, headers=h(fkey), json={"messages": seeing, "models": ["plain", "unknown"]})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("no_eligible_model", "messages")
    assert "plain: it does not take images" in error["message"]


def test_decision_only_and_executed_choose_alike(
    featured: Gateway, fkey: str, fresh: tuple[FakeUpstream, FakeUpstream]
) -> None:
    for prompt in PROMPTS[:6]:
        for weight in (0.0, 0.5, 1.0):
            body = {"messages": user(prompt), "cost_weight": weight}
            decided = decide(featured, fkey, **body)["selected_model"]
            ran = featured.http.post(ROUTER, headers=h(fkey), json=body)
            assert ran.status_code == 200, ran.text
            assert ran.json()["routing"]["selected_model"] == decided == ran.headers["x-pureai-model"]

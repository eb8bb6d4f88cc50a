"""Retries, cooldowns, the circuit breaker, the first-token deadline and context windows (reliability
cases 1, 2, 6, 10, 11 and 22), against a real gateway process with all of them on and the fake
upstreams: A serves each model's primary ("openai"), B its backup ("groq").

The breaker's state outlives a request, so each test uses models of its own (the fake's steps are
scripted per model): no test finds a provider cooling down after another test's faults.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.breaker import Breaker
from tests.service.calls import ask, chat, h, wait_row
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway, catalogue

TIMEOUT_S = 2.0  # PUREAI_REQUEST_TIMEOUT_S
TTFT_S = 0.4  # PUREAI_FIRST_TOKEN_TIMEOUT_S
COOLDOWN_S = 1.5  # PUREAI_BREAKER_COOLDOWN_S
SLACK_S = 1.0  # process scheduling on a busy 2-core machine
STUCK_MS = 6000  # an upstream delay past every bound here
TINY_WINDOW = 1000  # tokens: the context window of "tiny-ctx"
CONTEXT_ERROR = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."
)

PAIR = """
[[models]]
id = "{id}"
owned_by = "openai"
litellm_model = "openai/{id}"
input_per_mtok = 0.15
output_per_mtok = 0.60
context_window = 128000
quality_priors = {{ default = 0.5 }}

[[models.providers]]
id = "openai"
type = "primary"
api_base = "{primary}"
api_key_env = "TEST_OPENAI_KEY"

[[models.providers]]
id = "groq"
type = "backup"
api_base = "{backup}"
api_key_env = "TEST_GROQ_KEY"
"""

SINGLE = """
[[models]]
id = "{id}"
owned_by = "openai"
litellm_model = "openai/{id}"
input_per_mtok = {price}
output_per_mtok = {price}
context_window = {window}
api_base = "{primary}"
api_key_env = "TEST_OPENAI_KEY"
quality_priors = {{ default = {quality} }}
"""

PAIRS = [
    "retry-once-json", "retry-once-stream", "retry-twice-json", "retry-twice-stream", "slow-json",
    "client-400", "client-401", "client-404", "context-json", "context-stream",
    "limited", "limited-ms", "breaker", "probe-fails", "one-probe", "all-open", "ttft", "ttft-both",
]  # fmt: skip


@pytest.fixture(scope="module")
def resilient(
    upstreams: tuple[FakeUpstream, FakeUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a, b = upstreams
    models = [PAIR.format(id=name, primary=a.url, backup=b.url) for name in PAIRS]
    models.append(SINGLE.format(id="solo", primary=a.url, window=128000, price=0.15, quality=0.5))
    # a small window, and priors that make the router choose it whenever the prompt fits
    models.append(SINGLE.format(id="tiny-ctx", primary=a.url, window=TINY_WINDOW, price=0.01, quality=0.99))
    path: Path = tmp_path_factory.mktemp("resilience") / "catalogue.toml"
    path.write_text(catalogue(a.url, b.url) + "".join(models))
    env = gateway_env(
        path,
        tmp_path_factory.mktemp("resilient"),
        PUREAI_REQUEST_TIMEOUT_S=str(TIMEOUT_S),
        PUREAI_FIRST_TOKEN_TIMEOUT_S=str(TTFT_S),
        PUREAI_RETRIES_PER_PROVIDER="1",
        PUREAI_BREAKER_FAILURES="3",
        PUREAI_BREAKER_WINDOW_S="30",
        PUREAI_BREAKER_COOLDOWN_S=str(COOLDOWN_S),
        PUREAI_RATE_LIMIT_COOLDOWN_MAX_S="60",
    )
    with Gateway.start(env) as gw:
        yield gw


@pytest.fixture()
def rkey(resilient: Gateway) -> str:
    return resilient.new_key(tenant="t-resilience", name="resilience")


def served(r: Any, text: str | None, by: str, model: str) -> None:
    upstream, provider = {"A": ("A", "openai"), "B": ("B", "groq")}[by]
    assert r.status_code == 200, r.text
    assert text == f"Hello from {upstream}: Hello!"
    assert r.headers["x-pureai-provider"] == provider and r.headers["x-pureai-model"] == model


def cooling(gw: Gateway) -> dict[str, str]:
    """The providers /ready reports as not closed."""
    r = gw.http.get("/ready")
    assert r.status_code == 200, r.text
    providers: dict[str, str] = r.json()["providers"]
    return providers


# -- case 1: a bounded, jittered retry on the same provider, then the backup ------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_a_primary_failing_once_is_retried_and_answers(
    resilient: Gateway, fresh: Any, rkey: str, streamed: bool
) -> None:
    a, b = fresh
    model = "retry-once-stream" if streamed else "retry-once-json"
    a.script({"status": 500, "model": model})
    r, text, _ = ask(resilient, rkey, chat(stream=streamed, model=model))
    served(r, text, "A", model)
    assert len(a.requests()) == 2 and b.requests() == []
    row = wait_row(resilient, rkey)
    assert (row["provider"], row["attempts"], row["status"]) == ("openai", 2, 200)


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_a_primary_failing_twice_goes_to_the_backup(
    resilient: Gateway, fresh: Any, rkey: str, streamed: bool
) -> None:
    a, b = fresh
    model = "retry-twice-stream" if streamed else "retry-twice-json"
    a.script({"status": 503, "model": model}, {"reset": True, "model": model})
    r, text, _ = ask(resilient, rkey, chat(stream=streamed, model=model))
    served(r, text, "B", model)
    assert len(a.requests()) == 2 and len(b.requests()) == 1  # one retry: bounded
    row = wait_row(resilient, rkey)
    assert (row["provider"], row["attempts"], row["status"]) == ("groq", 3, 200)


def test_a_timeout_is_not_retried_on_the_same_provider(resilient: Gateway, fresh: Any, rkey: str) -> None:
    a, b = fresh
    a.script({"headers_delay_ms": STUCK_MS, "model": "slow-json"})
    started = time.monotonic()
    r, text, _ = ask(resilient, rkey, chat(model="slow-json"))
    elapsed = time.monotonic() - started
    served(r, text, "B", "slow-json")
    assert len(a.requests()) == 1  # waiting out the timeout again would double the wait
    assert elapsed < 2 * TIMEOUT_S
    row = wait_row(resilient, rkey)
    assert (row["provider"], row["attempts"]) == ("groq", 2)


# -- case 11: the client's errors are neither retried nor failed over -------------------------------


@pytest.mark.parametrize(("upstream", "status"), [(400, 400), (401, 502), (404, 502)])
def test_client_errors_are_not_retried(
    resilient: Gateway, fresh: Any, rkey: str, upstream: int, status: int
) -> None:
    a, b = fresh
    model = f"client-{upstream}"
    a.script({"status": upstream, "model": model})
    r, _, _ = ask(resilient, rkey, chat(model=model))
    assert r.status_code == status, r.text
    assert len(a.requests()) == 1 and b.requests() == []
    assert cooling(resilient).get(f"{model}/openai") is None  # the provider answered: not a failure


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_an_upstream_context_length_error_passes_through(
    resilient: Gateway, fresh: Any, rkey: str, streamed: bool
) -> None:
    a, b = fresh
    model = "context-stream" if streamed else "context-json"
    error = {"message": CONTEXT_ERROR, "code": "context_length_exceeded"}
    a.script({"status": 400, "error": error, "model": model})
    r, _, _ = ask(resilient, rkey, chat(stream=streamed, model=model))
    assert r.status_code == 400, r.text
    body = r.json()["error"]
    assert body["code"] == "context_length_exceeded" and body["type"] == "invalid_request_error"
    assert "maximum context length is 8192 tokens" in body["message"]
    assert len(a.requests()) == 1 and b.requests() == []
    row = wait_row(resilient, rkey)
    assert (row["status"], row["error"], row["attempts"]) == (400, "context_length_exceeded", 1)


# -- case 2: a 429's Retry-After is honoured by skipping the provider until then --------------------


def test_a_rate_limited_primary_is_skipped_until_its_retry_after(
    resilient: Gateway, fresh: Any, rkey: str
) -> None:
    a, b = fresh
    a.script({"status": 429, "headers": {"retry-after": "30"}, "model": "limited"})
    started = time.monotonic()
    r, text, _ = ask(resilient, rkey, chat(model="limited"))
    served(r, text, "B", "limited")
    assert time.monotonic() - started < SLACK_S  # the 30 s are not waited out
    assert len(a.requests()) == 1  # nor retried within them
    assert cooling(resilient)["limited/openai"] == "open"
    for _ in range(3):
        r, text, _ = ask(resilient, rkey, chat(model="limited"))
        served(r, text, "B", "limited")
    assert len(a.requests()) == 1 and len(b.requests()) == 4
    row = wait_row(resilient, rkey)
    assert (row["provider"], row["attempts"]) == ("groq", 1)  # no attempt spent on the primary


def test_retry_after_ms_is_read_and_the_provider_comes_back_after_it(
    resilient: Gateway, fresh: Any, rkey: str
) -> None:
    a, b = fresh
    # OpenAI sends both; the milliseconds are the precise word
    a.script(
        {"status": 429, "headers": {"retry-after-ms": "1200", "retry-after": "30"}, "model": "limited-ms"}
    )
    r, text, _ = ask(resilient, rkey, chat(model="limited-ms"))
    limited_at = time.monotonic()
    served(r, text, "B", "limited-ms")
    r, text, _ = ask(resilient, rkey, chat(model="limited-ms"))
    served(r, text, "B", "limited-ms")
    assert len(a.requests()) == 1
    time.sleep(max(0.0, limited_at + 1.3 - time.monotonic()))  # letting the 1.2 s pass
    assert cooling(resilient)["limited-ms/openai"] == "half_open"
    r, text, _ = ask(resilient, rkey, chat(model="limited-ms"))
    served(r, text, "A", "limited-ms")
    assert "limited-ms/openai" not in cooling(resilient)


# -- case 10: the circuit breaker -------------------------------------------------------------------


def trip(gw: Gateway, key: str, a: FakeUpstream, model: str) -> None:
    """Three failures on `model`'s primary: one request retried once, then one more request."""
    a.script(*[{"status": 500, "model": model}] * 3)
    for _ in range(2):
        r, text, _ = ask(gw, key, chat(model=model))
        served(r, text, "B", model)
    assert len(a.requests()) == 3  # the second request did not retry: the circuit had opened
    assert cooling(gw)[f"{model}/openai"] == "open"


def test_a_failing_provider_is_skipped_then_probed_and_closed(
    resilient: Gateway, fresh: Any, rkey: str
) -> None:
    a, b = fresh
    trip(resilient, rkey, a, "breaker")
    opened = time.monotonic()
    r, text, _ = ask(resilient, rkey, chat(model="breaker"))
    served(r, text, "B", "breaker")
    assert len(a.requests()) == 3  # skipped without a call
    assert (wait_row(resilient, rkey)["attempts"]) == 1
    time.sleep(max(0.0, opened + COOLDOWN_S - time.monotonic()))  # waiting out the cooldown
    assert cooling(resilient)["breaker/openai"] == "half_open"
    r, text, _ = ask(resilient, rkey, chat(model="breaker"))  # the probe
    served(r, text, "A", "breaker")
    assert "breaker/openai" not in cooling(resilient)
    r, text, _ = ask(resilient, rkey, chat(model="breaker"))
    served(r, text, "A", "breaker")
    assert len(a.requests()) == 5


def test_a_failed_probe_opens_the_circuit_again(resilient: Gateway, fresh: Any, rkey: str) -> None:
    a, b = fresh
    trip(resilient, rkey, a, "probe-fails")
    time.sleep(COOLDOWN_S)  # waiting out the cooldown
    a.script({"status": 500, "model": "probe-fails"})
    r, text, _ = ask(resilient, rkey, chat(model="probe-fails"))
    served(r, text, "B", "probe-fails")
    assert len(a.requests()) == 4  # the probe, not retried
    assert (wait_row(resilient, rkey)["attempts"]) == 2
    assert cooling(resilient)["probe-fails/openai"] == "open"
    r, text, _ = ask(resilient, rkey, chat(model="probe-fails"))
    served(r, text, "B", "probe-fails")
    assert len(a.requests()) == 4


def test_a_half_open_provider_gets_exactly_one_probe(resilient: Gateway, fresh: Any, rkey: str) -> None:
    a, b = fresh
    trip(resilient, rkey, a, "one-probe")
    time.sleep(COOLDOWN_S)  # waiting out the cooldown
    a.script({"headers_delay_ms": 1000, "model": "one-probe"})  # a slow probe, still in flight ...

    async def run() -> None:
        async with httpx.AsyncClient(base_url=resilient.url, timeout=30, trust_env=False) as client:
            body = chat(model="one-probe")
            probe = asyncio.ensure_future(client.post("/v1/chat/completions", headers=h(rkey), json=body))
            await a.wait_for_async(lambda reqs: len(reqs) == 4)
            # ... while two more requests come: they go to the backup
            others = await asyncio.gather(
                *[client.post("/v1/chat/completions", headers=h(rkey), json=body) for _ in range(2)]
            )
            assert [r.headers["x-pureai-provider"] for r in others] == ["groq", "groq"]
            assert not probe.done() and len(a.requests()) == 4
            first = await probe
            assert first.status_code == 200 and first.headers["x-pureai-provider"] == "openai"

    asyncio.run(run())
    assert "one-probe/openai" not in cooling(resilient)


def test_when_every_provider_cools_down_the_one_back_first_is_still_tried(
    resilient: Gateway, fresh: Any, rkey: str
) -> None:
    a, b = fresh
    a.script({"status": 429, "headers": {"retry-after": "30"}, "model": "all-open"})  # back in 30 s
    b.script(*[{"status": 500, "model": "all-open"}] * 3)  # opens, back after COOLDOWN_S
    r, _, _ = ask(resilient, rkey, chat(model="all-open"))
    assert r.status_code == 502, r.text  # the primary rate limited, the backup failing twice
    r, _, _ = ask(resilient, rkey, chat(model="all-open"))
    assert r.status_code == 502, r.text  # the backup's third failure
    assert cooling(resilient).items() >= {"all-open/openai": "open", "all-open/groq": "open"}.items()
    r, text, _ = ask(resilient, rkey, chat(model="all-open"))
    served(r, text, "B", "all-open")  # not refused untried: the backup, whose cooldown ends first
    assert len(a.requests()) == 1 and len(b.requests()) == 4
    assert cooling(resilient).get("all-open/groq") is None
    assert cooling(resilient)["all-open/openai"] == "open"


# -- case 6: the first-token deadline ---------------------------------------------------------------


def test_a_stream_without_a_first_token_is_cut_at_the_deadline_and_failed_over(
    resilient: Gateway, fresh: Any, rkey: str
) -> None:
    a, b = fresh
    a.script({"first_chunk_delay_ms": STUCK_MS, "model": "ttft"})
    started = time.monotonic()
    with resilient.http.stream(
        "POST", "/v1/chat/completions", headers=h(rkey), json=chat(stream=True, model="ttft")
    ) as r:
        # the first bytes the client gets already name the backup
        assert r.status_code == 200 and r.headers["x-pureai-provider"] == "groq"
        r.read()
    assert time.monotonic() - started < TIMEOUT_S  # cut at TTFT_S, not at the request timeout
    a.wait_for(lambda reqs: len(reqs) == 1 and reqs[0]["disconnected"])
    row = wait_row(resilient, rkey)
    assert (row["provider"], row["attempts"], row["status"]) == ("groq", 2, 200)


def test_the_last_attempt_is_not_cut_by_the_first_token_deadline(
    resilient: Gateway, fresh: Any, rkey: str
) -> None:
    a, b = fresh
    slow = int(TTFT_S * 1000 * 2.5)  # past the first-token deadline, within the request timeout
    a.script({"first_chunk_delay_ms": slow, "model": "solo"})
    started = time.monotonic()
    r, text, events = ask(resilient, rkey, chat(stream=True, model="solo"))
    served(r, text, "A", "solo")  # its only provider: waited for
    assert events[-1] == "[DONE]" and time.monotonic() - started >= slow / 1000
    # and after a failover, the backup is the last attempt: it is not cut either
    a.script({"first_chunk_delay_ms": STUCK_MS, "model": "ttft-both"})
    b.script({"first_chunk_delay_ms": slow, "model": "ttft-both"})
    r, text, _ = ask(resilient, rkey, chat(stream=True, model="ttft-both"))
    served(r, text, "B", "ttft-both")
    row = wait_row(resilient, rkey, lambda row: row["model"] == "ttft-both")
    assert (row["provider"], row["attempts"]) == ("groq", 2)


# -- case 22: prompts over the context window --------------------------------------------------------


def test_a_prompt_over_the_context_window_is_refused_without_an_upstream_call(
    resilient: Gateway, fresh: Any, rkey: str
) -> None:
    a, b = fresh
    huge = "word " * (TINY_WINDOW * 2)  # 10,000 characters: at least 1,667 tokens even at 6 a token
    r, _, _ = ask(resilient, rkey, chat(huge, model="tiny-ctx"))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "context_length_exceeded",
        "messages",
        "invalid_request_error",
    )
    assert "tiny-ctx" in error["message"] and str(TINY_WINDOW) in error["message"]
    r = resilient.http.post(
        "/v1/completions", headers=h(rkey), json={"model": "tiny-ctx", "prompt": huge, "stream": True}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    assert a.requests() == [] and b.requests() == []
    row = wait_row(resilient, rkey)
    assert (row["status"], row["error"], row["attempts"]) == (400, "context_length_exceeded", 0)
    # 5,000 characters may fit (1,250 tokens at 4 a token, 834 at 6): the provider judges
    r, _, _ = ask(resilient, rkey, chat("word " * TINY_WINDOW, model="tiny-ctx"))
    assert r.status_code == 200 and len(a.requests()) == 1


def test_the_router_leaves_out_models_whose_window_is_too_small(resilient: Gateway, rkey: str) -> None:
    def route(content: str, models: list[str]) -> httpx.Response:
        body = {"messages": [{"role": "user", "content": content}], "models": models}
        return resilient.http.post(
            "/v1/router", headers=h(rkey), json={**body, "execute": False, "cost_weight": 0}
        )

    pool = ["tiny-ctx", "gpt-4o-mini", "claude-3-haiku"]
    short = route("Write a haiku about the sea.", pool)
    assert short.status_code == 200, short.text
    assert short.json()["selected_model"] == "tiny-ctx"  # its priors win when the prompt fits
    long = route("Summarise this text: " + "word " * TINY_WINDOW, pool)  # ~1,250 tokens at 4 a token
    assert long.status_code == 200, long.text
    assert long.json()["selected_model"] in {"gpt-4o-mini", "claude-3-haiku"}
    candidates = long.json()["candidates"]
    assert {c["model"] for c in candidates if c["eligible"]} == {"gpt-4o-mini", "claude-3-haiku"}
    assert [(c["model"], c["reason"]) for c in candidates if not c["eligible"]] == [
        ("tiny-ctx", "context_window")
    ]
    refused = route("word " * (TINY_WINDOW * 2), ["tiny-ctx"])
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "context_length_exceeded"


# -- the breaker's arithmetic, on a clock of our own --------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_failures_within_the_window_open_a_circuit() -> None:
    clock = Clock()
    breaker = Breaker(failures=3, window_s=30, cooldown_s=15, clock=clock)
    breaker.failure("m/p")
    breaker.failure("m/p")
    clock.now += 31  # those two are out of the window
    breaker.failure("m/p")
    assert breaker.state("m/p") == "closed"
    breaker.failure("m/p")
    breaker.failure("m/p")
    assert breaker.snapshot() == {"m/p": "open"} and breaker.plan(["m/p", "m/q"]) == [1]
    clock.now += 15
    assert breaker.state("m/p") == "half_open" and breaker.begin("m/p")
    assert not breaker.available("m/p")  # the probe is out
    breaker.release("m/p")  # its request was cancelled: no verdict
    assert breaker.begin("m/p")
    breaker.success("m/p")
    assert breaker.snapshot() == {}


def test_a_rate_limit_hint_is_capped_and_off_when_the_cap_is_zero() -> None:
    clock = Clock()
    breaker = Breaker(failures=3, retry_after_max_s=60, clock=clock)
    breaker.failure("m/p", retry_after_s=3600)
    clock.now += 59.9
    assert breaker.state("m/p") == "open"
    clock.now += 0.1
    assert breaker.state("m/p") == "half_open"
    off = Breaker(failures=0, retry_after_max_s=0, clock=clock)
    for _ in range(5):
        off.failure("m/p", retry_after_s=30)
        off.failure("m/p")
    assert off.snapshot() == {} and off.plan(["m/p"]) == [0]

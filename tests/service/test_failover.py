"""Failover from a model's primary provider to its backup (reliability cases 1-6 and 11), against a
real gateway process whose providers are the fake upstreams: A serves gpt-4o-mini's primary
("openai"), B its backup ("groq").

Faults that answer at once run on the session gateway; timeouts run on a gateway of this module
whose per-attempt timeout is QUICK_S, with a catalogue that adds a model whose backup is disabled
and one whose primary refuses connections.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.calls import ask, chat, frames, h, text_of, wait_row
from tests.service.conftest import PROVIDER_KEYS, gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway, catalogue, free_port

SESSION_TIMEOUT_S = 3.0  # PUREAI_REQUEST_TIMEOUT_S of the session gateway (conftest.gateway_env)
QUICK_S = 0.5
SLACK_S = 1.0  # for process scheduling on a busy 2-core machine; still far below the upstream delays
STUCK_MS = 6000  # an upstream delay well past every bound below
ERROR_FIELDS = {"message", "type", "param", "code"}

EXTRA_MODELS = """
[[models]]
id = "solo-mini"
owned_by = "openai"
litellm_model = "openai/solo-mini"
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
enabled = false
api_base = "{backup}"
api_key_env = "TEST_GROQ_KEY"

[[models]]
id = "refused-mini"
owned_by = "openai"
litellm_model = "openai/refused-mini"
input_per_mtok = 0.15
output_per_mtok = 0.60
context_window = 128000
quality_priors = {{ default = 0.5 }}

[[models.providers]]
id = "openai"
type = "primary"
api_base = "{closed}"
api_key_env = "TEST_OPENAI_KEY"

[[models.providers]]
id = "groq"
type = "backup"
api_base = "{backup}"
api_key_env = "TEST_GROQ_KEY"
"""


@pytest.fixture(scope="module")
def quick(
    upstreams: tuple[FakeUpstream, FakeUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway whose upstream attempts time out after QUICK_S."""
    a, b = upstreams
    closed = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    path: Path = tmp_path_factory.mktemp("failover") / "catalogue.toml"
    path.write_text(catalogue(a.url, b.url) + EXTRA_MODELS.format(primary=a.url, backup=b.url, closed=closed))
    env = gateway_env(path, tmp_path_factory.mktemp("quick"), PUREAI_REQUEST_TIMEOUT_S=str(QUICK_S))
    with Gateway.start(env) as gw:
        yield gw


@pytest.fixture()
def quick_key(quick: Gateway) -> str:
    return quick.new_key(tenant="t-failover", name="quick")


def served_by_backup(r: Any, text: str | None) -> None:
    assert r.status_code == 200, r.text
    assert text == "Hello from B: Hello!"
    assert r.headers["x-pureai-provider"] == "groq"
    assert r.headers["x-pureai-model"] == "gpt-4o-mini"


def openai_error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert set(error) == ERROR_FIELDS and error["code"] == code and error["message"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    for secret in PROVIDER_KEYS.values():
        assert secret not in r.text
    return error


FAULTS = {
    "500": {"status": 500},
    "503": {"status": 503},
    "429-retry-after": {"status": 429, "headers": {"retry-after": "20"}},
    "reset": {"reset": True},
}


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS.values()), ids=list(FAULTS))
def test_primary_failure_fails_over_to_the_backup(
    gateway: Gateway, fresh: Any, key: str, fault: dict[str, Any], streamed: bool
) -> None:
    a, b = fresh
    a.script(fault)
    started = time.monotonic()
    r, text, events = ask(gateway, key, chat(stream=streamed))
    elapsed = time.monotonic() - started
    served_by_backup(r, text)
    if streamed:
        assert events[-1] == "[DONE]" and events[0]["choices"][0]["delta"]["role"] == "assistant"
    # one attempt each: no retry storm on the failing primary, and a 429's retry-after of 20 s is
    # not waited out when a backup can answer now
    assert len(a.requests()) == 1 and len(b.requests()) == 1
    assert elapsed < SESSION_TIMEOUT_S
    row = wait_row(gateway, key)
    assert (row["provider"], row["attempts"], row["status"], row["error"]) == ("groq", 2, 200, None)
    assert row["model"] == "gpt-4o-mini" and row["stream"] is streamed
    assert row["completion_tokens"] > 0 and row["total_cost_usd"] > 0


def test_a_healthy_primary_is_one_attempt(gateway: Gateway, fresh: Any, key: str) -> None:
    r, text, _ = ask(gateway, key, chat())
    assert r.status_code == 200 and text == "Hello from A: Hello!"
    assert r.headers["x-pureai-provider"] == "openai"
    assert fresh[1].requests() == []
    row = wait_row(gateway, key)
    assert (row["provider"], row["attempts"]) == ("openai", 1)


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_primary_sending_no_headers_times_out_and_fails_over(
    quick: Gateway, fresh: Any, quick_key: str, streamed: bool
) -> None:
    a, b = fresh
    a.script({"headers_delay_ms": STUCK_MS})
    started = time.monotonic()
    r, text, _ = ask(quick, quick_key, chat(stream=streamed))
    elapsed = time.monotonic() - started
    served_by_backup(r, text)
    assert elapsed < QUICK_S * 2 + SLACK_S
    # the timed-out attempt is abandoned upstream, not left running
    a.wait_for(lambda reqs: bool(reqs) and reqs[0]["disconnected"], timeout=2)
    row = wait_row(quick, quick_key)
    assert (row["provider"], row["attempts"], row["status"]) == ("groq", 2, 200)


def test_stream_without_a_first_chunk_fails_over_before_any_byte_is_sent(
    quick: Gateway, fresh: Any, quick_key: str
) -> None:
    a, b = fresh
    a.script({"first_chunk_delay_ms": STUCK_MS})  # headers at once, then silence
    started = time.monotonic()
    with quick.http.stream("POST", "/v1/chat/completions", headers=h(quick_key), json=chat(stream=True)) as r:
        # the status line and headers are the first bytes the client gets: they already name the
        # backup, so nothing was sent while the primary was being tried
        assert r.status_code == 200
        assert r.headers["x-pureai-provider"] == "groq"
        raw = r.read()
    elapsed = time.monotonic() - started
    events = frames(raw)
    assert events[-1] == "[DONE]" and text_of(events) == "Hello from B: Hello!"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert elapsed < QUICK_S * 2 + SLACK_S
    a.wait_for(lambda reqs: bool(reqs) and reqs[0]["disconnected"], timeout=2)
    assert len(b.requests()) == 1 and b.requests()[0]["stream"] is True
    row = wait_row(quick, quick_key)
    assert (row["provider"], row["attempts"], row["status"]) == ("groq", 2, 200)


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_every_provider_failing_is_a_502(gateway: Gateway, fresh: Any, key: str, streamed: bool) -> None:
    a, b = fresh
    a.script({"status": 500})
    b.script({"reset": True})
    r, _, _ = ask(gateway, key, chat(stream=streamed))
    error = openai_error(r, 502, "upstream_error")
    assert "openai" in error["message"] and "groq" in error["message"]  # what was tried
    assert len(a.requests()) == 1 and len(b.requests()) == 1
    row = wait_row(gateway, key)
    assert (row["status"], row["error"], row["attempts"]) == (502, "upstream_error", 2)


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_every_provider_timing_out_is_a_504(
    quick: Gateway, fresh: Any, quick_key: str, streamed: bool
) -> None:
    a, b = fresh
    fault = {"first_chunk_delay_ms": STUCK_MS} if streamed else {"headers_delay_ms": STUCK_MS}
    a.script(fault)
    b.script(fault)
    started = time.monotonic()
    r, _, _ = ask(quick, quick_key, chat(stream=streamed))
    elapsed = time.monotonic() - started
    openai_error(r, 504, "upstream_timeout")
    assert elapsed < QUICK_S * 2 + SLACK_S  # timeout x (1 + fallbacks), not the upstreams' delay
    row = wait_row(quick, quick_key)
    assert (row["status"], row["error"], row["attempts"]) == (504, "upstream_timeout", 2)


def test_every_provider_rate_limited_is_a_429_with_retry_after(
    gateway: Gateway, fresh: Any, key: str
) -> None:
    a, b = fresh
    a.script({"status": 429, "headers": {"retry-after": "11"}})
    b.script({"status": 429, "headers": {"retry-after": "7"}})
    r, _, _ = ask(gateway, key, chat())
    openai_error(r, 429, "upstream_rate_limited")
    assert r.headers["retry-after"] == "7"  # the last provider's word
    assert len(a.requests()) == 1 and len(b.requests()) == 1


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    ("upstream", "status", "code"),
    [
        (400, 400, "upstream_bad_request"),  # the client's request: passed through
        (401, 502, "upstream_auth"),  # our credentials: a gateway fault, not the client's
        (403, 502, "upstream_auth"),
        (404, 502, "upstream_not_found"),
    ],
)
def test_client_errors_do_not_fail_over(
    gateway: Gateway, fresh: Any, key: str, upstream: int, status: int, code: str, streamed: bool
) -> None:
    a, b = fresh
    a.script({"status": upstream})
    r, _, _ = ask(gateway, key, chat(stream=streamed))
    openai_error(r, status, code)
    assert len(a.requests()) == 1
    assert b.requests() == []
    row = wait_row(gateway, key)
    assert (row["status"], row["error"], row["attempts"]) == (status, code, 1)


def test_a_disabled_backup_is_not_used(quick: Gateway, fresh: Any, quick_key: str) -> None:
    a, b = fresh
    providers = quick.http.get("/v1/providers", params={"model": "solo-mini"}, headers=h(quick_key))
    assert [(p["id"], p["enabled"]) for p in providers.json()["providers"]] == [
        ("openai", True),
        ("groq", False),
    ]
    a.script({"status": 500})
    r, _, _ = ask(quick, quick_key, chat(model="solo-mini"))
    openai_error(r, 502, "upstream_error")
    assert len(a.requests()) == 1 and b.requests() == []
    row = wait_row(quick, quick_key)
    assert (row["status"], row["attempts"]) == (502, 1)


def test_a_refused_connection_fails_over(quick: Gateway, fresh: Any, quick_key: str) -> None:
    a, b = fresh
    started = time.monotonic()
    r, text, _ = ask(quick, quick_key, chat(model="refused-mini"))
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert text == "Hello from B: Hello!" and r.headers["x-pureai-provider"] == "groq"
    assert elapsed < QUICK_S  # refused at once: no timeout waited
    row = wait_row(quick, quick_key)
    assert (row["provider"], row["attempts"]) == ("groq", 2)

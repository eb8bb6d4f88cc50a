"""GET /metrics and the JSON logs, against real gateway processes and the fake upstreams: what each
metric counts (requests, latency, TTFT, in flight, upstream errors, fallbacks, routing decisions,
rate-limit and budget refusals), one view over several uvicorn workers, and one access line per
request carrying the request id that every other line of the request carries too."""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.service.calls import chat, h
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway
from tests.service.prom import Samples, parse, scrape, until, value

Upstreams = tuple[FakeUpstream, FakeUpstream]

CHAT = "/v1/chat/completions"
METRICS_KEY = "mtr-Jq4Rz8Wd2Kx"
UVICORN_ACCESS = re.compile(
    r'- "[A-Z]+ \S+ HTTP/1\.[01]" \d{3}'
)  # its access line: 'ip - "GET / HTTP/1.1" 200'
FAMILIES = {
    "pureai_requests": "counter",
    "pureai_request_duration_seconds": "histogram",
    "pureai_ttft_seconds": "histogram",
    "pureai_requests_in_flight": "gauge",
    "pureai_upstream_errors": "counter",
    "pureai_fallbacks": "counter",
    "pureai_routing_decisions": "counter",
    "pureai_shadow_agreement": "counter",
    "pureai_rate_limit_rejections": "counter",
    "pureai_budget_rejections": "counter",
    "pureai_key_lookups": "counter",
}


def tenant() -> str:
    return "t-obs-" + secrets.token_hex(4)


# --- /metrics --------------------------------------------------------------------------------------


def test_metrics_is_prometheus_text_and_open_by_default(gateway: Gateway, key: str) -> None:
    gateway.http.post(CHAT, headers=h(key), json=chat())  # traffic, so that labelled families exist
    r = gateway.http.get("/metrics")  # no key
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f.type for f in text_string_to_metric_families(r.text)}
    for name in ("pureai_requests", "pureai_request_duration_seconds", "pureai_requests_in_flight"):
        assert families[name] == FAMILIES[name]
    assert all(families.get(name) in (None, kind) for name, kind in FAMILIES.items())
    assert "_created" not in r.text
    assert key not in r.text and key.split("-")[1] not in r.text  # not even a key id


def test_requests_latency_and_ttft_by_endpoint_model_and_status(
    gateway: Gateway, fresh: Upstreams, key: str
) -> None:
    before = scrape(gateway)
    assert gateway.http.post(CHAT, headers=h(key), json=chat()).status_code == 200
    with gateway.http.stream("POST", CHAT, headers=h(key), json=chat(stream=True)) as r:
        assert r.status_code == 200
        r.read()
    assert (
        gateway.http.post(CHAT, headers=h("pk-000000000000-wrongwrongwrongwrong"), json=chat()).status_code
        == 401
    )

    def moved(name: str, **labels: str) -> Callable[[Samples], float]:
        return lambda s: value(s, name, **labels) - value(before, name, **labels)

    ok = moved("pureai_requests_total", endpoint=CHAT, status="200")
    refused = moved("pureai_requests_total", endpoint=CHAT, status="401")
    after = until(gateway, lambda s: ok(s) >= 2 and refused(s) >= 1)
    assert (ok(after), refused(after)) == (2, 1)
    latency = moved("pureai_request_duration_seconds_count", endpoint=CHAT, model="gpt-4o-mini")
    assert latency(after) == 2
    assert moved("pureai_request_duration_seconds_count", endpoint=CHAT, model="")(after) == 1  # the 401
    assert moved("pureai_ttft_seconds_count", endpoint=CHAT, model="gpt-4o-mini")(after) == 2
    assert moved("pureai_ttft_seconds_sum", endpoint=CHAT, model="gpt-4o-mini")(after) > 0


def test_upstream_errors_and_fallbacks_by_model_provider_and_code(
    gateway: Gateway, fresh: Upstreams, key: str
) -> None:
    a, b = fresh
    before = scrape(gateway)
    a.script({"status": 500})  # primary fails, backup answers
    assert gateway.http.post(CHAT, headers=h(key), json=chat()).status_code == 200
    a.script({"status": 503})
    b.script({"status": 503})  # both fail
    assert gateway.http.post(CHAT, headers=h(key), json=chat()).status_code == 502
    a.script({"error_after_chunks": 2})  # a stream that breaks after its first bytes
    with gateway.http.stream("POST", CHAT, headers=h(key), json=chat("one two three", stream=True)) as r:
        r.read()

    def moved(s: Samples, name: str, **labels: str) -> float:
        return value(s, name, **labels) - value(before, name, **labels)

    errors = "pureai_upstream_errors_total"
    after = until(gateway, lambda s: moved(s, errors, model="gpt-4o-mini", provider="openai", code="stream_upstream_error") == 1)  # fmt: skip
    assert moved(after, errors, model="gpt-4o-mini", provider="openai", code="500") == 1
    assert moved(after, errors, model="gpt-4o-mini", provider="openai", code="503") == 1
    assert moved(after, errors, model="gpt-4o-mini", provider="groq", code="503") == 1
    assert moved(after, "pureai_fallbacks_total", model="gpt-4o-mini") == 2
    assert moved(after, "pureai_requests_total", endpoint=CHAT, status="502") == 1


def test_routing_decisions_by_the_model_selected(gateway: Gateway, key: str) -> None:
    before = scrape(gateway)
    body = {"messages": [{"role": "user", "content": "Write Python code to sort a list"}], "execute": False}
    body["models"] = ["gpt-4o-mini", "codestral-latest"]
    answers = [gateway.http.post("/v1/router", headers=h(key), json=body).json() for _ in range(3)]
    selected = [a["selected_model"] for a in answers]
    labels = {"model": selected[0], "version": answers[0]["router_version"]}
    name = "pureai_routing_decisions_total"
    after = until(gateway, lambda s: value(s, name, **labels) - value(before, name, **labels) >= 3)
    assert value(after, name, **labels) - value(before, name, **labels) == 3
    assert len(set(selected)) == 1


def test_rate_limit_and_budget_refusals_by_tenant(gateway: Gateway, fresh: Upstreams) -> None:
    limited, spent = tenant(), tenant()
    rpm = gateway.new_key(tenant=limited, rpm=1)
    budget = gateway.new_key(tenant=spent, budget_usd=1e-9)
    codes = [
        gateway.http.post(CHAT, headers=h(k), json=chat()).status_code for k in (rpm, rpm, budget, budget)
    ]
    assert codes == [200, 429, 429, 429]  # a budget below one request's worst case admits none
    after = until(gateway, lambda s: value(s, "pureai_budget_rejections_total", tenant=spent) == 2)
    assert value(after, "pureai_rate_limit_rejections_total", reason="requests", tenant=limited) == 1
    assert value(after, "pureai_rate_limit_rejections_total", reason="requests", tenant=spent) == 0
    assert value(after, "pureai_budget_rejections_total", tenant=limited) == 0


def test_in_flight_counts_an_open_stream(gateway: Gateway, fresh: Upstreams, key: str) -> None:
    gauge = "pureai_requests_in_flight"
    idle = until(gateway, lambda s: value(s, gauge) == 1)  # the scrape itself
    assert value(idle, gauge) == 1
    fresh[0].script({"chunk_delay_ms": 80})
    with gateway.http.stream("POST", CHAT, headers=h(key), json=chat("one two three four", stream=True)) as r:
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")  # the stream is open
        assert value(scrape(gateway), gauge) == 2
        for _ in lines:
            pass
    assert value(until(gateway, lambda s: value(s, gauge) == 1), gauge) == 1


# --- logs ------------------------------------------------------------------------------------------


def log_lines(gw: Gateway) -> list[dict[str, Any]]:
    """Every line of the gateway's output, each one JSON object."""
    return [json.loads(line) for line in gw.logs().splitlines() if line.strip()]


def wait_lines(gw: Gateway, request_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The lines of request `request_id`, once its access line is written."""
    deadline = time.monotonic() + timeout
    while True:
        mine = [line for line in log_lines(gw) if line["request_id"] == request_id]
        if any(line["logger"] == "pureai.access" for line in mine):
            return mine
        if time.monotonic() > deadline:
            raise AssertionError(f"no access line for {request_id} within {timeout}s: {mine}")
        time.sleep(0.02)  # polling a bounded loop


def test_one_json_access_line_per_request_and_the_request_id_on_every_line(
    gateway: Gateway, fresh: Upstreams
) -> None:
    name = tenant()
    key = gateway.new_key(tenant=name)
    fresh[0].script({"status": 500})  # the executor logs the failover, inside the request
    r = gateway.http.post(CHAT, headers=h(key), json=chat())
    assert r.status_code == 200
    request_id = r.headers["x-request-id"]
    mine = wait_lines(gateway, request_id)
    access = [line for line in mine if line["logger"] == "pureai.access"]
    assert len(access) == 1
    line = access[0]
    assert set(line) >= {"ts", "level", "logger", "message", "request_id"}
    assert line["level"] == "info"
    assert (line["method"], line["path"], line["status"]) == ("POST", CHAT, 200)
    assert line["latency_ms"] > 0 and line["ttft_ms"] > 0
    assert (line["model"], line["provider"], line["tenant"]) == ("gpt-4o-mini", "groq", name)
    assert line["key_id"] == key.split("-")[1]
    warning = [line for line in mine if line["logger"] == "pureai.executor"]
    assert warning and "via openai failed" in warning[0]["message"], mine

    refused = gateway.http.get("/v1/models", headers=h("not-a-key"))
    line = [
        x for x in wait_lines(gateway, refused.headers["x-request-id"]) if x["logger"] == "pureai.access"
    ][0]
    assert line["status"] == 401 and "key_id" not in line and "model" not in line
    # every line is JSON, uvicorn's included, and uvicorn's own access log is off
    lines = log_lines(gateway)
    assert any(x["logger"] == "uvicorn.error" and "startup complete" in x["message"] for x in lines)
    uvicorn_access = [
        x for x in lines if x["logger"] == "uvicorn.access" or UVICORN_ACCESS.search(x["message"])
    ]
    assert uvicorn_access == []


def test_a_client_that_leaves_mid_body_gets_a_499_line_and_no_traceback(gateway: Gateway, key: str) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"POST {CHAT} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\n"
            "content-type: application/json\r\ncontent-length: 400\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"model": "gpt-4o-mini", "mess')  # then gone
    deadline = time.monotonic() + 5
    while not (left := [x for x in log_lines(gateway) if x.get("status") == 499]):
        assert time.monotonic() < deadline, "no access line with status 499"
        time.sleep(0.02)  # polling a bounded loop
    (line,) = left
    assert (line["method"], line["path"]) == ("POST", CHAT)
    mine = [x for x in log_lines(gateway) if x["request_id"] == line["request_id"]]
    assert [x for x in mine if x["level"] == "error" or "exc" in x] == []
    assert not any("Exception in ASGI application" in x["message"] for x in log_lines(gateway))


# --- several workers; a metrics key; text logs -----------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(
    catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, Path]]:
    """Two uvicorn workers, text logs, /metrics behind a key; TMPDIR is a folder of the test's, to
    find the multiprocess directory `pureai serve` makes there."""
    tmp = tmp_path_factory.mktemp("tmpdir")
    env = gateway_env(
        catalogue_file,
        tmp_path_factory.mktemp("workers"),
        TMPDIR=str(tmp),
        PUREAI_LOG_FORMAT="text",
        PUREAI_METRICS_KEY=METRICS_KEY,
    )
    with Gateway.start(env, workers=2) as gw:
        yield gw, tmp


def worker_counts(folder: Path) -> dict[str, float]:
    """Requests to /v1/models each worker has counted, from its own sample file."""
    out = {}
    for path in folder.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)], accumulate=False)
        out[path.name] = sum(
            s.value
            for m in merged
            for s in m.samples
            if s.name == "pureai_requests_total" and s.labels.get("endpoint") == "/v1/models"
        )
    return out


def test_metrics_add_up_across_workers(two_workers: tuple[Gateway, Path]) -> None:
    gw, tmp = two_workers
    (folder,) = tmp.glob("pureai-metrics-*")
    key = gw.new_key(tenant=tenant())
    sent = 0
    while sum(1 for n in worker_counts(folder).values() if n > 0) < 2:  # until both workers served some
        assert sent < 400, worker_counts(folder)
        r = httpx.get(gw.url + "/v1/models", headers=h(key), trust_env=False)  # a new connection each
        assert r.status_code == 200
        sent += 1
    auth = {"Authorization": "Bearer " + METRICS_KEY}
    for _ in range(6):  # scrapes over new connections, answered by either worker
        r = httpx.get(gw.url + "/metrics", headers=auth, trust_env=False)
        samples = parse(r.text)
        assert value(samples, "pureai_requests_total", endpoint="/v1/models", status="200") == sent
        assert value(samples, "pureai_requests_in_flight") == 1
        assert value(samples, "pureai_key_lookups_total", source="store") >= 1


def test_start_up_objects_are_set_aside_from_the_garbage_collector(
    gateway: Gateway, two_workers: tuple[Gateway, Path]
) -> None:
    """litellm, the router and the catalogue (hundreds of thousands of objects) are frozen at start,
    so the collector's full passes do not walk them while requests wait."""
    auth = {"Authorization": "Bearer " + METRICS_KEY}
    for gw, headers in ((gateway, None), (two_workers[0], auth)):
        assert value(scrape(gw, headers), "pureai_gc_frozen_objects") > 100_000


def test_metrics_key_is_needed_when_set(two_workers: tuple[Gateway, Path]) -> None:
    gw, _ = two_workers
    for headers in ({}, {"Authorization": "Bearer wrong"}, h(gw.new_key(tenant=tenant()))):
        r = gw.http.get("/metrics", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert gw.http.get("/metrics", headers={"x-api-key": METRICS_KEY}).status_code == 200


def test_text_logs_when_asked(two_workers: tuple[Gateway, Path]) -> None:
    gw, _ = two_workers
    r = gw.http.get("/v1/models", headers=h("nope"))
    request_id = r.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while not [x for x in gw.logs().splitlines() if f"[{request_id}]" in x]:
        assert time.monotonic() < deadline, gw.logs()
        time.sleep(0.02)  # polling a bounded loop
    (line,) = [x for x in gw.logs().splitlines() if f"[{request_id}]" in x]
    assert " INFO pureai.access " in line and "GET /v1/models 401" in line
    assert "method=GET path=/v1/models status=401 latency_ms=" in line
    assert not any(x.startswith("{") for x in gw.logs().splitlines())
    assert METRICS_KEY not in gw.logs()


def test_the_metrics_directory_is_removed_at_exit(two_workers: tuple[Gateway, Path]) -> None:
    gw, tmp = two_workers
    (folder,) = tmp.glob("pureai-metrics-*")
    assert len(list(folder.glob("counter_*.db"))) == 2  # one per worker
    gw.stop()
    assert gw.process.returncode == 0
    assert list(tmp.glob("pureai-metrics-*")) == []

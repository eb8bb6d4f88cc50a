"""Every error the gateway returns, against a real gateway process and the fake upstreams: the
OpenAI shape `{"error": {"message", "type", "param", "code"}}`, the right status, the field at fault
in `param`, nothing of Python's or pydantic's internals, and no secret in a body or in the logs."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.limits import UNLIMITED
from tests.service.conftest import PROVIDER_KEYS, gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import ADMIN_KEY, Gateway

Upstreams = tuple[FakeUpstream, FakeUpstream]

CHAT = "/v1/chat/completions"
TEXT = "/v1/completions"
ROUTER = "/v1/router"
SMALL_BODY = 65536
FIELDS = {"message", "type", "param", "code"}
# What must never reach a client: tracebacks, pydantic's vocabulary and Python type names.
LEAK = re.compile(
    r"Traceback|pydantic|\bdetail\b|\bloc\b|'\w+' object|NoneType|<class |\btype=\w|input_value|"
    r"\bFile \"|Exception\b"
)
FULL_KEY = re.compile(r"pk-[0-9a-f]{12}-[A-Za-z0-9_-]{16,}")
KEYS: list[str] = []  # every tenant key this module makes, for the final check of the logs


def h(key: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    return headers


def chat(content: str = "Hello!", model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def new_key(gateway: Gateway, **spec: Any) -> str:
    key = gateway.new_key(**{"tenant": "t-errors", **spec})
    KEYS.append(key)
    return key


def error(
    r: httpx.Response, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The error object of `r`, after checking its status, shape and that it leaks nothing."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert LEAK.search(r.text) is None, r.text
    for secret in (ADMIN_KEY, *PROVIDER_KEYS.values(), *KEYS):
        assert secret not in r.text
    body = r.json()
    assert list(body) == ["error"], body
    err = body["error"]
    assert set(err) >= FIELDS, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str) and err["type"]
    assert err["param"] is None or isinstance(err["param"], str)
    assert err["code"] is None or isinstance(err["code"], str)
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return dict(err)


@pytest.fixture()
def tenant(gateway: Gateway) -> str:
    return new_key(gateway)


@pytest.fixture(scope="module")
def small(catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with a 64 KiB body limit and a 0.5 s upstream timeout."""
    env = gateway_env(
        catalogue_file,
        tmp_path_factory.mktemp("small"),
        PUREAI_MAX_BODY_BYTES=str(SMALL_BODY),
        PUREAI_REQUEST_TIMEOUT_S="0.5",
    )
    with Gateway.start(env) as gw:
        # A process's first upstream call loads parts of litellm; make it before the timeout matters.
        warm = gw.http.post(CHAT, headers=h(new_key(gw)), json=chat("warm up"))
        assert warm.status_code in (200, 504), warm.text
        yield gw


# --- 400 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"model": "gpt-4o-mini", "messages": [', "invalid_json"),
        (b"", "invalid_json"),
        (b'[{"model": "gpt-4o-mini"}]', "invalid_json"),
        (b'"hello"', "invalid_json"),
        (b"null", "invalid_json"),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "caf\xe9"}]}',
            "invalid_encoding",
        ),
        (b"\xff\xfe{}", "invalid_encoding"),
        # Python's json reads these; OpenAI's parser and the providers' do not.
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "seed": NaN}',
            "invalid_json",
        ),
        (b'{"model": "gpt-4o-mini", "messages": [], "frequency_penalty": -Infinity}', "invalid_json"),
        (b'{"model": "gpt-4o-mini", "max_tokens": ' + b"9" * 5000 + b"}", "invalid_json"),
        (b'{"model": "gpt-4o-mini", "seed": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalid_json"),
    ],
)
def test_unparseable_bodies_are_400(
    gateway: Gateway, fresh: Upstreams, tenant: str, raw: bytes, code: str
) -> None:
    for path in (CHAT, TEXT, ROUTER):
        err = error(gateway.http.post(path, headers=h(tenant), content=raw), 400, code)
        assert err["type"] == "invalid_request_error" and err["param"] is None
    assert fresh[0].requests() == [] and fresh[1].requests() == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (CHAT, {"model": "gpt-4o-mini", "messages": "hi"}, "messages"),
        (CHAT, {"model": "gpt-4o-mini", "messages": []}, "messages"),
        (CHAT, {"model": "gpt-4o-mini", "messages": None}, "messages"),
        (CHAT, {"model": "gpt-4o-mini"}, "messages"),
        (CHAT, {"messages": [{"role": "user", "content": "Hi"}]}, "model"),
        (CHAT, {"model": "", "messages": [{"role": "user", "content": "Hi"}]}, "model"),
        (CHAT, {"model": 42, "messages": [{"role": "user", "content": "Hi"}]}, "model"),
        (CHAT, chat(temperature=5), "temperature"),
        (CHAT, chat(temperature="hot"), "temperature"),
        (CHAT, chat(max_tokens=-1), "max_tokens"),
        (CHAT, chat(max_tokens=0), "max_tokens"),
        (CHAT, chat(max_tokens="many"), "max_tokens"),
        (CHAT, chat(top_p=1.5), "top_p"),
        (CHAT, chat(stream=[True]), "stream"),
        (CHAT, chat(stream="yes"), "stream"),  # no coercion of strings, as OpenAI answers them
        (CHAT, chat(max_tokens="100"), "max_tokens"),
        (CHAT, chat(temperature="0.7"), "temperature"),
        (CHAT, chat(stop=[1]), "stop"),
        (CHAT, chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (
            CHAT,
            {"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "Hi"}]},
            "messages.0.role",
        ),
        (CHAT, {"model": "gpt-4o-mini", "messages": [{"content": "Hi"}]}, "messages.0.role"),
        (CHAT, {"model": "gpt-4o-mini", "messages": ["Hi"]}, "messages.0"),
        (TEXT, {"model": "gpt-4o-mini", "prompt": []}, "prompt"),
        (TEXT, {"model": "gpt-4o-mini"}, "prompt"),
        (TEXT, {"model": "gpt-4o-mini", "prompt": {"text": "Hi"}}, "prompt"),
        (TEXT, {"prompt": "Hi"}, "model"),
        (TEXT, {"model": "gpt-4o-mini", "prompt": "Hi", "temperature": -1}, "temperature"),
        (ROUTER, {"messages": [{"role": "user", "content": "Hi"}], "cost_weight": 2}, "cost_weight"),
        (ROUTER, {"messages": [{"role": "user", "content": "Hi"}], "cost_weight": -0.1}, "cost_weight"),
        (ROUTER, {"messages": [{"role": "user", "content": "Hi"}], "models": []}, "models"),
        (ROUTER, {"messages": [{"role": "user", "content": "Hi"}], "models": "gpt-4o"}, "models"),
        (ROUTER, {"messages": []}, "messages"),
        (ROUTER, {"messages": [{"role": "user", "content": "Hi"}], "execute": "maybe"}, "execute"),
        (ROUTER, {"messages": [{"role": "user", "content": "Hi"}], "execute": "false"}, "execute"),
        (ROUTER, {"messages": [{"role": "user", "content": "Hi"}], "cost_weight": "0.5"}, "cost_weight"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(
    gateway: Gateway, fresh: Upstreams, tenant: str, path: str, body: dict[str, Any], param: str
) -> None:
    err = error(gateway.http.post(path, headers=h(tenant), json=body), 400, param=param)
    assert err["type"] == "invalid_request_error"
    assert err["code"] in ("invalid_value", "missing_field")
    assert param.split(".")[0] in err["message"]
    assert fresh[0].requests() == [] and fresh[1].requests() == []


def test_invalid_content_names_the_content(gateway: Gateway, tenant: str) -> None:
    for content in (5, {"text": "Hi"}, [{"text": "no type"}]):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
        err = error(gateway.http.post(CHAT, headers=h(tenant), json=body), 400)
        assert err["param"] is not None and err["param"].startswith("messages.0.content"), err


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user"}], "messages.0.content"),
        ([{"role": "user", "content": None}], "messages.0.content"),
        ([{"role": "system"}, {"role": "user", "content": "Hi"}], "messages.0.content"),
        ([{"role": "developer", "content": None}, {"role": "user", "content": "Hi"}], "messages.0.content"),
        (
            [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "call_1"}],
            "messages.1.content",
        ),
        ([{"role": "user", "content": "Hi"}, {"role": "assistant"}], "messages.1.content"),
        ([{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": []}], "messages.1.content"),
    ],
)
def test_a_turn_without_content_is_400_naming_it(
    gateway: Gateway, fresh: Upstreams, tenant: str, messages: list[dict[str, Any]], param: str
) -> None:
    for path, body in (
        (CHAT, {"model": "gpt-4o-mini", "messages": messages}),
        (ROUTER, {"messages": messages}),
    ):
        err = error(gateway.http.post(path, headers=h(tenant), json=body), 400, "missing_field", param)
        assert param in err["message"]
    assert fresh[0].requests() == [] and fresh[1].requests() == []


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "You are helpful."}],
        [{"role": "user", "content": "   "}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}],
    ],
)
def test_no_user_text_for_the_router_is_400_with_a_code(
    gateway: Gateway, fresh: Upstreams, tenant: str, messages: list[dict[str, Any]]
) -> None:
    for execute in (True, False):
        body = {"messages": messages, "execute": execute}
        err = error(
            gateway.http.post(ROUTER, headers=h(tenant), json=body), 400, "missing_user_message", "messages"
        )
        assert "no user turn with text" in err["message"]
    assert fresh[0].requests() == [] and fresh[1].requests() == []


SERVER_TIMING = re.compile(r"(decide|total);dur=(\d+\.\d{3})")


def test_every_router_answer_has_server_timing(gateway: Gateway, fresh: Upstreams, small: Gateway) -> None:
    """The router's decide;dur= once a decision ran, else total;dur= (errors before the decision)."""
    key, limited = new_key(gateway), new_key(gateway, rpm=1)
    hi = [{"role": "user", "content": "Hi"}]
    cases = [
        (gateway, h(), {"messages": hi}, 401, "total"),
        (gateway, h(key), {"messages": hi, "cost_weight": 2}, 400, "total"),
        (gateway, h(key), {"messages": [{"role": "user"}]}, 400, "total"),
        (gateway, h(key), {"messages": [{"role": "system", "content": "Be brief."}]}, 400, "total"),
        (gateway, h(key), {"messages": hi, "models": ["gpt-9"]}, 404, "total"),
        (gateway, h(limited), {"messages": hi, "execute": False}, 200, "decide"),
        (gateway, h(limited), {"messages": hi, "execute": False}, 429, "total"),  # refused before deciding
        (
            small,
            h(new_key(small)),
            {"messages": [{"role": "user", "content": "x" * SMALL_BODY}]},
            413,
            "total",
        ),
    ]
    for gw, headers, body, status, metric in cases:
        r = gw.http.post(ROUTER, headers=headers, json=body)
        assert r.status_code == status, r.text
        timing = SERVER_TIMING.fullmatch(r.headers.get("server-timing", ""))
        assert timing is not None and timing[1] == metric, (status, r.headers.get("server-timing"))
        assert 0 < float(timing[2]) < r.elapsed.total_seconds() * 1000
    assert "server-timing" not in gateway.http.post(CHAT, headers=h(), json=chat()).headers  # /v1/router only


def test_an_assistant_turn_that_calls_a_tool_needs_no_content(
    gateway: Gateway, fresh: Upstreams, tenant: str
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
    ]
    r = gateway.http.post(CHAT, headers=h(tenant), json={"model": "gpt-4o-mini", "messages": messages})
    assert r.status_code == 200, r.text
    assert fresh[0].requests()[-1]["body"]["messages"] == messages


TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": "get_time"}, "tools"),
        ({"tools": []}, "tools"),
        ({"tools": [{"name": "get_time"}]}, "tools"),
        ({"tools": [{"type": "function", "function": {"parameters": {}}}]}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]}, "tools"),
        ({"tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [TOOL], "tool_choice": {"type": "function"}}, "tool_choice"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "other"}}},
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": "json"}, "response_format"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": 1}}},
            "response_format",
        ),
    ],
)
def test_malformed_tools_and_formats_never_reach_a_provider(
    gateway: Gateway, fresh: Upstreams, tenant: str, extra: dict[str, Any], param: str
) -> None:
    # Sent on, a provider that fails on them costs every attempt and counts toward its breaker.
    messages = [{"role": "user", "content": "What time is it?"}]
    for path, body in (
        (CHAT, {"model": "gpt-4o-mini", "messages": messages}),
        (ROUTER, {"messages": messages}),
    ):
        err = error(
            gateway.http.post(path, headers=h(tenant), json={**body, **extra}), 400, "invalid_value", param
        )
        assert param in err["message"]
    assert fresh[0].requests() == [] and fresh[1].requests() == []


# --- 401 -------------------------------------------------------------------------------------------


def test_missing_key_is_401_before_the_body_is_read(gateway: Gateway, fresh: Upstreams) -> None:
    for path in (CHAT, TEXT, ROUTER):
        for raw in (b"{not json", b"\xff", json.dumps(chat(temperature=5)).encode()):
            err = error(gateway.http.post(path, headers=h(), content=raw), 401, "missing_api_key")
            assert "x-api-key" in err["message"]
    for path in ("/v1/models", "/v1/usage", "/v1/providers?model=gpt-4o-mini"):
        error(gateway.http.get(path), 401, "missing_api_key")
    assert fresh[0].requests() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "pk-000000000000-AAAAAAAAAAAAAAAAAAAAAAAA"},  # well formed, unknown
        {"x-api-key": "sk-proj-not-ours"},
        {"x-api-key": "pk-"},
        {"x-api-key": "pk-zzzzzzzzzzzz-AAAAAAAAAAAAAAAAAAAAAAAA"},
        {"x-api-key": ADMIN_KEY + "x"},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic dXNlcjpwYXNz"},  # not a bearer token: no key at all
    ],
)
def test_wrong_or_malformed_keys_are_401(gateway: Gateway, headers: dict[str, str]) -> None:
    r = gateway.http.post(CHAT, headers=headers, json=chat())
    err = error(r, 401)
    assert err["code"] in ("invalid_api_key", "missing_api_key")
    assert err["type"] == "invalid_request_error"


def test_a_key_that_differs_only_in_its_secret_is_401(gateway: Gateway, tenant: str) -> None:
    forged = tenant[:-4] + ("AAAA" if not tenant.endswith("AAAA") else "BBBB")
    error(gateway.http.post(CHAT, headers=h(forged), json=chat()), 401, "invalid_api_key")


def test_bearer_works_as_well_as_x_api_key(gateway: Gateway, fresh: Upstreams, tenant: str) -> None:
    for headers in ({"Authorization": f"Bearer {tenant}"}, {"authorization": f"bearer {tenant}"}):
        r = gateway.http.post(CHAT, headers=headers, json=chat())
        assert r.status_code == 200, r.text
    assert gateway.http.get("/v1/models", headers={"Authorization": f"Bearer {tenant}"}).status_code == 200


def test_a_revoked_key_is_401_at_once(gateway: Gateway, fresh: Upstreams) -> None:
    key = new_key(gateway)
    key_id = key.split("-")[1]
    assert gateway.http.post(CHAT, headers=h(key), json=chat()).status_code == 200  # now cached
    r = gateway.http.delete(f"/v1/admin/keys/{key_id}", headers=gateway.admin())
    assert r.status_code == 200 and r.json()["revoked"] is True
    err = error(gateway.http.post(CHAT, headers=h(key), json=chat()), 401, "invalid_api_key")
    assert err["message"] == "invalid API key"  # the same words as for a key that never existed
    error(gateway.http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}), 401)
    # Revoking it again, or an id that does not exist, is a 404 in the same shape.
    error(gateway.http.delete(f"/v1/admin/keys/{key_id}", headers=gateway.admin()), 404, "key_not_found")
    assert len(fresh[0].requests()) == 1


# --- 403 -------------------------------------------------------------------------------------------


def test_a_restricted_key_is_403_on_other_models(gateway: Gateway, fresh: Upstreams) -> None:
    key = new_key(gateway, models=["gpt-4o-mini"])
    cases = [
        (CHAT, chat(model="gpt-4o"), "model"),
        (TEXT, {"model": "claude-3-haiku", "prompt": "Hi"}, "model"),
        (ROUTER, {"messages": [{"role": "user", "content": "Hi"}], "models": ["gpt-4o"]}, "models"),
        (
            ROUTER,
            {"messages": [{"role": "user", "content": "Hi"}], "models": ["gpt-4o-mini", "gpt-4o"]},
            "models",
        ),
    ]
    for path, body, param in cases:
        err = error(gateway.http.post(path, headers=h(key), json=body), 403, "model_not_allowed", param)
        assert err["type"] == "permission_error"
    error(
        gateway.http.get("/v1/providers", params={"model": "gpt-4o"}, headers=h(key)),
        403,
        "model_not_allowed",
    )
    assert fresh[0].requests() == [] and fresh[1].requests() == []
    assert gateway.http.post(CHAT, headers=h(key), json=chat()).status_code == 200


def test_a_tenant_key_is_403_on_the_admin_api(gateway: Gateway, tenant: str) -> None:
    calls = [
        gateway.http.post("/v1/admin/keys", headers=h(tenant), json={"tenant": "evil", "admin": True}),
        gateway.http.get("/v1/admin/keys", headers=h(tenant)),
        gateway.http.delete(f"/v1/admin/keys/{tenant.split('-')[1]}", headers=h(tenant)),
    ]
    for r in calls:
        error(r, 403, "admin_only")
    assert gateway.http.post(CHAT, headers=h(tenant), json=chat()).status_code == 200  # not revoked


# --- 404 and 405 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-9", "disabled-model", "GPT-4O-MINI ", "../etc/passwd"])
def test_unknown_or_disabled_models_are_404(
    gateway: Gateway, fresh: Upstreams, tenant: str, model: str
) -> None:
    calls = [
        (gateway.http.post(CHAT, headers=h(tenant), json=chat(model=model)), "model"),
        (gateway.http.post(TEXT, headers=h(tenant), json={"model": model, "prompt": "Hi"}), "model"),
        (gateway.http.get("/v1/providers", params={"model": model}, headers=h(tenant)), "model"),
        (
            gateway.http.post(
                ROUTER,
                headers=h(tenant),
                json={"messages": [{"role": "user", "content": "Hi"}], "models": ["gpt-4o", model]},
            ),
            "models",
        ),
    ]
    for r, param in calls:
        err = error(r, 404, "model_not_found", param)
        assert err["type"] == "invalid_request_error"
    assert fresh[0].requests() == [] and fresh[1].requests() == []


def test_unknown_routes_are_404_and_wrong_methods_405(gateway: Gateway, tenant: str) -> None:
    for path in ("/v1/nope", "/v2/chat/completions", "/", "/v1/chat/completions/extra"):
        error(gateway.http.get(path, headers=h(tenant)), 404, "not_found")
        error(gateway.http.post(path, headers=h(tenant), json={}), 404, "not_found")
    for method, path in (
        ("GET", CHAT),
        ("PUT", TEXT),
        ("GET", ROUTER),
        ("DELETE", "/v1/models"),
        ("PATCH", "/v1/admin/keys"),
    ):
        err = error(gateway.http.request(method, path, headers=h(tenant)), 405, "method_not_allowed")
        assert method in err["message"]


# --- 413 -------------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_with_content_length(small: Gateway, fresh: Upstreams) -> None:
    key = new_key(small)
    raw = json.dumps(chat("x" * SMALL_BODY)).encode()
    for path in (CHAT, TEXT, ROUTER, "/v1/admin/keys"):
        err = error(small.http.post(path, headers=h(key), content=raw), 413, "request_too_large")
        assert str(SMALL_BODY) in err["message"]
    # Elsewhere the size is refused before the key is even looked at; the completion endpoints and
    # the router check the key and its rate limit first (the 413 counts toward rpm: test_abuse.py),
    # and neither reads a byte of the body.
    error(small.http.post("/v1/admin/keys", headers=h(), content=raw), 413, "request_too_large")
    error(small.http.post(CHAT, headers=h(), content=raw), 401, "missing_api_key")
    assert fresh[0].requests() == [] and fresh[1].requests() == []


def test_a_chunked_body_over_the_limit_is_413(small: Gateway, fresh: Upstreams) -> None:
    key = new_key(small)
    head, tail = json.dumps(chat("")).encode().split(b'""', 1)

    def body() -> Iterator[bytes]:
        yield head + b'"'
        for _ in range(4 * SMALL_BODY // 8192):
            yield b"x" * 8192
        yield b'"' + tail

    for path in (CHAT, TEXT, ROUTER):
        r = small.http.post(path, headers=h(key), content=body())
        assert r.request.headers.get("transfer-encoding") == "chunked"
        error(r, 413, "request_too_large")
    assert fresh[0].requests() == [] and fresh[1].requests() == []


def test_a_body_just_under_the_limit_is_accepted(small: Gateway, fresh: Upstreams) -> None:
    key = new_key(small)
    body = {"messages": [{"role": "user", "content": ""}], "execute": False}
    filler = SMALL_BODY - len(json.dumps(body).encode()) - 10
    body["messages"][0]["content"] = "word " * (filler // 5)
    raw = json.dumps(body).encode()
    assert SMALL_BODY - 20 < len(raw) <= SMALL_BODY
    r = small.http.post(ROUTER, headers=h(key), content=raw)
    assert r.status_code == 200, r.text


# --- 429 -------------------------------------------------------------------------------------------


def test_rate_limit_429_with_retry_after_and_headers(gateway: Gateway, fresh: Upstreams) -> None:
    key = new_key(gateway, rpm=3)
    for remaining in (2, 1, 0):
        r = gateway.http.post(CHAT, headers=h(key), json=chat())
        assert r.status_code == 200, r.text
        assert r.headers["x-ratelimit-limit-requests"] == "3"
        assert r.headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert re.fullmatch(r"\d+(\.\d+)?m?s|\d+m\d+(\.\d+)?s", r.headers["x-ratelimit-reset-requests"])
    r = gateway.http.post(CHAT, headers=h(key), json=chat())
    err = error(r, 429, "rate_limit_exceeded")
    assert err["type"] == "requests"
    assert int(r.headers["retry-after"]) >= 1
    assert 0 < err["retry_after"] <= 60
    assert r.headers["x-ratelimit-limit-requests"] == "3"
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.headers["x-ratelimit-reset-requests"] != "0s"
    # Streamed requests and the router count against the same limit.
    error(gateway.http.post(CHAT, headers=h(key), json=chat(stream=True)), 429, "rate_limit_exceeded")
    error(
        gateway.http.post(ROUTER, headers=h(key), json={"messages": [{"role": "user", "content": "Hi"}]}),
        429,
        "rate_limit_exceeded",
    )
    assert len(fresh[0].requests()) == 3


def test_every_answer_has_the_six_rate_limit_headers(gateway: Gateway, fresh: Upstreams) -> None:
    unlimited, limited = new_key(gateway), new_key(gateway, rpm=5)
    decide = {"messages": [{"role": "user", "content": "Hi"}], "execute": False}
    for path, body in ((CHAT, chat()), (CHAT, chat(stream=True)), (ROUTER, decide)):
        r = gateway.http.post(path, headers=h(unlimited), json=body)
        assert r.status_code == 200, r.text
        for name in ("requests", "tokens"):  # a key without limits: UNLIMITED, never waiting
            assert r.headers[f"x-ratelimit-limit-{name}"] == str(UNLIMITED)
            assert r.headers[f"x-ratelimit-remaining-{name}"] == str(UNLIMITED)
            assert r.headers[f"x-ratelimit-reset-{name}"] == "0s"
    r = gateway.http.post(CHAT, headers=h(limited), json=chat())
    assert (r.headers["x-ratelimit-limit-requests"], r.headers["x-ratelimit-remaining-requests"]) == (
        "5",
        "4",
    )
    # the request just made leaves the 60 s window in about a minute, not "0s"
    assert re.fullmatch(r"59\.\d+s|1m0s", r.headers["x-ratelimit-reset-requests"]), r.headers
    assert r.headers["x-ratelimit-limit-tokens"] == str(UNLIMITED)


def test_a_burst_admits_exactly_the_limit(gateway: Gateway, fresh: Upstreams) -> None:
    key = new_key(gateway, rpm=10)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30.0, trust_env=False) as client:
            calls = [client.post(CHAT, headers=h(key), json=chat(f"burst {i}")) for i in range(30)]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 10 + [429] * 20, [r.text for r in responses if r.status_code not in (200, 429)]
    for r in responses:
        if r.status_code == 429:
            error(r, 429, "rate_limit_exceeded")
            assert int(r.headers["retry-after"]) >= 1
    remaining = sorted(
        int(r.headers["x-ratelimit-remaining-requests"]) for r in responses if r.status_code == 200
    )
    assert remaining == list(range(10))
    assert len(fresh[0].requests()) == 10


def test_a_spent_budget_is_429_insufficient_quota(gateway: Gateway, fresh: Upstreams) -> None:
    key = new_key(gateway, budget_usd=1e-9)  # below any request's worst case: none is admitted
    for path, body in ((CHAT, chat()), (TEXT, {"model": "gpt-4o-mini", "prompt": "Hi"})):
        err = error(gateway.http.post(path, headers=h(key), json=body), 429, "insufficient_quota")
        assert err["type"] == "insufficient_quota"
        assert "left" in err["message"]
    assert fresh[0].requests() == []


# --- 503, 502, 504: the providers --------------------------------------------------------------------


def test_an_unconfigured_provider_is_503_naming_the_variable(
    gateway: Gateway, fresh: Upstreams, tenant: str
) -> None:
    for stream in (False, True):
        r = gateway.http.post(CHAT, headers=h(tenant), json=chat(model="unconfigured-model", stream=stream))
        err = error(r, 503, "provider_not_configured")
        assert "TEST_UNSET_KEY_NOBODY_SETS" in err["message"]
        assert err["type"] == "service_unavailable"
    r = gateway.http.post(TEXT, headers=h(tenant), json={"model": "unconfigured-model", "prompt": "Hi"})
    error(r, 503, "provider_not_configured")
    assert fresh[0].requests() == [] and fresh[1].requests() == []


@pytest.mark.parametrize("stream", [False, True])
def test_every_provider_failing_is_502(gateway: Gateway, fresh: Upstreams, tenant: str, stream: bool) -> None:
    a, b = fresh
    a.script({"status": 500, "model": "gpt-4o-mini"})
    b.script({"status": 500, "model": "gpt-4o-mini"})
    err = error(gateway.http.post(CHAT, headers=h(tenant), json=chat(stream=stream)), 502, "upstream_error")
    assert err["type"] == "upstream_error"
    assert [len(a.requests()), len(b.requests())] == [1, 1]  # the backup was tried


def test_a_reset_connection_on_every_provider_is_502(gateway: Gateway, fresh: Upstreams, tenant: str) -> None:
    a, b = fresh
    a.script({"reset": True, "model": "gpt-4o-mini"})
    b.script({"reset": True, "model": "gpt-4o-mini"})
    error(gateway.http.post(CHAT, headers=h(tenant), json=chat()), 502, "upstream_error")
    assert [len(a.requests()), len(b.requests())] == [1, 1]


def test_every_provider_rate_limited_is_429(gateway: Gateway, fresh: Upstreams, tenant: str) -> None:
    a, b = fresh
    a.script({"status": 429, "model": "gpt-4o-mini"})
    b.script({"status": 429, "model": "gpt-4o-mini", "headers": {"retry-after": "7"}})
    r = gateway.http.post(CHAT, headers=h(tenant), json=chat())
    error(r, 429, "upstream_rate_limited")
    assert [len(a.requests()), len(b.requests())] == [1, 1]


def test_an_upstream_auth_failure_is_502_without_its_message(
    gateway: Gateway, fresh: Upstreams, tenant: str
) -> None:
    a, _ = fresh
    leaked = f"Incorrect API key provided: {PROVIDER_KEYS['TEST_MISTRAL_KEY']}"
    a.script({"status": 401, "error": {"message": leaked}, "model": "codestral-latest"})
    err = error(
        gateway.http.post(CHAT, headers=h(tenant), json=chat(model="codestral-latest")), 502, "upstream_auth"
    )
    assert "Incorrect API key" not in err["message"]


def test_every_provider_timing_out_is_504(small: Gateway, fresh: Upstreams) -> None:
    a, b = fresh
    key = new_key(small)
    a.script({"headers_delay_ms": 3000, "model": "gpt-4o-mini"})
    b.script({"headers_delay_ms": 3000, "model": "gpt-4o-mini"})
    err = error(small.http.post(CHAT, headers=h(key), json=chat()), 504, "upstream_timeout")
    assert err["type"] == "upstream_error"
    a.wait_for(lambda log: len(log) == 1)
    b.wait_for(lambda log: len(log) == 1)


def test_an_upstream_400_passes_through_without_failover(
    gateway: Gateway, fresh: Upstreams, tenant: str
) -> None:
    a, b = fresh
    message = "Invalid 'messages[0].content': string too long. Expected at most 1048576 characters."
    a.script(
        {"status": 400, "error": {"message": message, "param": "messages[0].content"}, "model": "gpt-4o-mini"}
    )
    err = error(gateway.http.post(CHAT, headers=h(tenant), json=chat()), 400)
    assert message in err["message"]
    assert err["type"] == "invalid_request_error"
    assert len(a.requests()) == 1
    assert b.requests() == []


# --- Unicode ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hello 👋🏽 family: 👨‍👩‍👧‍👦",
        "مرحبا بالعالم שלום עולם",
        "nul\x00inside",
        "mixed \u202etxt.exe and \ufeffBOM and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    ],
)
def test_unicode_reaches_the_provider_exactly(
    gateway: Gateway, fresh: Upstreams, tenant: str, text: str
) -> None:
    r = gateway.http.post(CHAT, headers=h(tenant), json=chat(text))
    assert r.status_code == 200, r.text
    assert fresh[0].requests()[-1]["body"]["messages"] == [{"role": "user", "content": text}]
    assert r.json()["choices"][0]["message"]["content"] == f"Hello from A: {text[:60]}"


def test_a_surrogate_pair_escape_is_one_character(gateway: Gateway, fresh: Upstreams, tenant: str) -> None:
    raw = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\\ud83d\\ude00 \\u00e9"}]}'
    r = gateway.http.post(CHAT, headers=h(tenant), content=raw)
    assert r.status_code == 200, r.text
    assert fresh[0].requests()[-1]["body"]["messages"] == [{"role": "user", "content": "😀 é"}]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            CHAT,
            '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
            "messages.0.content",
        ),
        (
            CHAT,
            '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\\uDC00"}], "stream": true}',
            "messages.0.content",
        ),
        (
            CHAT,
            '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "user": "\\ud800"}',
            "user",
        ),
        (
            CHAT,
            '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}]}',
            "messages.0.content.0.text",
        ),
        (TEXT, '{"model": "gpt-4o-mini", "prompt": ["ok", "x\\ud800"]}', "prompt.1"),
        (
            ROUTER,
            '{"messages": [{"role": "user", "content": "a\\ud800b"}], "execute": false}',
            "messages.0.content",
        ),
    ],
)
def test_a_lone_surrogate_is_a_clear_400(
    gateway: Gateway, fresh: Upstreams, tenant: str, path: str, body: str, param: str
) -> None:
    # Valid JSON, but not Unicode text: UTF-8 cannot carry it to a provider (nor to the router's
    # tokenizer), so it is refused up front rather than failing every provider in turn.
    err = error(
        gateway.http.post(path, headers=h(tenant), content=body.encode()), 400, "invalid_encoding", param
    )
    assert "surrogate" in err["message"]
    assert fresh[0].requests() == [] and fresh[1].requests() == []


# --- Secrets ---------------------------------------------------------------------------------------


def test_no_secret_reaches_the_logs(gateway: Gateway, small: Gateway) -> None:
    assert len(KEYS) > 10  # the tests above ran and made keys
    for gw in (gateway, small):
        logs = gw.logs()
        assert "Application startup complete" in logs and " failed (" in logs  # it logged our tests
        for secret in (ADMIN_KEY, *PROVIDER_KEYS.values(), *KEYS):
            assert secret not in logs
        assert FULL_KEY.search(logs) is None

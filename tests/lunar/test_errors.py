"""Typed errors from the real gateway's responses: the exception class for each status, the server's
message, code and param on it, and which of them the SDK retries (counted at the HTTP client)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import lunar
from lunar import AsyncLunar, Lunar
from tests.service.gateway_server import Gateway

HELLO = [{"role": "user", "content": "Hello!"}]
LONG = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"


class Counted:
    """A Lunar client whose every HTTP attempt is counted (an httpx request hook)."""

    def __init__(self, gateway: Gateway, key: str, **options: Any) -> None:
        self.sent: list[httpx.Request] = []
        self.http = httpx.Client(event_hooks={"request": [self.sent.append]})
        self.client = Lunar(api_key=key, base_url=gateway.url, http_client=self.http, **options)

    def close(self) -> None:
        self.client.close()
        self.http.close()


@pytest.fixture()
def counted(gateway: Gateway, key: str) -> Iterator[Counted]:
    c = Counted(gateway, key)
    yield c
    c.close()


def test_an_unknown_key_is_an_authentication_error_and_not_retried(gateway: Gateway) -> None:
    c = Counted(gateway, "pk-not-a-key")
    try:
        with pytest.raises(lunar.AuthenticationError) as info:
            c.client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    finally:
        c.close()
    err = info.value
    assert err.status_code == 401 and err.response.status_code == 401
    assert err.code == "invalid_api_key" and err.message and str(err) == f"401 invalid_api_key: {err.message}"
    assert err.body == err.response.json()["error"]
    assert err.request_id is not None and err.request_id.startswith("req_")
    assert len(c.sent) == 1


def test_a_model_the_key_may_not_use_is_permission_denied(gateway: Gateway) -> None:
    limited = gateway.new_key(tenant="t-limited", models=["gpt-4o-mini"])
    with (
        Lunar(api_key=limited, base_url=gateway.url) as client,
        pytest.raises(lunar.PermissionDeniedError) as info,
    ):
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert info.value.status_code == 403 and info.value.code == "model_not_allowed"
    assert info.value.param == "model" and "gpt-4o" in info.value.message


def test_an_unknown_model_is_not_found(counted: Counted) -> None:
    with pytest.raises(lunar.NotFoundError) as info:
        counted.client.completions.create(model="gpt-9", prompt="Hi")
    assert info.value.status_code == 404 and info.value.code == "model_not_found"
    assert info.value.message == "the model 'gpt-9' does not exist"
    assert len(counted.sent) == 1


def test_a_bad_parameter_is_a_bad_request_naming_it(counted: Counted) -> None:
    with pytest.raises(lunar.BadRequestError) as info:
        counted.client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, temperature=5)
    assert info.value.status_code == 400 and info.value.param == "temperature"
    assert "temperature" in info.value.message
    assert len(counted.sent) == 1


def test_a_body_over_the_limit_is_a_bad_request_with_413(counted: Counted) -> None:
    pad = "x" * (10 * 1024 * 1024)
    with pytest.raises(lunar.BadRequestError) as info:
        counted.client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, extra_body={"pad": pad})
    assert info.value.status_code == 413 and info.value.code == "request_too_large"
    assert len(counted.sent) == 1


def test_a_rate_limited_key_gets_a_rate_limit_error_with_retry_after(gateway: Gateway, fresh: Any) -> None:
    limited = gateway.new_key(tenant="t-rpm", rpm=2)
    with Lunar(api_key=limited, base_url=gateway.url, max_retries=0) as client:
        for _ in range(2):
            client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        with pytest.raises(lunar.RateLimitError) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    err = info.value
    assert err.status_code == 429 and err.code == "rate_limit_exceeded" and err.type == "requests"
    assert err.retry_after is not None and 0 < err.retry_after <= 60
    assert int(err.headers["retry-after"]) >= err.retry_after
    assert len(fresh[0].requests()) == 2


def test_a_spent_budget_is_a_rate_limit_error_that_is_not_retried(gateway: Gateway, fresh: Any) -> None:
    # a budget below one request's worst case: the first request is refused before any provider
    c = Counted(gateway, gateway.new_key(tenant="t-budget", budget_usd=1e-9))
    try:
        with pytest.raises(lunar.RateLimitError) as info:
            c.client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    finally:
        c.close()
    assert info.value.code == "insufficient_quota" and info.value.retry_after is None
    assert len(c.sent) == 1  # max_retries=2, but waiting does not refill a budget
    assert fresh[0].requests() == []


def test_every_provider_failing_is_an_internal_server_error(gateway: Gateway, fresh: Any, key: str) -> None:
    a, b = fresh
    a.script(*[{"status": 500}] * 4)
    b.script(*[{"status": 500}] * 4)
    with (
        Lunar(api_key=key, base_url=gateway.url, max_retries=0) as client,
        pytest.raises(lunar.InternalServerError) as info,
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert info.value.status_code == 502 and info.value.code == "upstream_error"
    assert "every provider failed" in info.value.message


def test_a_failing_provider_is_retried_by_the_sdk_until_it_answers(
    gateway: Gateway, fresh: Any, key: str
) -> None:
    """max_retries=1: the first attempt gets the gateway's 502 (primary and backup both fail), the
    retry gets an answer."""
    a, b = fresh
    a.script({"status": 500})
    b.script({"status": 500})
    with Lunar(api_key=key, base_url=gateway.url, max_retries=1) as client:
        response = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert response.choices[0].message.content == "Hello from A: Hello!"
    assert len(a.requests()) == 2 and len(b.requests()) == 1


@pytest.mark.parametrize(
    "fault", [{"error_after_chunks": 3}, {"drop_after_chunks": 3}], ids=["error", "drop"]
)
def test_a_stream_broken_upstream_raises_a_stream_error_after_its_chunks(
    counted: Counted, fresh: Any, fault: dict[str, Any]
) -> None:
    fresh[0].script({"content": LONG, "hold": True, **fault})
    chunks: list[lunar.ChatCompletionChunk] = []
    with pytest.raises(lunar.APIStreamError) as info:
        for chunk in counted.client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True):
            chunks.append(chunk)
            if len(chunks) == 3:  # the gateway has passed the frames on: now the upstream fails
                fresh[0].release()
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks) == "alpha beta"
    )  # the role frame, then two words
    assert info.value.code == "upstream_error" and info.value.message == "the provider failed mid-stream"
    assert not isinstance(info.value, lunar.APIStatusError)
    assert len(counted.sent) == 1 and len(fresh[0].requests()) == 1


def test_async_errors_are_the_same_types(gateway: Gateway, fresh: Any, key: str) -> None:
    limited = gateway.new_key(tenant="t-rpm-async", rpm=1)

    async def main() -> None:
        async with AsyncLunar(api_key="pk-not-a-key", base_url=gateway.url) as client:
            with pytest.raises(lunar.AuthenticationError):
                await client.models.list()
        async with AsyncLunar(api_key=key, base_url=gateway.url) as client:
            with pytest.raises(lunar.NotFoundError):
                await client.chat.completions.create(model="gpt-9", messages=HELLO)
            fresh[0].script({"content": LONG, "error_after_chunks": 2})
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
            seen = []
            with pytest.raises(lunar.APIStreamError):
                async for chunk in stream:
                    seen.append(chunk)
            assert len(seen) >= 1
        async with AsyncLunar(api_key=limited, base_url=gateway.url, max_retries=0) as client:
            await client.models.list()  # not rate limited: only completions and routing are
            await client.router.route(messages=HELLO, execute=False)
            with pytest.raises(lunar.RateLimitError) as info:
                await client.router.route(messages=HELLO, execute=False)
            assert info.value.retry_after is not None and info.value.retry_after > 0

    asyncio.run(main())

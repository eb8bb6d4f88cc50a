"""Retries and timeouts against the raw-socket server: what is retried and how often, how long the
SDK waits when the server says, and that a stream is never retried once it has begun."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import httpx
import pytest

import lunar
from lunar import AsyncLunar, Lunar, _retry
from tests.lunar.raw_server import RawServer, drop_after, json_reply, reset, sse_reply, stall

HELLO = [{"role": "user", "content": "Hello!"}]
OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
)


def error(status: int, code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": f"status {status}", "type": "x", "param": None, "code": code, **extra}}


def chat(server: RawServer, **options: Any) -> lunar.ChatCompletion:
    with Lunar(api_key="k", base_url=server.url, **options) as client:
        return client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)


# -- what is retried --------------------------------------------------------------------------------


def test_a_503_then_a_200_is_retried_once(raw: RawServer) -> None:
    raw.script(json_reply(503, error(503)), json_reply(200, OK))
    assert chat(raw).choices[0].message.content == "hi"
    assert len(raw.requests) == 2
    assert raw.requests[0].body == raw.requests[1].body  # the same request again


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (408, lunar.APIStatusError),
        (409, lunar.APIStatusError),
        (429, lunar.RateLimitError),
        (500, lunar.InternalServerError),
        (502, lunar.InternalServerError),
        (504, lunar.InternalServerError),
    ],
)
def test_retryable_statuses_are_retried_max_retries_times(
    raw: RawServer, status: int, kind: type[lunar.APIStatusError]
) -> None:
    raw.script(*[json_reply(status, error(status), {"retry-after": "0"})] * 3)
    with pytest.raises(kind) as info:
        chat(raw, max_retries=2)
    assert info.value.status_code == status and len(raw.requests) == 3


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, lunar.BadRequestError),
        (401, lunar.AuthenticationError),
        (403, lunar.PermissionDeniedError),
        (404, lunar.NotFoundError),
        (413, lunar.BadRequestError),
        (422, lunar.BadRequestError),
        (418, lunar.APIStatusError),
    ],
)
def test_client_errors_are_not_retried(raw: RawServer, status: int, kind: type[lunar.APIStatusError]) -> None:
    raw.script(json_reply(status, error(status, "some_code", param="messages")))
    with pytest.raises(kind) as info:
        chat(raw)
    err = info.value
    assert type(err) is kind and err.status_code == status
    assert (err.message, err.code, err.param, err.type) == (f"status {status}", "some_code", "messages", "x")
    assert len(raw.requests) == 1


def test_a_spent_budget_429_is_not_retried(raw: RawServer) -> None:
    raw.script(json_reply(429, error(429, "insufficient_quota")))
    with pytest.raises(lunar.RateLimitError) as info:
        chat(raw)
    assert info.value.code == "insufficient_quota" and len(raw.requests) == 1


def test_max_retries_zero_turns_retries_off(raw: RawServer) -> None:
    raw.script(json_reply(503, error(503)), json_reply(200, OK))
    with pytest.raises(lunar.InternalServerError):
        chat(raw, max_retries=0)
    assert len(raw.requests) == 1


def test_an_error_body_that_is_not_json_keeps_its_text(raw: RawServer) -> None:
    raw.script(json_reply(400, "plain words"))
    with pytest.raises(lunar.BadRequestError) as info:
        chat(raw)
    assert info.value.message == 'HTTP 400: "plain words"' and info.value.code is None


def test_a_connection_reset_without_a_response_is_retried(raw: RawServer) -> None:
    raw.script(reset, json_reply(200, OK))
    assert chat(raw).choices[0].message.content == "hi"
    assert len(raw.requests) == 2


def test_a_refused_connection_is_a_connection_error_after_every_attempt() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sent: list[httpx.Request] = []
    with httpx.Client(event_hooks={"request": [sent.append]}) as http:
        client = Lunar(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=1, http_client=http)
        with pytest.raises(lunar.APIConnectionError) as info:
            client.models.list()
        client.close()
        assert not http.is_closed  # the caller's client is the caller's to close
    assert not isinstance(info.value, lunar.APITimeoutError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(sent) == 2


# -- how long it waits ------------------------------------------------------------------------------


def test_a_429_loop_gets_through_once_the_window_allows_without_hammering(raw: RawServer) -> None:
    """The server refuses once with Retry-After: 1; the SDK waits that second, then gets through,
    with exactly two requests."""
    raw.script(
        json_reply(429, error(429, "rate_limit_exceeded"), {"retry-after": "1"}),
        json_reply(200, OK),
    )
    assert chat(raw).choices[0].message.content == "hi"
    first, second = raw.requests
    assert second.arrived - first.arrived >= 0.95


def test_the_bodys_retry_after_is_preferred_to_the_rounded_header(raw: RawServer) -> None:
    body = error(429, "rate_limit_exceeded", retry_after=0.3)
    raw.script(json_reply(429, body, {"retry-after": "30"}), json_reply(200, OK))
    chat(raw)
    first, second = raw.requests
    assert 0.25 <= second.arrived - first.arrived < 30


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_wait_follows_the_server_else_backs_off_exponentially_with_jitter() -> None:
    assert _retry.wait_s(0, response(429, error(429, retry_after=2.5), {"retry-after": "3"})) == 2.5
    assert _retry.wait_s(0, response(503, None, {"retry-after": "4"})) == 4.0
    assert _retry.wait_s(0, response(503, None, {"retry-after-ms": "250"})) == 0.25
    assert _retry.wait_s(0, response(429, None, {"retry-after": "3600"})) == 60.0  # capped
    assert 55 < _retry.wait_s(0, response(503, None, {"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"})) <= 60
    for retry in range(8):
        base = min(_retry.INITIAL_BACKOFF_S * 2**retry, _retry.MAX_BACKOFF_S)
        waits = [_retry.wait_s(retry, response(503, None, {"retry-after": "soon"})) for _ in range(50)]
        assert all(0.75 * base <= w <= base for w in waits)
        assert len(set(waits)) > 1  # jittered
    assert _retry.wait_s(0, None) <= _retry.INITIAL_BACKOFF_S


def test_should_retry() -> None:
    assert [_retry.should_retry(response(s)) for s in (408, 409, 429, 500, 503, 599)] == [True] * 6
    assert [_retry.should_retry(response(s)) for s in (400, 401, 403, 404, 413, 422)] == [False] * 6
    assert not _retry.should_retry(response(429, error(429, "insufficient_quota")))


# -- timeouts ---------------------------------------------------------------------------------------


def test_slow_headers_time_out_and_are_retried(raw: RawServer) -> None:
    raw.script(stall, stall)
    with pytest.raises(lunar.APITimeoutError):
        chat(raw, timeout=0.2, max_retries=1)
    assert len(raw.requests) == 2


def test_a_per_call_timeout_overrides_the_clients(raw: RawServer) -> None:
    raw.script(stall)
    with Lunar(api_key="k", base_url=raw.url, max_retries=0) as client, pytest.raises(lunar.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, timeout=0.2)
    assert client.timeout == lunar.DEFAULT_TIMEOUT and len(raw.requests) == 1


# -- streams ----------------------------------------------------------------------------------------


def test_a_stream_refused_before_it_begins_is_retried(raw: RawServer) -> None:
    raw.script(json_reply(503, error(503)), sse_reply([CHUNK, b"data: [DONE]\n\n"]))
    with Lunar(api_key="k", base_url=raw.url) as client:
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))
    assert [c.choices[0].delta.content for c in chunks] == ["hi"]
    assert len(raw.requests) == 2 and raw.requests[1].headers["accept"] == "text/event-stream"


@pytest.mark.parametrize("rst", [False, True], ids=["closed", "reset"])
def test_a_stream_dropped_after_data_raises_and_is_not_retried(raw: RawServer, rst: bool) -> None:
    proceed = threading.Event()
    raw.script(drop_after([CHUNK, CHUNK], proceed, rst=rst), json_reply(200, OK))
    with Lunar(api_key="k", base_url=raw.url, max_retries=2) as client:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
        assert next(stream).choices[0].delta.content == "hi"
        assert next(stream).choices[0].delta.content == "hi"
        proceed.set()
        with pytest.raises(lunar.APIConnectionError, match="the stream broke"):
            next(stream)
        assert list(stream) == []  # over
    assert len(raw.requests) == 1


def test_a_stalled_stream_times_out(raw: RawServer) -> None:
    proceed = threading.Event()
    raw.script(drop_after([CHUNK], proceed))
    try:
        with Lunar(api_key="k", base_url=raw.url, timeout=0.5) as client:
            stream = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
            assert next(stream).choices[0].delta.content == "hi"
            with pytest.raises(lunar.APITimeoutError):
                next(stream)
    finally:
        proceed.set()
    assert len(raw.requests) == 1


# -- the async client -------------------------------------------------------------------------------


def test_async_retries_timeouts_and_dropped_streams(raw: RawServer) -> None:
    proceed = threading.Event()
    raw.script(
        json_reply(503, error(503), {"retry-after": "0"}),
        json_reply(200, OK),
        stall,
        stall,
        drop_after([CHUNK], proceed),
        json_reply(429, error(429, "insufficient_quota")),
    )

    async def main() -> None:
        async with AsyncLunar(api_key="k", base_url=raw.url, max_retries=1) as client:
            answer = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            assert answer.choices[0].message.content == "hi" and len(raw.requests) == 2
            with pytest.raises(lunar.APITimeoutError):
                await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, timeout=0.2)
            assert len(raw.requests) == 4  # the timed-out attempt was retried
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
            assert (await stream.__anext__()).choices[0].delta.content == "hi"
            proceed.set()
            with pytest.raises(lunar.APIConnectionError):
                await stream.__anext__()
            with pytest.raises(lunar.RateLimitError):
                await client.models.list()

    asyncio.run(main())
    assert len(raw.requests) == 6  # the dropped stream and the spent budget were not retried

"""The relay on its own against the fake upstream (a real HTTP server on loopback): what it sends,
how it reads a stream, and how it reports an upstream's errors to the executor."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from service.relay import ContextWindowExceeded, Frames, Relay, UpstreamStatus

from .fake_upstream import FakeUpstream

HI = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream.start("A") as fake:
        yield fake


@pytest.fixture
def fake(upstream: FakeUpstream) -> FakeUpstream:
    upstream.reset()
    return upstream


def run(fake: FakeUpstream, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    """Each (path, body) in turn on one Relay; a stream is read to its end (its chunks, as a list);
    an exception is returned in place of its call's result."""

    async def body() -> list[Any]:
        relay = Relay(30.0)
        out: list[Any] = []
        try:
            for path, sent in calls:
                try:
                    answer = await relay.send(fake.url + path, "sk-test", sent)
                    if isinstance(answer, Frames):
                        frames = answer
                        try:
                            answer = [chunk async for chunk in frames]
                        finally:
                            await frames.aclose()
                    out.append(answer)
                except Exception as exc:
                    out.append(exc)
        finally:
            await relay.close()
        return out

    return asyncio.run(body())


def chat(stream: bool = False, **kw: Any) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model": "m", "messages": HI, **kw}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return "/chat/completions", body


def text(stream: bool = False) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model": "m", "prompt": "Hello", "max_tokens": 5}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return "/completions", body


def test_sequential_calls_share_one_kept_alive_connection(fake: FakeUpstream) -> None:
    answers = run(fake, chat(), chat(stream=True), text(), text(stream=True))
    assert not any(isinstance(a, Exception) for a in answers), answers
    assert answers[0]["choices"][0]["message"]["content"] == "Hello from A: Hello there"
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in answers[1] if c["choices"])
    assert streamed == "Hello from A: Hello there"
    assert answers[1][-1]["choices"] == [] and answers[1][-1]["usage"]["completion_tokens"] > 0
    sent = fake.requests()
    assert [r["path"] for r in sent] == [
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/completions",
    ]
    assert sent[0]["headers"]["authorization"] == "Bearer sk-test" and sent[0]["body"]["messages"] == HI
    assert len({r["peer"] for r in sent}) == 1


def test_a_malformed_stream_still_parses(fake: FakeUpstream) -> None:
    # an SSE comment, and one frame split across two writes inside a multi-byte character
    fake.script({"malformed": True, "content": "é😀 done"})
    (chunks,) = run(fake, chat(stream=True))
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "é😀 done"
    )


def test_a_stream_cut_mid_way_is_an_error_not_an_end(fake: FakeUpstream) -> None:
    fake.script({"drop_after_chunks": 3})
    (result,) = run(fake, chat(stream=True))
    assert isinstance(result, aiohttp.ClientError), result


def test_an_error_frame_mid_stream_raises(fake: FakeUpstream) -> None:
    fake.script({"error_after_chunks": 2})
    (result,) = run(fake, chat(stream=True))
    assert isinstance(result, UpstreamStatus) and result.status_code >= 500


def test_a_stream_without_done_ends_after_its_finish(fake: FakeUpstream) -> None:
    fake.script({"no_done": True})
    (chunks,) = run(fake, chat(stream=True))
    assert isinstance(chunks, list) and any(
        c["choices"] and c["choices"][0].get("finish_reason") for c in chunks
    )


def test_error_statuses_carry_the_providers_message_and_headers(fake: FakeUpstream) -> None:
    context = "This model's maximum context length is 8192 tokens."
    fake.script(
        {"status": 429, "headers": {"Retry-After": "7"}},
        {"status": 400, "error": {"message": context, "code": "context_length_exceeded"}},
        {"status": 400, "error": {"message": "bad temperature"}},
    )
    limited, too_long, bad = run(fake, chat(), chat(), chat())
    assert isinstance(limited, UpstreamStatus) and limited.status_code == 429
    assert limited.response_headers["retry-after"] == "7"  # names lower-cased, as the executor reads them
    assert isinstance(too_long, ContextWindowExceeded) and too_long.message == context
    assert type(bad) is UpstreamStatus and bad.status_code == 400 and bad.message == "bad temperature"

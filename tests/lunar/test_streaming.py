"""Streams from the raw-socket server, whose bytes are exactly what each test writes: characters
split across network chunks, events over several lines, comments and other SSE fields, error
events, missing or truncated ends, and leaving a stream early."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from typing import Any

import pytest

import lunar
from lunar import AsyncLunar, Lunar
from tests.lunar.raw_server import RawServer, paused, sse_reply

HELLO = [{"role": "user", "content": "Hello!"}]
DONE = b"data: [DONE]\n\n"


def chunk(content: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": content}}],
        **extra,
    }


def frame(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


def read(server: RawServer, *pieces: bytes) -> list[lunar.ChatCompletionChunk]:
    server.script(sse_reply(pieces))
    with Lunar(api_key="k", base_url=server.url, max_retries=0) as client:
        return list(client.chat.completions.create(model="m", messages=HELLO, stream=True))


def texts(chunks: list[lunar.ChatCompletionChunk]) -> list[str | None]:
    return [c.choices[0].delta.content for c in chunks]


def test_a_character_split_across_network_chunks_arrives_whole(raw: RawServer) -> None:
    data = frame(chunk("naïve 日本 😀"))
    cut = data.index("😀".encode()) + 2  # inside the emoji's four bytes
    assert texts(read(raw, data[:cut], data[cut:], DONE)) == ["naïve 日本 😀"]


def test_every_byte_in_its_own_network_chunk(raw: RawServer) -> None:
    body = frame(chunk("é€")) + frame(chunk("😀")) + DONE
    assert texts(read(raw, *(body[i : i + 1] for i in range(len(body))))) == ["é€", "😀"]


def test_multi_line_data_events_comments_and_other_fields(raw: RawServer) -> None:
    multi = b'data: {"id": "c1", "object": "chat.completion.chunk",\ndata: "choices": [{"index": 0, "delta": {"content": "two lines"}}]}\n\n'
    body = [
        b": keep-alive\n\n",
        b"retry: 3000\r\nid: 1\r\n" + frame(chunk("crlf")).replace(b"\n", b"\r\n"),
        multi,
        b"event: ping\ndata: {}\n\n",  # another kind of event: skipped
        b"event: message\n" + frame(chunk("named")),
        DONE,
    ]
    assert texts(read(raw, *body)) == ["crlf", "two lines", "named"]


def test_nothing_after_done_is_read(raw: RawServer) -> None:
    assert texts(read(raw, frame(chunk("a")), DONE, b"data: not json\n\n")) == ["a"]


def test_a_stream_without_done_ends_at_the_end_of_the_body(raw: RawServer) -> None:
    assert texts(read(raw, frame(chunk("a")), frame(chunk("b")))) == ["a", "b"]


def test_a_last_event_without_its_blank_line_still_counts(raw: RawServer) -> None:
    assert texts(read(raw, frame(chunk("a")), frame(chunk("b"))[:-1])) == ["a", "b"]


def test_a_body_that_ends_inside_an_event_is_a_connection_error(raw: RawServer) -> None:
    raw.script(sse_reply([frame(chunk("a")), frame(chunk("b"))[:20]]))
    got = []
    with (
        Lunar(api_key="k", base_url=raw.url) as client,
        pytest.raises(lunar.APIConnectionError, match="inside a line"),
    ):
        for c in client.chat.completions.create(model="m", messages=HELLO, stream=True):
            got.append(c)
    assert texts(got) == ["a"] and len(raw.requests) == 1


def test_unknown_fields_are_kept_on_chunks(raw: RawServer) -> None:
    (c,) = read(
        raw,
        frame(
            chunk(
                "a",
                x_custom={"n": 1},
                usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "extra_ms": 4},
            )
        ),
        DONE,
    )
    assert c.model_extra == {"x_custom": {"n": 1}}
    assert c.usage is not None and c.usage.completion_tokens == 2 and c.usage.model_extra == {"extra_ms": 4}
    assert c.routing is None and c.usage.total_cost_usd is None


def test_an_error_event_raises_after_the_chunks_before_it(raw: RawServer) -> None:
    error = {
        "error": {
            "message": "the provider failed mid-stream",
            "type": "upstream_error",
            "param": None,
            "code": "upstream_error",
        }
    }
    raw.script(sse_reply([frame(chunk("a")), frame(error)]))
    got = []
    with Lunar(api_key="k", base_url=raw.url) as client:
        stream = client.chat.completions.create(model="m", messages=HELLO, stream=True)
        with pytest.raises(lunar.APIStreamError) as info:
            for c in stream:
                got.append(c)
    assert texts(got) == ["a"]
    err = info.value
    assert (err.message, err.code, err.type) == (
        "the provider failed mid-stream",
        "upstream_error",
        "upstream_error",
    )
    assert err.body == error["error"] and err.response.status_code == 200
    assert stream.response.is_closed


def test_an_error_event_naming_a_status_raises_that_statuses_error(raw: RawServer) -> None:
    error = {"error": {"message": "slow down", "code": 429, "retry_after": 2}}
    raw.script(sse_reply([frame(error)]))
    with Lunar(api_key="k", base_url=raw.url) as client, pytest.raises(lunar.RateLimitError) as info:
        list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    assert info.value.status_code == 429 and info.value.retry_after == 2 and info.value.message == "slow down"


@pytest.mark.parametrize(
    "event",
    [
        b"event: error\ndata: overloaded\n\n",
        b'event: error\ndata: {"message": "overloaded"}\n\n',
        b'data: {"error": "overloaded"}\n\n',
    ],
    ids=["named-text", "named-json", "error-string"],
)
def test_other_error_event_shapes(raw: RawServer, event: bytes) -> None:
    raw.script(sse_reply([event]))
    with Lunar(api_key="k", base_url=raw.url) as client, pytest.raises(lunar.APIStreamError) as info:
        list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    assert info.value.message == "overloaded"


def test_an_event_that_is_not_json_or_not_a_chunk_is_a_validation_error(raw: RawServer) -> None:
    for body in (b"data: {not json\n\n", b'data: {"choices": []}\n\n'):
        raw.script(sse_reply([body]))
        with Lunar(api_key="k", base_url=raw.url) as client, pytest.raises(lunar.APIResponseValidationError):
            list(client.chat.completions.create(model="m", messages=HELLO, stream=True))


def test_leaving_a_stream_early_closes_it(raw: RawServer) -> None:
    raw.script(sse_reply([frame(chunk("a")), frame(chunk("b")), DONE]))
    with Lunar(api_key="k", base_url=raw.url) as client:
        with client.chat.completions.create(model="m", messages=HELLO, stream=True) as stream:
            first = next(stream)
        assert texts([first]) == ["a"] and stream.response.is_closed
        assert list(stream) == []
        stream.close()  # again: harmless


def test_a_stream_outlives_a_client_nobody_holds(raw: RawServer) -> None:
    proceed = threading.Event()
    raw.script(paused([frame(chunk("a"))], [frame(chunk("b")), DONE], proceed))
    stream = Lunar(api_key="k", base_url=raw.url).chat.completions.create(
        model="m", messages=HELLO, stream=True
    )
    assert texts([next(stream)]) == ["a"]
    gc.collect()  # the client is only referenced by its stream
    proceed.set()
    assert texts(list(stream)) == ["b"]


def test_a_non_streamed_answer_that_is_not_json_is_a_validation_error(raw: RawServer) -> None:
    def html(conn: Any, request: Any) -> None:
        body = b"<html>proxy</html>"
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )

    raw.script(html)
    with (
        Lunar(api_key="k", base_url=raw.url) as client,
        pytest.raises(lunar.APIResponseValidationError) as info,
    ):
        client.models.list()
    assert info.value.status_code == 200 and "not JSON" in info.value.message


def test_async_streams_read_the_same(raw: RawServer) -> None:
    data = frame(chunk("日本"))
    cut = data.index("本".encode()) + 1
    error = {"error": {"message": "boom", "code": "upstream_error"}}
    raw.script(
        sse_reply(
            [
                b": hi\n\n",
                data[:cut],
                data[cut:],
                frame(chunk("x", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})),
                DONE,
            ]
        ),
        sse_reply([frame(chunk("a")), frame(error)]),
        sse_reply([frame(chunk("a")), frame(chunk("b"))[:10]]),
    )

    async def main() -> None:
        async with AsyncLunar(api_key="k", base_url=raw.url) as client:
            stream = await client.chat.completions.create(model="m", messages=HELLO, stream=True)
            got = [c async for c in stream]
            assert texts(got) == ["日本", "x"] and got[-1].usage is not None
            assert stream.response.is_closed
            with pytest.raises(lunar.APIStreamError, match="boom"):
                async for _ in await client.chat.completions.create(model="m", messages=HELLO, stream=True):
                    pass
            stream = await client.chat.completions.create(model="m", messages=HELLO, stream=True)
            async with stream:
                assert texts([await stream.__anext__()]) == ["a"]
                with pytest.raises(lunar.APIConnectionError):
                    await stream.__anext__()

    asyncio.run(main())

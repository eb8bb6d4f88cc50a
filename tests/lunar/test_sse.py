"""The SSE decoder on its own: the same events however the bytes are cut, and the event-stream rules."""

from __future__ import annotations

import pytest

from lunar import _sse

# `from lunar import _sse`, not `from lunar._sse import ...`: ruff's isort takes a dotted name under
# the folder lunar/ for a third-party module.
SSEDecoder, ServerSentEvent, TruncatedStream = _sse.SSEDecoder, _sse.ServerSentEvent, _sse.TruncatedStream

STREAM = (
    "\ufeff: a comment\r\n"
    'data: {"text": "é€😀 ok"}\r\n'
    "\r\n"
    "event: message\n"
    "id: 7\n"
    "retry: 1500\n"
    "data: line one\n"
    "data:line two\n"
    "data\n"
    "\n"
    "event: ping\r"
    "\r"
    "data: 中文\r"
    "\r"
    "data: [DONE]\n"
    "\n"
).encode()

EXPECTED = [
    ServerSentEvent('{"text": "é€😀 ok"}'),
    ServerSentEvent("line one\nline two\n", "message", "7", 1500),
    ServerSentEvent("中文", None, "7", 1500),  # the ping had no data: not dispatched
    ServerSentEvent("[DONE]", None, "7", 1500),
]


def decode(pieces: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [e for piece in pieces for e in decoder.feed(piece)]
    return events + decoder.end()


def test_events_follow_the_event_stream_rules() -> None:
    assert decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_any_cut_of_the_bytes_gives_the_same_events(size: int) -> None:
    """Multi-byte characters, "\\r\\n" pairs and the BOM split across pieces come out whole."""
    pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert decode(pieces) == EXPECTED


def test_every_single_cut_point_gives_the_same_events() -> None:
    for cut in range(len(STREAM) + 1):
        assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_a_carriage_return_at_the_end_of_a_piece_waits_for_a_line_feed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\n\r") == []
    assert decoder.feed(b"\ndata: b\n\n") == [ServerSentEvent("a"), ServerSentEvent("b")]


def test_an_event_left_without_its_blank_line_is_dispatched_at_the_end() -> None:
    assert decode([b"data: [DONE]\n"]) == [ServerSentEvent("[DONE]")]
    assert decode([b"data: x\r"]) == [ServerSentEvent("x")]


def test_a_body_ending_inside_a_line_is_truncated() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"id": "1"}\n\ndata: {"id"') == [ServerSentEvent('{"id": "1"}')]
    with pytest.raises(TruncatedStream, match="inside a line"):
        decoder.end()


def test_a_body_ending_inside_a_character_is_truncated() -> None:
    decoder = SSEDecoder()
    decoder.feed("data: é".encode()[:-1])
    with pytest.raises(TruncatedStream):
        decoder.end()


def test_invalid_utf8_becomes_the_replacement_character() -> None:
    assert decode([b"data: a\xffb\n\n"]) == [ServerSentEvent("a\ufffdb")]


def test_ids_with_nul_and_retries_that_are_not_numbers_are_ignored() -> None:
    events = decode([b"id: 1\nretry: soon\ndata: a\n\nid: x\x00y\nretry: 5\ndata: b\n\n"])
    assert events == [ServerSentEvent("a", None, "1", None), ServerSentEvent("b", None, "1", 5)]


def test_unknown_fields_and_comments_are_ignored_and_only_one_space_is_stripped() -> None:
    events = decode([b": keep-alive\nfoo: bar\ndata:  two spaces\n\n"])
    assert events == [ServerSentEvent(" two spaces")]


def test_a_long_line_in_many_pieces() -> None:
    line = b"data: " + b"x" * 100_000 + b"\n\n"
    events = decode([line[i : i + 10] for i in range(0, len(line), 10)])
    assert events == [ServerSentEvent("x" * 100_000)]

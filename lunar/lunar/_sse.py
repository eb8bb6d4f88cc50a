"""Server-sent events from bytes, as the WHATWG "event stream" rules read them; no I/O here.

`SSEDecoder.feed(bytes)` returns the events completed by those bytes, `SSEDecoder.end()` those left
at the end of the body. Bytes arrive in arbitrary pieces: a UTF-8 character or a `\\r\\n` split
across two pieces is put back together (an incremental decoder; invalid bytes become U+FFFD).
Lines end in `\\n`, `\\r\\n` or `\\r`; a line starting with `:` is a comment; `data:` lines of one event
join with `\\n`; `event:`, `id:` and `retry:` are kept; a blank line ends an event, and an event
without data is not dispatched.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "TruncatedStream"]


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class TruncatedStream(Exception):
    """The body ended in the middle of a line."""


class SSEDecoder:
    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []  # text after the last line break
        self._started = False
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events that `chunk` completes (often none, sometimes several)."""
        text = self._text.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if "\n" not in text and "\r" not in text:
            self._pending.append(text)  # a long line in many pieces is joined once, at its end
            return []
        return self._lines("".join(self._pending) + text, final=False)

    def end(self) -> list[ServerSentEvent]:
        """The events left when the body ends. TruncatedStream when it ends inside a line; an event
        whose last line ended but whose blank line never came is dispatched."""
        text = "".join(self._pending) + self._text.decode(b"", final=True)
        self._pending = []
        if text and not text.endswith("\r"):
            raise TruncatedStream(f"the stream ended inside a line: {text[:80]!r}")
        events = self._lines(text, final=True)
        event = self._dispatch()
        return events + ([event] if event is not None else [])

    def _lines(self, text: str, *, final: bool) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        start, n = 0, len(text)
        cr, lf = text.find("\r"), text.find("\n")
        while start < n:
            if cr != -1 and cr < start:
                cr = text.find("\r", start)
            if lf != -1 and lf < start:
                lf = text.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                line, start = text[start:lf], lf + 1
            elif cr == n - 1 and not final:
                break  # a "\r" at the end may be the first half of "\r\n": wait for the next byte
            else:
                line = text[start:cr]
                start = cr + 2 if lf == cr + 1 else cr + 1
            event = self._line(line)
            if event is not None:
                events.append(event)
        self._pending = [text[start:]] if start < n else []
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value or None
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        # any other field is ignored, as the rules say
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], None
        if not data:
            return None
        return ServerSentEvent("\n".join(data), event, self._id, self._retry)

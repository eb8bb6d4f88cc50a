"""A fake OpenAI-compatible upstream provider for the gateway's tests, with scriptable faults.

It speaks OpenAI's wire format over real HTTP (aiohttp on asyncio), so that the gateway, litellm and
the `openai` client meet it exactly as they would meet a provider. It is the only stand-in for a
provider in our tests.

Run it as a subprocess: `python tests/service/fake_upstream.py --name A --port 0` binds 127.0.0.1
(port 0 picks a free one), prints exactly one line `READY <port>` and serves until it is killed (or,
with `--exit-with-stdin`, until its stdin closes). Tests use the `FakeUpstream` client at the bottom
of this module, which does all of that.

Wire endpoints, in OpenAI's shapes:
    POST /v1/chat/completions   chat.completion, or chat.completion.chunk frames when `stream`
    POST /v1/completions        text_completion, or text_completion frames when `stream`
    GET  /v1/models             a list object

The default reply is `Hello from <name>: <first 60 characters of the last user message or prompt>`,
streamed one piece per space-separated word ("Hello", " from", ...). prompt_tokens is the number of
whitespace-separated words in the messages' text (plus 3 per message); completion_tokens is the
number of pieces. `max_tokens` (or `max_completion_tokens`) cuts the reply, with finish_reason
"length".

Control endpoints:
    POST /_control/script     {"steps": [step, ...]}: append steps to a FIFO queue
    GET  /_control/requests   every completion request so far, in order (see `Upstream.log`)
    POST /_control/reset      clear the queue and the log
    POST /_control/release    let streams held by `hold` go on
    GET  /_control/health     {"ok": true}

Each completion request (chat or text) takes the first queued step whose `model` is its model or
absent; with none, it succeeds normally. Step keys, all optional (see `Step`):
    status, error, headers     an error reply: `status` (default 500) and body `error`. An `error`
                               object holding an "error" key is the whole body; otherwise its
                               fields override the default OpenAI error for the status. `headers`
                               are added to any reply, error or not.
    reset                      abort the TCP connection without any response
    headers_delay_ms           wait before sending anything
    delay_ms                   send the headers, then wait before the body (before the first frame
                               when streamed, unless first_chunk_delay_ms is given)
    first_chunk_delay_ms       streamed: headers at once, then wait before the first frame
    chunk_delay_ms             streamed: wait between frames
    drop_after_chunks: N       streamed: abort the connection after N data frames
    error_after_chunks: N      streamed: after N frames send `data: {"error": ...}` (the step's
                               `error`, if any) and close, without [DONE]
    malformed                  streamed: add an SSE comment `: keep-alive` and split one data frame
                               across two writes in the middle of a multi-byte UTF-8 character (in
                               the middle of the frame when the reply is all ASCII)
    no_done                    streamed: end without `data: [DONE]`
    hold                       streamed: before the drop or the error, wait for POST
                               /_control/release (so that a test can read the frames before it:
                               a reset can overtake frames the gateway has not read yet)
    content                    the reply text
    tool_call                  reply with a call of the first (or the chosen) tool, when tools
                               were given
    cached_tokens              report usage.prompt_tokens_details.cached_tokens
    model                      the step applies only to requests for this model
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import fcntl
import json
import re
import secrets
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import httpx
from aiohttp import web

JSON = dict[str, Any]
Kind = Literal["chat", "text"]

CREATED = 1_700_000_000
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo-instruct")
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
# Default error fields per status: (message, type, code), as OpenAI words them.
ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: (SERVER_ERROR, "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}
_SURROGATE = re.compile("[\ud800-\udfff]")


# --- JSON and text helpers -------------------------------------------------------------------------


def dumps(obj: Any) -> bytes:
    """Compact JSON in UTF-8 with characters as they are; a lone surrogate stays a \\u escape."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def pieces(text: str) -> list[str]:
    """Split a reply on spaces, keeping each space with the word after it."""
    return [piece for piece in re.split(r"(?= )", text) if piece]


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return " ".join(t for t in texts if isinstance(t, str))
    return ""


def error_body(status: int, error: JSON | None = None) -> JSON:
    """An OpenAI error body for `status`; `error` is the whole body or overrides its fields."""
    if error is not None and "error" in error:
        return error
    message, kind, code = ERRORS.get(status, (SERVER_ERROR, "server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code, **(error or {})}}


# --- Steps -----------------------------------------------------------------------------------------

_STEP_TYPES: dict[str, tuple[type, ...]] = {
    "status": (int,),
    "error": (dict,),
    "headers": (dict,),
    "reset": (bool,),
    "headers_delay_ms": (int, float),
    "delay_ms": (int, float),
    "first_chunk_delay_ms": (int, float),
    "chunk_delay_ms": (int, float),
    "drop_after_chunks": (int,),
    "error_after_chunks": (int,),
    "malformed": (bool,),
    "no_done": (bool,),
    "hold": (bool,),
    "content": (str,),
    "tool_call": (bool,),
    "cached_tokens": (int,),
    "model": (str,),
}


@dataclass(frozen=True)
class Step:
    """One scripted behaviour for one completion request; the module docstring lists the keys."""

    status: int | None = None
    error: JSON | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    headers_delay_ms: float = 0
    delay_ms: float = 0
    first_chunk_delay_ms: float | None = None
    chunk_delay_ms: float = 0
    drop_after_chunks: int | None = None
    error_after_chunks: int | None = None
    malformed: bool = False
    no_done: bool = False
    hold: bool = False
    content: str | None = None
    tool_call: bool = False
    cached_tokens: int | None = None
    model: str | None = None
    raw: JSON | None = None

    @classmethod
    def parse(cls, raw: Any) -> Step:
        """A step from its JSON object; ValueError names an unknown key or a value of the wrong type."""
        if not isinstance(raw, dict):
            raise ValueError(f"a step must be an object, not {raw!r}")
        for key, value in raw.items():
            if key not in _STEP_TYPES:
                raise ValueError(f"unknown step key {key!r}; known keys: {', '.join(_STEP_TYPES)}")
            numeric = _STEP_TYPES[key] != (bool,) and isinstance(value, bool)
            if numeric or not isinstance(value, _STEP_TYPES[key]):
                raise ValueError(f"step key {key!r} has a value of the wrong type: {value!r}")
        headers = {str(k): str(v) for k, v in raw.get("headers", {}).items()}
        return cls(**{**raw, "headers": headers, "raw": raw})

    @property
    def is_error(self) -> bool:
        """True when the step answers with an error status instead of a completion."""
        return self.status is not None or (self.error is not None and self.error_after_chunks is None)

    def error_body(self) -> JSON:
        """The body of this step's error reply or mid-stream error frame."""
        return error_body(self.status or 500, self.error)


# --- Replies ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What one completion answers: its pieces (text or tool-call arguments), end, and usage."""

    id: str
    model: str
    pieces: list[str]
    finish_reason: str
    usage: JSON
    tool: JSON | None = None  # {"id", "type", "function": {"name"}} when the reply is a tool call


def prompt_of(kind: Kind, body: JSON) -> tuple[int, str]:
    """The request's prompt_tokens and the text the default reply echoes."""
    if kind == "text":
        prompt = body.get("prompt", "")
        token_ids = isinstance(prompt, list) and all(isinstance(t, int) for t in prompt)
        prompts = [prompt] if token_ids or not isinstance(prompt, list) else prompt
        tokens = sum(
            len(p.split()) if isinstance(p, str) else len(p) for p in prompts if isinstance(p, str | list)
        )
        texts = [p for p in prompts if isinstance(p, str)]
        return tokens, texts[-1] if texts else ""
    messages = body["messages"]
    tokens = sum(len(content_text(m.get("content")).split()) + 3 for m in messages)
    users = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    return tokens, users[-1] if users else ""


def plan_reply(name: str, kind: Kind, body: JSON, step: Step) -> Reply:
    """The reply to a valid completion request under `step`."""
    prompt_tokens, echo = prompt_of(kind, body)
    tool = tool_call(body, echo) if kind == "chat" and step.tool_call else None
    if tool is not None:
        parts, finish = pieces(tool.pop("arguments")), "tool_calls"
    else:
        text = step.content if step.content is not None else f"Hello from {name}: {echo[:60]}"
        parts, finish = pieces(text), "stop"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(parts):
        parts, finish = parts[:limit], "length"
    usage: JSON = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(parts),
        "total_tokens": prompt_tokens + len(parts),
    }
    if step.cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": step.cached_tokens}
    prefix = "chatcmpl-" if kind == "chat" else "cmpl-"
    return Reply(prefix + secrets.token_hex(12), body["model"], parts, finish, usage, tool)


def tool_call(body: JSON, echo: str) -> JSON | None:
    """A call of the chosen (or first) function tool, with arguments sampled from its schema."""
    tools = body.get("tools")
    functions = [
        t["function"] for t in tools or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    if not functions:
        return None
    choice = body.get("tool_choice")
    chosen = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    function = next((f for f in functions if f.get("name") == chosen), functions[0])
    schema = function.get("parameters") or {}
    properties = schema.get("properties") or {}
    names = schema.get("required") or list(properties)
    arguments = {key: _sample(properties.get(key) or {}, echo) for key in names}
    return {
        "id": "call_" + secrets.token_hex(12),
        "type": "function",
        "function": {"name": function.get("name", "")},
        "arguments": json.dumps(arguments, ensure_ascii=False),
    }


def _sample(schema: JSON, echo: str) -> Any:
    """A plausible value for a JSON-schema property."""
    if schema.get("enum"):
        return schema["enum"][0]
    samples = {"string": echo[:60], "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    return samples.get(schema.get("type", "string"))


# --- Wire objects ----------------------------------------------------------------------------------


def completion_object(kind: Kind, reply: Reply) -> JSON:
    """The non-streamed `chat.completion` or `text_completion` object."""
    text = "".join(reply.pieces)
    if kind == "text":
        choice: JSON = {"text": text, "index": 0, "logprobs": None, "finish_reason": reply.finish_reason}
        return _envelope(reply, "text_completion", [choice]) | {"usage": reply.usage}
    message: JSON = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    if reply.tool is not None:
        call = {**reply.tool, "function": {**reply.tool["function"], "arguments": text}}
        message.update(content=None, tool_calls=[call])
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
    return _envelope(reply, "chat.completion", [choice]) | {"usage": reply.usage}


def chunk_objects(kind: Kind, reply: Reply, include_usage: bool) -> list[JSON]:
    """The streamed chunks, in order, ending with the usage chunk when `include_usage`."""
    if kind == "text":
        texts = [*reply.pieces, ""]
        ends: list[str | None] = [None] * len(reply.pieces) + [reply.finish_reason]
        choices = [
            {"text": t, "index": 0, "logprobs": None, "finish_reason": e}
            for t, e in zip(texts, ends, strict=True)
        ]
        chunks = [_envelope(reply, "text_completion", [c]) for c in choices]
    else:
        deltas = [_first_delta(reply)] + [_delta(reply, piece) for piece in reply.pieces] + [{}]
        ends = [None] * (len(deltas) - 1) + [reply.finish_reason]
        chunks = [
            _envelope(
                reply,
                "chat.completion.chunk",
                [{"index": 0, "delta": d, "logprobs": None, "finish_reason": e}],
            )
            for d, e in zip(deltas, ends, strict=True)
        ]
    if not include_usage:
        return chunks
    usage_chunk = _envelope(reply, chunks[0]["object"], []) | {"usage": reply.usage}
    return [chunk | {"usage": None} for chunk in chunks] + [usage_chunk]


def _envelope(reply: Reply, object_type: str, choices: list[JSON]) -> JSON:
    """The fields every completion object and chunk carries."""
    return {
        "id": reply.id,
        "object": object_type,
        "created": CREATED,
        "model": reply.model,
        "system_fingerprint": "fp_fake",
        "choices": choices,
    }


def _first_delta(reply: Reply) -> JSON:
    """The first chat delta: the role, and the tool call's id and name when there is one."""
    if reply.tool is None:
        return {"role": "assistant", "content": "", "refusal": None}
    call = {"index": 0, **reply.tool, "function": {**reply.tool["function"], "arguments": ""}}
    return {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}


def _delta(reply: Reply, piece: str) -> JSON:
    """A chat delta carrying one piece of text or of tool-call arguments."""
    if reply.tool is None:
        return {"content": piece}
    return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


def sse(obj: Any) -> bytes:
    """One server-sent event frame carrying `obj` as JSON."""
    return b"data: " + dumps(obj) + b"\n\n"


def split_point(frames: list[bytes]) -> tuple[int, int]:
    """Which frame to split and where: inside the first multi-byte character, else mid-frame."""
    for index, frame in enumerate(frames):
        lead = next((i for i, byte in enumerate(frame) if byte >= 0xC0), None)
        if lead is not None:
            return index, lead + 1
    index = min(1, len(frames) - 1)
    return index, len(frames[index]) // 2


def invalid(kind: Kind, body: Any) -> str | None:
    """Why OpenAI would reject this completion body with a 400, or None."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "You must provide a model parameter."
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            return "'messages' must be a non-empty array of message objects."
    if body.get("stream_options") is not None and not body.get("stream"):
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    return None


# --- The server ------------------------------------------------------------------------------------


class Aborted(ConnectionResetError):
    """Raised after the server aborts a connection on purpose (aiohttp ignores ConnectionErrors)."""


async def sleep_ms(ms: float | None) -> None:
    """Wait `ms` milliseconds, if any."""
    if ms:
        await asyncio.sleep(ms / 1000)


class Upstream:
    """The server: its name, the queue of scripted steps, and the log of completion requests.

    Each log entry is `{"path", "model", "body", "headers", "stream", "disconnected", "finished",
    "step", "peer"}` (`peer`: the client's "host:port", one per TCP connection): recorded when the request arrives and updated as the response proceeds. `disconnected`
    turns true when the client goes away before the response is complete; `finished` when the whole
    response was written; `step` is the scripted step applied (or null).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps: list[Step] = []
        self.log: list[JSON] = []
        self.released = asyncio.Event()

    def app(self) -> web.Application:
        """The aiohttp application serving the wire and control endpoints."""
        app = web.Application(client_max_size=64 * 2**20)  # scripts may carry replies of megabytes
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.text)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/_control/script", self.script)
        app.router.add_get("/_control/requests", self.requests)
        app.router.add_post("/_control/reset", self.reset)
        app.router.add_post("/_control/release", self.release)
        app.router.add_get("/_control/health", self.health)
        return app

    def take_step(self, model: str) -> Step:
        """Remove and return the first step for `model` (or for any model); a plain step if none."""
        for index, step in enumerate(self.steps):
            if step.model in (None, model):
                return self.steps.pop(index)
        return Step()

    # Wire endpoints.

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        return await self.complete(request, "chat")

    async def text(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/completions."""
        return await self.complete(request, "text")

    async def models(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/models: the default models and every model requested so far."""
        seen = [e["model"] for e in self.log if isinstance(e["model"], str)]
        ids = list(dict.fromkeys([*DEFAULT_MODELS, *seen]))
        data = [{"id": i, "object": "model", "created": CREATED, "owned_by": self.name} for i in ids]
        return json_response({"object": "list", "data": data})

    async def complete(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        """Log a completion request, take its step and answer it, noting a client going away."""
        raw = await request.read()
        headers: dict[str, str] = {}
        for key, value in request.headers.items():
            name = key.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        entry: JSON = {
            "path": request.path,
            "model": None,
            "body": None,
            "headers": headers,
            "stream": False,
            "disconnected": False,
            "finished": False,
            "step": None,
            "peer": _peer(request),
        }
        self.log.append(entry)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        problem = invalid(kind, body)
        try:
            if problem is not None:
                return await send_json(request, entry, 400, error_body(400, {"message": problem}))
            step = self.take_step(body["model"])
            entry.update(model=body["model"], body=body, stream=body.get("stream") is True, step=step.raw)
            return await self.answer(request, entry, kind, body, step)
        except Aborted:
            raise
        except (asyncio.CancelledError, ConnectionError):
            entry["disconnected"] = not entry["finished"]
            raise

    async def answer(
        self, request: web.Request, entry: JSON, kind: Kind, body: JSON, step: Step
    ) -> web.StreamResponse:
        """Apply `step` to a valid request: a fault, an error, or a completion (streamed or not)."""
        await sleep_ms(step.headers_delay_ms)
        if step.reset:
            abort(request)
        if step.is_error:
            return await send_json(request, entry, step.status or 500, step.error_body(), step.headers)
        reply = plan_reply(self.name, kind, body, step)
        if not entry["stream"]:
            obj = completion_object(kind, reply)
            return await send_json(request, entry, 200, obj, step.headers, step.delay_ms)
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        frames = [sse(chunk) for chunk in chunk_objects(kind, reply, include_usage)]
        if not step.no_done:
            frames.append(b"data: [DONE]\n\n")
        return await stream(request, entry, frames, step, self.released)

    # Control endpoints.

    async def script(self, request: web.Request) -> web.StreamResponse:
        """POST /_control/script: queue steps, or 400 naming what is wrong with one."""
        try:
            payload = await request.json()
            raw_steps = payload["steps"] if isinstance(payload, dict) else None
            if not isinstance(raw_steps, list):
                raise ValueError('the body must be {"steps": [step, ...]}')
            steps = [Step.parse(raw) for raw in raw_steps]
        except (ValueError, KeyError) as exc:
            return json_response(error_body(400, {"message": str(exc)}), status=400)
        self.steps.extend(steps)
        return json_response({"queued": len(self.steps)})

    async def requests(self, request: web.Request) -> web.StreamResponse:
        """GET /_control/requests: the log of completion requests."""
        return json_response(self.log)

    async def reset(self, request: web.Request) -> web.StreamResponse:
        """POST /_control/reset: forget the queued steps, the log and any release."""
        self.steps.clear()
        self.log.clear()
        self.released.clear()
        return json_response({"ok": True})

    async def release(self, request: web.Request) -> web.StreamResponse:
        """POST /_control/release: held streams go on to their fault (once: the next hold waits again)."""
        self.released.set()
        return json_response({"ok": True})

    async def health(self, request: web.Request) -> web.StreamResponse:
        """GET /_control/health."""
        return json_response({"ok": True})


def json_response(obj: Any, status: int = 200) -> web.Response:
    """A JSON response in UTF-8."""
    return web.Response(body=dumps(obj), status=status, content_type="application/json")


def abort(request: web.Request) -> None:
    """Close the connection abruptly, without a response."""
    if request.transport is not None:
        request.transport.abort()
    raise Aborted("connection aborted by the script")


async def delivered(request: web.Request, limit_s: float = 2.0) -> None:
    """Wait (at most `limit_s`) until what was written has left this process and the peer's kernel
    has acknowledged it: a reset that overtakes frames still queued here would throw them away, and
    the gateway would see a connection that failed before any frame instead of a broken stream."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if transport is None or sock is None:
        return
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        queued = array.array("i", [0])
        fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued)  # unsent or unacknowledged bytes
        if transport.get_write_buffer_size() == 0 and queued[0] == 0:
            return
        await asyncio.sleep(0.001)  # polling a bounded loop


def start_response(status: int, content_type: str, headers: dict[str, str]) -> web.StreamResponse:
    """A response with OpenAI's request id header and the step's extra headers."""
    response = web.StreamResponse(status=status)
    response.content_type = content_type
    response.headers["x-request-id"] = "req_" + secrets.token_hex(16)
    response.headers.update(headers)
    return response


async def send_json(
    request: web.Request,
    entry: JSON,
    status: int,
    obj: JSON,
    headers: dict[str, str] | None = None,
    delay_ms: float = 0,
) -> web.StreamResponse:
    """Send a JSON body: headers first, then after `delay_ms` the body."""
    data = dumps(obj)
    response = start_response(status, "application/json", headers or {})
    response.content_length = len(data)
    await response.prepare(request)
    await sleep_ms(delay_ms)
    await response.write(data)
    await response.write_eof()
    entry["finished"] = True
    return response


async def stream(
    request: web.Request, entry: JSON, frames: list[bytes], step: Step, released: asyncio.Event
) -> web.StreamResponse:
    """Send SSE frames one write each, with the step's delays and faults."""
    response = start_response(200, "text/event-stream", step.headers)
    response.charset = "utf-8"
    response.headers["cache-control"] = "no-cache"
    if step.error_after_chunks is not None:
        response.force_close()
    await response.prepare(request)
    await sleep_ms(step.delay_ms if step.first_chunk_delay_ms is None else step.first_chunk_delay_ms)
    split_at = split_point(frames) if step.malformed else None
    for index in range(len(frames) + 1):
        if step.hold and index in (step.drop_after_chunks, step.error_after_chunks):
            await released.wait()
            released.clear()
        if index == step.drop_after_chunks:
            await delivered(request)
            abort(request)
        if index == step.error_after_chunks:
            await response.write(sse(step.error_body()))
            break
        if index == len(frames):
            break
        if index:
            await sleep_ms(step.chunk_delay_ms)
        if split_at is not None and index == split_at[0]:
            await response.write(b": keep-alive\n\n")
            await response.write(frames[index][: split_at[1]])
            await asyncio.sleep(0.01)  # let the halves leave as separate TCP segments
            await response.write(frames[index][split_at[1] :])
        else:
            await response.write(frames[index])
    await response.write_eof()
    entry["finished"] = True
    return response


async def serve(name: str, port: int, exit_with_stdin: bool) -> None:
    """Serve on 127.0.0.1:`port`, print `READY <port>`, and run until cancelled or stdin closes."""
    runner = web.AppRunner(
        Upstream(name).app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(f"READY {runner.addresses[0][1]}", flush=True)
        done = asyncio.Event()
        if exit_with_stdin:
            loop = asyncio.get_running_loop()

            def watch() -> None:
                sys.stdin.buffer.read()
                loop.call_soon_threadsafe(done.set)

            threading.Thread(target=watch, daemon=True).start()
        await done.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """The command line: `--name A --port 0 [--exit-with-stdin]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the name the default reply carries")
    parser.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when stdin closes")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.name, args.port, args.exit_with_stdin))


# --- The client tests use --------------------------------------------------------------------------


class FakeUpstream:
    """A fake upstream running as a subprocess, and the calls that script and inspect it.

    `url` is what an OpenAI client's base_url (or litellm's api_base) should be. Use it as a context
    manager, or call `stop()`.
    """

    def __init__(self, name: str, port: int, process: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"
        self._process = process
        self._stderr = stderr
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0, trust_env=False)

    @classmethod
    def start(cls, name: str, *, port: int = 0, timeout: float = 15.0) -> FakeUpstream:
        """Start a server named `name`; RuntimeError (with its stderr) if it is not ready in time."""
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        command = [sys.executable, str(Path(__file__).resolve()), "--name", name, "--port", str(port)]
        process = subprocess.Popen(
            [*command, "--exit-with-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
        line = read_line(process, timeout)
        ready = re.fullmatch(rb"READY (\d+)\r?\n", line)
        if ready is None:
            end(process)
            stderr.seek(0)
            detail = stderr.read().decode("utf-8", "replace")
            stderr.close()
            raise RuntimeError(
                f"fake upstream {name!r} did not print READY within {timeout}s (got {line!r}); stderr:\n{detail}"
            )
        return cls(name, int(ready[1]), process, stderr)

    def script(self, *steps: JSON) -> None:
        """Queue steps (see the module docstring for their keys)."""
        self._call("POST", "/_control/script", {"steps": list(steps)})

    def requests(self) -> list[JSON]:
        """Every completion request received so far, in order."""
        result: list[JSON] = self._call("GET", "/_control/requests")
        return result

    def reset(self) -> None:
        """Clear the queued steps and the request log."""
        self._call("POST", "/_control/reset")

    def release(self) -> None:
        """Let a stream held by a `hold` step go on to its fault."""
        self._call("POST", "/_control/release")

    def wait_for(self, predicate: Callable[[list[JSON]], bool], timeout: float = 5.0) -> list[JSON]:
        """Poll the request log until `predicate` holds and return it; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.requests()
            if predicate(entries):
                return entries
            if time.monotonic() >= deadline:
                state = json.dumps(entries, indent=1, ensure_ascii=False)
                raise AssertionError(f"condition not met within {timeout}s; requests:\n{state}")
            time.sleep(0.02)

    async def wait_for_async(
        self, predicate: Callable[[list[JSON]], bool], timeout: float = 5.0
    ) -> list[JSON]:
        """`wait_for` for async tests: polls in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    def stop(self) -> None:
        """Stop the server and release its pipes."""
        self._http.close()
        end(self._process)
        self._stderr.close()

    def __enter__(self) -> FakeUpstream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, method: str, path: str, body: JSON | None = None) -> Any:
        """One control call; RuntimeError with the server's answer if it fails."""
        response = self._http.request(method, path, json=body)
        if response.is_error:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json()


def read_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The first line `process` prints, or b"" (after killing it) if none comes within `timeout`."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        process.kill()
        reader.join()
    return lines[0] if lines else b""


def end(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server process (kill it if it lingers), wait for it, and close its pipes."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


def _peer(request: web.Request) -> str | None:
    info = request.transport.get_extra_info("peername") if request.transport else None
    return f"{info[0]}:{info[1]}" if info else None


if __name__ == "__main__":
    main()

"""The gateway's logs: one JSON object (or text line) per record, the request id on every line logged
while a request is handled, one access line per request, and secrets redacted from every line.

    configure("info", "json")     # at app start, and in `pureai serve` before uvicorn; idempotent
    adopt("LiteLLM")              # a library that installs its own handler: through ours instead
    begin(request_id)             # the middleware, for the request's lifetime (a context variable)
    note(model=..., provider=...) # the pipeline: what the access line reports

JSON fields: `ts`, `level`, `logger`, `message`, `request_id`; the access line (logger
`pureai.access`) adds `method`, `path` (never the query string), `status`, `latency_ms`, and what
the pipeline noted: `ttft_ms`, `model`, `provider`, `key_id`, `tenant`; a shadow-router line (logger
`pureai.shadow`) adds `version`, `selected_model`, `shadow_version`, `shadow_selected_model`,
`agree`; a record with an exception adds `exc`. Every string of the access line went through
`clip`: at most ACCESS_CHARS characters, control characters escaped (a client's 1 MB model name or
a path holding a newline cannot make a 1 MB line, nor a second one).

Redaction is the second defence, applied to every string a line carries (message, fields,
traceback): full API keys (`pk-<id>-<secret>` keeps its id), `sk-`-style provider keys,
`Bearer ...`, `key=`/`token=`/... query parameters, header and field values named like keys, and
passwords in URLs. The first defence is that nothing here logs bodies, headers or query strings.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "ACCESS_CHARS",
    "ACCESS_FIELDS",
    "SHADOW_FIELDS",
    "RequestInfo",
    "adopt",
    "begin",
    "clip",
    "configure",
    "current",
    "install",
    "note",
    "redact",
]

ACCESS_FIELDS = ("method", "path", "status", "latency_ms", "ttft_ms", "model", "provider", "key_id", "tenant")
SHADOW_FIELDS = ("version", "selected_model", "shadow_version", "shadow_selected_model", "agree")
"""The fields of a `pureai.shadow` line: the decisions of the current router and of the shadow."""
ACCESS_CHARS = 300
"""The longest string an access line field holds (`clip`), a path included."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clip(value: str, limit: int = ACCESS_CHARS) -> str:
    """`value` as the access line shows it: control characters escaped (`\\n`, `\\x1b`), at most
    `limit` characters, the last one "…" when cut."""
    cut = len(value) > limit
    value = _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), value[:limit])
    if cut or len(value) > limit:
        value = value[: limit - 1] + "…"
    return value


_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # our keys: pk-<12 hex id>-<secret>; the id names the key and is not secret
    (re.compile(r"\b(pk-[0-9a-f]{12}-)[A-Za-z0-9_-]+"), r"\1***"),
    # provider keys of the sk-... family (OpenAI, Anthropic sk-ant-, Groq gsk_, xAI, ...)
    (re.compile(r"\b((?:sk|gsk|rk|xai|pk)[-_])(?![0-9a-f]{12}-\*)[A-Za-z0-9_-]{6,}"), r"\1***"),
    (re.compile(r"\b(Bearer)\s+[^\s\"',;]+", re.IGNORECASE), r"\1 ***"),
    (re.compile(r"\b(Basic)\s+[A-Za-z0-9+/]{8,}=*"), r"\1 ***"),
    # ?key=... &api_key=... in URLs (Gemini-style credentials in the query string)
    (
        re.compile(
            r"([?&;](?:key|api[-_]?key|apikey|token|access[-_]?token|secret|password|sig|signature)=)"
            r"[^&\s\"'#]+",
            re.IGNORECASE,
        ),
        r"\1***",
    ),
    # header or field values named like credentials: x-api-key: v, 'api_key': 'v', "authorization": "v"
    (
        re.compile(
            r"((?:x-api-key|api[-_]?key|authorization|password|secret|admin[-_]key)\\?[\"']?\s*[:=]\s*\\?[\"']?)"
            r"(?!\*\*\*|(?:Bearer|Basic)\s)[^\s\"',}&\\]+",
            re.IGNORECASE,
        ),
        r"\1***",
    ),
    # user:password@ in URLs (database and Redis URLs)
    (re.compile(r"(://[^:/@\s\"']+:)[^@/\s\"']+@"), r"\1***@"),
)


_hidden: re.Pattern[str] | None = None  # the exact secrets given to `configure` and `hide`
_hidden_values: set[str] = set()


def redact(text: str) -> str:
    """`text` with the configured secrets and anything shaped like a credential replaced by `***`."""
    if _hidden is not None:
        text = _hidden.sub("***", text)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


# -- the request a line belongs to ----------------------------------------------------------------


@dataclass
class RequestInfo:
    """What the access line of one request reports beside the method, path, status and latency."""

    request_id: str
    model: str | None = None
    provider: str | None = None
    key_id: str | None = None
    tenant: str | None = None
    ttft_ms: float | None = None


_request: ContextVar[RequestInfo | None] = ContextVar("pureai_request", default=None)


def begin(request_id: str) -> RequestInfo:
    """Make `request_id` the id of every line logged from this context (the request's task and the
    tasks and threads it starts) and return the record the pipeline fills in with `note`."""
    info = RequestInfo(request_id)
    _request.set(info)
    return info


def note(**fields: str | float | None) -> None:
    """Set fields of the current request's access line (outside a request: nothing)."""
    info = _request.get()
    if info is not None:
        for name, value in fields.items():
            setattr(info, name, value)


def current() -> RequestInfo | None:
    return _request.get()


# -- formatting ------------------------------------------------------------------------------------


class JSONFormatter(logging.Formatter):
    """One JSON object per line; every string in it redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": _request_id(record),
        }
        for name in ACCESS_FIELDS + SHADOW_FIELDS:
            if name in record.__dict__:
                value = record.__dict__[name]
                out[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = redact(record.exc_text)
        if record.stack_info:
            out["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger [request_id] message key=value ...`, redacted as a whole."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [self.formatTime(record), record.levelname, record.name]
        request_id = _request_id(record)
        if request_id:
            parts.append(f"[{request_id}]")
        parts.append(record.getMessage())
        parts += [f"{n}={record.__dict__[n]}" for n in ACCESS_FIELDS + SHADOW_FIELDS if n in record.__dict__]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return redact(line)


def _request_id(record: logging.LogRecord) -> str | None:
    """The id of the request being handled where the record was made (set by `begin`)."""
    explicit = record.__dict__.get("request_id")
    if explicit:
        return str(explicit)
    info = _request.get()
    return info.request_id if info else None


# -- configuration ---------------------------------------------------------------------------------

_OURS = "_pureai_handler"
MIN_SECRET = 6
"""Shorter values are not hidden by value (they would blank out ordinary words)."""
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)


def install(settings: Settings) -> None:
    """`configure` from the settings, hiding the admin and metrics keys, the Redis URL and the
    value of every environment variable named like a credential (`*_KEY`, `*_TOKEN`, `*_SECRET`,
    `*_PASSWORD`: the provider keys the catalogue names)."""
    hide = [
        value.get_secret_value()
        for value in (settings.admin_key, settings.metrics_key, settings.redis_url)
        if value is not None
    ]
    hide += [value for name, value in os.environ.items() if _SECRET_NAME.search(name)]
    configure(settings.log_level, settings.log_format, hide)


def configure(level: str = "info", fmt: str = "json", hide: Iterable[str] = ()) -> None:
    """Send every logger's records (ours, uvicorn's, the libraries') to one stderr handler in `fmt`
    ("json" or "text") at `level`, with the strings in `hide` redacted by value; uvicorn's access log
    is off (the gateway writes its own). Idempotent: a second call replaces the first."""
    global _hidden, _hidden_values
    numeric = _level(level)
    _hidden, _hidden_values = None, set()
    _hide(hide)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    adopt("uvicorn", "uvicorn.error", "uvicorn.asgi")
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    logging.captureWarnings(True)


def hide(values: Iterable[str]) -> None:
    """Redact these exact values too from now on (API keys given with registered deployments)."""
    _hide(values)


def _hide(values: Iterable[str]) -> None:
    global _hidden
    new = {v for v in values if len(v) >= MIN_SECRET} - _hidden_values
    if new:
        _hidden_values.update(new)
        ordered = sorted(_hidden_values, key=len, reverse=True)  # the longest match first
        _hidden = re.compile("|".join(map(re.escape, ordered)))


def adopt(*names: str, quiet: bool = False) -> None:
    """Route loggers that libraries set up with handlers of their own (uvicorn; litellm, which adds
    one at import) through the root handler: at the root's level, or with `quiet` at WARNING unless
    the root is at DEBUG. At DEBUG every logger is opened up, including those a library quietened
    (litellm sets httpx to WARNING)."""
    debug = logging.getLogger().level <= logging.DEBUG
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.WARNING if quiet and not debug else logging.NOTSET)
    if debug:
        for name in ("httpx", "httpcore", "openai", "aiohttp"):
            logging.getLogger(name).setLevel(logging.NOTSET)


def _level(level: str) -> int:
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    return value

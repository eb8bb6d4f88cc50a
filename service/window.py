"""Whether a prompt fits a model's context window, judged before any provider is called.

Tokens are estimated from characters, without a tokenizer. Two ratios, for two decisions:

- Refusing a request (400 `context_length_exceeded`, no upstream call) must never turn away a
  prompt that fits, so it counts 6 characters per token: few real texts run longer per token
  (indented code comes closest; prose is about 4, other scripts fewer), so the estimate stays at or
  below the true count. A prompt between that and the window goes upstream, and the provider's own
  refusal passes through with the same code.
- Routing leaves out the candidates the prompt would not surely fit at the usual 4 characters per
  token (`router._text.estimate_tokens`); only when none is left does it fall back to the 6.

The completion's own tokens (`max_tokens`) are not counted: the provider judges those. The router's
classifier input needs no check: its embedder cuts long text to head + tail (`router._embed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from models_registry import ModelEntry

from .errors import BadRequest

__all__ = ["fitting", "prompt_chars", "refuse_if_over"]

SURE_CHARS_PER_TOKEN = 6.0


def prompt_chars(payload: dict[str, Any]) -> int:
    """Characters of the text a request sends: its messages' text parts, or its prompt(s)."""
    if "messages" in payload:
        parts: list[str] = []
        for m in payload["messages"]:
            content = m.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text") or "") for p in content if isinstance(p, dict))
        return len("\n".join(parts))
    prompt = payload.get("prompt")
    return len(prompt if isinstance(prompt, str) else "\n".join(map(str, prompt or [])))


def least_tokens(chars: int) -> int:
    """A floor on the prompt's tokens (see the module docstring)."""
    return math.ceil(chars / SURE_CHARS_PER_TOKEN)


def refuse_if_over(entry: ModelEntry, chars: int, param: str) -> None:
    """BadRequest `context_length_exceeded` if the prompt surely exceeds `entry`'s context window."""
    tokens = least_tokens(chars)
    if tokens > entry.context_window:
        raise BadRequest(
            f"{entry.id} has a context window of {entry.context_window} tokens; the {param} is at "
            f"least {tokens} tokens ({chars} characters)",
            code="context_length_exceeded",
            param=param,
        )


def fitting(entries: Sequence[ModelEntry], chars: int) -> list[ModelEntry]:
    """The entries the prompt fits: surely if any, else possibly; BadRequest if none."""
    from router._text import estimate_tokens

    usual = [e for e in entries if estimate_tokens(chars) <= e.context_window]
    possible = usual or [e for e in entries if least_tokens(chars) <= e.context_window]
    if entries and not possible:
        widest = max(entries, key=lambda e: e.context_window)
        raise BadRequest(
            f"no candidate model fits the messages (at least {least_tokens(chars)} tokens): the widest "
            f"context window among them is {widest.id}'s, {widest.context_window} tokens",
            code="context_length_exceeded",
            param="messages",
        )
    return possible

"""What the router reads from a request.

The decision reads the **last user turn** (the text parts of its content): that is the request
the chosen model must answer. System and assistant turns do not feed the embedding, since an
application's fixed system prompt would otherwise dominate every decision; they still count
toward the input tokens that price each candidate. Long text is cut head + tail by the embedder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputError

Prompt = str | Sequence[Mapping[str, Any]]

ROLES = ("system", "user", "assistant", "tool", "developer")


def content_text(content: Any, where: str) -> str:
    """Text of a message `content`: a string, or a list of parts whose text parts are joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise InputError(f"{where}.content[{i}] must be an object with a 'type'", param=where)
            if part["type"] == "text":
                if not isinstance(part.get("text"), str):
                    raise InputError(f"{where}.content[{i}].text must be a string", param=where)
                texts.append(part["text"])
        return "\n".join(texts)
    raise InputError(f"{where}.content must be a string or a list of content parts", param=where)


def read_prompt(prompt: Prompt) -> tuple[str, int]:
    """(text the decision reads, characters of all turns for the input-token estimate)."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("prompt is empty", param="prompt")
        return prompt, len(prompt)
    if not isinstance(prompt, Sequence) or not prompt:
        raise InputError("messages must be a non-empty list of messages", param="messages")
    last_user, total = None, 0
    for i, msg in enumerate(prompt):
        where = f"messages[{i}]"
        if not isinstance(msg, Mapping):
            raise InputError(f"{where} must be an object", param=where)
        role = msg.get("role")
        if role not in ROLES:
            raise InputError(f"{where}.role must be one of {', '.join(ROLES)}", param=where)
        text = content_text(msg.get("content"), where)
        total += len(text)
        if role == "user":
            last_user = text
    if last_user is None or not last_user.strip():
        raise InputError(
            "messages have no user turn with text", param="messages", code="missing_user_message"
        )
    return last_user, total


def estimate_tokens(chars: int) -> int:
    """Input tokens from characters (the usual ~4 characters per token)."""
    return max(1, round(chars / 4))


SHAPE = ("length", "digits", "lines")
"""Surface features of the text the decision reads, beside its embedding: the embedding is of unit
length and of the first and last word pieces only, so it cannot tell a long prompt from a short one
or see how much arithmetic a prompt holds, which go with how hard it is. Each is a log count,
scaled to about [0, 0.5]."""


def shape(texts: Sequence[str], names: Sequence[str] = SHAPE) -> Any:
    """(len(texts), len(names)) float32 array of the named SHAPE features of each text."""
    import numpy as np

    def one(text: str, name: str) -> float:
        if name == "length":
            return float(np.log1p(len(text))) / 16
        if name == "digits":
            return float(np.log1p(sum(map(text.count, "0123456789")))) / 10
        if name == "lines":
            return float(np.log1p(text.count("\n"))) / 10
        raise ValueError(f"unknown prompt shape feature {name!r} (known: {', '.join(SHAPE)})")

    return np.array([[one(t, n) for n in names] for t in texts], dtype=np.float32).reshape(
        len(texts), len(names)
    )

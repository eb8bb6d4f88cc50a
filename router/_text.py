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
        raise InputError("messages have no user turn with text", param="messages")
    return last_user, total


def estimate_tokens(chars: int) -> int:
    """Input tokens from characters (the usual ~4 characters per token)."""
    return max(1, round(chars / 4))

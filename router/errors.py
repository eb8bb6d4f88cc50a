"""Errors raised by the router.

    RouterError                 base class; never raised itself
    ├── InputError              bad prompt/messages, cost_weight outside [0, 1], empty model list
    │                           (`param` names the argument, `code` the fault)
    ├── UnknownModelError       a model name that neither the catalogue nor the artifacts know
    └── ArtifactError           missing or corrupt artifacts (sha256 mismatch, bad format)

Every error carries a message meant for the person who called; the service maps them to the
OpenAI error shape in one place.
"""

from __future__ import annotations


class RouterError(Exception):
    """Base class of every error the router raises."""


class InputError(RouterError, ValueError):
    """A bad argument: `param` names it, `code` says what is wrong with it, for machines
    ("invalid_value", or "missing_user_message" when no user turn has text)."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class UnknownModelError(RouterError, ValueError):
    def __init__(self, model: str, known: list[str]) -> None:
        import difflib

        close = difflib.get_close_matches(model, known, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown model {model!r}{hint}")
        self.model = model


class ArtifactError(RouterError):
    """The artifacts directory is missing a file, or a file does not match its manifest."""

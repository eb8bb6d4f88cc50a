"""What the router reads from a request: a string, or chat messages (the last user turn decides)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from router import Decision, InputError, Router
from router._text import SHAPE, shape

QUESTION = "Janet's ducks lay 16 eggs per day. She eats three for breakfast. How many are left?"
MODELS = ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "Meta-Llama-3-8B-Instruct"]


def _same_reading(a: Decision, b: Decision) -> None:
    """The two decisions read the same text: same features, same predicted quality per model."""
    assert a.capabilities == b.capabilities
    assert a.complexity == b.complexity
    assert a.features == b.features
    assert {c.model: c.quality for c in a.candidates} == {c.model: c.quality for c in b.candidates}


def test_messages_route_on_the_last_user_turn(fixture_router: Router) -> None:
    messages = [
        {"role": "system", "content": "You are a poet. Answer every request with a sonnet about the sea."},
        {"role": "user", "content": "Write a Python function that reverses a linked list."},
        {"role": "assistant", "content": "def reverse(head): ..."},
        {"role": "user", "content": QUESTION},
    ]
    as_messages = fixture_router.select(messages, models=MODELS)
    as_text = fixture_router.select(QUESTION, models=MODELS)
    _same_reading(as_messages, as_text)
    assert as_messages.selected_model == as_text.selected_model


def test_every_turn_counts_toward_the_input_tokens(fixture_router: Router) -> None:
    """Costs learned from outcome data may not grow with the input (training decides); a model
    priced from the catalogue (codestral-latest here) pays for every input token."""
    system = "You are a careful assistant. " * 40
    messages = [{"role": "system", "content": system}, {"role": "user", "content": QUESTION}]
    pool = [*MODELS, "codestral-latest"]
    as_messages = fixture_router.select(messages, models=pool)
    as_text = fixture_router.select(QUESTION, models=pool)
    assert as_messages.input_tokens == round((len(system) + len(QUESTION)) / 4)
    assert as_text.input_tokens == round(len(QUESTION) / 4)
    before = {c.model: c.cost_usd for c in as_text.candidates}
    after = {c.model: c.cost_usd for c in as_messages.candidates}
    assert all(after[m] >= before[m] for m in pool)
    assert after["codestral-latest"] > before["codestral-latest"]


def test_a_different_system_prompt_does_not_change_the_reading(fixture_router: Router) -> None:
    a = fixture_router.select(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    )
    b = fixture_router.select(
        [{"role": "developer", "content": "Write Rust code only."}, {"role": "user", "content": QUESTION}]
    )
    _same_reading(a, b)


def test_content_parts_read_their_text_parts(fixture_router: Router) -> None:
    parts = [
        {"type": "text", "text": QUESTION},
        {"type": "image_url", "image_url": {"url": "https://example.com/ducks.png"}},
    ]
    as_parts = fixture_router.select([{"role": "user", "content": parts}], models=MODELS)
    as_text = fixture_router.select(QUESTION, models=MODELS)
    _same_reading(as_parts, as_text)


def test_several_text_parts_are_joined_by_newlines(fixture_router: Router) -> None:
    first, second = "Solve for x:", "3x + 7 = 22"
    parts = [{"type": "text", "text": first}, {"type": "text", "text": second}]
    as_parts = fixture_router.select([{"role": "user", "content": parts}], models=MODELS)
    as_text = fixture_router.select(f"{first}\n{second}", models=MODELS)
    _same_reading(as_parts, as_text)


@pytest.mark.parametrize(
    ("prompt", "message", "param"),
    [
        ("", "prompt is empty", "prompt"),
        ("  \n\t ", "prompt is empty", "prompt"),
        ([], "messages must be a non-empty list", "messages"),
        (None, "messages must be a non-empty list", "messages"),
        (42, "messages must be a non-empty list", "messages"),
        (["hello"], r"messages\[0\] must be an object", "messages[0]"),
        ([{"content": "hi"}], r"messages\[0\]\.role must be one of system, user, assistant", "messages[0]"),
        ([{"role": "wizard", "content": "hi"}], r"messages\[0\]\.role must be one of", "messages[0]"),
        ([{"role": "system", "content": "You are helpful."}], "no user turn with text", "messages"),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 7}],
            r"messages\[1\]\.content must be a string or a list of content parts",
            "messages[1]",
        ),
        (
            [{"role": "user", "content": {"text": "hi"}}],
            r"messages\[0\]\.content must be a string",
            "messages[0]",
        ),
        (
            [{"role": "user", "content": [{"text": "hi"}]}],
            r"content\[0\] must be an object with a 'type'",
            "messages[0]",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": 3}]}],
            r"content\[0\]\.text must be a string",
            "messages[0]",
        ),
        ([{"role": "user", "content": "   "}], "no user turn with text", "messages"),
    ],
)
def test_bad_prompts_are_input_errors(fixture_router: Router, prompt: Any, message: str, param: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        fixture_router.select(prompt)
    assert info.value.param == param
    assert info.value.code == ("missing_user_message" if "no user turn" in message else "invalid_value")


def test_shape_features_are_scaled_log_counts() -> None:
    text = "Add 12 and 30.\nThen double it."
    got = shape([text, ""])
    want = [np.log1p(len(text)) / 16, np.log1p(4) / 10, np.log1p(1) / 10]
    np.testing.assert_allclose(got, [want, [0.0, 0.0, 0.0]], rtol=1e-6)
    assert shape([text], ["lines"]).shape == (1, 1)
    with pytest.raises(ValueError, match="unknown prompt shape feature 'vowels'"):
        shape([text], ["vowels"])


def test_the_whole_prompt_is_measured_not_only_the_part_embedded(fixture_router: Router) -> None:
    """Two prompts cut to the same word pieces (same embedding) but of different lengths: the
    decision still sees the difference, through the prompts' shape features."""
    words = "please solve this problem about apples and pears carefully " * 10
    short = words + "what is the answer " + words
    long = words + "and more " * 400 + "what is the answer " + words
    embedder = fixture_router.embedder
    assert embedder.token_ids([short]) == embedder.token_ids([long])
    np.testing.assert_array_equal(embedder.embed([short]), embedder.embed([long]))
    assert fixture_router.quality.shape == list(SHAPE)
    a, b = fixture_router.select(short), fixture_router.select(long)
    assert a.complexity != b.complexity

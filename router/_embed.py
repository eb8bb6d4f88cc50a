"""Prompt text -> unit-length sentence embedding, in onnxruntime.

Long prompts are cut to `MAX_TOKENS` word pieces by keeping the head and the tail (the question
of a long prompt is often at its end): `HEAD_TOKENS` from the start, the rest from the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

UNFUSED = ["SkipLayerNormFusion"]
"""Graph rewrites onnxruntime would apply that make MiniLM slower: its fused SkipLayerNormalization
kernel took 5.14 ms of a 64-piece embedding where the plain Add + LayerNormalization take 4.28
(onnxruntime 1.32, one thread, an Intel Xeon with AVX-512; the embeddings agree to a cosine of
0.9999998). Without it, the 12 residual adds and layer norms of MiniLM's 6 layers stay separate."""


class Embedder:
    # 64 word pieces (with [CLS] and [SEP]): routing quality on ../shared/routeeval matched 128 within
    # noise (S1/S3/S4a, seeds 0-2) at half the latency; 32 would take ~0.65 of the time but lost
    # 0.0009 of mean AIQ (S1 0.0020); see benchmarks/routing, benchmarks/latency and the README.
    MAX_TOKENS = 64
    HEAD_TOKENS = 41
    CHARS_PER_TOKEN = 15  # characters tokenized from each end of a long text per kept word piece:
    # enough unless its words are very long (then the whole text is tokenized)

    def __init__(self, model_path: Path, tokenizer_path: Path, threads: int = 1) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        cls, sep = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ValueError(f"{tokenizer_path}: tokenizer has no [CLS]/[SEP] tokens")
        self.cls_id, self.sep_id = cls, sep
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"], disabled_optimizers=UNFUSED
        )
        self.dim = int(self.session.get_outputs()[0].shape[1] or 384)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.kind = meta.get("kind", "transformer")  # "static": training/static_embedder.py
        if "max_tokens" in meta:
            self.MAX_TOKENS = int(meta["max_tokens"])
            self.HEAD_TOKENS = int(meta["head_tokens"])

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids per text, head + tail cut, with [CLS] and [SEP]."""
        budget = self.MAX_TOKENS - 2
        tail = budget - self.HEAD_TOKENS
        out = []
        for t in texts:
            ids: list[int] | None = None
            head_chars, tail_chars = self.CHARS_PER_TOKEN * self.HEAD_TOKENS, self.CHARS_PER_TOKEN * tail
            if len(t) > head_chars + tail_chars:
                # Tokenize only the two ends, cut at whitespace: the tokenizer's words never span
                # whitespace, so the ends' ids are exactly the whole text's first and last ones.
                # Fall back to the whole text if an end has no whitespace or too few pieces.
                cut, start = _last_gap(t, head_chars), _first_gap(t, len(t) - tail_chars)
                if cut > 0 and start >= 0:
                    head, end = self._ids(t[:cut]), self._ids(t[start:])
                    if len(head) > self.HEAD_TOKENS and len(end) > tail:
                        ids = head[: self.HEAD_TOKENS] + end[-tail:]
            if ids is None:
                ids = self._ids(t)
                if len(ids) > budget:
                    ids = ids[: self.HEAD_TOKENS] + ids[-tail:]
            out.append([self.cls_id, *ids, self.sep_id])
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows of unit length.

        One text per run: the int8 graph quantises activations with one scale per tensor, so a
        batch (and its padding) would change every row's embedding."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, ids in enumerate(self.token_ids(texts)):
            row = np.asarray([ids], dtype=np.int64)
            (emb,) = self.session.run(None, {"input_ids": row, "attention_mask": np.ones_like(row)})
            out[i] = emb[0]
        return out


GAPS = " \t\n\r"
"""Whitespace to the tokenizer and to us alike (its control characters, such as \x1c, are dropped
by its normaliser, so a cut there could join two words)."""


def _last_gap(text: str, end: int) -> int:
    """The index of the last whitespace before `end`; -1 if there is none."""
    return max(text.rfind(c, 0, end) for c in GAPS)


def _first_gap(text: str, start: int) -> int:
    """The index of the first whitespace at or after `start`; -1 if there is none."""
    found = [i for i in (text.find(c, start) for c in GAPS) if i >= 0]
    return min(found) if found else -1

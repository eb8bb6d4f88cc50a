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


class Embedder:
    MAX_TOKENS = 128  # including [CLS] and [SEP]
    HEAD_TOKENS = 84
    HEAD_CHARS = 4000  # characters tokenized from each end; enough for the kept word pieces
    TAIL_CHARS = 2000
    BATCH = 64

    def __init__(self, model_path: Path, tokenizer_path: Path, threads: int = 0) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        cls, sep = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ValueError(f"{tokenizer_path}: tokenizer has no [CLS]/[SEP] tokens")
        self._cls, self._sep = cls, sep
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.dim = int(self.session.get_outputs()[0].shape[1] or 384)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids per text, head + tail cut, with [CLS] and [SEP]."""
        clipped = [
            t
            if len(t) <= self.HEAD_CHARS + self.TAIL_CHARS
            else t[: self.HEAD_CHARS] + " " + t[-self.TAIL_CHARS :]
            for t in texts
        ]
        encodings = self.tokenizer.encode_batch(clipped, add_special_tokens=False)
        budget = self.MAX_TOKENS - 2
        tail = budget - self.HEAD_TOKENS
        out = []
        for enc in encodings:
            ids = enc.ids
            if len(ids) > budget:
                ids = ids[: self.HEAD_TOKENS] + ids[-tail:]
            out.append([self._cls, *ids, self._sep])
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows of unit length. Batched by similar length."""
        ids = self.token_ids(texts)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), self.BATCH):
            rows = order[start : start + self.BATCH]
            out[rows] = self._run([ids[i] for i in rows])
        return out

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(x) for x in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for i, row in enumerate(batch):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        (emb,) = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})
        return np.asarray(emb, dtype=np.float32)

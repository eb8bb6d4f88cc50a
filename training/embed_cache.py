"""Embeddings of training prompts, cached on disk by text hash (one file per embedder)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from router._embed import Embedder


def default_cache_dir() -> Path:
    return Path(os.environ.get("PUREAI_CACHE", Path.home() / ".cache" / "pureai")) / "embeddings"


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _read(file: Path) -> dict[str, np.ndarray]:
    if not file.is_file():
        return {}
    with np.load(file) as f:
        return dict(zip(f["keys"].tolist(), f["emb"], strict=True))


def embed(
    texts: list[str],
    embedder: Embedder,
    embedder_sha: str,
    cache_dir: Path | None,
    progress: Any = None,
) -> np.ndarray:
    keys = [text_key(t) for t in texts]
    known: dict[str, np.ndarray] = {}
    file = None
    if cache_dir is not None:
        cut = f"t{embedder.MAX_TOKENS}h{embedder.HEAD_TOKENS}b1"  # the cut and batching change embeddings too
        file = cache_dir / f"{embedder_sha[:16]}-{cut}.npz"
        known = _read(file)
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
    step = 256
    chunks = range(0, len(missing), step)
    for s in progress(chunks, desc="embed prompts", unit="batch") if progress else chunks:
        part = missing[s : s + step]
        for (k, _), e in zip(part, embedder.embed([t for _, t in part]), strict=True):
            known[k] = e
    if file is not None and missing:
        file.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_read(file), **known}  # keep what another training wrote meanwhile
        tmp = file.with_name(f".{file.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=np.array(list(merged)), emb=np.stack(list(merged.values())).astype(np.float32))
        os.replace(tmp, file)
    return (
        np.stack([known[k] for k in keys]).astype(np.float32)
        if keys
        else np.zeros((0, embedder.dim), np.float32)
    )

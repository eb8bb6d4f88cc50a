"""Locate, verify and read a directory of router artifacts.

A directory holds `manifest.json` (file names with sha256s, the data hash, the command that
produced it), `embedder.onnx` + `tokenizer.json`, `heads.onnx`, `quality.json` and `knn.npz` (the
neighbour memory; its base-set arrays, which only `pureai train --base` reads, are described in
training/base.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ArtifactError

FORMAT = 1
FILES = ("embedder.onnx", "tokenizer.json", "heads.onnx", "quality.json", "knn.npz")


def default_dir() -> Path:
    return Path(__file__).resolve().parent / "artifacts"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifacts:
    root: Path
    manifest: dict[str, Any]
    quality: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.root / name


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    return data


def load(root: Path | str | None = None, verify: bool = True) -> Artifacts:
    root = default_dir() if root is None else Path(root)
    if not root.is_dir():
        raise ArtifactError(f"{root}: not a directory of router artifacts")
    manifest = read_json(root / "manifest.json")
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"{root / 'manifest.json'}: format {manifest.get('format')!r}, expected {FORMAT}")
    files = manifest.get("files", {})
    for name in FILES:
        path = root / name
        if not path.is_file():
            raise ArtifactError(f"{path}: missing")
        want = files.get(name, {}).get("sha256")
        if verify and want != sha256(path):
            raise ArtifactError(f"{path}: sha256 does not match manifest.json (corrupt or replaced)")
    return Artifacts(root, manifest, read_json(root / "quality.json"))

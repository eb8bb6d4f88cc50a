"""Loading a folder of artifacts: verified against manifest.json, typed errors when it is not right."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from router import ArtifactError, Router, RouterError

FILES = ("embedder.onnx", "tokenizer.json", "heads.onnx", "quality.json", "knn.npz")


@pytest.fixture
def copy(trained_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's trained artifacts, free to damage."""
    return Path(shutil.copytree(trained_dir, tmp_path / "artifacts"))


def replace_signed(folder: Path, name: str, data: bytes) -> None:
    """Write `data` as the file `name` and its sha256 into manifest.json, as a hand-rebuilt
    manifest would: the file passes the check and is bad in some other way."""
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"][name]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_the_copy_loads(copy: Path) -> None:
    rt = Router.load(copy)
    assert rt.select("What is 7 * 8?").selected_model


@pytest.mark.parametrize("name", FILES)
def test_one_changed_byte_is_caught(copy: Path, name: str) -> None:
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"{re.escape(str(path))}: sha256 does not match manifest\.json"):
        Router.load(copy)


@pytest.mark.parametrize("name", [*FILES, "manifest.json"])
def test_a_missing_file_is_named(copy: Path, name: str) -> None:
    (copy / name).unlink()
    with pytest.raises(ArtifactError, match=rf"{re.escape(str(copy / name))}: missing"):
        Router.load(copy)


def test_a_manifest_of_another_format_is_refused(copy: Path) -> None:
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["format"] = 2
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ArtifactError, match="format 2, expected 1"):
        Router.load(copy)


def test_a_manifest_that_is_not_json_is_refused(copy: Path) -> None:
    (copy / "manifest.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(ArtifactError, match="manifest.json: not valid JSON"):
        Router.load(copy)


def test_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a directory of router artifacts"):
        Router.load(tmp_path / "nowhere")


def test_a_heads_file_in_a_bad_format_is_an_artifact_error(copy: Path) -> None:
    """A file that matches its manifest but is not an ONNX graph (say, a manifest rebuilt by hand):
    errors.py promises ArtifactError for "bad format", not onnxruntime's own exception."""
    replace_signed(copy, "heads.onnx", b"this is not an ONNX graph")
    with pytest.raises(ArtifactError, match="heads.onnx"):
        Router.load(copy)


def test_an_unknown_shape_feature_is_refused_at_load(copy: Path) -> None:
    """Not on the first decision: the gateway would answer that one with a 500."""
    table = json.loads((copy / "quality.json").read_text(encoding="utf-8"))
    table["shape"] = ["length", "vowels"]
    replace_signed(copy, "quality.json", json.dumps(table).encode())
    with pytest.raises(ArtifactError, match="unknown prompt shape features \\['vowels'\\]"):
        Router.load(copy)


@pytest.mark.parametrize("near", [[0.7, 0.4], [-0.1, 0.5]])
def test_near_bounds_that_are_no_range_are_refused(copy: Path, near: list[float]) -> None:
    table = json.loads((copy / "quality.json").read_text(encoding="utf-8"))
    table["near"] = near
    replace_signed(copy, "quality.json", json.dumps(table).encode())
    with pytest.raises(ArtifactError, match="near must be two similarities 0 <= lo < hi"):
        Router.load(copy)


def test_artifact_errors_are_router_errors() -> None:
    assert issubclass(ArtifactError, RouterError)


def test_manifest_records_the_data_and_the_command(trained_dir: Path, fixture_dir: Path) -> None:
    manifest = json.loads((trained_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == 1
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["data"]["sha256"])
    assert manifest["data"]["source"] == str(fixture_dir)
    assert manifest["command"].startswith("pureai train ")
    assert f"--data {fixture_dir}" in manifest["command"]
    assert f"--out {trained_dir}" in manifest["command"]
    assert manifest["seed"] == 0

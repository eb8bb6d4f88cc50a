"""The SDK installs on its own: `pip install ./lunar` into a fresh virtual environment brings httpx
and pydantic (and what they need), not the router, litellm, onnxruntime or torch, and the installed
package talks to a server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lunar.raw_server import RawServer, json_reply

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"pureai-router", "litellm", "onnxruntime", "torch", "numpy", "fastapi", "tokenizers"}

USE = """
import sys
import lunar
heavy = [m for m in ("router", "service", "litellm", "onnxruntime", "numpy") if m in sys.modules]
assert not heavy, heavy
client = lunar.Lunar(api_key="k", base_url=sys.argv[1])
print(client.models.list().ids(), lunar.__file__)
client.close()
"""


@pytest.mark.slow
def test_the_sdk_installs_and_runs_on_its_own(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(
        REPO / "lunar", source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__")
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    installed = subprocess.run(
        [*pip, "install", "-q", str(source)], capture_output=True, text=True, timeout=900
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    listed = subprocess.run([*pip, "list", "--format=json"], capture_output=True, text=True, check=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"pureai-lunar", "httpx", "pydantic"} <= names
    assert names & FORBIDDEN == set()

    with RawServer() as server:
        server.script(json_reply(200, {"object": "list", "data": [{"id": "gpt-4o-mini"}]}))
        ran = subprocess.run(
            [str(python), "-c", USE, server.url], capture_output=True, text=True, cwd=tmp_path, timeout=120
        )
    assert ran.returncode == 0, ran.stderr
    ids, where = ran.stdout.rsplit(" ", 1)
    assert ids == "['gpt-4o-mini']" and where.strip().startswith(str(venv))
    assert (Path(where.strip()).parent / "py.typed").is_file()

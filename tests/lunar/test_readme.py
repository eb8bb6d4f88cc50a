"""Every Python block of lunar/README.md, and the SDK section's block of the root README, run as
written against a real gateway process and the fake upstreams, with PUREAI_API_KEY and
PUREAI_BASE_URL set as the quickstart says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.service.gateway_server import Gateway

REPO = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "lunar" / "README.md").read_text(), re.S)
SDK_SECTION = (REPO / "README.md").read_text().split("\n## SDK (`lunar/`)\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) == 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example(
    index: int, gateway: Gateway, fresh: Any, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(BLOCKS[index], f"lunar/README.md block {index}", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    expected = [
        "Hello from A: Hello!\n",  # quickstart: the chat's answer, then the streamed ones
        "routed to ",  # the router
        "Hello from A: Hello!\nHello from A: Hello",  # async
        "404 model_not_found the model 'gpt-9' does not exist\n",  # errors
    ][index]
    assert expected in out, out


def test_root_readme_sdk_section(
    gateway: Gateway, fresh: Any, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", SDK_SECTION, re.S)
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md SDK section", "exec"), namespace)
    namespace["client"].close()
    assert capsys.readouterr().out == "Hello from A: Hello"
    assert namespace["decision"].selected_model in ("gpt-4o-mini", "codestral-latest")

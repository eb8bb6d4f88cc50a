"""The root README's quick-start ("Set-up: two commands"): every shell variable a command of it uses
is exported before, in the quick-start itself, so that a newcomer can paste its blocks in order."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = README.read_text().split("\n## Set-up: two commands\n", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"```bash\n(.*?)```", SECTION, re.S)
USED = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
EXPORTED = re.compile(r"\bexport\s+((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s*)+)")


def test_the_quick_start_has_its_commands() -> None:
    assert len(BLOCKS) >= 2
    assert any("curl" in block for block in BLOCKS)


def test_every_variable_the_quick_start_uses_is_exported_first() -> None:
    exported: set[str] = set()
    for line in "\n".join(BLOCKS).splitlines():
        code = re.sub(r"'[^']*'", "''", line.split("  #", 1)[0])  # no expansion inside '...' or after #
        used = set(USED.findall(code))
        assert used <= exported, f"{line!r} uses {sorted(used - exported)} before it is exported"
        for match in EXPORTED.finditer(code):
            exported |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", match[1]))

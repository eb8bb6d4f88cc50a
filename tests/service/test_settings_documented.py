"""Every setting is one a reader can find: each `Settings` field is named in the README or the
reference in docs/ (as the `PUREAI_` variable, or without its prefix) and has a docstring in
service/settings.py."""

from __future__ import annotations

import ast
from pathlib import Path

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_named_in_the_readme_or_the_docs() -> None:
    readme = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in readme]
    missing = [n for n in missing if f"PUREAI_{n}" not in readme]
    assert not missing, f"settings neither the README nor docs/ names: {missing}"


def test_every_setting_has_a_docstring() -> None:
    tree = ast.parse((ROOT / "service" / "settings.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    documented, previous = set(), None
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            previous = node.target.id
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and previous:
            documented.add(previous)
            previous = None
        else:
            previous = None
    missing = [name for name in Settings.model_fields if name not in documented]
    assert not missing, f"settings without a docstring: {missing}"

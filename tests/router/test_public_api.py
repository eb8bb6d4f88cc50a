"""The `router` package surface, its import cost, and the router over the shipped artifacts.

The tests named `test_shipped_*` use router/artifacts/ as shipped; they need the complete set of
artifacts (manifest.json, heads.onnx, quality.json, knn.npz beside the embedder) to pass.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import router
from router import Decision
from router._artifacts import FILES, default_dir, sha256
from router._text import Prompt

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "sklearn", "litellm", "sentence_transformers", "transformers", "pandas", "matplotlib")


def test_all_is_exactly_the_public_api() -> None:
    assert router.__all__ == [
        "DEFAULT_COST_WEIGHT",
        "ArtifactError",
        "Candidate",
        "Decision",
        "InputError",
        "Router",
        "RouterError",
        "UnknownModelError",
        "default_router",
        "select",
        "select_many",
    ]
    for name in router.__all__:
        assert getattr(router, name) is not None


def test_error_hierarchy() -> None:
    for error in (router.InputError, router.UnknownModelError, router.ArtifactError):
        assert issubclass(error, router.RouterError)
    assert issubclass(router.InputError, ValueError)


def test_ships_py_typed() -> None:
    assert (Path(router.__file__).parent / "py.typed").is_file()


def _modules_after(code: str) -> list[str]:
    """Run code in a fresh interpreter; the heavy modules it left imported."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} + ['onnxruntime'] if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def test_import_router_loads_nothing_heavy() -> None:
    """Importing the package loads no model and none of torch, sklearn, litellm, onnxruntime."""
    assert _modules_after("import router") == []


def test_routing_needs_only_onnxruntime(trained_dir: Path) -> None:
    code = f"import router\nrouter.Router.load({str(trained_dir)!r}).select('What is 2 + 2?')"
    assert _modules_after(code) == ["onnxruntime"]


def test_pureai_route_needs_only_onnxruntime(trained_dir: Path) -> None:
    code = (
        "from router.cli import main\n"
        f"assert main(['route', 'What is 2 + 2?', '--artifacts', {str(trained_dir)!r}]) == 0"
    )
    assert _modules_after(code) == ["onnxruntime"]


def test_decision_is_a_frozen_value(fixture_router: router.Router) -> None:
    d = fixture_router.select("What is 2 + 2?", models=["gpt-4o", "gpt-4o-mini"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.selected_model = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.candidates[0].quality = 1.0  # type: ignore[misc]
    assert d.to_api() == {
        "selected_model": d.selected_model,
        "reasoning": d.reasoning,
        "confidence": round(d.confidence, 4),
    }


# -- the shipped artifacts (router/artifacts/) ------------------------------------------------
def test_shipped_artifacts_match_their_manifest() -> None:
    manifest = json.loads((default_dir() / "manifest.json").read_text(encoding="utf-8"))
    for name in FILES:
        assert manifest["files"][name]["sha256"] == sha256(default_dir() / name), name


def test_shipped_router_selects_among_the_given_models() -> None:
    d = router.select(
        "Write Python code to sort a list", models=["gpt-4o-mini", "codestral-latest"], cost_weight=0.5
    )
    assert isinstance(d, Decision)
    assert d.selected_model in ("gpt-4o-mini", "codestral-latest")
    assert {c.model for c in d.candidates} == {"gpt-4o-mini", "codestral-latest"}
    assert d.capabilities["code"] == max(d.capabilities.values())
    assert d.selected_model in d.reasoning


def test_shipped_router_default_pool_and_select_many() -> None:
    assert router.default_router() is router.default_router()
    prompts: list[Prompt] = [
        "What is the capital of Brazil?",
        [{"role": "user", "content": "Prove that sqrt(2) is irrational."}],
    ]
    decisions = router.select_many(prompts)
    enabled = {m.id for m in router.default_router().catalogue.enabled()}
    for d in decisions:
        assert d.selected_model in enabled
        assert enabled <= {c.model for c in d.candidates}


def test_shipped_router_learned_the_catalogues_models() -> None:
    """The shipped artifacts learn catalogue ids (trained with --registry-names, see the Makefile),
    extra-2025's models among them; a catalogue model without outcome data is estimated from the
    model its entry is `like`."""
    learned = router.default_router().quality.models
    assert {"gpt-4o-mini", "gpt-4o", "claude-3-haiku", "claude-3-5-haiku", "codestral-latest"} <= set(learned)
    d = router.select(
        "Write Python code to sort a list", models=["gpt-4o-mini", "codestral-latest", "gpt-4.1-mini"]
    )
    source = {c.model: c.quality_source for c in d.candidates}
    assert source["gpt-4.1-mini"] == "relative"
    assert source["codestral-latest"] in ("learned", "ability") and source["gpt-4o-mini"] in (
        "learned",
        "ability",
    )


def test_shipped_artifacts_were_built_by_the_makefiles_recipe() -> None:
    """`make artifacts` (SHIPPED_MODELS, SHIPPED_NEAR) is what built router/artifacts, and what
    benchmarks/unseen reads as the shipped recipe: the models, the near bounds and the command."""
    import re

    root = Path(__file__).resolve().parents[2]
    make = (root / "Makefile").read_text(encoding="utf-8")
    recipe = dict(re.findall(r"^(SHIPPED_\w+)\s*:=\s*(\S+)", make, re.M))
    art = root / "router" / "artifacts"
    table = json.loads((art / "quality.json").read_text(encoding="utf-8"))
    manifest = json.loads((art / "manifest.json").read_text(encoding="utf-8"))
    assert table["models"] == recipe["SHIPPED_MODELS"].split(",")
    assert table["near"] == [float(x) for x in recipe["SHIPPED_NEAR"].split(",")]
    assert f"--models {recipe['SHIPPED_MODELS']} --near {recipe['SHIPPED_NEAR']}" in manifest["command"]
    assert "--near $(SHIPPED_NEAR)" in make and "--models $(SHIPPED_MODELS)" in make

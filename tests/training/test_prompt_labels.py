"""training/prompt_labels.py: the label mapping, the dev split, the report section, and a real fit
(the session's `pureai train` on the fixture, which reads the labelled prompts) that separates
what a prompt asks for and how hard it is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training import fit, prompt_labels, report
from training.data import CAPABILITIES


def test_every_mapping_names_a_capability() -> None:
    for table in prompt_labels.CATEGORIES.values():
        assert set(table.values()) <= set(CAPABILITIES)
    assert {c for c, _ in prompt_labels.ROUTERARENA.values()} <= set(CAPABILITIES)
    assert set(prompt_labels.ARENA_CLUSTERS.values()) | set(prompt_labels.ARENA_FIXES.values()) <= set(
        CAPABILITIES
    )
    assert set(prompt_labels.LLMFAO.values()) <= set(CAPABILITIES)


def test_routerarena_labels_by_name_then_prefix() -> None:
    assert prompt_labels.routerarena_label("MMLUPro_math") == ("math", None)
    assert prompt_labels.routerarena_label("MMLUPro_law") == ("knowledge", None)
    assert prompt_labels.routerarena_label("MMLU_formal_logic") == ("reasoning", None)
    assert prompt_labels.routerarena_label("OpenTDB_Science: Mathematics") == ("math", 0.1)
    assert prompt_labels.routerarena_label("SuperGLUE-RC") == ("extraction", None)
    assert prompt_labels.routerarena_label("SuperGLUE-Wic") == ("reasoning", None)
    assert prompt_labels.routerarena_label("AIME") == ("math", 0.9)
    assert prompt_labels.routerarena_label("WMT19-de-en") is None  # translation: left out


def test_arena_hard_rules_cluster_and_fixes() -> None:
    label = prompt_labels.arena_capability
    assert label("x" * 32, "Anything", "Write a bash script that backs up my home folder") == "code"
    assert (
        label("x" * 32, "Anything", "Prove that there are infinitely many primes of the form 4k+3") == "math"
    )
    assert label("x" * 32, "Anything", "Write a song about catfish in the style of Bob Dylan.") == "writing"
    assert label("x" * 32, "Text-Based RPG Creation", "lets play a game about space exploration") == "chat"
    assert label("x" * 32, "Unlisted cluster", "How do I shape a whole wheat baguette?") == "knowledge"
    # a reviewed fix wins over the rules: this proof mentions a "function", which the code rule catches
    text = "Using epsilon-delta definition of continuous function, prove that f(x)=x^3+3x is continuous"
    assert label("d8ac4f1e" + "0" * 24, "Real Analysis Continuity", text) == "math"
    assert label("0" * 32, "Real Analysis Continuity", text) == "code"


def test_seed_lines_are_labelled_and_cover_both_ends() -> None:
    lines = [json.loads(x) for x in (prompt_labels.SEEDS / "prompts.jsonl").read_text("utf-8").splitlines()]
    assert all(r["capability"] in CAPABILITIES and r["source"] == "written for pureai" for r in lines)
    assert all(0.0 <= r["complexity"] <= 1.0 for r in lines)
    for cap in CAPABILITIES:
        assert sum(r["capability"] == cap for r in lines) >= 10, cap
    for cap in ("code", "math", "chat", "knowledge"):
        cx = [r["complexity"] for r in lines if r["capability"] == cap]
        assert min(cx) <= 0.15 and max(cx) >= (0.4 if cap == "chat" else 0.75), cap


def test_gsm8k_complexity_grows_with_the_steps() -> None:
    one = "Half of 10 is <<10/2=5>>5.\n#### 5"
    five = "".join(f"<<{i}+1={i + 1}>>" for i in range(5))
    assert prompt_labels.gsm8k_complexity(one) == 0.2
    assert prompt_labels.gsm8k_complexity(five) > prompt_labels.gsm8k_complexity(one)
    assert prompt_labels.gsm8k_complexity(five * 10) == 0.45


def test_dev_split_is_disjoint_deterministic_and_by_text() -> None:
    labels = prompt_labels.label_set()
    train = {prompt_labels.text_key(t) for t, d in zip(labels.texts, labels.dev, strict=True) if not d}
    dev = labels.dev_keys()
    assert dev and train and not dev & train
    assert len(train) + len(dev) == len(labels.texts)  # one row per normalised text
    # the same text, differently spaced or cased, lands on the same side
    t = labels.texts[int(np.flatnonzero(labels.dev)[0])]
    assert prompt_labels.is_dev(t) and prompt_labels.is_dev("  " + t.upper().replace(" ", "  \n"))
    again = prompt_labels.label_set()
    assert again.texts == labels.texts and (again.dev == labels.dev).all()
    share = labels.dev.mean()
    assert 0.12 < share < 0.3, share
    # the first seed set is training only
    assert not any(d for s, d in zip(labels.sources, labels.dev, strict=True) if s == "pureai-seeds-v1")


def test_data_rows_with_a_dev_text_are_kept_from_the_heads() -> None:
    labels = prompt_labels.label_set()
    dev_text = labels.texts[int(np.flatnonzero(labels.dev)[0])]
    train_text = labels.texts[int(np.flatnonzero(~labels.dev)[0])]
    fitter = fit.QualityFitter(seeds=(np.zeros((len(labels.texts), 4)), labels))

    class Data:
        texts = [dev_text.lower(), train_text, "a prompt of no labelled set"]
        prompt_ids = ["mmlu-pro:1", "arena-bench-v1:2", "jsonl-row"]

    fitter._label_rows(Data())  # type: ignore[arg-type]
    assert fitter.own_rows_.tolist() == [False, True, True]
    assert fitter.data_sources_ == ["data:mmlu-pro", "data:arena-bench-v1", "data"]


def test_cell_weights_balance_sources_and_labels() -> None:
    labels = ["code"] * 1000 + ["code"] * 10 + ["chat"] * 10
    sources = ["bench"] * 1000 + ["real"] * 10 + ["real"] * 10
    w = fit.cell_weights(labels, sources, cap=100.0)
    assert np.isclose(w.mean(), 1.0)
    code_bench, code_real, chat = w[:1000].sum(), w[1000:1010].sum(), w[1010:].sum()
    assert np.isclose(code_bench + code_real, chat)  # every label weighs the same
    assert np.isclose(code_bench / code_real, 10.0)  # a big cell counts as cap rows, not 1000


def test_rank_scale_keeps_order_not_scale() -> None:
    x = np.array([0.5, 0.51, 0.52, 0.52, 0.9])
    y = fit.rank_scale(x, 0.2, 0.8)
    assert y.min() > 0.2 and y.max() < 0.8 and y[2] == y[3]
    assert (np.diff(y[[0, 1, 2, 4]]) > 0).all()
    assert np.allclose(fit.rank_scale(x * 100 - 3, 0.2, 0.8), y)


def _rep() -> dict[str, object]:
    labels = prompt_labels.LabelSet(
        texts=["hi", "prove it", "sort a list", "poem", "write code"],
        capabilities=["chat", "math", "code", "writing", "code"],
        complexity=np.array([0.0, 0.95, 0.3, np.nan, np.nan]),
        sources=["written for pureai", "arena-hard", "mt-bench", "vicuna", "arena-hard"],
        dev=np.array([True, True, True, True, False]),
    )
    classes = list(CAPABILITIES)
    P = np.zeros((5, len(classes)))
    for i, c in enumerate(["chat", "math", "code", "chat", "code"]):
        P[i, classes.index(c)] = 1.0
    return prompt_labels.dev_report(P, np.array([0.05, 0.9, 0.4, 0.3, 0.5]), labels, classes)


def test_dev_report_counts_and_confusion() -> None:
    rep = _rep()
    real, seeds = rep["real"], rep["seeds"]
    assert isinstance(real, dict) and isinstance(seeds, dict)
    assert real["n"] == 3 and real["accuracy"] == round(2 / 3, 4)  # the poem is called chat
    M = np.array(real["confusion"])
    c = list(CAPABILITIES)
    assert M[c.index("writing"), c.index("chat")] == 1 and M.trace() == 2
    assert seeds["n"] == 1 and seeds["accuracy"] == 1.0
    cx = rep["complexity"]
    assert isinstance(cx, dict)
    assert cx["trivial"] == {"n": 1, "mean": 0.05} and cx["hard"] == {"n": 1, "mean": 0.9}


def test_report_section_renders() -> None:
    lines = report._prompt_labels_section(_rep())
    text = "\n".join(lines)
    assert "## Capability and complexity heads on held-out labelled prompts" in text
    assert "**real**: top-1 accuracy 0.667 on 3 prompts." in text
    assert "| writing | 0 | 0 | 0 | 0 | 0 | 1 | 0 |" in text  # the confusion row
    assert "Trivial anchors (<= 0.1): 0.050 over 1 prompts; hard anchors (>= 0.8): 0.900" in text
    assert report._prompt_labels_section(None) == []


def test_trained_report_has_the_section(trained_dir: Path) -> None:
    md = (trained_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Capability and complexity heads on held-out labelled prompts" in md
    rep = json.loads((trained_dir / "report" / "metrics.json").read_text(encoding="utf-8"))["prompt_labels"]
    assert rep["prompts"] > 0 and rep["labels"] == list(CAPABILITIES)


def test_a_real_fit_separates_capability_and_complexity(trained_dir: Path) -> None:
    """The router trained on the fixture (ZeroEval's math and code items only) and the labelled prompts:
    on prompts in neither set, the capability is right and a greeting and a research-level proof
    land far apart on the complexity scale."""
    from router import Router

    rt = Router.load(trained_dir)
    texts = [p.lower() for p in prompt_labels.label_set().texts]
    cases = {
        "hey, how are you doing today?": ("chat", None),
        "Write a sonnet about autumn leaves falling in the rain": ("writing", None),
        "Implement a lock-free concurrent hash map in C++ with correct memory ordering": ("code", "hard"),
        # the capability of this one is not asserted: the head calls it writing or math (a known weak spot)
        "Prove that every closed and bounded subset of R^n is compact (Heine-Borel), rigorously": (
            None,
            "hard",
        ),
        "Let f be continuous on [a, b] and differentiable on (a, b). Prove rigorously that f'(c) equals "
        "(f(b) - f(a)) / (b - a) for some c in (a, b).": ("math", "hard"),
        "thanks!": (None, "trivial"),
        "17*23": ("math", "trivial"),
    }
    assert not set(p.lower() for p in cases) & set(texts)
    got = {p: rt.select(p) for p in cases}
    for p, (cap, _) in cases.items():
        caps = got[p].capabilities
        if cap:
            assert max(caps, key=caps.__getitem__) == cap, (p, caps)
    # the target: hard prompts at least 0.30 above trivial ones on average
    trivial = [got[p].complexity for p, (_, h) in cases.items() if h == "trivial"]
    hard = [got[p].complexity for p, (_, h) in cases.items() if h == "hard"]
    assert max(trivial) < 0.2 and min(hard) > max(trivial), (trivial, hard)
    assert np.mean(hard) - np.mean(trivial) >= 0.3, (trivial, hard)

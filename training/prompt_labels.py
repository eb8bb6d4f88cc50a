"""Labelled real-user-style prompts for the capability and complexity heads.

Benchmark items teach the capability head what a benchmark looks like, not what users ask: on their
own they call every hard, real request "chat". These prompts, each with a capability, where one can
be justified a complexity anchor in [0, 1], and its source, come from

* `prompts_labeled/` in the shared routing data: MT-Bench and Vicuna questions (their categories,
  `CATEGORIES`), Arena-Hard v0.1 (`arena_capability`: rules on the text, then the topic cluster's
  default, `ARENA_CLUSTERS`, then reviewed per-question fixes, `ARENA_FIXES`), GSM8K and HumanEval;
* RouterArena's 809 `sub_10` prompts (`ROUTERARENA`: their 78 dataset labels);
* llmfao's 19 prompts (`LLMFAO`: one label per prompt, its prompt type being too coarse);
* the seed prompts in training/seeds/ (written for pureai: greetings to research-level proofs).

Every source is Apache-2.0, MIT or CC BY 4.0 (shared/routing-data/SOURCES.md and
extra-2025/SOURCES.md), so they may shape what ships; AlpacaEval (NC) is not read. The files are
read where they lie at training time (`default_root`); without them only the seeds are used.

Complexity anchors (`complexity`): 0 a greeting, ~0.05 one-step arithmetic or a one-fact
question, ~0.3 an everyday request (a short email, a small function, a grade-school word problem),
~0.5 multi-step work (debugging pasted code, a textbook proof), ~0.75 expert work (competition
math, system design, Arena-Hard's prompts, which were selected for specificity, domain knowledge
and problem-solving), ~0.95 research-level proofs and systems. Sources without a defensible
anchor (MT-Bench, Vicuna, most of RouterArena) carry none and teach only the capability.

`split` keeps a fixed share of every source out of training by a hash of the normalised text
(the dev set the report measures the heads on); a benchmark row of the outcome data with the same
text is left out of the two heads too (`dev_keys`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import CAPABILITIES

DEV_SHARE = 0.25  # of every source, by text hash
GSM8K_MAX = 400  # GSM8K has 8792 problems: a hashed sample is enough
SEEDS = Path(__file__).parent / "seeds"

CATEGORIES: dict[str, dict[str, str]] = {
    "mt-bench": {
        "writing": "writing",
        "roleplay": "chat",
        "reasoning": "reasoning",
        "math": "math",
        "coding": "code",
        "extraction": "extraction",
        "stem": "knowledge",
        "humanities": "knowledge",
    },
    "vicuna": {
        "generic": "chat",
        "knowledge": "knowledge",
        "roleplay": "chat",
        "common-sense": "reasoning",
        "fermi": "reasoning",
        "counterfactual": "reasoning",
        "coding": "code",
        "math": "math",
        "writing": "writing",
    },
}

# RouterArena dataset label -> (capability, complexity anchor or None). Prefixes end in "_".
ROUTERARENA: dict[str, tuple[str, float | None]] = {
    "MMLUPro_math": ("math", None),
    "MMLUPro_": ("knowledge", None),
    "MMLU_formal_logic": ("reasoning", None),
    "MMLU_": ("knowledge", None),
    "ArcMMLU": ("knowledge", None),
    "MedMCQA": ("knowledge", None),
    "GeoBench": ("knowledge", None),
    "GeoGraphyData_100k": ("knowledge", None),
    "MusicTheoryBench": ("knowledge", None),
    "QANTA_": ("knowledge", None),
    "OpenTDB_Science: Mathematics": ("math", 0.1),
    "OpenTDB_": ("knowledge", 0.1),  # pub-quiz trivia
    "PubMedQA": ("extraction", None),  # a yes/no/maybe question answered from the given abstract
    "NarrativeQA": ("extraction", None),  # a question answered from the given story
    "SuperGLUE-RC": ("extraction", None),
    "SuperGLUE-QA": ("extraction", None),
    "SuperGLUE-": ("reasoning", None),  # WiC, entailment, causal reasoning, WSC, cloze
    "Ethics_": ("reasoning", None),
    "SocialiQA": ("reasoning", None),
    "ChessInstruct": ("reasoning", None),
    "LiveCodeBench": ("code", 0.7),  # competitive programming
    "GSM8K": ("math", 0.3),
    "AsDiv": ("math", 0.2),
    "MathQA": ("math", 0.4),
    "FinQA": ("math", 0.45),
    "MATH": ("math", 0.7),
    "AIME": ("math", 0.9),
    # WMT19 translation: no capability fits (writing is composition), so it is left out
}

LLMFAO: dict[str, str] = {  # llmfao prompt slug -> capability
    "k8s": "writing",
    "qft": "knowledge",
    "permutation": "code",
    "bug-task": "code",
    "vendor-extract": "extraction",
    "svg": "code",
    "munchhausen": "reasoning",
    "basic-sentiment": "extraction",
    "cot-apple": "math",
    "taiwan": "knowledge",
    "sally": "reasoning",
    "cot-sally": "reasoning",
    "holidays": "writing",
    "bagel": "writing",
    "planets-json": "knowledge",
    "blue": "writing",
    "leap": "code",
    "fibonacci": "code",
    "product-description": "writing",
}

# -- Arena-Hard v0.1 ----------------------------------------------------------------------------
# The 250 topic clusters hold 2 prompts each and are noisy (a cluster named after Bob Dylan holds
# a PHP project): a prompt is labelled by rules on its own text first (code, then math, writing,
# extraction), then by its cluster's default below (knowledge where a cluster is absent), then by
# a reviewed fix for the prompts both get wrong.
_CODE = re.compile(
    r"```|\bc\+\+|\bc#|\b(python|javascript|typescript|java|kotlin|swift|golang|rust|php|ruby|perl|scala|"
    r"haskell|ocaml|scheme|lisp|autolisp|matlab|octave|vba|vb\.net|sql|mysql|postgres|sqlite|bash|"
    r"shell ?script|powershell|regex|pcre|html|css|tailwind|react|vue|svelte|sveltekit|angular|"
    r"next\.?js|node\.?js|django|flask|laravel|symfony|fastapi|streamlit|gradio|pandas|numpy|"
    r"pytorch|tensorflow|keras|jax|sklearn|scikit|docker|kubernetes|terraform|nginx|apache conf|"
    r"cuda|glsl|hlsl|opencl|verilog|systemverilog|vhdl|cocotb|gdscript|luau?|solidity|json|yaml|"
    r"xaml|api|sdk|cli|function|script|code|program|compile[rd]?|debug|stack ?trace|traceback|"
    r"exception|class|method|library|module|repo|git|npm|pip|import|#include|def |jq|awk|sed|"
    r"grep|ffmpeg|websocket|endpoint|frontend|backend|database|schema|query|plugin|app|pyqt\d?|qt|nix|"
    r"nixpkgs|jetpack|android|odoo|drupal|wordpress|sap|svg|promql|assembly|nasm|x86(-64)?|shader|"
    r"kernel|ssh|sshd|cron|excel|dataframe|geopandas|seaborn|matplotlib|ggplot|dplyr|gams|closure|"
    r"smart contract|fuzzer|wsdl|linux command line|command line|ios-xr|vlan|tailscale|gherkin|"
    r"huggingface|autogen|ssms|selenium|scrape|scrap|excel table|ocr|sv constraints)\b",
    re.IGNORECASE,
)
_MATH = re.compile(
    r"\b(prove|proof|theorem|lemma|integral|derivative|equation|polynomial|probability|"
    r"expected value|matrix|eigen|prime|integer|modulo|calculate|compute|solve)\b|\$[^$]+\$|\\frac",
    re.IGNORECASE,
)
_WRITING = re.compile(
    r"\b(write|compose|draft|rewrite|create|prepare|make|generate|craft)\b.{0,60}\b(story|poem|"
    r"song|lyrics|essay|blog|article|email|letter|speech|post|outline|proposal|description|"
    r"script for|dialog|dialogue|introduction|review|copy|slogan|melody|chord|strategy|plan|"
    r"catalogue|specification|requirements|paper|report|section|scope|ideas|goals|user stories|"
    r"swot|character|curriculum|course|topics)\b",
    re.IGNORECASE | re.DOTALL,
)
_EXTRACTION = re.compile(
    r"\b(extract|summari[sz]e|categori[sz]e|classify)\b.{0,40}\b(following|this|text|document|"
    r"list|words|data)\b",
    re.IGNORECASE | re.DOTALL,
)

ARENA_CLUSTERS: dict[str, str] = {  # cluster -> capability of its prompts without a text rule
    "Advanced Algebra and Number Theory": "math",
    "Advanced Mathematical Problem-Solving": "math",
    "Advanced Guitar Chord Theory": "writing",
    "Baking and Peanut Butter Recipes": "knowledge",
    "Bob, Alice, Relationships & Interactions": "writing",
    "Business Operations Analysis": "math",
    "Consecutive Draws Ball Difference": "math",
    "Debate Preparation and Argumentation": "writing",
    "Dice Probability Calculations": "math",
    "Dionne's Business Accounting": "math",
    "Diverse Conceptual Associations": "reasoning",
    "Electromagnetic Phenomena and Theorems": "math",
    "Endurance Race Training": "knowledge",
    "Entity Relationship Extraction": "extraction",
    "Healthy Meal Planning": "knowledge",
    "Investment Growth Calculations": "math",
    "Magic Crystals & RPG Mechanics": "chat",
    "Money and Transaction Puzzles": "reasoning",
    "Number Substitution Patterns": "reasoning",
    "Optimal Walking and Step Count": "math",
    "Probability Distributions & Statistics": "math",
    "Proving Square Root Irrationality": "math",
    "Real Analysis Continuity": "math",
    "Rehearsed Inner Dialog Responses": "chat",
    "Rubik's Cube & Puzzles": "reasoning",
    "Situation Puzzle Challenges": "reasoning",
    "Solar Power Plant KPIs": "math",
    "Tagging Items with Best Practices": "extraction",
    "Text-Based RPG Creation": "chat",
    "Time Calculations & Conversions": "math",
    "Train Time and Speed Problems": "math",
    "Trading Card Games": "knowledge",
}

ARENA_FIXES: dict[str, str] = {  # question_id[:8] -> capability: reviewed prompts the rules mislabel
    "01b51564": "code",
    "04ba0aeb": "code",
    "0977f592": "code",
    "0bd2cbc6": "code",
    "1b733872": "code",
    "2b9b6441": "code",
    "32e124cb": "code",
    "44bd7807": "code",
    "47e1fd0c": "code",
    "4a0cf903": "code",
    "4ef42cc8": "code",
    "57b28a3a": "code",
    "73e36294": "code",
    "74c4255d": "code",
    "847e0891": "code",
    "93c9b4bb": "code",
    "a3dfabb0": "code",
    "b62a3d9b": "code",
    "bc56550b": "code",
    "d588d571": "code",
    "dbff049f": "code",
    "face6a55": "code",
    "f776a95f": "code",
    "ffb30214": "code",
    "f7be129a": "code",
    "639d4faf": "code",
    "6778936d": "code",
    "e28da3d0": "code",
    "2c41e83c": "code",
    "09a13c98": "math",
    "6a111f46": "math",
    "9c5e7d46": "math",
    "1044e65c": "math",
    "77fd22f6": "math",
    "170563a9": "knowledge",
    "4086b666": "knowledge",
    "52b9f9d3": "knowledge",
    "5b2976a6": "knowledge",
    "be6f4edf": "knowledge",
    "2f51f044": "knowledge",
    "0dea8939": "writing",
    "0e07d745": "writing",
    "26d31603": "writing",
    "44899472": "writing",
    "5c5cb72f": "writing",
    "9647f3ce": "writing",
    "98312077": "writing",
    "93a55137": "writing",
    "e80139e3": "writing",
    "eb4af515": "writing",
    "d7bf9f6f": "writing",
    "23aecfcf": "writing",
    "2f5d4521": "writing",
    "b5987b1c": "writing",
    "708512d0": "writing",
    "7956046c": "writing",
    "c35cf870": "reasoning",
    "91a347c8": "reasoning",
    "3971e3d0": "extraction",
    "f77dde96": "extraction",
    "0901d025": "chat",
    "e721d9f0": "chat",
    "4a608737": "math",
    "d8ac4f1e": "math",
    "36ce0509": "math",
    "e0ccb67e": "writing",
    "de6e5b08": "writing",
    "e04ec588": "reasoning",
}


def arena_capability(question_id: str, cluster: str, text: str) -> str:
    """The capability of an Arena-Hard prompt: a reviewed fix, else the text rules, else its cluster."""
    if question_id[:8] in ARENA_FIXES:
        return ARENA_FIXES[question_id[:8]]
    head = text[:600]
    if _CODE.search(head):
        return "code"
    if _MATH.search(head):
        return "math"
    if _WRITING.search(head):
        return "writing"
    if _EXTRACTION.search(head):
        return "extraction"
    return ARENA_CLUSTERS.get(cluster, "knowledge")


# -- the labelled set ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Labeled:
    """One prompt: its capability, its complexity anchor (None: no anchor), where it comes from."""

    text: str
    capability: str
    complexity: float | None
    source: str


@dataclass
class LabelSet:
    """The labelled prompts as parallel lists, with the dev mask (`split`)."""

    texts: list[str]
    capabilities: list[str]
    complexity: np.ndarray  # (n,), NaN = no anchor
    sources: list[str]
    dev: np.ndarray  # (n,) bool: kept out of training

    @classmethod
    def of(cls, rows: list[Labeled]) -> LabelSet:
        return cls(
            [r.text for r in rows],
            [r.capability for r in rows],
            np.array([np.nan if r.complexity is None else r.complexity for r in rows], dtype=np.float64),
            [r.source for r in rows],
            np.array([is_dev(r.text) and r.source != "pureai-seeds-v1" for r in rows], dtype=bool),
        )

    def dev_keys(self) -> set[str]:
        return {text_key(t) for t, d in zip(self.texts, self.dev, strict=True) if d}


def text_key(text: str) -> str:
    """sha1 of the lower-cased, whitespace-collapsed text (as the canonical data's `text_hash`)."""
    return hashlib.sha1(" ".join(text.lower().split()).encode("utf-8")).hexdigest()[:16]


def _unit(salt: str, text: str) -> float:
    return int(hashlib.sha1(f"{salt}|{text_key(text)}".encode()).hexdigest()[:8], 16) / 2**32


def is_dev(text: str) -> bool:
    """True for the fixed DEV_SHARE of texts kept out of training (a hash: no seed, no order)."""
    return _unit("pureai-dev", text) < DEV_SHARE


def default_root() -> Path:
    """The shared routing data: $PUREAI_ROUTING_DATA, else ../shared/routing-data beside the repo."""
    env = os.environ.get("PUREAI_ROUTING_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "routing-data"


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def seeds() -> list[Labeled]:
    """training/seeds/: prompts.jsonl (capability, complexity, source) and the first seed set,
    capabilities.jsonl (task only; every line of it is training, never dev)."""
    out = [
        Labeled(r["prompt"], r["capability"], r.get("complexity"), r["source"])
        for r in _jsonl(SEEDS / "prompts.jsonl")
    ]
    out += [
        Labeled(r["prompt"], r["task"], None, "pureai-seeds-v1") for r in _jsonl(SEEDS / "capabilities.jsonl")
    ]
    return out


def _categorised(root: Path) -> Iterator[Labeled]:
    for source, file in (("mt-bench", "mt_bench_question.jsonl"), ("vicuna", "vicuna_bench_question.jsonl")):
        path = root / "prompts_labeled" / file
        if path.is_file():
            for r in _jsonl(path):
                yield Labeled(r["turns"][0], CATEGORIES[source][r["category"]], None, source)


def _arena_hard(root: Path) -> Iterator[Labeled]:
    path = root / "prompts_labeled" / "arena_hard_v0.1_question.jsonl"
    if path.is_file():
        for r in _jsonl(path):
            text = r["turns"][0]["content"]
            yield Labeled(text, arena_capability(r["question_id"], r["cluster"], text), 0.75, "arena-hard")


def gsm8k_complexity(answer: str) -> float:
    """0.2 for a one-step problem, +0.04 per further calculation (<<...>> in the answer), to 0.45."""
    return float(min(0.45, 0.2 + 0.04 * max(answer.count("<<") - 1, 0)))


def _gsm8k_humaneval(root: Path) -> Iterator[Labeled]:
    for split in ("train", "test"):
        path = root / "prompts_labeled" / f"gsm8k_{split}.jsonl.gz"
        if path.is_file():
            for r in _jsonl(path):
                if _unit("pureai-gsm8k", r["question"]) < GSM8K_MAX / 8792:
                    yield Labeled(r["question"], "math", gsm8k_complexity(r["answer"]), "gsm8k")
    path = root / "prompts_labeled" / "HumanEval.jsonl.gz"
    if path.is_file():
        for r in _jsonl(path):
            yield Labeled(r["prompt"], "code", 0.4, "humaneval")


def routerarena_label(dataset: str) -> tuple[str, float | None] | None:
    """(capability, anchor) of a RouterArena dataset label; None for the ones left out."""
    if dataset in ROUTERARENA:
        return ROUTERARENA[dataset]
    for prefix, label in ROUTERARENA.items():
        if prefix.endswith(("_", "-")) and dataset.startswith(prefix):
            return label
    return None


def _routerarena(root: Path) -> Iterator[Labeled]:
    import csv

    path = root / "extra-2025" / "routerarena" / "sub10_prompts.csv.gz"
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                label = routerarena_label(r["dataset"])
                if label is not None:
                    yield Labeled(r["prompt"], label[0], label[1], "routerarena")


def _llmfao(root: Path) -> Iterator[Labeled]:
    path = root / "llmfao" / "prompts.jsonl"
    if path.is_file():
        for r in _jsonl(path):
            yield Labeled(r["text"], LLMFAO[r["slug"]], None, "llmfao")


def load(root: Path | None = None) -> list[Labeled]:
    """Every labelled prompt, the seeds first; one row per normalised text (the first wins)."""
    root = default_root() if root is None else root
    parts: Iterable[Labeled] = (
        *seeds(),
        *_categorised(root),
        *_arena_hard(root),
        *_gsm8k_humaneval(root),
        *_routerarena(root),
        *_llmfao(root),
    )
    out, seen = [], set()
    for r in parts:
        if r.capability not in CAPABILITIES:
            raise ValueError(f"{r.source}: unknown capability {r.capability!r}")
        k = text_key(r.text)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def label_set(root: Path | None = None) -> LabelSet:
    return LabelSet.of(load(root))


# -- the dev report -----------------------------------------------------------------------------
SEED_SOURCE = "written for pureai"
TRIVIAL, HARD = 0.1, 0.8  # anchors at or below / at or above these are "trivial" / "hard"


def _accuracy(true: list[str], pred: list[str], classes: list[str]) -> dict[str, Any]:
    idx = {c: i for i, c in enumerate(classes)}
    M = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(true, pred, strict=True):
        M[idx[t], idx[p]] += 1
    per = {
        c: {"n": int(M[i].sum()), "accuracy": round(float(M[i, i] / M[i].sum()), 4)}
        for i, c in enumerate(classes)
        if M[i].sum()
    }
    total = int(M.sum())
    return {
        "n": total,
        "accuracy": round(float(np.trace(M) / total), 4) if total else None,
        "per_capability": per,
        "confusion": M.tolist(),  # rows: true capability, columns: predicted, both in `labels` order
    }


def dev_report(P: np.ndarray, complexity: np.ndarray, lab: LabelSet, classes: list[str]) -> dict[str, Any]:
    """Capability accuracy and confusion of the head's top-1 on the dev prompts, for the real ones
    and the held-out seeds apart, and their mean predicted complexity per capability, per source
    and for trivial vs hard anchors."""
    dev = np.flatnonzero(lab.dev)
    pred = [classes[int(i)] for i in P[dev].argmax(axis=1)]
    true = [lab.capabilities[i] for i in dev]
    real = np.array([lab.sources[i] != SEED_SOURCE for i in dev], dtype=bool)
    pick = lambda m, xs: [x for x, k in zip(xs, m, strict=True) if k]  # noqa: E731
    sources = sorted({lab.sources[i] for i in dev})
    per_source = {}
    for s in sources:
        m = np.array([lab.sources[i] == s for i in dev], dtype=bool)
        per_source[s] = {
            "n": int(m.sum()),
            "accuracy": round(
                float(np.mean([t == p for t, p in zip(pick(m, true), pick(m, pred), strict=True)])), 4
            ),
            "complexity": round(float(complexity[dev][m].mean()), 4),
        }
    anchor = lab.complexity[dev]
    c_dev = complexity[dev]

    def mean_of(m: np.ndarray) -> dict[str, Any]:
        return {"n": int(m.sum()), "mean": round(float(c_dev[m].mean()), 4) if m.any() else None}

    return {
        "labels": list(classes),
        "prompts": len(dev),
        "real": _accuracy(pick(real, true), pick(real, pred), list(classes)),
        "seeds": _accuracy(pick(~real, true), pick(~real, pred), list(classes)),
        "per_source": per_source,
        "complexity": {
            "per_capability": {
                c: round(float(c_dev[[t == c for t in true]].mean()), 4) for c in classes if c in true
            },
            "trivial": mean_of(anchor <= TRIVIAL),
            "hard": mean_of(anchor >= HARD),
            "anchor_correlation": (
                round(float(np.corrcoef(anchor[~np.isnan(anchor)], c_dev[~np.isnan(anchor)])[0, 1]), 4)
                if (~np.isnan(anchor)).sum() > 2
                and np.ptp(anchor[~np.isnan(anchor)]) > 0
                and np.ptp(c_dev[~np.isnan(anchor)]) > 0
                else None
            ),
        },
    }

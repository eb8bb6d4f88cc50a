"""The shipped router on real-user-style prompts that training never sees.

    python benchmarks/real_prompts/run.py [--artifacts DIR] [--json PATH] [--limit N]

The prompts (prompts.jsonl beside this file) were written for this benchmark: gateway traffic as
people send it (pasted code with a bug, homework arithmetic, cover letters, greetings, documents to
extract from), each labelled with a capability and a difficulty. Training must never read this
folder; the numbers mean something only while these prompts stay out of every training set.

Measured, over one `select_many` per cost weight on a fixed pool of catalogue models:
  - the capability head: top-1 accuracy per capability (argmax of `Decision.capabilities` against
    the label) and the confusion matrix;
  - the complexity head: mean and spread per difficulty, and hard minus trivial;
  - where candidate qualities come from: the share of `quality_source` values, over the whole pool
    and over the pool's models that have outcome data in the artifacts (quality.json `models`,
    matched by catalogue id or alias);
  - the spread of choices at cost weights 0, 0.5 and 1: share of prompts per chosen model, overall
    and per capability;
and the targets of the issue beside them, with pass or fail. Writes results/real_prompts.json
(or --json) and prints tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROMPTS = HERE / "prompts.jsonl"
POOL = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1-mini",
    "claude-3-5-sonnet",
    "claude-3-5-haiku",
    "gemini-2.0-flash",
    "gemini-1.5-pro",
    "llama-3.1-70b-instruct",
    "deepseek-chat",
    "mistral-large-latest",
    "codestral-latest",
    "qwen-2.5-72b-instruct",
]
WEIGHTS = (0.0, 0.5, 1.0)
DIFFICULTIES = ("trivial", "easy", "hard")
TARGETS = {
    "top1_min": 0.90,  # capability head, for each of TOP1_CAPABILITIES
    "complexity_gap_min": 0.30,  # mean complexity of hard prompts minus that of trivial ones
    "learned_share_min": 0.60,  # share of qualities from own outcome data among pool models that have it
}
TOP1_CAPABILITIES = ("code", "math", "writing")


def load_prompts(path: Path, limit: int | None) -> list[dict]:
    """The prompt set; with `limit`, that many taken round-robin over (capability, difficulty)
    so that a small run still has every capability and every difficulty (from 21 prompts)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit is None:
        return rows
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["capability"], r["difficulty"]), []).append(r)
    picked: list[dict] = []
    for i in range(max(len(g) for g in groups.values())):
        picked += [g[i] for g in groups.values() if i < len(g)]
    return picked[:limit]


def with_outcome_data(rt, models: list[str]) -> list[str]:
    """The models of `models` that have outcome data in the artifacts: named in quality.json
    `models` by their catalogue id or one of its aliases."""
    learned = set(rt.artifacts.quality["models"])
    out = []
    for m in models:
        entry = rt.catalogue.models.get(m)
        names = {m, *(entry.aliases if entry else ())}
        if names & learned:
            out.append(m)
    return out


def capability_head(rows: list[dict], decisions: list, caps: list[str]) -> dict:
    labels = [r["capability"] for r in rows]
    top = [max(d.capabilities, key=d.capabilities.get) for d in decisions]
    confusion = {c: dict.fromkeys(caps, 0) for c in caps}
    for y, p in zip(labels, top, strict=True):
        confusion[y][p] = confusion[y].get(p, 0) + 1
    per_cap = {}
    for c in caps:
        n = sum(1 for y in labels if y == c)
        if n:
            per_cap[c] = {"n": n, "top1": confusion[c][c] / n}
    overall = sum(y == p for y, p in zip(labels, top, strict=True)) / len(labels)
    return {"top1": per_cap, "top1_overall": overall, "confusion": confusion}


def complexity_head(rows: list[dict], decisions: list) -> dict:
    out: dict = {}
    for level in DIFFICULTIES:
        xs = np.array(
            [d.complexity for r, d in zip(rows, decisions, strict=True) if r["difficulty"] == level]
        )
        if len(xs):
            out[level] = {
                "n": len(xs),
                "mean": float(xs.mean()),
                "std": float(xs.std()),
                "p10": float(np.percentile(xs, 10)),
                "p90": float(np.percentile(xs, 90)),
            }
    if "hard" in out and "trivial" in out:
        out["hard_minus_trivial"] = out["hard"]["mean"] - out["trivial"]["mean"]
    return out


def quality_sources(decisions: list, learned_models: list[str]) -> dict:
    every: Counter = Counter()
    anchored: Counter = Counter()
    per_model: dict[str, Counter] = {}
    for d in decisions:
        for c in d.candidates:
            every[c.quality_source] += 1
            per_model.setdefault(c.model, Counter())[c.quality_source] += 1
            if c.model in learned_models:
                anchored[c.quality_source] += 1

    def shares(counter: Counter) -> dict[str, float]:
        total = sum(counter.values())
        return {k: v / total for k, v in sorted(counter.items())} if total else {}

    return {
        "all_pool_models": shares(every),
        "models_with_outcome_data": shares(anchored),
        "per_model_learned": {m: own_data(shares(c)) for m, c in sorted(per_model.items())},
    }


OWN_DATA = ("learned", "ability")
"""quality_source values that rest on the model's own outcome data (similar prompts, or its learned
ability on this kind of prompt); "relative" and "prior" do not."""


def own_data(shares: dict[str, float]) -> float:
    return sum(shares.get(k, 0.0) for k in OWN_DATA)


def choices(rows: list[dict], decisions: list) -> dict:
    n = len(decisions)
    overall = Counter(d.selected_model for d in decisions)
    per_cap: dict[str, Counter] = {}
    for r, d in zip(rows, decisions, strict=True):
        per_cap.setdefault(r["capability"], Counter())[d.selected_model] += 1
    sources = Counter(d.candidates[0].quality_source for d in decisions)
    return {
        "distinct_models": len(overall),
        "share": {m: k / n for m, k in overall.most_common()},
        "chosen_quality_source": {k: v / n for k, v in sorted(sources.items())},
        "mean_chosen_cost_usd": float(np.mean([d.candidates[0].cost_usd for d in decisions])),
        "mean_chosen_quality": float(np.mean([d.candidates[0].quality for d in decisions])),
        "per_capability": {
            c: {m: k / sum(cnt.values()) for m, k in cnt.most_common()} for c, cnt in per_cap.items()
        },
    }


def decision_rows(rows: list[dict], decisions: list) -> list[dict]:
    """Every prompt's decision at cost weight 0.5, for reading by a person."""
    out = []
    for r, d in zip(rows, decisions, strict=True):
        top = max(d.capabilities, key=d.capabilities.get)
        chosen = d.candidates[0]
        out.append(
            {
                "prompt": r["prompt"][:160],
                "label": r["capability"],
                "difficulty": r["difficulty"],
                "chosen": d.selected_model,
                "top_capability": top,
                "top_capability_p": d.capabilities[top],
                "complexity": round(d.complexity, 3),
                "quality_source": chosen.quality_source,
                "quality": round(chosen.quality, 3),
            }
        )
    return out


def targets(result: dict) -> list[dict]:
    """The issue's targets beside what was measured."""
    checks = [
        (
            f"top-1 {c} >= {TARGETS['top1_min']:.2f}",
            result["capability"]["top1"][c]["top1"],
            TARGETS["top1_min"],
        )
        for c in TOP1_CAPABILITIES
        if c in result["capability"]["top1"]
    ]
    gap = result["complexity"].get("hard_minus_trivial")
    if gap is not None:
        t = TARGETS["complexity_gap_min"]
        checks.append((f"complexity hard - trivial >= {t:.2f}", gap, t))
    t = TARGETS["learned_share_min"]
    share = own_data(result["quality_source"]["models_with_outcome_data"])
    checks.append((f"learned share, pool models with outcome data >= {t:.0%}", share, t))
    return [{"target": name, "value": v, "pass": bool(v >= t)} for name, v, t in checks]


def print_tables(result: dict) -> None:
    caps = list(result["capability"]["confusion"])
    print(
        f"{result['prompts']} prompts, pool of {len(result['pool'])} models, "
        f"{result['seconds']:.1f} s, artifacts {result['artifacts']}, commit {result['commit']}\n"
    )
    print("| capability | prompts | top-1 |")
    print("|---|---|---|")
    for c, v in result["capability"]["top1"].items():
        print(f"| {c} | {v['n']} | {v['top1']:.2f} |")
    print(f"| all | {result['prompts']} | {result['capability']['top1_overall']:.2f} |\n")
    print("Confusion (rows: label, columns: argmax of the capability head)\n")
    print("| label | " + " | ".join(caps) + " |")
    print("|---" * (len(caps) + 1) + "|")
    for y in caps:
        row = result["capability"]["confusion"][y]
        if sum(row.values()):
            print(f"| {y} | " + " | ".join(str(row[p]) for p in caps) + " |")
    print("\n| difficulty | prompts | complexity mean | std | p10 | p90 |")
    print("|---|---|---|---|---|---|")
    for level in DIFFICULTIES:
        v = result["complexity"].get(level)
        if v:
            print(
                f"| {level} | {v['n']} | {v['mean']:.3f} | {v['std']:.3f} | {v['p10']:.3f} | {v['p90']:.3f} |"
            )
    qs = result["quality_source"]
    print(
        f"\n- quality_source over all {len(result['pool'])} pool models: {_fmt_shares(qs['all_pool_models'])}"
    )
    print(
        f"- quality_source over the {len(result['pool_with_outcome_data'])} with outcome data "
        f"({', '.join(result['pool_with_outcome_data'])}): {_fmt_shares(qs['models_with_outcome_data'])}"
    )
    print(
        "\n| cost weight | distinct choices | chosen: mean quality | mean cost (USD) | quality from "
        "| share per chosen model |"
    )
    print("|---|---|---|---|---|---|")
    for w, v in result["choices"].items():
        src = _fmt_shares(v["chosen_quality_source"])
        print(
            f"| {w} | {v['distinct_models']} | {v['mean_chosen_quality']:.3f} | {v['mean_chosen_cost_usd']:.5f} "
            f"| {src} | {_fmt_shares(v['share'])} |"
        )
    print("\nChosen model per capability (the top three, as shares of that capability's prompts)\n")
    print("| capability | " + " | ".join(f"cost weight {w}" for w in result["choices"]) + " |")
    print("|---" * (len(result["choices"]) + 1) + "|")
    for c in result["capability"]["top1"]:
        cells = [_fmt_shares(v["per_capability"].get(c, {}), 3) for v in result["choices"].values()]
        print(f"| {c} | " + " | ".join(cells) + " |")
    print("\n| target | measured | |")
    print("|---|---|---|")
    for t in result["targets"]:
        print(f"| {t['target']} | {t['value']:.2f} | {'pass' if t['pass'] else 'FAIL'} |")


def _fmt_shares(shares: dict[str, float], top: int | None = None) -> str:
    items = list(shares.items())[:top] if top else list(shares.items())
    return ", ".join(f"{k} {v:.0%}" if v >= 0.005 else f"{k} <1%" for k, v in items) or "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", help="a folder of `pureai train` artifacts (default: the shipped ones)")
    ap.add_argument(
        "--json", default=str(HERE / "results" / "real_prompts.json"), help="where to write results"
    )
    ap.add_argument("--prompts", default=str(PROMPTS), help="a JSON Lines prompt set (default: the one here)")
    ap.add_argument("--limit", type=int, help="route only N prompts, spread over the capabilities")
    args = ap.parse_args(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sys.path.insert(0, str(ROOT))
    import router
    from models_registry import CAPABILITIES

    rows = load_prompts(Path(args.prompts), args.limit)
    t0 = time.perf_counter()
    rt = router.Router.load(args.artifacts)
    pool = [m for m in POOL if m in rt.catalogue.models and rt.catalogue.models[m].enabled]
    learned = with_outcome_data(rt, pool)
    texts = [r["prompt"] for r in rows]
    by_weight = {w: rt.select_many(texts, models=pool, cost_weight=w) for w in WEIGHTS}
    seconds = time.perf_counter() - t0
    mid = by_weight[0.5]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result: dict = {
        "commit": commit.stdout.strip(),
        "artifacts": args.artifacts or "shipped",
        "prompts": len(rows),
        "seconds": seconds,
        "pool": pool,
        "pool_with_outcome_data": learned,
        "capability": capability_head(rows, mid, list(CAPABILITIES)),
        "complexity": complexity_head(rows, mid),
        "quality_source": quality_sources(mid, learned),
        "choices": {str(w): choices(rows, ds) for w, ds in by_weight.items()},
        "decisions_cost_weight_0.5": decision_rows(rows, mid),
    }
    result["targets"] = targets(result)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print_tables(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

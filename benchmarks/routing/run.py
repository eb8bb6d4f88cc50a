"""Routing quality on ../shared/routeeval: our retrained router vs the harness's baselines.

    python benchmarks/routing/run.py                       # S1-S4b x seeds 0-4, S1 transfer splits
    python benchmarks/routing/run.py --scenarios S1 --seeds 0

For every (scenario, seed) the router is retrained from scratch by `PureAIRouter.fit` (our own
training code on the scenario's train+val rows) and scored on the test rows. Baseline AIQs per
seed come from routeeval's `baselines.json` (`seed_robustness`; transfer splits: `transfer`).
Writes results/routing.json and results/routing.md, and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHARED = ROOT.parent / "shared"
SCENARIOS = ("S1", "S2", "S3", "S4a", "S4b")
TRANSFER = ("zeroeval-gsm8k", "zeroeval-math-l5", "zeroeval-crux")


def run_one(scenario: str, seed: int, transfer: str | None = None) -> dict:
    from adapter import PureAIRouter  # type: ignore[import-not-found]
    from routeeval.evaluate import evaluate_router, zero_router
    from routeeval.external import train_data
    from routeeval.routers import normalised_cost
    from routeeval.scenarios import build, indices, split_labels, transfer_labels

    scn = build(scenario, None)
    labels = transfer_labels(scn, transfer, seed=seed) if transfer else split_labels(scn, seed=seed)
    idx = indices(labels)
    ncost, _ = normalised_cost(scn, idx["train"])
    router = PureAIRouter(seed=seed)
    t0 = time.perf_counter()
    router.fit(train_data(scn, labels, ncost))
    fit_s = time.perf_counter() - t0
    res = evaluate_router(router, scn, idx["test"])
    return {
        "aiq": res["aiq"],
        "apgr": res.get("apgr"),
        "zero": zero_router(scn, idx["test"])["aiq"],
        "fit_seconds": round(fit_s, 1),
        "test_prompts": int(len(idx["test"])),
        "confidence_ece": confidence_ece(router, scn),
    }


def confidence_ece(router, scn) -> float:
    """ECE of the selected model's confidence against its real score, over every test decision."""
    from training.metrics import ece

    col = {m: j for j, m in enumerate(scn.pool)}
    conf, outcome = [], []
    for ids, models, confs in router.confidence.values():
        rows = scn.rows(ids)
        conf += confs
        outcome += [float(scn.Q[r, col[m]]) for r, m in zip(rows, models, strict=True)]
    return ece(np.array(conf), np.array(outcome))[0]


def baselines() -> dict:
    return json.loads((SHARED / "routeeval" / "baselines.json").read_text())


def table(results: dict, base: dict) -> tuple[str, dict]:
    seeds_base = base["seed_robustness"]
    rows = [
        "| scenario | seeds | Zero | kNN | LR | best kNN/LR | **pureai** | Δ vs best kNN/LR | APGR | conf. ECE |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary: dict = {}
    deltas = []
    for scn, per_seed in results["scenarios"].items():
        seeds = sorted(int(s) for s in per_seed)
        ours = np.mean([per_seed[str(s)]["aiq"] for s in seeds])
        zero = np.mean([per_seed[str(s)]["zero"] for s in seeds])
        knn = np.mean([seeds_base["aiq"][scn]["knn"][s] for s in seeds])
        lr = np.mean([seeds_base["aiq"][scn]["logreg"][s] for s in seeds])
        best = max(knn, lr)
        apgr = [per_seed[str(s)]["apgr"] for s in seeds if per_seed[str(s)]["apgr"] is not None]
        deltas.append(ours - best)
        summary[scn] = {
            "pureai": ours,
            "zero": zero,
            "knn": knn,
            "logreg": lr,
            "delta_vs_best": ours - best,
            "per_seed": [per_seed[str(s)]["aiq"] for s in seeds],
        }
        ece = np.mean([per_seed[str(s)].get("confidence_ece", np.nan) for s in seeds])
        summary[scn]["confidence_ece"] = float(ece)
        apgr_txt = f"{np.mean(apgr):.3f}" if apgr else "—"
        rows.append(
            f"| {scn} | {len(seeds)} | {zero:.3f} | {knn:.3f} | {lr:.3f} | {best:.3f} | **{ours:.3f}** | "
            f"{ours - best:+.3f} | {apgr_txt} | {ece:.3f} |"
        )
    if deltas:
        rows.append(f"| **mean Δ** | | | | | | | **{np.mean(deltas):+.3f}** | |")
        summary["mean_delta_vs_best"] = float(np.mean(deltas))
    if results.get("transfer"):
        rows += [
            "",
            "| S1 leave-one-dataset-out (seed 0) | Zero | kNN | LR | **pureai** | Δ vs Zero |",
            "|---|---|---|---|---|---|",
        ]
        for ds, r in results["transfer"].items():
            b = base["transfer"]["S1"][ds]["routers"]
            rows.append(
                f"| {ds} | {r['zero']:.3f} | {b['knn']['aiq']:.3f} | {b['logreg']['aiq']:.3f} | "
                f"**{r['aiq']:.3f}** | {r['aiq'] - r['zero']:+.3f} |"
            )
            summary.setdefault("transfer", {})[ds] = {"pureai": r["aiq"], "zero": r["zero"]}
    return "\n".join(rows) + "\n", summary


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--no-transfer", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    sys.path[:0] = [str(HERE), str(ROOT), str(SHARED)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    results: dict = {
        "commit": commit,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "scenarios": {},
        "transfer": {},
    }
    for scn in args.scenarios.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            r = run_one(scn, seed)
            results["scenarios"].setdefault(scn, {})[str(seed)] = r
            print(
                f"{scn} seed {seed}: AIQ {r['aiq']:.4f} (zero {r['zero']:.4f}, fit {r['fit_seconds']}s)",
                flush=True,
            )
    if not args.no_transfer:
        for ds in TRANSFER:
            results["transfer"][ds] = r = run_one("S1", 0, transfer=ds)
            print(f"S1 transfer {ds}: AIQ {r['aiq']:.4f} (zero {r['zero']:.4f})", flush=True)
    md, summary = table(results, baselines())
    results["summary"] = summary
    (out / "routing.json").write_text(json.dumps(results, indent=1))
    (out / "routing.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

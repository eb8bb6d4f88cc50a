"""The shipped training recipe on traffic it has never seen: each case holds a whole benchmark out
of training (its rows, and every training prompt whose text is one of its prompts), trains as
`make artifacts` does on the rest, and routes the held-out prompts among catalogue models.

    python benchmarks/unseen/run.py                  # every case
    python benchmarks/unseen/run.py --cases knowledge

For each case it prints and writes (results/unseen.json, results/unseen.md) the AIQ of the router,
of the best single-model mix (routeeval's Zero router: the hull of the pool's single models) and of
the prompt-blind baselines routeeval gives, with a paired bootstrap 95% interval of the router's
gain over Zero. The references that *were* trained on the held-out benchmark (routeeval's
label-task, kNN and LR baselines, fitted on its train split) are shown beside it where the pool is
the scenario's own: they say what in-distribution training buys, which the router here has not had.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHARED = ROOT.parent / "shared"
DATA = (SHARED / "routing-data" / "canonical", SHARED / "routing-data" / "extra-2025")

CASES = {
    # name: (routeeval scenario whose test prompts are routed, datasets held out of training)
    "knowledge": ("S2", ("mmlu-pro",)),
    "math-code": ("S1", ("zeroeval-gsm8k", "zeroeval-math-l5", "zeroeval-crux")),
    "mmlu-pair": ("S4b", ("routellm-mmlu",)),
    "gsm8k-pair": ("S4a", ("routellm-gsm8k",)),
}


def recipe(name: str) -> str:
    """A variable of the Makefile's `make artifacts` recipe (SHIPPED_MODELS, SHIPPED_NEAR)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(rf"^{name}\s*:=\s*(\S+)", text, re.M)
    if not found:
        raise SystemExit(f"Makefile: no {name} line")
    return found.group(1)


def shipped_models() -> list[str]:
    return recipe("SHIPPED_MODELS").split(",")


def train_without(held: tuple[str, ...], texts: set[str], out: Path, catalogue, near) -> dict:  # type: ignore[no-untyped-def]
    """`make artifacts` on the shared data minus the held-out datasets and their texts."""
    from training import data as data_mod
    from training.embed_cache import default_cache_dir
    from training.prompt_labels import text_key
    from training.train import Options, rename_to_registry, train

    data = rename_to_registry(data_mod.load(",".join(str(p) for p in DATA)), catalogue)
    data = data_mod.select_models(data, shipped_models())
    keep = np.array(
        [
            pid.split(":", 1)[0] not in held and text_key(t) not in texts
            for pid, t in zip(data.prompt_ids, data.texts, strict=True)
        ]
    )
    dropped = int((~keep).sum())
    data = data.subset(np.flatnonzero(keep))
    # a model whose every row was held out is, like any model without data, not learned
    data = data_mod.select_models(
        data, [m for j, m in enumerate(data.models) if np.isfinite(data.scores[:, j]).any()]
    )
    opts = Options(
        out=out,
        cost_from="registry",
        knn_max=8000,
        folds=1,
        force=True,
        progress=False,
        cache_dir=default_cache_dir(),
        command=f"benchmarks/unseen without {','.join(held)}",
        near=near,
    )
    result = train(data, catalogue, opts)
    return {
        "training_prompts": len(data.texts),
        "dropped_prompts": dropped,
        "seconds": result["seconds"],
        "model_rows": result["model_rows"],
    }


def run_case(  # type: ignore[no-untyped-def]
    name: str, seed: int, n_boot: int, near, keep: Path | None = None, reuse: Path | None = None,
    calibration: str = "traffic",
) -> dict:
    from routeeval.evaluate import bootstrap_aiq_delta, evaluate_router, zero_router
    from routeeval.routers import LabelRouter, RandomRouter, normalised_cost
    from routeeval.scenarios import SPECS, ScenarioSpec, build, indices, split_labels

    from models_registry import load_catalogue
    from router import Router

    scenario, held = CASES[name]
    spec = SPECS[scenario]
    catalogue = load_catalogue()
    ids = {m: catalogue.by_alias(m) for m in spec.pool}
    trained = set(shipped_models())
    pool = tuple(m for m in spec.pool if ids[m] in trained)
    scn = build(ScenarioSpec(f"{scenario}-unseen", spec.title, spec.datasets, pool, spec.why, spec.cost_note))
    labels = split_labels(scn, seed=seed)
    idx = indices(labels)
    test = idx["test"]
    with tempfile.TemporaryDirectory(prefix="pureai-unseen-") as tmp:
        out = (keep / name) if keep else Path(tmp) / "artifacts"
        from training.prompt_labels import text_key

        texts = {text_key(t) for t in scn.texts}
        if reuse is None:
            fit = train_without(held, texts, out, catalogue, near)
        else:
            out = reuse / name
            fit = {"reused": str(out)}
        rt = Router.load(out, catalogue, calibration=calibration)
        back = {ids[m]: m for m in pool}

        class Shipped:
            name = "pureai"

            def route_many(self, prompt_ids, pool_, weights):  # type: ignore[no-untyped-def]
                rows = scn.rows(prompt_ids)
                batch = [scn.texts[i] for i in rows]
                out_: dict = {}
                sources: dict[str, int] = {}
                for w in weights:
                    ds = rt.select_many(batch, models=[ids[m] for m in pool_], cost_weight=float(w))
                    out_[w] = [back[d.selected_model] for d in ds]
                    if w == 0.5:
                        for d in ds:
                            for c in d.candidates:
                                sources[c.quality_source] = sources.get(c.quality_source, 0) + 1
                self.sources = sources
                return out_

        decisions: dict = {}
        shipped = Shipped()
        res = {"pureai": evaluate_router(shipped, scn, test, decisions=decisions, key="pureai")}
    fit_rows = np.concatenate([idx["train"], idx["val"]])
    ncost, train_cost = normalised_cost(scn, idx["train"])
    random = RandomRouter(seed)
    random.fit(scn, fit_rows, ncost, train_cost)
    res["random"] = evaluate_router(random, scn, test, decisions=decisions, key="random")
    trained_refs = {}
    lt = LabelRouter("task").fit(scn, fit_rows, ncost, train_cost)
    trained_refs["label-task"] = evaluate_router(lt, scn, test)["aiq"]
    zero = zero_router(scn, test)
    boot = bootstrap_aiq_delta(scn, test, decisions, n_boot=n_boot, seed=seed)
    base = json.loads((SHARED / "routeeval" / "baselines.json").read_text())
    if pool == spec.pool:
        for key in ("knn", "logreg"):
            r = base["scenarios"][scenario]["routers"].get(key) if seed == 0 else None
            if r:
                trained_refs[key] = r["aiq"]
    total = sum(shipped.sources.values()) or 1
    return {
        "scenario": scenario,
        "held_out": list(held),
        "pool": {m: ids[m] for m in pool},
        "test_prompts": int(len(test)),
        "training": fit,
        "aiq": {"zero": zero["aiq"], **{k: v["aiq"] for k, v in res.items()}},
        "gain_vs_zero": boot.get("pureai"),
        "trained_on_it": trained_refs,
        "quality_sources_at_0.5": {k: round(v / total, 3) for k, v in sorted(shipped.sources.items())},
        "single_models": {p["model"]: {"cost": p["cost"], "quality": p["quality"]} for p in zero["points"]},
        "share_at": {
            str(p["w"]): p["share"] for p in res["pureai"]["points"] if p["w"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        },
    }


def table(results: dict) -> str:
    lines = [
        "| held out | pool | test prompts | Zero | **pureai** | gain vs Zero (95% CI) | random | trained on it: label-task / kNN / LR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        g = r["gain_vs_zero"] or {}
        ci = f"{g['mean']:+.3f} ({g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f})" if g else "n/a"
        refs = " / ".join(
            f"{r['trained_on_it'][k]:.3f}" if k in r["trained_on_it"] else "–"
            for k in ("label-task", "knn", "logreg")
        )
        lines.append(
            f"| {name} ({', '.join(r['held_out'])}) | {', '.join(r['pool'].values())} | {r['test_prompts']} | "
            f"{r['aiq']['zero']:.3f} | **{r['aiq']['pureai']:.3f}** | {ci} | {r['aiq']['random']:.3f} | {refs} |"
        )
    gains = [r["gain_vs_zero"]["mean"] for r in results.values() if r["gain_vs_zero"]]
    if gains:
        lines.append(f"| **mean gain** | | | | | **{np.mean(gains):+.3f}** | | |")
    return "\n".join(lines)


def _commit() -> str | None:
    import subprocess

    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=500)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument(
        "--near",
        default=recipe("SHIPPED_NEAR"),
        help="LO,HI as `pureai train --near`, or 'folds' to choose them on the folds (default: the Makefile's)",
    )
    ap.add_argument("--keep", help="keep each case's artifacts in DIR/<case> (default: thrown away)")
    ap.add_argument("--reuse", help="route with the artifacts a --keep run left in DIR/<case>; train nothing")
    ap.add_argument(
        "--calibration",
        default="traffic",
        choices=("traffic", "reference"),
        help="what the router fits its cost_weight scale on (Router.load's calibration)",
    )
    args = ap.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sys.path[:0] = [str(SHARED), str(ROOT)]
    from training.cli_support import near_option

    near = None if args.near == "folds" else near_option(args.near)
    results = {}
    for name in args.cases.split(","):
        t0 = time.perf_counter()
        results[name] = run_case(
            name,
            args.seed,
            args.n_boot,
            near,
            Path(args.keep) if args.keep else None,
            Path(args.reuse) if args.reuse else None,
            args.calibration,
        )
        print(
            f"{name}: {json.dumps(results[name]['aiq'])} gain {results[name]['gain_vs_zero']} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = f"near bounds: {args.near}\n\n" + table(results)
    meta = {
        "commit": _commit(),
        "near": args.near,
        "calibration": args.calibration,
        "seed": args.seed,
        "n_boot": args.n_boot,
    }
    (out / "unseen.json").write_text(json.dumps({"meta": meta, "cases": results}, indent=1), encoding="utf-8")
    (out / "unseen.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Decision latency, import time, batched throughput and memory of the shipped router.

    python benchmarks/latency/run.py [--n 300] [--artifacts DIR]

`--artifacts` times a router trained elsewhere (for example on the static embedder that
`pureai distil-embedder` makes) instead of the shipped one; results go to latency-<folder>.json.

Prompts are real ones from ../shared/routing-data/canonical (train_ok rows), binned by length
(word pieces before the head+tail cut); a synthetic 512-token prompt is added. Each decision is
timed alone (batch 1, cache off: every prompt is new to the router), with 1 and 2 onnxruntime
threads, and the embedder's share is reported; then, on one thread, what a decision would take
were prompts cut to 48, 40 or 32 word pieces instead of 64. Writes results/latency.json and prints
tables. Speed is compared as ratios within this run; absolute numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = ROOT.parent / "shared" / "routing-data" / "canonical" / "prompts.csv.gz"
POOL = [
    "gpt-4o-mini",
    "gpt-4o",
    "claude-3-haiku",
    "codestral-latest",
    "llama-3.1-8b-instruct",
    "gemini-2.5-flash",
]


def prompts(n: int, seed: int = 0) -> list[str]:
    with gzip.open(DATA, "rt", encoding="utf-8", newline="") as f:
        texts = [r["prompt"] for r in csv.DictReader(f) if r["train_ok"] == "True"]
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.choice(len(texts), n, replace=False)]


def import_time() -> float:
    code = "import time; t=time.perf_counter(); import router; print(time.perf_counter()-t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
            ).stdout
        )
        for _ in range(5)
    ]
    return float(np.median(runs))


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.array(ms)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "n": len(a),
    }


CUTS = (64, 48, 40, 32)


def cut_times(artifacts: Path | None, texts: list[str]) -> dict[str, dict[str, float]]:
    """One-thread decision times were long prompts cut to fewer word pieces (head and tail in the
    shipped proportion), round-robin over the cuts prompt by prompt so that the machine's load
    falls on all alike. Timing only: the shipped heads are trained at their own cut, so these
    decisions are not the shipped ones; the routing cost of a shorter cut is measured by
    benchmarks/routing with an embedder whose metadata sets it."""
    import router

    rt = router.Router.load(artifacts)
    own = (rt.embedder.MAX_TOKENS, rt.embedder.HEAD_TOKENS)
    times: dict[int, list[float]] = {cut: [] for cut in CUTS}
    for t in texts[:10]:
        rt.select(t, models=POOL, cost_weight=0.5)
    for t in texts:
        for cut in CUTS:
            rt.embedder.MAX_TOKENS = cut
            rt.embedder.HEAD_TOKENS = round((cut - 2) * (own[1] / (own[0] - 2)))
            a = time.perf_counter()
            rt.select(t, models=POOL, cost_weight=0.5)
            times[cut].append((time.perf_counter() - a) * 1e3)
    base = float(np.percentile(times[CUTS[0]], 50))
    return {
        str(cut): {**percentiles(ms), "p50_ratio": float(np.percentile(ms, 50)) / base}
        for cut, ms in times.items()
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--artifacts", help="a folder of `pureai train` artifacts (default: the shipped ones)")
    args = ap.parse_args()
    artifacts = Path(args.artifacts) if args.artifacts else None
    sys.path.insert(0, str(ROOT))
    import router
    from router import _router

    texts = prompts(args.n)
    long_prompt = " ".join(
        ["The committee reviewed the quarterly budget and the hiring plan in detail."] * 40
    )
    result: dict = {"import_router_s": import_time(), "machine": {"cpus": os.cpu_count()}}
    t0 = time.perf_counter()
    rt = router.Router.load(artifacts)
    result["load_s"] = time.perf_counter() - t0
    result["rss_mib_loaded"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lengths = [len(x) for x in rt.embedder.token_ids(texts)]
    for threads in (1, 2):
        rt = router.Router.load(artifacts, threads=threads)
        _router.CACHE_SIZE = 0  # every decision embeds (a cache hit would time nothing)
        for t in texts[:10]:
            rt.select(t, models=POOL, cost_weight=0.5)
        total, embed_only = [], []
        for t in texts + [long_prompt] * 20:
            a = time.perf_counter()
            rt.embedder.embed([t])
            b = time.perf_counter()
            rt.select(t, models=POOL, cost_weight=0.5)
            c = time.perf_counter()
            embed_only.append((b - a) * 1e3)
            total.append((c - b) * 1e3)
        short = [m for m, n in zip(total, lengths, strict=False) if n <= 32]
        result[f"threads_{threads}"] = {
            "all": percentiles(total),
            "embed_only": percentiles(embed_only),
            "prompts_le_32_tokens": percentiles(short),
            "prompt_512_tokens": percentiles(total[-20:]),
        }
        batch = texts[:256]
        a = time.perf_counter()
        rt.select_many(batch, models=POOL, cost_weight=0.5)
        result[f"threads_{threads}"]["batched_prompts_per_s"] = len(batch) / (time.perf_counter() - a)
    result["cuts"] = cut_times(artifacts, texts)
    result["tokens_median"] = float(np.median(lengths))
    result["rss_mib_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result["commit"] = commit.stdout.strip()
    result["artifacts"] = str(artifacts) if artifacts else "shipped"
    result["embedder_kind"] = rt.embedder.kind
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"latency-{artifacts.name}.json" if artifacts else "latency.json"
    (out / name).write_text(json.dumps(result, indent=1))
    print(
        f"import router: {result['import_router_s'] * 1e3:.0f} ms; Router.load: {result['load_s'] * 1e3:.0f} ms; "
        f"RSS loaded {result['rss_mib_loaded']:.0f} MiB, peak {result['rss_mib_peak']:.0f} MiB; "
        f"median prompt {result['tokens_median']:.0f} word pieces"
    )
    print("| threads | prompts | p50 ms | p90 ms | p99 ms | embedder p50 ms | batched prompts/s |")
    print("|---|---|---|---|---|---|---|")
    for th in (1, 2):
        r = result[f"threads_{th}"]
        for name, key in (
            ("shared data, all", "all"),
            ("≤ 32 word pieces", "prompts_le_32_tokens"),
            ("512-token prompt", "prompt_512_tokens"),
        ):
            print(
                f"| {th} | {name} | {r[key]['p50_ms']:.2f} | {r[key]['p90_ms']:.2f} | {r[key]['p99_ms']:.2f} | "
                f"{r['embed_only']['p50_ms']:.2f} | {r['batched_prompts_per_s']:.0f} |"
            )
    print("\n| cut (word pieces), 1 thread | p50 ms | p90 ms | p50 / the 64-piece cut's |")
    print("|---|---|---|---|")
    for cut, r in result["cuts"].items():
        print(f"| {cut} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p50_ratio']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

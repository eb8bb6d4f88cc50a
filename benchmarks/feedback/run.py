"""Simulated drift: does the router move traffic away from a model whose answers got worse, and back?

    python benchmarks/feedback/run.py [--requests 900] [--drop 200] [--recover 550] [--seed 0]

Starts one fake upstream (tests/service/fake_upstream.py) serving gpt-4o, gpt-4o-mini and
claude-3-haiku, and two gateways on loopback: one learning from feedback (the defaults: feedback
shift on, 2 % exploration) and one with PUREAI_FEEDBACK_LEARNING=false. Each gets the same
sequence of /v1/router requests (cost_weight 0, the three models, prompts from a fixed list). Before
each request the fake upstream is scripted with one answer per model, "GOOD" or "BROKEN", drawn
from the model's true quality at that moment: gpt-4o 0.90, dropping to 0.35 at request `--drop` and
back to 0.90 at `--recover`; gpt-4o-mini 0.80; claude-3-haiku 0.70. The client scores each answer
1 (GOOD) or 0 (BROKEN) and sends it to POST /v1/feedback.

Prints the share of traffic per model and the mean score per window of 50 requests, for both
gateways; writes results/feedback.json and results/feedback.png (share of gpt-4o and mean score
over time). The numbers that matter: requests after the drop until gpt-4o's share of a 20-request
window falls under 20 %, the mean score between drop and recovery with and without learning, and
gpt-4o's share after it recovered.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.service.fake_upstream import FakeUpstream  # noqa: E402
from tests.service.gateway_server import Gateway, catalogue  # noqa: E402

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-haiku")
WINDOW = 50
PROMPTS = [
    "Explain why the sky is blue to a ten-year-old.",
    "Summarise the causes of the French Revolution in three sentences.",
    "Write a short, friendly email declining a meeting invitation.",
    "What are the main differences between TCP and UDP?",
    "Give me three ideas for a vegetarian dinner.",
    "Translate 'Where is the train station?' into Spanish and German.",
    "How does compound interest work? Give an example.",
    "Write a limerick about a cat who loves the rain.",
    "What should I pack for a weekend hiking trip?",
    "Describe the water cycle for a school presentation.",
    "Suggest a name for a coffee shop run by two retired teachers.",
    "What is the difference between weather and climate?",
]


def quality(model: str, t: int, drop: int, recover: int) -> float:
    if model == "gpt-4o":
        return 0.35 if drop <= t < recover else 0.90
    return {"gpt-4o-mini": 0.80, "claude-3-haiku": 0.70}[model]


def run(gw: Gateway, upstream: FakeUpstream, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The request sequence against one gateway; per request: model, score, explored."""
    key = gw.new_key(tenant="drift", name="feedback benchmark")
    draws = random.Random(args.seed)  # the same answers' quality for both gateways
    rows = []
    for t in range(args.requests):
        upstream.reset()
        upstream.script(
            *(
                {
                    "model": m,
                    "content": "GOOD"
                    if draws.random() < quality(m, t, args.drop, args.recover)
                    else "BROKEN",
                }
                for m in MODELS
            )
        )
        body = {
            "messages": [{"role": "user", "content": PROMPTS[t % len(PROMPTS)]}],
            "models": list(MODELS),
            "cost_weight": 0.0,
        }
        r = gw.http.post("/v1/router", headers={"x-api-key": key}, json=body)
        r.raise_for_status()
        answer = r.json()
        score = 1.0 if answer["choices"][0]["message"]["content"].startswith("GOOD") else 0.0
        f = gw.http.post(
            "/v1/feedback", headers={"x-api-key": key}, json={"request_id": answer["id"], "score": score}
        )
        f.raise_for_status()
        rows.append({"model": answer["model"], "score": score})
    return rows


def windows(rows: list[dict[str, Any]], size: int) -> Iterator[dict[str, Any]]:
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        share = {m: sum(r["model"] == m for r in part) / len(part) for m in MODELS}
        yield {"start": start, "share": share, "mean_score": sum(r["score"] for r in part) / len(part)}


def shifted_after(rows: list[dict[str, Any]], drop: int, width: int = 20) -> int | None:
    """Requests after the drop until gpt-4o's share of the last `width` falls under 20 %."""
    for t in range(drop + width, len(rows) + 1):
        if sum(r["model"] == "gpt-4o" for r in rows[t - width : t]) < 0.2 * width:
            return t - drop
    return None


def mean(rows: list[dict[str, Any]]) -> float:
    return sum(r["score"] for r in rows) / max(len(rows), 1)


def summary(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    drifted = rows[args.drop : args.recover]
    recovered = rows[args.recover :]
    return {
        "requests_to_shift": shifted_after(rows, args.drop),
        "mean_score_before_drop": round(mean(rows[: args.drop]), 3),
        "mean_score_while_drifted": round(mean(drifted), 3),
        "gpt-4o_share_while_drifted": round(
            sum(r["model"] == "gpt-4o" for r in drifted) / max(len(drifted), 1), 3
        ),
        "gpt-4o_share_after_recovery": round(
            sum(r["model"] == "gpt-4o" for r in recovered) / max(len(recovered), 1), 3
        ),
        "mean_score_after_recovery": round(mean(recovered), 3),
        "windows": list(windows(rows, WINDOW)),
    }


def plot(results: dict[str, dict[str, Any]], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name, res in results.items():
        xs = [w["start"] + WINDOW / 2 for w in res["windows"]]
        top.plot(xs, [w["share"]["gpt-4o"] for w in res["windows"]], marker="o", label=f"gpt-4o, {name}")
        if name == "learning":
            for m in MODELS[1:]:
                top.plot(xs, [w["share"][m] for w in res["windows"]], linestyle="--", label=f"{m}, {name}")
        bottom.plot(xs, [w["mean_score"] for w in res["windows"]], marker="o", label=name)
    for ax in (top, bottom):
        ax.axvspan(args.drop, args.recover, color="tab:red", alpha=0.08)
        ax.legend(fontsize=8)
    top.set_ylabel(f"share of traffic ({WINDOW}-request windows)")
    bottom.set_ylabel("mean feedback score")
    bottom.set_xlabel("request (shaded: gpt-4o's upstream answers badly)")
    fig.suptitle("Traffic follows feedback: gpt-4o's quality drops from 0.90 to 0.35 and recovers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=900)
    parser.add_argument("--drop", type=int, default=200)
    parser.add_argument("--recover", type=int, default=550)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 0 < args.drop < args.recover <= args.requests:
        parser.error("need 0 < --drop < --recover <= --requests")

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream.start("drift") as upstream:
        cat = Path(tmp) / "catalogue.toml"
        cat.write_text(catalogue(upstream.url, upstream.url))
        for name, learning in (("learning", "true"), ("no learning", "false")):
            env = {
                "PUREAI_CATALOGUE": str(cat),
                "PUREAI_DATABASE_URL": str(Path(tmp) / f"{learning}.db"),
                "PUREAI_FEEDBACK_LEARNING": learning,
                "PUREAI_EXPLORE_SEED": str(args.seed),
                "PUREAI_LOG_LEVEL": "warning",
                "TEST_OPENAI_KEY": "sk-drift",
                "TEST_GROQ_KEY": "sk-drift",
            }
            started = time.time()
            with Gateway.start(env) as gw:
                rows = run(gw, upstream, args)
            results[name] = summary(rows, args)
            print(f"{name}: {args.requests} requests in {time.time() - started:.0f} s")

    print("\nshare of traffic and mean score per window; left: learning, right: no learning")
    print(f"{'window':>8} " + " ".join(f"{m:>7}" for _ in results for m in ("4o", "mini", "haiku", "score")))
    for i in range(len(results["learning"]["windows"])):
        cells = []
        for res in results.values():
            w = res["windows"][i]
            cells += [f"{w['share'][m]:6.0%}" for m in MODELS] + [f"{w['mean_score']:6.2f}"]
        print(f"{results['learning']['windows'][i]['start']:>8} " + " ".join(f"{c:>7}" for c in cells))
    print()
    for name, res in results.items():
        print(name, {k: v for k, v in res.items() if k != "windows"})

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    record = {"commit": commit.stdout.strip(), "args": vars(args), "results": results}
    (out / "feedback.json").write_text(json.dumps(record, indent=1) + "\n")
    plot(results, args, out / "feedback.png")
    print(f"\nwrote {out / 'feedback.json'} and {out / 'feedback.png'}")


if __name__ == "__main__":
    main()

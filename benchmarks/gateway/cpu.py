"""CPU per request and per streamed event of our gateway alone, for trees of the code side by side.

    python benchmarks/gateway/cpu.py [--tree DIR ...] [--repeats 2] [--seconds 3]

Each tree (default: this checkout; another, e.g. `git archive <commit> | tar -x -C DIR`, runs with
PYTHONPATH=DIR) gets one `pureai serve` worker on the fake upstream (upstream.py), driven by `wrk`:
non-streamed requests at c=8, streams of 10 and of 200 events at c=4. CPU is utime+stime of the
server's processes from /proc, per request; per event, the slope between the two stream lengths.
The trees run alternately, `--repeats` times, and the medians are reported: CPU time, unlike
latency, stays comparable on a shared, busy machine. Prints a table and writes results/cpu.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare as C  # noqa: E402

from tests.service.gateway_server import Gateway, catalogue, free_port  # noqa: E402


def measure(tree: Path | None, seconds: int, rounds: int, tmp: Path) -> dict[str, list[float]]:
    """CPU ms per request of one gateway on `tree` (None: this checkout), `rounds` runs of each load."""
    env: dict[str, str | None] = {
        "PUREAI_CATALOGUE": str(tmp / "catalogue.toml"), "PUREAI_DATABASE_URL": str(tmp / f"{id(tree)}.db"),
        "TEST_OPENAI_KEY": "sk-bench", "TEST_GROQ_KEY": "sk-bench", "PUREAI_LOG_LEVEL": "warning",
        **({"PYTHONPATH": str(tree)} if tree else {}),
    }  # fmt: skip
    gw = Gateway.start(env, workers=1)
    try:
        key = gw.new_key(tenant="bench")
        server = {"pid": gw.process.pid}
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        url = gw.url + "/v1/chat/completions"
        loads = {"request": (C.body(False), 8), "stream_10": (C.body(True, events=10), 4),
                 "stream_200": (C.body(True, events=200), 4)}  # fmt: skip
        for payload, conns in loads.values():  # warm: first calls import and connect
            C.wrk(url, headers, payload, conns, 1, tmp)
        out: dict[str, list[float]] = {name: [] for name in loads}
        for _ in range(rounds):
            for name, (payload, conns) in loads.items():
                run, cpu = C.measured(
                    server, lambda p=payload, c=conns: C.wrk(url, headers, p, c, seconds, tmp)
                )
                if run["errors"]:
                    raise RuntimeError(f"{tree or 'this checkout'}: {run['errors']} errors in {name}")
                out[name].append(cpu * 1000 / max(run["requests"], 1))
        return out
    finally:
        gw.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", type=Path, action="append", help="a tree of the code (default: this checkout)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "cpu.json")
    args = ap.parse_args()
    trees: list[Path | None] = list(args.tree or [None])
    tmp = Path(tempfile.mkdtemp(prefix="pureai-cpu-"))
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(HERE / "upstream.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/v1"
        C.wait_ready(base + "/models", upstream, 30, tmp / "upstream.log")
        (tmp / "catalogue.toml").write_text(catalogue(base, base))
        runs: dict[str, dict[str, list[float]]] = {str(t or "."): {} for t in trees}
        for _ in range(args.repeats):
            for tree in trees:
                for name, got in measure(tree, args.seconds, 2, tmp).items():
                    runs[str(tree or ".")].setdefault(name, []).extend(got)
    finally:
        upstream.terminate()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=C.ROOT, capture_output=True, text=True
    )
    result: dict[str, Any] = {"commit": commit.stdout.strip(), "trees": {}}
    print(
        "| tree | CPU / request (ms) | CPU / 10-event stream (ms) | CPU / 200-event stream (ms) | CPU / event (ms) |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, values in runs.items():
        m = {name: statistics.median(v) for name, v in values.items()}
        m["event"] = (m["stream_200"] - m["stream_10"]) / 190
        result["trees"][label] = {"median_ms": m, "runs_ms": values}
        print(
            f"| {label} | {m['request']:.3f} | {m['stream_10']:.2f} | {m['stream_200']:.2f} | {m['event']:.4f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

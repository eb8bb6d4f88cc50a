"""Keep-alive latency of the gateway with 1 and with 2 uvicorn workers, side by side.

    python benchmarks/gateway/workers.py [--rounds 20] [--per-round 25]

Starts one fake upstream (tests/service/fake_upstream.py) and two gateways on loopback — one with
`--workers 1`, one with `--workers 2` — then, over one keep-alive connection per gateway, sends
requests in interleaved rounds (a round to one, then the same round to the other) so both see the
same machine load: GET /v1/models (auth + JSON), POST /v1/router decision-only (a routing decision)
and POST /v1/chat/completions (through litellm to the fake upstream). Prints a table of p50/p99 per
endpoint and the ratio 2 workers / 1 worker, and writes results/workers.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.service.fake_upstream import FakeUpstream  # noqa: E402
from tests.service.gateway_server import Gateway, catalogue  # noqa: E402

ENDPOINTS = ("models", "router", "chat")


def one(gw: Gateway, key: str, what: str, i: int) -> float:
    h = {"x-api-key": key}
    t = time.perf_counter()
    if what == "models":
        r = gw.http.get("/v1/models", headers=h)
    elif what == "router":
        body = {"messages": [{"role": "user", "content": f"What is {i} times {i + 7}?"}], "execute": False}
        r = gw.http.post("/v1/router", headers=h, json=body)
    else:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say hello #{i}"}]}
        r = gw.http.post("/v1/chat/completions", headers=h, json=body)
    elapsed = (time.perf_counter() - t) * 1000
    assert r.status_code == 200, r.text
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=25)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pureai-bench-"))
    upstream = FakeUpstream.start("bench")
    cat = tmp / "catalogue.toml"
    cat.write_text(catalogue(upstream.url, upstream.url))
    gateways: dict[int, Gateway] = {}
    try:
        for workers in (1, 2):
            env = {"PUREAI_CATALOGUE": str(cat), "PUREAI_DATABASE_URL": str(tmp / f"w{workers}.db"),
                   "TEST_OPENAI_KEY": "sk-bench", "TEST_GROQ_KEY": "sk-bench", "PUREAI_LOG_LEVEL": "warning"}  # fmt: skip
            gateways[workers] = Gateway.start(env, workers=workers)
        keys = {w: gw.new_key(tenant="bench") for w, gw in gateways.items()}
        times: dict[tuple[int, str], list[float]] = {(w, e): [] for w in gateways for e in ENDPOINTS}
        for w, gw in gateways.items():  # warm up every worker's connection pools and caches
            for e in ENDPOINTS:
                for i in range(20):
                    one(gw, keys[w], e, -i)
        i = 0
        for _ in range(args.rounds):
            for e in ENDPOINTS:
                for w, gw in gateways.items():
                    for _ in range(args.per_round):
                        times[(w, e)].append(one(gw, keys[w], e, i))
                        i += 1
        rows = []
        for e in ENDPOINTS:
            p = {w: (float(np.percentile(times[(w, e)], 50)), float(np.percentile(times[(w, e)], 99))) for w in gateways}
            rows.append({"endpoint": e, "n": len(times[(1, e)]), "workers_1_p50_ms": p[1][0], "workers_1_p99_ms": p[1][1],
                         "workers_2_p50_ms": p[2][0], "workers_2_p99_ms": p[2][1], "p50_ratio_2_over_1": p[2][0] / p[1][0]})  # fmt: skip
    finally:
        for gw in gateways.values():
            gw.stop()
        upstream.stop()
    print(f"{'endpoint':10} {'n':>5} {'1w p50':>8} {'1w p99':>8} {'2w p50':>8} {'2w p99':>8} {'2w/1w':>6}")
    for r in rows:
        print(f"{r['endpoint']:10} {r['n']:5d} {r['workers_1_p50_ms']:8.2f} {r['workers_1_p99_ms']:8.2f} "
              f"{r['workers_2_p50_ms']:8.2f} {r['workers_2_p99_ms']:8.2f} {r['p50_ratio_2_over_1']:6.2f}")  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    out = {"commit": commit, "rounds": args.rounds, "per_round": args.per_round, "rows": rows}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "workers.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

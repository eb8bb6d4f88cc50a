"""Reliability case 26: does refusing a wrong key take the same time whatever is wrong with it?

    python benchmarks/security/key_timing.py [--trials 10000]

Starts a gateway (`pureai serve`: one worker, SQLite store) on loopback, creates one tenant key, and
sends GET /v1/models with five kinds of wrong key over one keep-alive connection, interleaved in
shuffled rounds (one of each kind per round) so that every kind sees the same machine load:

    near       the real key's id with one character of its secret changed
    id_only    the real key's id with a fresh random secret: near vs id_only is the classic timing
               attack (does a refusal take longer the more of the secret is right?)
    far        a fresh random key of the right shape each time: an id that does not exist
    far_same   one random key of the right shape, sent every time
    malformed  a random string as long as a key, not shaped like one

Every answer must be 401 `invalid_api_key`. Prints each kind's median and p90 in microseconds, the
difference of its median from near's with a bootstrap 95% interval, and an A/A noise floor (near's
even trials against its odd trials); with /metrics, also the store reads per trial of each kind.
Writes results/key_timing.json with the commit. Timing is compared within the run, never across.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.service.gateway_server import Gateway, catalogue  # noqa: E402

KINDS = ("near", "id_only", "far", "far_same", "malformed")
URLSAFE = string.ascii_letters + string.digits + "-_"


def near_miss(key: str, rng: random.Random) -> str:
    """`key` with one character of its secret (after `pk-<id>-`) replaced by another."""
    head = len("pk-") + 12 + 1
    i = rng.randrange(head, len(key))
    return key[:i] + rng.choice([c for c in URLSAFE if c != key[i]]) + key[i + 1 :]


def far_miss(length: int) -> str:
    secret = secrets.token_urlsafe(length)[: length - len("pk-") - 13]
    return f"pk-{secrets.token_hex(6)}-{secret}"


def malformed(length: int, rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(length))


def store_reads(gw: Gateway) -> float | None:
    r = gw.http.get("/metrics")
    if r.status_code != 200:
        return None
    for line in r.text.splitlines():
        if line.startswith('pureai_key_lookups_total{source="store"}'):
            return float(line.split()[-1])
    return None


def bootstrap_diff(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n: int = 1000
) -> tuple[float, float]:
    """95% interval of median(b) - median(a)."""
    ia = rng.integers(0, len(a), (n, len(a)))
    ib = rng.integers(0, len(b), (n, len(b)))
    diffs = np.median(b[ib], axis=1) - np.median(a[ia], axis=1)
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10_000, help="per kind")
    ap.add_argument("--warmup", type=int, default=500, help="rounds before measuring")
    args = ap.parse_args()
    rng = random.Random(0)
    tmp = Path(tempfile.mkdtemp(prefix="pureai-keytiming-"))
    cat = tmp / "catalogue.toml"
    cat.write_text(catalogue("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"))  # no upstream is called
    env = {
        "PUREAI_CATALOGUE": str(cat),
        "PUREAI_DATABASE_URL": str(tmp / "keys.db"),
        "PUREAI_LOG_LEVEL": "warning",
    }
    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    reads: dict[str, list[float]] = {k: [] for k in KINDS}
    with Gateway.start(env) as gw:
        for i in range(200):  # a store with more than one key, as in use
            gw.new_key(tenant=f"t{i % 7}")
        key = gw.new_key(tenant="bench")
        assert gw.http.get("/v1/models", headers={"x-api-key": key}).status_code == 200
        same = far_miss(len(key))

        def wrong(kind: str) -> str:
            if kind == "near":
                return near_miss(key, rng)
            if kind == "id_only":
                return key[: len("pk-") + 13] + far_miss(len(key))[len("pk-") + 13 :]
            if kind == "far":
                return far_miss(len(key))
            if kind == "far_same":
                return same
            return malformed(len(key), rng)

        def one(kind: str) -> float:
            headers = {"x-api-key": wrong(kind)}
            t = time.perf_counter_ns()
            r = gw.http.get("/v1/models", headers=headers)
            elapsed = (time.perf_counter_ns() - t) / 1000.0
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", r.text
            return elapsed

        order = list(KINDS)
        for _ in range(args.warmup):
            for kind in order:
                one(kind)
        for kind in KINDS:  # store reads per trial, measured apart from the timing
            before = store_reads(gw)
            for _ in range(100):
                one(kind)
            after = store_reads(gw)
            if before is not None and after is not None:
                reads[kind].append((after - before) / 100)
        for _ in range(args.trials):
            rng.shuffle(order)
            for kind in order:
                samples[kind].append(one(kind))
    nrng = np.random.default_rng(0)
    arr = {k: np.array(v) for k, v in samples.items()}
    near = arr["near"]
    aa = float(np.median(near[1::2]) - np.median(near[0::2]))
    aa_ci = bootstrap_diff(near[0::2], near[1::2], nrng)
    rows = []
    for kind in KINDS:
        x = arr[kind]
        lo, hi = bootstrap_diff(near, x, nrng) if kind != "near" else (0.0, 0.0)
        rows.append({
            "kind": kind, "n": len(x), "median_us": float(np.median(x)), "p90_us": float(np.percentile(x, 90)),
            "diff_from_near_us": float(np.median(x) - np.median(near)), "diff_ci95_us": [lo, hi],
            "store_reads_per_trial": reads[kind][0] if reads[kind] else None,
        })  # fmt: skip
    print(
        f"{'kind':10} {'n':>6} {'median µs':>10} {'p90 µs':>9} {'Δ median':>9} {'95% interval':>18} {'reads':>6}"
    )
    for r in rows:
        ci = f"[{r['diff_ci95_us'][0]:+.1f}, {r['diff_ci95_us'][1]:+.1f}]" if r["kind"] != "near" else "-"
        reads_s = f"{r['store_reads_per_trial']:.2f}" if r["store_reads_per_trial"] is not None else "-"
        print(f"{r['kind']:10} {r['n']:6d} {r['median_us']:10.1f} {r['p90_us']:9.1f} "
              f"{r['diff_from_near_us']:+9.1f} {ci:>18} {reads_s:>6}")  # fmt: skip
    print(
        f"\nA/A noise floor (near, odd - even trials): {aa:+.1f} µs, 95% interval [{aa_ci[0]:+.1f}, {aa_ci[1]:+.1f}]"
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    out: dict[str, Any] = {"commit": commit, "trials_per_kind": args.trials, "endpoint": "GET /v1/models",
                           "rows": rows, "aa_noise_us": aa, "aa_noise_ci95_us": list(aa_ci)}  # fmt: skip
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "key_timing.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Our gateway side by side with LiteLLM's proxy, on the same fake upstream and the same load.

    python benchmarks/gateway/compare.py [--quick] [--workers 2]

Starts a fast fake upstream (upstream.py: raw asyncio on uvloop, canned JSON and SSE with usage),
our server (`pureai serve`) and LiteLLM's proxy (`litellm[proxy]==1.108.7` in its own venv,
benchmarks/gateway/.venv-litellm, made once and reused: no database, every callback off, its master
key set, `--num_workers` equal to ours), all on loopback, then drives both with the same load in
interleaved rounds (a round to one, then the same round to the other, the order alternating):

- added latency at c=1 (load.py, an aiohttp client in its own process): p50/p99 of a non-streamed
  request and of a stream's first content event (TTFT), each minus the same request sent straight to
  the upstream in the same rounds;
- CPU per request and per streamed event: utime+stime of every process of a server (the parent and
  its workers) read from /proc before and after each `wrk` run, divided by the requests wrk completed
  (per event: the slope between streams of 10 and of 200 content events, so a request's fixed cost
  is not counted as events); CPU time, unlike wall time, is robust to a noisy machine;
- requests/s at p99 <= 50 ms: `wrk` (Debian's package) at rising concurrency, the best level whose p99
  stays within 50 ms;
- stall-free streams per core: N concurrent streams paced at one event per 50 ms; a level passes when
  every stream completes with its first event within 1 s and no gap over 250 ms; divided by workers;
- RSS of each server's processes after the load;
- `/v1/router` decision-only (ours only): c=1 total, minus the router's own time in the gateway (its
  `Server-Timing: decide` header) and the loopback HTTP floor (the direct upstream's round trip),
  request by request; beside it, `select()` on the same prompts timed in this process, back to back.

Prints a Markdown table and writes results/compare.json (with the commit). Ratios are within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.service.gateway_server import Gateway, catalogue, free_port  # noqa: E402

LITELLM = "litellm[proxy]==1.108.7"  # 1.110.2 (ours) needs litellm-proxy==1.110.2, not on PyPI
MASTER_KEY = "sk-bench-litellm-master"
MODEL = "gpt-4o-mini"
CLK = os.sysconf("SC_CLK_TCK")
PACE_MS, PACE_EVENTS, STALL_MS, STALL_TTFT_MS = 50, 40, 250, 1000


# -- processes ------------------------------------------------------------------------------------
def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_s(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK


def rss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited with {proc.returncode}\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}: not ready within {timeout}s\n{log.read_text()[-3000:]}")


def litellm_venv(path: Path) -> Path:
    """The venv with LiteLLM's proxy: made once, reused when present."""
    exe = path / "bin" / "litellm"
    if not exe.exists():
        print(f"installing {LITELLM} into {path} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "-q", LITELLM], check=True)
    return exe


def start_litellm(exe: Path, upstream: str, workers: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(
        f"""model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/{MODEL}
      api_base: {upstream}
      api_key: sk-bench
general_settings: {{}}
litellm_settings:
  callbacks: []
  success_callback: []
  failure_callback: []
  drop_params: true
  set_verbose: false
  num_retries: 0
"""
    )
    env = {**os.environ, "LITELLM_MASTER_KEY": MASTER_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}  # fmt: skip
    for name in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL"):
        env.pop(name, None)
    log = tmp / "litellm.log"
    command = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
               "--num_workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/health/liveliness", proc, 180, log)
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            for p in reversed(tree(proc.pid)):
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
            proc.wait()


# -- load ---------------------------------------------------------------------------------------
def body(stream: bool, text: str = "Say hello", events: int | None = None, pace: int | None = None) -> str:
    if events is not None:
        text += f" events={events}"
    if pace is not None:
        text += f" pace={pace}"
    data: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    if stream:
        data["stream"] = True
    return json.dumps(data)


def load(spec: dict[str, Any]) -> Any:
    out = subprocess.run(
        [sys.executable, str(HERE / "load.py"), json.dumps(spec)], capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout)


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(
    url: str, headers: dict[str, str], payload: str, conns: int, seconds: float, tmp: Path
) -> dict[str, Any]:
    script = tmp / "wrk.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(payload)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    m = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": int(m.group(1)) if m else 0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": float(p99.group(1)) * UNITS[p99.group(2)] if p99 else float("nan"),
        "errors": (int(bad.group(1)) if bad else 0) + (sum(map(int, sock.groups())) if sock else 0),
    }


def measured(server: dict[str, Any], fn: Any) -> tuple[Any, float]:
    """fn()'s result and the CPU seconds the server's processes spent meanwhile."""
    pids = tree(server["pid"])
    before = cpu_s(pids)
    result = fn()
    return result, cpu_s(pids) - before


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


# -- the run ------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer rounds and shorter runs (~3 minutes)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--litellm-venv", type=Path, default=HERE / ".venv-litellm")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "compare.json")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    quick = args.quick
    rounds = 4 if quick else 10
    per_round = 25 if quick else 50
    seconds = 2 if quick else 4
    levels = (1, 4, 16, 32, 64) if quick else (1, 2, 4, 8, 16, 32, 64, 128)
    stream_levels = (64, 128, 256, 512, 1024) if quick else (32, 64, 128, 256, 384, 512, 768, 1024)
    exe = litellm_venv(args.litellm_venv)

    tmp = Path(tempfile.mkdtemp(prefix="pureai-compare-"))
    up_port = free_port()
    up_log = tmp / "upstream.log"
    upstream = subprocess.Popen(
        [sys.executable, str(HERE / "upstream.py"), "--port", str(up_port)],
        stdout=up_log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    up = f"http://127.0.0.1:{up_port}/v1"
    procs: list[subprocess.Popen[bytes]] = [upstream]
    gw: Gateway | None = None
    try:
        wait_ready(up + "/models", upstream, 30, up_log)
        cat = tmp / "catalogue.toml"
        cat.write_text(catalogue(up, up))
        env = {"PUREAI_CATALOGUE": str(cat), "PUREAI_DATABASE_URL": str(tmp / "gw.db"),
               "TEST_OPENAI_KEY": "sk-bench", "TEST_GROQ_KEY": "sk-bench", "PUREAI_LOG_LEVEL": "warning"}  # fmt: skip
        gw = Gateway.start(env, workers=args.workers)
        key = gw.new_key(tenant="bench")
        lproc, lurl = start_litellm(exe, up, args.workers, tmp)
        procs.append(lproc)
        servers = {
            "pureai": {"pid": gw.process.pid, "url": gw.url, "headers": {"authorization": f"Bearer {key}"}},
            "litellm": {"pid": lproc.pid, "url": lurl, "headers": {"authorization": f"Bearer {MASTER_KEY}"}},
        }
        for s in servers.values():
            s["headers"]["content-type"] = "application/json"
        names = list(servers)
        direct = {
            "pid": upstream.pid,
            "url": up.removesuffix("/v1"),
            "headers": {"content-type": "application/json"},
        }
        result: dict[str, Any] = {"quick": quick, "workers": args.workers, "litellm": LITELLM}

        # 1. added latency at c=1
        print("latency at c=1 ...", flush=True)
        lat: dict[str, Any] = {}
        for stream in (False, True):
            targets = [
                {"name": n, "url": s["url"] + "/v1/chat/completions", "headers": s["headers"],
                 "body": body(stream), "stream": stream}
                for n, s in [("direct", direct), *servers.items()]
            ]  # fmt: skip
            raw = load({"mode": "latency", "targets": targets, "rounds": rounds, "per_round": per_round})
            metric = "ttft" if stream else "total"
            base = raw["direct"][metric]
            lat["stream" if stream else "json"] = {
                n: {"p50_ms": pct(raw[n][metric], 50), "p99_ms": pct(raw[n][metric], 99),
                    "added_p50_ms": pct(raw[n][metric], 50) - pct(base, 50),
                    "added_p99_ms": pct(raw[n][metric], 99) - pct(base, 99)}
                for n in raw
            }  # fmt: skip
        result["latency"] = lat

        # 2. throughput and CPU per request (wrk, rising concurrency, interleaved)
        print("throughput and CPU per request ...", flush=True)
        sweep: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for i, c in enumerate(levels):
            for n in names if i % 2 == 0 else reversed(names):
                s = servers[n]
                run, cpu = measured(s, lambda s=s, c=c: wrk(s["url"] + "/v1/chat/completions", s["headers"],
                                                              body(False), c, seconds, tmp))  # fmt: skip
                run.update(conns=c, cpu_ms_per_request=cpu * 1000 / max(run["requests"], 1))
                sweep[n].append(run)
        result["sweep"] = sweep

        # 3. CPU per streamed event: the slope between short and long streams
        print("CPU per streamed event ...", flush=True)
        per_event: dict[str, dict[str, list[float]]] = {n: {"10": [], "200": []} for n in names}
        for r in range(2 if quick else 3):
            for events in (10, 200):
                for n in names if r % 2 == 0 else reversed(names):
                    s = servers[n]
                    run, cpu = measured(s, lambda s=s, e=events: wrk(s["url"] + "/v1/chat/completions",
                                        s["headers"], body(True, events=e), 4, seconds, tmp))  # fmt: skip
                    if run["errors"]:
                        print(f"  {n}: {run['errors']} errors in streams of {events}", flush=True)
                    per_event[n][str(events)].append(cpu * 1000 / max(run["requests"], 1))
        result["stream_cpu"] = {
            n: {"cpu_ms_per_stream_10": statistics.median(v["10"]),
                "cpu_ms_per_stream_200": statistics.median(v["200"]),
                "cpu_ms_per_event": (statistics.median(v["200"]) - statistics.median(v["10"])) / 190}
            for n, v in per_event.items()
        }  # fmt: skip

        # 4. stall-free concurrent streams
        print("concurrent paced streams ...", flush=True)
        stalls: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        alive = set(names)
        for count in stream_levels:
            for n in [m for m in names if m in alive]:
                s = servers[n]
                target = {"url": s["url"] + "/v1/chat/completions", "headers": s["headers"],
                          "body": body(True, events=PACE_EVENTS, pace=PACE_MS)}  # fmt: skip
                raw, cpu = measured(
                    s, lambda t=target, k=count: load({"mode": "streams", "target": t, "count": k})
                )
                st = raw["streams"]
                bad = [
                    x for x in st if not x["ok"] or x["max_gap_ms"] > STALL_MS or x["ttft_ms"] > STALL_TTFT_MS
                ]
                stalls[n].append({
                    "streams": count, "stalled": len(bad), "failed": sum(not x["ok"] for x in st),
                    "max_gap_p99_ms": pct([x["max_gap_ms"] for x in st], 99),
                    "ttft_p99_ms": pct([x["ttft_ms"] for x in st], 99), "cpu_s": cpu,
                })  # fmt: skip
                if bad:
                    alive.discard(n)
            if not alive:
                break
        result["streams"] = stalls
        result["rss_mb"] = {n: rss_mb(tree(s["pid"])) for n, s in servers.items()}

        # 5. /v1/router decision-only (ours)
        print("/v1/router decision-only ...", flush=True)
        result["router"] = router_overhead(gw, key, cat, direct, rounds, per_round)
    finally:
        if gw is not None:
            gw.stop()
        for p in reversed(procs):
            stop(p)
    result["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    summary = summarise(result)
    result["summary"] = summary
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(summary, result))
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


PROMPTS = [
    "What is {i} times {j}?",
    "Write a Python function that returns the {i}th Fibonacci number modulo {j}.",
    "Summarise in one sentence why the sky is blue (variant {i}-{j}).",
    "Translate 'good morning number {i}' into French and German; then count to {j}.",
]


def router_overhead(
    gw: Gateway, key: str, cat: Path, direct: dict[str, Any], rounds: int, per_round: int
) -> dict[str, Any]:
    """/v1/router decision-only at c=1 (distinct prompts, so no cache answers), the router's own time
    in the gateway (Server-Timing), select() on the same prompts in this process, and the loopback
    floor (the direct upstream)."""
    h = {"authorization": f"Bearer {key}"}
    n = rounds * per_round
    msgs = [
        [{"role": "user", "content": PROMPTS[i % len(PROMPTS)].format(i=i, j=i * 7 + 3)}] for i in range(n)
    ]
    floor: list[float] = []
    total: list[float] = []
    served: list[float] = []  # the router's own time in the gateway (its Server-Timing header)
    with (
        httpx.Client(base_url=gw.url, timeout=30, trust_env=False) as c,
        httpx.Client(base_url=direct["url"], timeout=30, trust_env=False) as d,
    ):
        for i in range(20):
            c.post(
                "/v1/router",
                headers=h,
                json={"messages": [{"role": "user", "content": f"warm {i}"}], "execute": False},
            )
            d.post("/v1/chat/completions", content=body(False))
        for i, m in enumerate(msgs):
            t = time.perf_counter()
            r = c.post("/v1/router", headers=h, json={"messages": m, "execute": False})
            total.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
            served.append(float(r.headers["server-timing"].split("dur=")[1]))
            t = time.perf_counter()
            d.post("/v1/chat/completions", content=body(False))
            floor.append((time.perf_counter() - t) * 1000)
            pool = [e for e in r.json()["candidates"]]
            if i == 0:
                models = [e["model"] for e in pool]
    from models_registry import load_catalogue
    from router import Router

    router = Router.load(None, load_catalogue(cat), threads=1)
    for i in range(20):
        router.select(f"warm {i}", models, 0.5)
    model: list[float] = []
    for m in msgs:
        t = time.perf_counter()
        router.select(m, models, 0.5)
        model.append((time.perf_counter() - t) * 1000)
    beside = [t - m - f for t, m, f in zip(total, served, floor, strict=True)]
    return {
        "total_p50_ms": pct(total, 50), "total_p99_ms": pct(total, 99),
        "served_select_p50_ms": pct(served, 50), "select_p50_ms": pct(model, 50),
        "http_floor_p50_ms": pct(floor, 50), "beside_model_p50_ms": pct(beside, 50),
    }  # fmt: skip


def best_rps(sweep: list[dict[str, Any]]) -> tuple[float, int]:
    ok = [r for r in sweep if r["p99_ms"] <= 50 and not r["errors"]]
    best = max(ok, key=lambda r: r["rps"], default=None)
    return (best["rps"], best["conns"]) if best else (0.0, 0)


def summarise(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in ("pureai", "litellm"):
        rps, conns = best_rps(r["sweep"][n])
        c8 = min(r["sweep"][n], key=lambda x: abs(x["conns"] - 8))
        passing = [x["streams"] for x in r["streams"][n] if not x["stalled"]]
        out[n] = {
            "added_p50_ms": r["latency"]["json"][n]["added_p50_ms"],
            "added_p99_ms": r["latency"]["json"][n]["added_p99_ms"],
            "ttft_added_p50_ms": r["latency"]["stream"][n]["added_p50_ms"],
            "ttft_added_p99_ms": r["latency"]["stream"][n]["added_p99_ms"],
            "cpu_ms_per_request": c8["cpu_ms_per_request"],
            "cpu_ms_per_event": r["stream_cpu"][n]["cpu_ms_per_event"],
            "rps_p99_50ms": rps,
            "rps_conns": conns,
            "streams_per_core": (max(passing) if passing else 0) / r["workers"],
            "rss_mb": r["rss_mb"][n],
        }
    return out


ROWS = [
    # key, label, format, target: (kind, value) — "ratio" ours/litellm <= value, "abs" ours <= value, "min" ours >= value
    ("added_p50_ms", "added latency p50, non-streamed (ms)", "{:.2f}", ("ratio", 0.10)),
    ("added_p99_ms", "added latency p99, non-streamed (ms)", "{:.2f}", None),
    ("ttft_added_p50_ms", "TTFT added p50, streamed (ms)", "{:.2f}", ("ratio", 0.10)),
    ("ttft_added_p99_ms", "TTFT added p99, streamed (ms)", "{:.2f}", None),
    ("cpu_ms_per_request", "CPU per request at c=8 (ms)", "{:.3f}", ("ratio", 1 / 15)),
    ("cpu_ms_per_event", "CPU per streamed event (ms)", "{:.4f}", ("ratio", 1 / 30)),
    ("rps_p99_50ms", "requests/s at p99 <= 50 ms", "{:.0f}", ("min", 2000)),
    ("streams_per_core", "stall-free streams per core", "{:.0f}", ("min", 256)),
    ("rss_mb", "RSS after the load (MiB, all processes)", "{:.0f}", None),
]


def table(s: dict[str, Any], r: dict[str, Any]) -> str:
    lines = [
        f"workers: {r['workers']} each; {r['litellm']}; commit {r['commit']}"
        + (" (--quick)" if r["quick"] else ""),
        "",
        "| metric | pureai | LiteLLM proxy | pureai / LiteLLM | target | met |",
        "|---|---:|---:|---:|---|:-:|",
    ]
    for k, label, fmt, target in ROWS:
        a, b = s["pureai"][k], s["litellm"][k]
        ratio = a / b if b else float("nan")
        if target is None:
            goal, met = "", ""
        elif target[0] == "ratio":
            goal, met = f"<= {target[1]:.3g}x", "yes" if a > 0 and b > 0 and ratio <= target[1] else "no"
        else:
            goal, met = f">= {target[1]:g}", "yes" if a >= target[1] else "no"
        lines.append(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio:.3f} | {goal} | {met} |")
    ro = r["router"]
    met = "yes" if ro["beside_model_p50_ms"] <= 0.5 else "no"
    lines.append(
        f"| /v1/router decision-only p50: total {ro['total_p50_ms']:.2f} ms, select() in the gateway"
        f" {ro['served_select_p50_ms']:.2f} (back to back in one process {ro['select_p50_ms']:.2f}), loopback HTTP"
        f" {ro['http_floor_p50_ms']:.2f}; beside the model (total - select - loopback, per request)"
        f" | {ro['beside_model_p50_ms']:.2f} |"
        f" — | — | <= 0.5 ms | {met} |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

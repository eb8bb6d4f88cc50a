"""Soak the gateway under a steady mixed load and check that its memory plateaus (reliability case 35).

    python benchmarks/soak/run.py [--minutes 10] [--concurrency 16] [--interval 5] [--mix error_404=40]

Starts one fake upstream (tests/service/fake_upstream.py) and one gateway (`pureai serve --workers
1`, SQLite store in a temp dir) on loopback, creates a key without limits, and runs a load generator
in its own process (this file with `--generate`: asyncio + httpx.AsyncClient, `--concurrency`
clients) for `--minutes`. The mix (`MIX`): chat streamed and not, streams the client drops after two
frames, text completions on a chat model and on a `pureai/` custom deployment (streamed and not),
decision-only /v1/router calls on unique prompts with varied pools and cost weights (so the router's
feature and lambda-table caches fill and must evict), upstream 500s that fail over to the backup,
404 (a new unknown model name each time), 400 (invalid JSON), 401, and requests from freshly created
rate-limited keys; `--mix` changes weights, to look at one path. The generator resets the fake's
request log every few seconds, so the fake does not grow.

Every `--interval` seconds the parent samples the gateway process (VmRSS and RssAnon from
/proc/<pid>/status, open fds, threads) and the window's requests, unexpected outcomes, p50 and p99.
The plateau metric (as Busbar reports it): RSS growth over the second half of the run, in MiB and
MiB per 10k requests, and the slope of a least-squares line over the second half, compared with the
first half of the same run. Verdict "plateau" when the second half grows less than `PLATEAU_MIB` and
less than `PLATEAU_FRACTION` of RSS, "invalid" when over 1 % of the requests went wrong (see
`verdict`). Prints a table, writes results/soak.json (with the commit, and what the gateway ran) and
results/soak.png (RSS and requests over time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.service.fake_upstream import FakeUpstream  # noqa: E402
from tests.service.gateway_server import ADMIN_KEY, Gateway, catalogue  # noqa: E402

MIB = 1024 * 1024
PLATEAU_MIB = 5.0
PLATEAU_FRACTION = 0.02
"""A second half that grows less than both of these is a plateau. Why these: RSS of a CPython
process moves by a few MiB without any leak (pymalloc arenas and glibc heaps are returned only when
wholly free, and a burst of concurrent streams raises the high-water mark), so a bound much under
5 MiB would flag noise; and a real per-request leak shows far above it: at the ~15k requests a
10-minute run's second half serves here, 350 bytes kept per request is already 5 MiB."""
MAX_UNEXPECTED = 0.01
"""More unexpected outcomes than this share of the requests make the run invalid."""

# Scenario -> weight (out of 100). Expected status: 200 unless listed in EXPECTED.
MIX = {
    "chat": 20,
    "chat_stream": 12,
    "chat_stream_drop": 5,
    "text": 4,
    "text_stream": 3,
    "text_custom": 6,
    "text_custom_stream": 5,
    "router": 24,
    "router_execute": 2,
    "failover": 3,
    "failover_stream": 2,
    "error_404": 3,
    "error_400": 3,
    "error_401": 1,
    "new_key": 7,
}
EXPECTED = {"error_404": 404, "error_400": 400, "error_401": 401}
CHAT_MODELS = ("codestral-latest", "gpt-4o")
FAILOVER_MODEL = "gpt-4o-mini"  # the one model with a backup provider; only the failover scenarios call it
BACKUP_MODEL = "gpt-4o-mini-backup"  # its name at the backup, so that scripted 500s reach the primary only
POOL = ("gpt-4o-mini", "codestral-latest", "gpt-4o", "claude-3-haiku", "pureai/gemma-3-4b-it",
        "pureai/DeepSeek-R1-Distill-Llama-8B")  # fmt: skip
DROP_MODEL = "claude-3-haiku"  # only the dropped streams call it, so its scripted slow steps are theirs
SLOW_REPLY = " ".join(f"word{i}" for i in range(40))
VOCABULARY = ("sort list python function bug fix derive integral prove theorem write poem story email summarise "
         "article translate french extract names dates table compare explain quantum history rome sql query "
         "regex parse json recipe travel plan budget haiku limerick matrix eigenvalue probability dice "
         "recursion graph shortest path essay climate review contract clause")  # fmt: skip
WORDS = VOCABULARY.split()
TEMPLATES = ("Write a {w} that handles {w} and {w}", "What is {n} times {m}? Then {w} the {w}.",
             "Explain {w} to a child, with {w} and {w}", "Summarise this: {w} {w} {w} {w} {w} {w}",
             "Fix the {w} in my {w} code: def f{n}(x): return x * {m}", "Translate '{w} {w}' and {w}")  # fmt: skip


# --- The load generator (a subprocess) -------------------------------------------------------------


class Load:
    """One generator: `concurrency` clients running random scenarios until `deadline`."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        import httpx

        self.cfg = cfg
        self.key = cfg["key"]
        self.control = cfg["upstream"].removesuffix("/v1")
        limits = httpx.Limits(
            max_connections=cfg["concurrency"] + 4, max_keepalive_connections=cfg["concurrency"] + 4
        )
        self.http = httpx.AsyncClient(base_url=cfg["gateway"], timeout=60.0, limits=limits, trust_env=False)
        self.rng = random.Random(cfg["seed"])
        self.counter = 0
        self.new_keys: list[str] = []
        self.notes: Counter[str] = Counter()
        self.out = open(cfg["log"], "a", buffering=1)  # noqa: SIM115 (closed in run)
        self.failing = asyncio.Lock()  # one failover at a time: its backup attempt must not meet a second 500
        self.scripted = 0  # requests whose scripted step is queued and not yet taken; no reset meanwhile
        self.gate = asyncio.Event()  # cleared while the fake is being reset: no new steps then
        self.gate.set()
        self.names = list(cfg["mix"])
        self.weights = [cfg["mix"][n] for n in self.names]

    def prompt(self) -> str:
        self.counter += 1
        n, r = self.counter, self.rng
        text = r.choice(TEMPLATES).replace("{n}", str(n)).replace("{m}", str(r.randrange(1000)))
        while "{w}" in text:
            text = text.replace("{w}", r.choice(WORDS), 1)
        extra = " ".join(r.choice(WORDS) for _ in range(r.randrange(0, 40)))
        return f"{text} #{n} {extra}".strip()  # unique: the router's caches see new text every time

    def chat_body(self, model: str, stream: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": self.prompt()}]}
        if stream:
            body["stream"] = True
            if self.rng.random() < 0.5:
                body["stream_options"] = {"include_usage": True}
        return body

    async def script(self, *steps: dict[str, Any]) -> None:
        await self.http.post(self.control + "/_control/script", json={"steps": list(steps)})

    async def post(
        self, path: str, body: Any, key: str | None = None, stream: bool = False
    ) -> tuple[int, Any]:
        headers = {"x-api-key": key or self.key}
        if not stream:
            r = await self.http.post(path, json=body, headers=headers)
            return r.status_code, r
        async with self.http.stream("POST", path, json=body, headers=headers) as r:
            async for _ in r.aiter_raw():
                pass
        return r.status_code, r

    async def dropped_stream(self, path: str, body: dict[str, Any]) -> int:
        """Read two frames of a slow stream, then close the connection mid-stream."""
        await self.gate.wait()
        self.scripted += 1
        pending = True
        try:
            await self.script({"model": body["model"], "chunk_delay_ms": 40, "content": SLOW_REPLY})
            async with self.http.stream("POST", path, json=body, headers={"x-api-key": self.key}) as r:
                self.scripted, pending = self.scripted - 1, False
                frames = 0
                async for _ in r.aiter_raw():
                    frames += 1
                    if frames >= 2:
                        break
        finally:
            if pending:
                self.scripted -= 1
        return r.status_code

    async def failover(self, stream: bool) -> int:
        """500s from the primary (its attempt and its same-provider retry), then the backup answers;
        x-pureai-provider says which did. While the primary's circuit is open the backup answers at
        once, and the steps wait for the probe or the next reset."""
        async with self.failing:
            await self.gate.wait()
            self.scripted += 1
            try:
                await self.script(*[{"model": FAILOVER_MODEL, "status": 500}] * 2)
                body = self.chat_body(FAILOVER_MODEL, stream)
                status, resp = await self.post("/v1/chat/completions", body, stream=stream)
            finally:
                self.scripted -= 1
        self.notes["failover_" + resp.headers.get("x-pureai-provider", "none")] += 1
        return status

    async def scenario(self, name: str) -> int:
        r = self.rng
        if name in ("chat", "chat_stream"):
            return (await self.post("/v1/chat/completions", self.chat_body(r.choice(CHAT_MODELS), name == "chat_stream"), stream=name == "chat_stream"))[0]  # fmt: skip
        if name == "chat_stream_drop":
            return await self.dropped_stream("/v1/chat/completions", self.chat_body(DROP_MODEL, True))
        if name.startswith("text"):
            model = "pureai/gemma-3-4b-it" if "custom" in name else "gpt-4o"
            stream = name.endswith("stream")
            body = {
                "model": model,
                "prompt": self.prompt(),
                "max_tokens": r.randrange(4, 32),
                "stream": stream,
            }
            return (await self.post("/v1/completions", body, stream=stream))[0]
        if name == "router":
            body: dict[str, Any] = {"messages": [{"role": "user", "content": self.prompt()}], "execute": False,
                                    "cost_weight": r.choice((0.1, 0.3, 0.5, 0.7, 0.9))}  # fmt: skip
            if r.random() < 0.4:  # ordered pools: far more than the router's 256 cached lambda tables
                body["models"] = r.sample(POOL, r.randrange(2, 5))
            return (await self.post("/v1/router", body))[0]
        if name == "router_execute":
            body = {"messages": [{"role": "user", "content": self.prompt()}], "models": list(CHAT_MODELS)}
            return (await self.post("/v1/router", body))[0]
        if name.startswith("failover"):
            return await self.failover(name.endswith("stream"))
        if name == "error_404":
            body = self.chat_body(f"no-such-model-{self.counter}")  # a new name each time, as typos are
            return (await self.post("/v1/chat/completions", body))[0]
        if name == "error_400":
            headers = {"x-api-key": self.key, "content-type": "application/json"}
            resp = await self.http.post("/v1/chat/completions", content=b'{"model": "gpt-4o", "messages": [', headers=headers)  # fmt: skip
            return resp.status_code
        if name == "error_401":
            return (await self.post("/v1/chat/completions", self.chat_body("gpt-4o"), key="pk-000000000000-nope" + "x" * 16))[0]  # fmt: skip
        if name == "new_key":
            if not self.new_keys or r.random() < 0.25:
                spec = {
                    "tenant": f"soak-{r.randrange(20)}",
                    "name": "soak",
                    "rpm": 100_000,
                    "tpm": 10_000_000,
                }
                resp = await self.http.post("/v1/admin/keys", json=spec, headers={"x-api-key": ADMIN_KEY})
                if resp.status_code != 201:
                    return resp.status_code
                self.new_keys = [*self.new_keys[-19:], resp.json()["key"]]
                self.notes["keys_created"] += 1
            key = r.choice(self.new_keys)
            return (await self.post("/v1/chat/completions", self.chat_body(r.choice(CHAT_MODELS)), key=key))[
                0
            ]
        raise ValueError(name)

    async def client(self, deadline: float) -> None:
        while time.time() < deadline:
            name = self.rng.choices(self.names, self.weights)[0]
            started = time.perf_counter()
            try:
                status = await self.scenario(name)
            except Exception as exc:  # a transport error is an unexpected outcome, recorded as status 0
                status = 0
                self.notes["exception_" + type(exc).__name__] += 1
            ms = (time.perf_counter() - started) * 1000
            ok = status == EXPECTED.get(name, 200)
            self.out.write(f"{time.time():.3f},{name},{status},{ms:.2f},{int(ok)}\n")

    async def reset_upstream(self, deadline: float) -> None:
        """Empty the fake's request log every few seconds (its own memory must not grow), at a
        moment when no scripted step is waiting for its request."""
        while time.time() < deadline:
            await asyncio.sleep(5.0)
            self.gate.clear()
            while self.scripted:
                await asyncio.sleep(0.01)
            await self.http.post(self.control + "/_control/reset")
            self.gate.set()
            self.notes["upstream_resets"] += 1

    async def run(self) -> dict[str, Any]:
        deadline = time.time() + self.cfg["seconds"]
        try:
            await asyncio.gather(
                self.reset_upstream(deadline),
                *(self.client(deadline) for _ in range(self.cfg["concurrency"])),
            )
        finally:
            await self.http.aclose()
            self.out.close()
        return dict(self.notes)


def generate(cfg_json: str) -> None:
    notes = asyncio.run(Load(json.loads(cfg_json)).run())
    print(json.dumps(notes), flush=True)


# --- The parent: gateway, sampling, metric ----------------------------------------------------------


def serving_pid(pid: int) -> int:
    """The process that serves requests: `pure serve --workers 1` runs uvicorn's server in the
    process it was started as (uvicorn forks workers only for --workers > 1); if it ever had a
    child, that child would be the server."""
    children = [
        int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()
    ]
    if len(children) > 1:
        raise RuntimeError(f"the gateway {pid} has {len(children)} children; expected one server process")
    return children[0] if children else pid


def proc_status(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "VmHWM", "Threads"):
            fields[name] = float(value.split()[0])
    return {
        "rss_mib": fields["VmRSS"] / 1024,
        "anon_mib": fields["RssAnon"] / 1024,
        "hwm_mib": fields["VmHWM"] / 1024,
        "threads": fields["Threads"],
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def fit(ts: np.ndarray, ys: np.ndarray) -> float:
    """Least-squares slope of ys over ts (units of ys per unit of ts)."""
    return float(np.polyfit(ts, ys, 1)[0]) if len(ts) >= 2 else 0.0


def half_metrics(samples: list[dict[str, Any]], lo: float, hi: float) -> dict[str, Any]:
    """Growth of RSS over [lo, hi] seconds: ends as the mean of the three samples nearest each edge
    (15 s at the default interval), the slope by least squares over every sample in between."""
    inside = [s for s in samples if lo <= s["t"] <= hi]
    t = np.array([s["t"] for s in inside])
    rss = np.array([s["rss_mib"] for s in inside])
    anon = np.array([s["anon_mib"] for s in inside])
    reqs = inside[-1]["requests"] - inside[0]["requests"]
    growth = float(rss[-3:].mean() - rss[:3].mean())
    slope = fit(t, rss)  # MiB/s
    fitted = slope * float(t[-1] - t[0])
    per_10k = growth / reqs * 10_000 if reqs else float("nan")
    return {
        "from_s": round(float(t[0]), 1),
        "to_s": round(float(t[-1]), 1),
        "samples": len(inside),
        "requests": reqs,
        "rss_start_mib": round(float(rss[:3].mean()), 2),
        "rss_end_mib": round(float(rss[-3:].mean()), 2),
        "rss_min_mib": round(float(rss.min()), 2),
        "rss_max_mib": round(float(rss.max()), 2),
        "growth_mib": round(growth, 2),
        "growth_mib_per_10k_requests": round(per_10k, 3),
        "slope_mib_per_min": round(slope * 60, 4),
        "fitted_growth_mib": round(fitted, 2),
        "slope_mib_per_10k_requests": round(fitted / reqs * 10_000, 3) if reqs else None,
        "anon_growth_mib": round(float(anon[-3:].mean() - anon[:3].mean()), 2),
        "anon_slope_mib_per_min": round(fit(t, anon) * 60, 4),
    }


def verdict(second: dict[str, Any], requests: int, unexpected: int) -> tuple[str, float]:
    """ "plateau" when the second half's growth, both end to end and by the fitted line, stays under
    PLATEAU_MIB and under PLATEAU_FRACTION of the RSS it started from; "invalid" when more than
    MAX_UNEXPECTED of the requests went wrong (the mix did not run the paths it is meant to)."""
    threshold = min(PLATEAU_MIB, PLATEAU_FRACTION * second["rss_start_mib"])
    if unexpected > MAX_UNEXPECTED * requests:
        return "invalid", threshold
    grew = max(second["growth_mib"], second["fitted_growth_mib"])
    return ("plateau" if grew < threshold else "growing"), threshold


def plot(samples: list[dict[str, Any]], second: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([s["t"] for s in samples]) / 60
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, height_ratios=(3, 2))
    top.plot(t, [s["rss_mib"] for s in samples], color="tab:blue", label="gateway RSS (VmRSS)")
    top.plot(t, [s["anon_mib"] for s in samples], color="tab:cyan", lw=1, label="anonymous RSS (RssAnon)")
    lo, hi = second["from_s"] / 60, second["to_s"] / 60
    top.plot([lo, hi], [second["rss_start_mib"], second["rss_start_mib"] + second["fitted_growth_mib"]],
             color="tab:red", ls="--", label=f"second-half fit: {second['slope_mib_per_min']:+.3f} MiB/min")  # fmt: skip
    top.axvline(lo, color="grey", ls=":", lw=1)
    top.set_ylabel("MiB")
    top.set_title(title)
    right = top.twinx()
    right.plot(t, [s["requests"] for s in samples], color="tab:orange", label="requests done")
    right.set_ylabel("requests done")
    lines = top.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    top.legend(lines, [str(line.get_label()) for line in lines], loc="lower right", fontsize=8)
    bottom.plot(t, [s["fds"] for s in samples], color="tab:green", label="open fds")
    bottom.set_ylabel("open fds")
    bottom.set_xlabel("minutes")
    lat = bottom.twinx()
    lat.plot(t, [s["p99_ms"] for s in samples], color="tab:purple", lw=1, label="p99 ms")
    lat.plot(t, [s["p50_ms"] for s in samples], color="tab:brown", lw=1, label="p50 ms")
    lat.set_ylabel("latency per window, ms")
    lines = bottom.get_legend_handles_labels()[0] + lat.get_legend_handles_labels()[0]
    bottom.legend(lines, [str(line.get_label()) for line in lines], loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mix(text: str) -> dict[str, int]:
    """MIX with some weights changed: "error_404=40,router=0"."""
    out = dict(MIX)
    for part in filter(None, text.split(",")):
        name, _, weight = part.partition("=")
        if name not in MIX or not weight.isdigit():
            raise argparse.ArgumentTypeError(
                f"{part!r}: expected NAME=WEIGHT with NAME one of {', '.join(MIX)}"
            )
        out[name] = int(weight)
    return {name: weight for name, weight in out.items() if weight}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


class Tally:
    """What the generator's log says so far: requests, unexpected outcomes, every latency."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = 0
        self.done = 0
        self.bad = 0
        self.outcomes: Counter[str] = Counter()
        self.unexpected: Counter[str] = Counter()
        self.latencies: list[float] = []

    def window(self) -> list[float]:
        """Read the requests finished since the last call; their latencies."""
        with self.log.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        window = []
        for line in data[:end].decode().splitlines():
            _, name, status, ms, ok = line.split(",")
            self.outcomes[f"{name} {status}"] += 1
            if ok != "1":
                self.unexpected[f"{name} {status}"] += 1
                self.bad += 1
            window.append(float(ms))
        self.done += len(window)
        self.latencies += window
        return window


HEADER = f"{'time':>6} {'requests':>9} {'req/s':>6} {'RSS MiB':>8} {'anon':>7} {'fds':>4} {'thr':>4} {'p50 ms':>7} {'p99 ms':>7} {'bad':>4}"


def soak(args: argparse.Namespace, tmp: Path) -> tuple[list[dict[str, Any]], Tally, dict[str, Any], int]:
    """Run the fake, the gateway and the generator; sample every `interval` until the generator ends."""
    upstream = FakeUpstream.start("soak")
    cat = tmp / "catalogue.toml"
    text, backup = catalogue(upstream.url, upstream.url), 'id = "groq"\ntype = "backup"\n'
    assert text.count(backup) == 1, "the test catalogue changed: where is gpt-4o-mini's backup?"
    cat.write_text(text.replace(backup, f'{backup}litellm_model = "openai/{BACKUP_MODEL}"\n'))
    db = tmp / "soak.db"
    env = {"PUREAI_CATALOGUE": str(cat), "PUREAI_DATABASE_URL": str(db), "TEST_OPENAI_KEY": "sk-soak",
           "TEST_GROQ_KEY": "sk-soak", "PUREAI_LOG_LEVEL": "warning"}  # fmt: skip
    gw = Gateway.start(env, workers=1)
    try:
        pid = serving_pid(gw.process.pid)
        key = gw.new_key(tenant="soak", name="soak, no limits")
        tally = Tally(tmp / "requests.csv")
        tally.log.touch()
        cfg = {"gateway": gw.url, "upstream": upstream.url, "key": key, "concurrency": args.concurrency,
               "seconds": args.minutes * 60, "seed": args.seed, "log": str(tally.log), "mix": args.mix}  # fmt: skip
        command = [sys.executable, __file__, "--generate", json.dumps(cfg)]
        gen = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        print(f"gateway pid {pid} (`pureai serve` pid {gw.process.pid}), {args.concurrency} clients, {args.minutes:g} min")  # fmt: skip
        print(HEADER)
        samples: list[dict[str, Any]] = []
        start = last = time.time()
        while True:
            finished = gen.poll() is not None  # the sample after the generator ends is the idle one
            ms = tally.window()
            now = time.time()
            sample = {"t": round(now - start, 2), "requests": tally.done, "errors": tally.bad,
                      "window_requests": len(ms), **proc_status(pid),
                      "upstream_rss_mib": proc_status(upstream._process.pid)["rss_mib"],
                      "p50_ms": round(float(np.percentile(ms, 50)), 1) if ms else None,
                      "p99_ms": round(float(np.percentile(ms, 99)), 1) if ms else None}  # fmt: skip
            samples.append(sample)
            print(f"{sample['t']:6.0f} {tally.done:9d} {len(ms) / max(now - last, 1e-3):6.1f} {sample['rss_mib']:8.1f} "
                  f"{sample['anon_mib']:7.1f} {sample['fds']:4d} {sample['threads']:4.0f} {sample['p50_ms'] or 0:7.1f} "
                  f"{sample['p99_ms'] or 0:7.1f} {tally.bad:4d}", flush=True)  # fmt: skip
            last = now
            if finished:
                break
            time.sleep(max(0.0, start + len(samples) * args.interval - time.time()))
        assert gen.stdout is not None
        notes = json.loads(gen.stdout.read() or "{}")
        with contextlib.closing(sqlite3.connect(db)) as conn:
            ledger_rows = int(conn.execute("select count(*) from usage").fetchone()[0])
    finally:
        gw.stop()
        upstream.stop()
    return samples, tally, notes, ledger_rows


def summarise(samples: list[dict[str, Any]], tally: Tally, ledger_rows: int) -> dict[str, Any]:
    """Whole-run figures; fds and threads idle before the load, under it (first and last full
    windows) and idle after it."""
    loaded = samples[1:-1]
    duration = samples[-1]["t"]
    return {
        "requests": tally.done,
        "unexpected": tally.bad,
        "requests_per_s": round(tally.done / duration, 1),
        "p50_ms": round(float(np.percentile(tally.latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(tally.latencies, 99)), 1),
        "rss_idle_before_mib": round(samples[0]["rss_mib"], 2),
        "rss_idle_after_mib": round(samples[-1]["rss_mib"], 2),
        "rss_peak_mib": round(samples[-1]["hwm_mib"], 2),
        "fds_idle_before": samples[0]["fds"],
        "fds_loaded_first": loaded[0]["fds"],
        "fds_loaded_last": loaded[-1]["fds"],
        "fds_loaded_max": max(s["fds"] for s in loaded),
        "fds_idle_after": samples[-1]["fds"],
        "threads_idle_before": samples[0]["threads"],
        "threads_loaded_max": max(s["threads"] for s in loaded),
        "threads_idle_after": samples[-1]["threads"],
        "upstream_rss_first_mib": round(loaded[0]["upstream_rss_mib"], 2),
        "upstream_rss_last_mib": round(samples[-1]["upstream_rss_mib"], 2),
        "ledger_rows": ledger_rows,
    }


def report(out: dict[str, Any]) -> None:
    s, second = out["summary"], out["second_half"]
    print()
    print(f"{'half':7} {'requests':>9} {'RSS start':>10} {'RSS end':>8} {'growth':>7} {'/10k req':>9} {'fit MiB/min':>12} {'anon growth':>12}")  # fmt: skip
    for name in ("first", "second"):
        h = out[name + "_half"]
        print(f"{name:7} {h['requests']:9d} {h['rss_start_mib']:10.1f} {h['rss_end_mib']:8.1f} {h['growth_mib']:+7.2f} "
              f"{h['growth_mib_per_10k_requests']:+9.3f} {h['slope_mib_per_min']:+12.4f} {h['anon_growth_mib']:+12.2f}")  # fmt: skip
    print(f"RSS idle {s['rss_idle_before_mib']:.1f} MiB before the load, {s['rss_idle_after_mib']:.1f} after; "
          f"fds {s['fds_idle_before']} idle before, {s['fds_loaded_first']} -> {s['fds_loaded_last']} under load "
          f"(max {s['fds_loaded_max']}), {s['fds_idle_after']} idle after; threads {s['threads_idle_before']:.0f} "
          f"-> max {s['threads_loaded_max']:.0f} -> {s['threads_idle_after']:.0f}")  # fmt: skip
    print(f"{s['requests']} requests ({s['requests_per_s']}/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms), "
          f"{s['unexpected']} unexpected, {s['ledger_rows']} ledger rows; fake upstream RSS "
          f"{s['upstream_rss_first_mib']:.1f} -> {s['upstream_rss_last_mib']:.1f} MiB")  # fmt: skip
    grew = max(second["growth_mib"], second["fitted_growth_mib"])
    print(
        f"verdict: {out['verdict']} (second half {grew:+.2f} MiB, threshold {out['threshold_mib']:.2f} MiB)"
    )
    if out["unexpected_outcomes"]:
        print("unexpected:", out["unexpected_outcomes"])
    print("generator:", out["generator"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--seed", type=int, default=35)
    ap.add_argument("--mix", type=mix, default=MIX, metavar="NAME=W,...",
                    help="change scenario weights (0 drops one), e.g. error_404=40 to look at one path")  # fmt: skip
    ap.add_argument("--out", type=Path, default=HERE / "results", help="folder for soak.json and soak.png")
    ap.add_argument("--generate", help=argparse.SUPPRESS)  # the load generator's own entry point
    args = ap.parse_args()
    if args.generate:
        generate(args.generate)
        return
    # What the gateway runs: this commit, unless PYTHONPATH points it at another tree or files are edited.
    commit = git("rev-parse", "--short", "HEAD")
    code = {
        "pythonpath": os.environ.get("PYTHONPATH"),
        "uncommitted": git(
            "status", "--porcelain", "--", "service", "router", "models_registry"
        ).splitlines(),
    }
    with tempfile.TemporaryDirectory(prefix="pureai-soak-") as tmp:
        samples, tally, notes, ledger_rows = soak(args, Path(tmp))
    duration = samples[-1]["t"]
    first = half_metrics(samples, samples[1]["t"], duration / 2)  # from the first sample under load
    second = half_metrics(samples, duration / 2, duration)
    result, threshold = verdict(second, tally.done, tally.bad)
    out = {
        "commit": commit,
        "code": code,
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "interval_s": args.interval,
        "seed": args.seed,
        "mix": args.mix,
        "summary": summarise(samples, tally, ledger_rows),
        "first_half": first,
        "second_half": second,
        "verdict": result,
        "threshold_mib": round(threshold, 2),
        "outcomes": dict(sorted(tally.outcomes.items())),
        "unexpected_outcomes": dict(sorted(tally.unexpected.items())),
        "generator": notes,
        "samples": samples,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(out, indent=1) + "\n")
    title = f"pureai gateway soak, {args.minutes:g} min, {args.concurrency} clients, {tally.done} requests ({commit}): {result}"
    plot(samples, second, args.out / "soak.png", title)
    report(out)


if __name__ == "__main__":
    main()

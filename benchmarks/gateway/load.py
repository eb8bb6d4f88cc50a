"""The aiohttp load generator of the gateway benchmark, run by compare.py in a process of its own.

    python benchmarks/gateway/load.py '<json spec>'   # prints one JSON result on stdout

Modes:
- `latency`: c=1 over one keep-alive connection per target, in interleaved rounds (`per_round`
  requests to each target in turn, the order rotating each round); for each request the time to
  the whole answer and, for a stream, to its first content event (TTFT).
- `streams`: `count` concurrent streams to one target, each paced by the upstream (`pace=MS` in the
  prompt); for each stream its TTFT, its largest gap between two reads and whether it completed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

FIRST = b'"content":"tok'  # the first content event of the fake upstream's streams


async def one(session: aiohttp.ClientSession, t: dict[str, Any], stream: bool) -> tuple[float, float]:
    start = time.perf_counter()
    ttft = 0.0
    async with session.post(t["url"], headers=t["headers"], data=t["body"]) as r:
        if r.status != 200:
            raise RuntimeError(f"{t['name']}: {r.status} {(await r.text())[:300]}")
        if stream:
            async for line in r.content:
                if not ttft and FIRST in line:
                    ttft = time.perf_counter() - start
            if not ttft:
                raise RuntimeError(f"{t['name']}: a stream without content")
        else:
            await r.read()
    return (time.perf_counter() - start) * 1000, ttft * 1000


async def latency(spec: dict[str, Any]) -> dict[str, Any]:
    targets = spec["targets"]
    out: dict[str, dict[str, list[float]]] = {t["name"]: {"total": [], "ttft": []} for t in targets}
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(60))
        for _ in targets
    ]
    try:
        for s, t in zip(sessions, targets, strict=True):  # warm up: connection, caches, lazy imports
            for _ in range(spec.get("warmup", 20)):
                await one(s, t, t["stream"])
        for r in range(spec["rounds"]):
            order = list(range(len(targets)))
            order = order[r % len(order) :] + order[: r % len(order)]
            for i in order:
                for _ in range(spec["per_round"]):
                    total, ttft = await one(sessions[i], targets[i], targets[i]["stream"])
                    out[targets[i]["name"]]["total"].append(total)
                    out[targets[i]["name"]]["ttft"].append(ttft)
    finally:
        for s in sessions:
            await s.close()
    return out


async def streams(spec: dict[str, Any]) -> dict[str, Any]:
    t = spec["target"]
    results: list[dict[str, Any]] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(120)) as session:
        start_all = time.perf_counter()

        async def run(i: int) -> None:
            await asyncio.sleep(spec.get("ramp_s", 1.0) * i / spec["count"])  # spread the opens
            start = time.perf_counter()
            ttft, gap, last, ok, events = 0.0, 0.0, 0.0, False, 0
            try:
                async with session.post(t["url"], headers=t["headers"], data=t["body"]) as r:
                    if r.status == 200:
                        async for line in r.content:
                            now = time.perf_counter()
                            if FIRST in line:
                                if not ttft:
                                    ttft = now - start
                                else:
                                    gap = max(gap, now - last)
                                last = now
                                events += 1
                            elif line.startswith(b"data: [DONE]"):
                                ok = True
            except Exception:  # counted as a failed stream
                ok = False
            results.append({"ok": ok, "ttft_ms": ttft * 1000, "max_gap_ms": gap * 1000, "events": events})

        await asyncio.gather(*(run(i) for i in range(spec["count"])))
        wall = time.perf_counter() - start_all
    return {"streams": results, "wall_s": wall}


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    fn = {"latency": latency, "streams": streams}[spec["mode"]]
    print(json.dumps(asyncio.run(fn(spec))))


if __name__ == "__main__":
    main()

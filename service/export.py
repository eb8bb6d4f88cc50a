"""`pureai export`: the ledger's answered, scored and prompt-logged requests as training data.

One JSON object per line, in the format `pureai train --data` reads (docs/retraining.md, "Retraining on your
own traffic"): `prompt`, `model`, `score` (the request's "score" feedback), `cost_usd`,
`output_tokens`, with `prompt_id` the request id (so a re-export never counts a request twice) and
`group` the key id (validation folds never split one key's prompts). Only requests whose prompt was
kept are exported: prompt logging (`PUREAI_LOG_PROMPTS`) is off by default, and prompts older than
`PUREAI_PROMPT_RETENTION_DAYS` are deleted first.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from .store import Store, TrainingRow

__all__ = ["FILE", "export", "parse_time", "training_line"]

FILE = "traffic.jsonl"


def parse_time(value: str | None) -> float | None:
    """Unix seconds or an ISO 8601 time (UTC unless it names a zone); None for None or ""."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected unix seconds or an ISO 8601 time, got {value!r}") from None
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


def training_line(row: TrainingRow) -> dict[str, object]:
    return {
        "prompt": row.prompt,
        "model": row.model,
        "score": row.score,
        "cost_usd": row.cost_usd,
        "output_tokens": row.output_tokens,
        "prompt_id": row.request_id,
        "group": row.key_id,
    }


async def export(
    store: Store, out: Path, since: float | None, until: float | None, retention_days: float
) -> int:
    """Write `out/traffic.jsonl` (atomically; `out` is created); the number of rows written."""
    await store.forget_prompts(time.time() - retention_days * 86400.0)
    rows = await store.training_rows(since, until)
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".traffic-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(training_line(row), ensure_ascii=False) + "\n")
    os.replace(tmp, out / FILE)
    return len(rows)

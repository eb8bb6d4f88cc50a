"""The `train` and `evaluate` subcommands (kept apart so `pureai route` never imports sklearn)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from . import base as base_mod
from . import data as data_mod
from .errors import OptionError
from .train import Options, rename_to_registry
from .train import train as fit_router


def _catalogue(path: str | None):  # type: ignore[no-untyped-def]
    from models_registry import load_catalogue

    return load_catalogue(path)


def _load(  # type: ignore[no-untyped-def]
    args: argparse.Namespace, catalogue, base: dict[str, Any] | None = None
) -> data_mod.OutcomeData:
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    data = data_mod.load(Path(args.data))
    if args.registry_names:
        data = rename_to_registry(data, catalogue)
    if base is not None:
        data = base_mod.merge(base_mod.load(base["source"]), data, base["user_weight"])
    return data_mod.select_models(data, models) if models else data


def base_option(args: argparse.Namespace) -> dict[str, Any] | None:
    """--base and --user-weight: None for no base set, else its folder and the user rows' weight.
    The default base is the shipped artifacts for JSON Lines, none for benchmark folders only
    (canonical, extra-2025)."""
    from router._artifacts import default_dir

    benchmarks = all(data_mod.is_benchmark(p) for p in data_mod.sources(args.data))
    choice = args.base or ("none" if benchmarks else "shipped")
    weight = args.user_weight
    if choice == "none":
        if weight is not None:
            raise OptionError(
                "--user-weight",
                "weighs your rows against a base set, and there is none "
                "(--base none, the default for a canonical folder): pass --base shipped or DIR",
            )
        return None
    if weight is None:
        weight = base_mod.DEFAULT_USER_WEIGHT
    if not math.isfinite(weight) or weight <= 0:
        raise OptionError("--user-weight", f"must be a number > 0, got {weight:g}")
    return {"source": default_dir() if choice == "shipped" else Path(choice), "user_weight": weight}


def near_option(value: str | None) -> tuple[float, float] | None:
    """--near LO,HI: two similarities 0 <= LO < HI <= 1, or None when not given."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        lo, hi = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        lo = hi = math.nan
    if not (0.0 <= lo < hi <= 1.0):
        raise OptionError("--near", f"must be two similarities LO,HI with 0 <= LO < HI <= 1, got {value!r}")
    return lo, hi


def train(args: argparse.Namespace, command: str) -> int:
    near = near_option(args.near)
    catalogue = _catalogue(args.catalogue)
    base = base_option(args)
    data = _load(args, catalogue, base)
    cache = None if args.no_cache else (Path(args.cache) if args.cache else None)
    if cache is None and not args.no_cache:
        from .embed_cache import default_cache_dir

        cache = default_cache_dir()
    opts = Options(
        out=Path(args.out),
        seed=args.seed,
        embedder_dir=Path(args.embedder) if args.embedder else None,
        cache_dir=cache,
        cost_from=args.cost_from,
        knn_max=args.knn_max,
        folds=args.folds,
        force=args.force,
        progress=not args.quiet,
        command=command,
        base=None if base is None else {**base, "source": str(base["source"])},
        near=near,
    )
    result = fit_router(data, catalogue, opts)
    summary: dict[str, object] = {
        k: result[k] for k in ("brier", "ece", "seconds", "validation_prompts") if k in result
    }
    if "curve" in result:
        summary["aiq"], summary["aiq_zero"] = result["curve"]["aiq"], result["curve"]["aiq_zero"]
    rows = result["rows"]
    print(
        json.dumps(
            {
                "out": str(args.out),
                "models": len(data.models),
                "prompts": len(data.texts),
                "base_rows": rows["base"],
                "user_rows": rows["user"],
                **summary,
            }
        )
    )
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from router import Router

    from .evaluate import evaluate as run

    catalogue = _catalogue(args.catalogue)
    rt = Router.load(args.artifacts, catalogue)
    data = _load(args, catalogue)
    if not args.models:
        pool = [m for m in data.models if m in rt.quality.models]
        if len(pool) < 1:
            from .errors import DataError

            raise DataError(args.data, "none of the artifacts' models has outcomes here: pass --models")
        data = data_mod.select_models(data, pool)
    base = Router.load(args.baseline, catalogue) if args.baseline else None
    if base is not None:  # one pool for both: the models both routers and the data know
        data = data_mod.select_models(
            data, [m for m in data.models if m in base.quality.models] or data.models
        )
    result = run(data, rt)
    summary = _summary(result)
    if base is not None:
        from .evaluate import compare

        baseline = run(data, base)
        result = {**result, "baseline": baseline, "comparison": compare(result, baseline)}
        summary = {**summary, "baseline": _summary(baseline), **_rounded(result["comparison"])}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(summary))
    return 0


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    c = result["curve"]
    return {
        "prompts": result["prompts"],
        "aiq": round(c["aiq"], 4),
        "aiq_zero": round(c["aiq_zero"], 4),
        "apgr": c["apgr"],
        "selected_ece": round(result["selected_ece"], 4),
    }


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}

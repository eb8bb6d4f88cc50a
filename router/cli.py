"""The `pureai` command: route a prompt, train and evaluate a router, export the embedder."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from router import DEFAULT_COST_WEIGHT


def _models(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


def cmd_route(args: argparse.Namespace) -> int:
    from router import Router

    rt = Router.load(args.artifacts, args.catalogue)
    d = rt.select(args.prompt, _models(args.models), args.cost_weight)
    if args.json:
        print(
            json.dumps(
                {
                    **d.to_api(),
                    "cost_weight": d.cost_weight,
                    "capabilities": d.capabilities,
                    "complexity": round(d.complexity, 4),
                    "candidates": [c.__dict__ for c in d.candidates],
                },
                indent=1,
            )
        )
        return 0
    print(
        f"selected_model: {d.selected_model}\nconfidence:     {d.confidence:.3f}\nreasoning:      {d.reasoning}"
    )
    top = sorted(d.capabilities.items(), key=lambda kv: -kv[1])[:3]
    print("capabilities:   " + ", ".join(f"{k} {v:.2f}" for k, v in top) + f"; complexity {d.complexity:.2f}")
    print(f"{'candidate':32} {'quality':>8} {'cost USD':>10} {'utility':>8}  source")
    for c in d.candidates[: args.top]:
        print(f"{c.model:32} {c.quality:8.3f} {c.cost_usd:10.2e} {c.utility:8.3f}  {c.quality_source}")
    return 0


def _training() -> Any:
    try:
        import sklearn  # noqa: F401

        from training import cli_support
    except ImportError as exc:
        raise SystemExit(
            f"pureai: error: training needs the [train] extra: pip install 'pureai-router[train]' ({exc})"
        ) from None
    return cli_support


def cmd_train(args: argparse.Namespace) -> int:
    return int(_training().train(args, shlex.join(["pureai", *sys.argv[1:]])))


def cmd_evaluate(args: argparse.Namespace) -> int:
    return int(_training().evaluate(args))


def cmd_distil(args: argparse.Namespace) -> int:
    try:
        from tqdm import tqdm

        from training.static_embedder import distil
    except ImportError as exc:
        raise SystemExit(f"pureai: error: distil-embedder needs the [train] extra ({exc})") from None
    src = Path(args.src)
    for name in ("embedder.onnx", "tokenizer.json"):
        if not (src / name).is_file():
            raise SystemExit(f"pureai: error: {src / name}: missing")
    try:
        r = distil(src, Path(args.out), progress=tqdm)
    except ValueError as exc:
        raise SystemExit(f"pureai: error: {exc}") from None
    print(json.dumps({"path": str(r.path), "bytes": r.bytes, "vocabulary": r.vocabulary, "dim": r.dim}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    try:
        from training.export_embedder import export
    except ImportError as exc:
        raise SystemExit(f"pureai: error: export needs the [export] extra ({exc})") from None
    r = export(Path(args.out), quantise=not args.no_quantise)
    print(
        json.dumps(
            {
                "path": str(r.path),
                "bytes": r.bytes,
                "quantised": r.quantised,
                "min_cosine_vs_sentence_transformers": round(r.min_cosine, 5),
            }
        )
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pureai", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("route", help="route one prompt and print the decision")
    r.add_argument("prompt")
    r.add_argument("--models", help="comma-separated candidates (default: every enabled model)")
    r.add_argument(
        "--cost-weight",
        type=float,
        default=DEFAULT_COST_WEIGHT,
        help=f"0 = best quality, 1 = cheapest (default {DEFAULT_COST_WEIGHT})",
    )
    r.add_argument("--artifacts", help="artifacts folder from `pureai train` (default: shipped)")
    r.add_argument("--catalogue", help="catalogue TOML (default: built-in)")
    r.add_argument("--top", type=int, default=5, help="candidates to print")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_route)
    t = sub.add_parser("train", help="fit a router from outcome data")
    t.add_argument("--data", required=True, help="canonical folder, .jsonl file, or folder of .jsonl files")
    t.add_argument("--out", required=True, help="artifacts folder to write (atomically)")
    t.add_argument("--models", help="comma-separated models to keep")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--catalogue", help="catalogue TOML (default: built-in)")
    t.add_argument(
        "--registry-names", action="store_true", help="rename data models to catalogue ids by alias"
    )
    t.add_argument("--cost-from", choices=("data", "registry"), default="data")
    t.add_argument("--embedder", help="folder with embedder.onnx + tokenizer.json (default: shipped)")
    t.add_argument("--cache", help="embedding cache folder (default: ~/.cache/pureai/embeddings)")
    t.add_argument("--no-cache", action="store_true")
    t.add_argument("--knn-max", type=int, default=20000, help="training prompts kept for the neighbour mean")
    t.add_argument(
        "--folds",
        type=int,
        choices=range(1, 6),
        default=5,
        metavar="1-5",
        help="validation folds for tuning and calibration (default 5; 1 is 5x faster; "
        "with a base nothing is tuned and 1 is used)",
    )
    t.add_argument(
        "--base",
        metavar="shipped|none|DIR",
        help="learn from this artifacts folder's base set too (default: shipped for JSON Lines, "
        "none for a canonical folder)",
    )
    t.add_argument(
        "--user-weight",
        type=float,
        metavar="W",
        help="how many base rows each row of --data counts as (default 10; needs a base)",
    )
    t.add_argument(
        "--near",
        metavar="LO,HI",
        help="mean similarity of a prompt's closest training prompts at which their outcomes start to "
        "count against each model's ability, and count in full (default: chosen on the validation folds)",
    )
    t.add_argument("--force", action="store_true", help="replace a non-empty --out")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="metrics of trained artifacts on outcome data")
    e.add_argument("--data", required=True)
    e.add_argument("--artifacts", required=True)
    e.add_argument("--models", help="comma-separated pool (default: the artifacts' models found in the data)")
    e.add_argument("--catalogue")
    e.add_argument("--registry-names", action="store_true")
    e.add_argument("--json", help="also write the metrics here")
    e.add_argument(
        "--baseline", help="artifacts to compare with on the same prompts (AIQ, cost at equal quality, ECE)"
    )
    e.set_defaults(func=cmd_evaluate)
    x = sub.add_parser("export-embedder", help="export all-MiniLM-L6-v2 to ONNX (needs the [export] extra)")
    x.add_argument("--out", required=True)
    x.add_argument("--no-quantise", action="store_true", help="keep fp32 (90 MB) instead of int8 per-channel")
    x.set_defaults(func=cmd_export)
    d = sub.add_parser(
        "distil-embedder",
        help="distil a static embedder (one vector per word piece, ~0.1 ms) from a transformer embedder",
    )
    d.add_argument(
        "--from",
        dest="src",
        required=True,
        help="folder with the transformer's embedder.onnx + tokenizer.json",
    )
    d.add_argument("--out", required=True)
    d.set_defaults(func=cmd_distil)
    try:
        from service.cli import add_commands
    except ImportError:  # the gateway's dependencies are not installed
        pass
    else:
        add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from models_registry import CatalogueError
    from router.errors import RouterError

    try:
        return int(args.func(args))
    except (RouterError, CatalogueError) as exc:
        print(f"pureai: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from service.store import StoreError
        from training.errors import TrainingError

        if isinstance(exc, TrainingError | StoreError):
            print(f"pureai: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())

"""`pureai train`: outcome data -> a complete artifacts folder, written atomically, plus a report."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from router import _artifacts
from router._embed import Embedder
from router._text import SHAPE, shape

from . import base as base_set
from . import embed_cache, metrics, onnx_heads, prompt_labels, report
from .data import OutcomeData
from .errors import DataError, ExportError, OptionError
from .fit import QualityFitter


@dataclass
class Options:
    out: Path
    seed: int = 0
    embedder_dir: Path | None = None  # folder holding embedder.onnx + tokenizer.json
    cache_dir: Path | None = None
    cost_from: str = "data"  # "data": learned from cost_usd; "registry": catalogue prices x tokens
    knn_max: int = 20000
    folds: int = 5  # validation folds (of five) for the hyper-parameters and the calibration
    force: bool = False
    progress: bool = True
    command: str = ""
    base: dict[str, Any] | None = None  # the --base set merged into the data: source, user_weight
    near: tuple[float, float] | None = None  # --near: the bounds to keep (None: chosen on the folds)


def rename_to_registry(data: OutcomeData, catalogue: Any) -> OutcomeData:
    """Map outcome-data model names to catalogue ids via the catalogue's aliases (merging columns).

    Where several names of one catalogue model have an outcome on the same prompt (gpt-4o-2024-08-06
    and gpt-4o-2024-05-13 on ZeroEval, deepseek-chat-v3 and deepseek-chat-v2.5 on EvalPerf), the
    prompt keeps one of them, not their mean: the id itself, else the alias listed first in the
    catalogue. The catalogue lists aliases closest to what the id serves first (newest, mostly), so
    an older version only fills the prompts the closer one lacks. Cost and output tokens come from
    the same name as the score."""
    names = [catalogue.by_alias(m) or m for m in data.models]
    merged = list(dict.fromkeys(names))
    n = len(data.texts)
    scores, costs, out_tokens = (np.full((n, len(merged)), np.nan) for _ in range(3))
    origins = np.full((n, len(merged)), -1, dtype=np.int32)
    for k, name in enumerate(merged):
        cols = sorted(
            (j for j, m in enumerate(names) if m == name),
            key=lambda j: _rank(data.models[j], name, catalogue),
        )
        for j in reversed(cols):  # the preferred name last, so that it overwrites the others
            has = ~np.isnan(data.scores[:, j])
            scores[has, k], costs[has, k], out_tokens[has, k] = (
                data.scores[has, j],
                data.costs[has, j],
                data.out_tokens[has, j],
            )
            if data.origins is not None:
                origins[has, k] = data.origins[has, j]
    data.models, data.scores, data.costs, data.out_tokens = merged, scores, costs, out_tokens
    data.origins = origins if data.origins is not None else None
    return data


def _rank(name: str, model_id: str, catalogue: Any) -> int:
    """The preference of data name `name` for catalogue model `model_id`: 0 for the id itself, then
    the alias order (a name the catalogue does not know keeps its column alone)."""
    entry = catalogue.models.get(model_id)
    aliases = list(entry.aliases) if entry is not None else []
    if name == model_id and name not in aliases:
        return 0
    return 1 + aliases.index(name) if name in aliases else len(aliases) + 1


def check_priced(data: OutcomeData, catalogue: Any, cost_from: str) -> None:
    for j, m in enumerate(data.models):
        has_cost = bool(np.isfinite(data.costs[:, j]).any())
        in_catalogue = m in catalogue.models
        if cost_from == "registry" and not in_catalogue:
            raise DataError(
                data.source,
                f"unknown model {m!r}: --cost-from registry needs every model in the catalogue",
                field="model",
            )
        if not has_cost and not in_catalogue:
            raise DataError(
                data.source,
                f"unknown model {m!r}: no cost_usd in the data and not in the catalogue, "
                "so it cannot be priced",
                field="model",
            )


def capability_seeds() -> prompt_labels.LabelSet:
    """The labelled prompts of the capability and complexity heads (training/prompt_labels.py):
    the seeds in training/seeds/, and the real user prompts of the shared routing data where it is."""
    return prompt_labels.label_set()


def _prepare_out(out: Path, force: bool) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ExportError(f"{out}: exists and is not empty (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))


def _commit(tmp: Path, out: Path) -> None:
    tmp.chmod(0o755)  # mkdtemp makes it private; artifacts are meant to be read by anyone
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _tqdm() -> Any:
    from tqdm import tqdm

    return tqdm


def train(data: OutcomeData, catalogue: Any, opts: Options) -> dict[str, Any]:
    started = time.time()
    check_priced(data, catalogue, opts.cost_from)
    src = opts.embedder_dir or _artifacts.default_dir()
    for name in ("embedder.onnx", "tokenizer.json"):
        if not (src / name).is_file():
            raise ExportError(f"{src / name}: missing (run `pureai export-embedder --out {src}` first)")
    if opts.base:
        base_embedder = Path(opts.base["source"]) / "embedder.onnx"
        if _artifacts.sha256(base_embedder) != _artifacts.sha256(src / "embedder.onnx"):
            raise OptionError(
                "--base",
                f"{base_embedder} is not {src / 'embedder.onnx'}: the base set's prompts were embedded by "
                "another embedder; pass --base none, or a base trained with this --embedder",
            )
    tmp = _prepare_out(opts.out, opts.force)
    try:
        progress = _tqdm() if opts.progress else None
        embedder = Embedder(src / "embedder.onnx", src / "tokenizer.json")
        emb_sha = _artifacts.sha256(src / "embedder.onnx")
        names = shape_names(opts)
        E = embed_rows(data, embedder, emb_sha, opts.cache_dir, progress, names)
        labels = capability_seeds()
        emb = embed_cache.embed(labels.texts, embedder, emb_sha, opts.cache_dir, progress)
        seeds = (np.hstack([emb, shape(labels.texts, names)]).astype(np.float32), labels)
        fitter = QualityFitter(
            seed=opts.seed,
            knn_max=opts.knn_max,
            progress=progress,
            folds=opts.folds,
            seeds=seeds,
            hyperparameters=base_set.hyperparameters(Path(opts.base["source"])) if opts.base else None,
            shape_dims=len(names),
            near=opts.near,
        ).fit(E, data)
        shutil.copyfile(src / "embedder.onnx", tmp / "embedder.onnx")
        shutil.copyfile(src / "tokenizer.json", tmp / "tokenizer.json")
        heads = fitter.heads()
        onnx_heads.build(heads, E.shape[1], tmp / "heads.onnx")
        rng = np.random.default_rng(opts.seed)
        sample = E[rng.choice(len(E), min(len(E), 512), replace=False)]
        parity = onnx_heads.verify(heads, tmp / "heads.onnx", sample)
        table = {**fitter.table(data.models, opts.cost_from), "shape": names}
        (tmp / "quality.json").write_text(json.dumps(table, indent=1), encoding="utf-8")
        extra: dict[str, Any] = dict(fitter.knn_base_set_)  # training/base.py: what --base reads back
        if names:
            extra["shape"] = fitter.knn_shape_
        memory, classes = fitter.label_memory(emb)
        extra["label_embeddings"] = memory.astype(np.float16)
        extra["label_classes"] = classes.astype(np.int8)
        np.savez_compressed(
            tmp / "knn.npz",
            embeddings=fitter.knn_embeddings_,
            scores=fitter.knn_scores_,
            input_tokens=fitter.knn_tokens_,
            **extra,
        )
        result = validation_metrics(data, fitter, catalogue, opts.cost_from)
        result["rows"] = row_counts(data, opts.base)
        result["model_rows"] = model_rows(data)
        result["onnx_max_abs_diff"] = parity
        result["prompt_labels"] = fitter.label_report_
        result["seconds"] = round(time.time() - started, 1)
        manifest = {
            "format": _artifacts.FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": opts.command,
            "data": {
                "source": data.source,
                "sha256": data.data_hash,
                "prompts": len(data.texts),
                "models": data.models,
                "notes": data.notes,
                "rows": result["rows"],
                "model_rows": result["model_rows"],
            },
            "seed": opts.seed,
            "embedder_source": str(src),
            "files": {
                n: {"sha256": _artifacts.sha256(tmp / n), "bytes": (tmp / n).stat().st_size}
                for n in _artifacts.FILES
            },
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        report.write(tmp / "report", result, manifest)
        _commit(tmp, opts.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def shape_names(opts: Options) -> list[str]:
    """The prompt shape features to learn from: all of them, or a base set's own (none for a base
    trained before they existed: its rows carry no texts to compute them from)."""
    if opts.base:
        return list(_artifacts.read_json(Path(opts.base["source"]) / "quality.json").get("shape", []))
    return list(SHAPE)


def embed_rows(
    data: OutcomeData,
    embedder: Embedder,
    sha: str,
    cache: Path | None,
    progress: Any,
    names: list[str],
) -> np.ndarray:
    """(n, dim + len(names)): each row's embedding and shape features; a base set's rows bring
    their own, the others are embedded and measured from their text."""

    def rows(texts: list[str]) -> np.ndarray:
        emb = embed_cache.embed(texts, embedder, sha, cache, progress)
        return np.hstack([emb, shape(texts, names)]).astype(np.float32)

    if data.embeddings is None:
        return rows(data.texts)
    E = np.array(data.embeddings, dtype=np.float32)
    todo = np.flatnonzero(np.isnan(E).any(axis=1))
    if len(todo):
        E[todo] = rows([data.texts[i] for i in todo])
    return E


def row_counts(data: OutcomeData, base: dict[str, Any] | None) -> dict[str, Any]:
    """How many rows came from the base set and from the data, and what each of the data's weighs."""
    n_base = int(data.from_base.sum()) if data.from_base is not None else 0
    return {
        "base": n_base,
        "user": len(data.texts) - n_base,
        "user_weight": float(base["user_weight"]) if base else 1.0,
        "base_source": base["source"] if base else None,
    }


def model_rows(data: OutcomeData) -> dict[str, dict[str, Any]]:
    """Per model, the outcome rows it learns from: their number and how many each source gave
    (`canonical/mmlu-pro`, `extra-2025/routerarena`, a JSON Lines file; `base set` for a base
    set's rows; `data` where the loader kept no origins)."""
    has = ~np.isnan(data.scores)
    codes = data.origins if data.origins is not None else np.full(has.shape, -1, np.int32)
    if data.from_base is not None:
        codes = np.where(data.from_base[:, None], -2, codes)
    labels = {-2: "base set", -1: "data", **dict(enumerate(data.origin_names))}
    out: dict[str, dict[str, Any]] = {}
    for j, m in enumerate(data.models):
        found, counts = np.unique(codes[has[:, j], j], return_counts=True)
        per_source = {labels[int(c)]: int(k) for c, k in zip(found, counts, strict=True)}
        out[m] = {"rows": int(has[:, j].sum()), "sources": dict(sorted(per_source.items()))}
    return out


def validation_metrics(
    data: OutcomeData, fitter: QualityFitter, catalogue: Any, cost_from: str
) -> dict[str, Any]:
    """Metrics on the held-out fifth, with the heads fitted on the other four fifths: of each
    model's quality as the router computes it (the neighbour estimate mixed with the ability)."""
    tr, va, parts, cost_tr = fitter.validation_
    S = data.scores[va]
    q = fitter.validation_quality_
    n_in = fitter._n_in(data)
    c_hat = expected_costs(data, fitter, catalogue, cost_from, cost_tr, n_in[va], parts.groups)
    seen = ~np.isnan(S)
    conf_ece, table = metrics.ece(q[seen], S[seen])
    out: dict[str, Any] = {
        "models": data.models,
        "validation_prompts": len(va),
        "train_prompts": len(tr),
        "hyperparameters": {
            "logreg_C": fitter.C_[0],
            "knn_k": fitter.k_,
            "blend": fitter.blend_,
            "calibration": fitter.calibration_,
            "near": list(fitter.near_),
            "near_scores": fitter.near_scores_,
        },
        "brier": float(np.mean((q[seen] - S[seen]) ** 2)),
        "ece": conf_ece,
        "reliability": table,
        "ece_by_source": ece_by_source([data.prompt_ids[i] for i in va], q, S),
    }
    full = seen.all(axis=1)
    if full.sum() >= 10 and len(data.models) >= 2:
        costs = data.costs[va][full]
        costs = np.where(np.isnan(costs), c_hat[full], costs)
        points = metrics.sweep(q[full], c_hat[full], S[full], costs)
        out["sweep"] = points
        out["curve"] = metrics.curve_metrics(points, S[full], costs, data.models)
        chosen = metrics.choose(q[full], c_hat[full], 0.0)
        r = np.arange(int(full.sum()))
        out["selected_ece"], _ = metrics.ece(q[full][r, chosen], S[full][r, chosen])
        out["curve_prompts"] = int(full.sum())
    return out


def ece_by_source(prompt_ids: list[str], q: np.ndarray, S: np.ndarray) -> dict[str, dict[str, float]]:
    """Per dataset (the prompt id's prefix; "data" for ids without one) of held-out rows: outcomes,
    Brier score and calibration ECE of the predicted quality."""
    source = np.array([p.split(":", 1)[0] if ":" in p else "data" for p in prompt_ids])
    out: dict[str, dict[str, float]] = {}
    for name in sorted(set(source)):
        rows = source == name
        seen = ~np.isnan(S[rows])
        if seen.sum() < 20:
            continue
        qs, ss = q[rows][seen], S[rows][seen]
        out[name] = {
            "outcomes": int(seen.sum()),
            "brier": round(float(np.mean((qs - ss) ** 2)), 4),
            "ece": round(metrics.ece(qs, ss)[0], 4),
        }
    return out


def expected_costs(
    data: OutcomeData,
    fitter: QualityFitter,
    catalogue: Any,
    cost_from: str,
    cost: dict[str, Any],
    n_in: np.ndarray,
    groups: np.ndarray,
) -> np.ndarray:
    """(rows, M) expected USD: the learned cost model, or catalogue prices where it applies."""
    out = fitter._expected(cost, n_in, groups)
    out_tokens = groups @ fitter.out_table_
    for j, m in enumerate(data.models):
        if cost["known"][j] and (cost_from == "data" or m not in catalogue.models):
            continue
        e = catalogue.models[m]
        out[:, j] = (e.input_per_mtok * n_in + e.output_per_mtok * out_tokens[:, j]) / 1e6
    return np.asarray(out)

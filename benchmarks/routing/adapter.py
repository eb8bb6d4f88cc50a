"""Plug pureai-router into ../shared/routeeval: `fit` retrains with our own training code on the
scenario's train+val rows (as a user retraining on their traffic would), `route_many` asks the
retrained Router for every cost_weight.

    cd ../shared && python -m routeeval eval S1 \
        --router-py ../main/benchmarks/routing/adapter.py:PureAIRouter --compare routeeval/baselines.json
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


class PureAIRouter:
    name = "pureai"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = int(os.environ.get("PUREAI_BENCH_SEED", "0")) if seed is None else seed
        self._tmp = tempfile.TemporaryDirectory(prefix="pureai-routeeval-")
        self.rt = None
        self.confidence: dict = {}  # cost_weight -> (prompt ids, selected models, confidences)

    def fit(self, train) -> None:  # train: routeeval.external.TrainData
        from models_registry import load_catalogue
        from router import Router
        from training.data import OutcomeData
        from training.embed_cache import default_cache_dir
        from training.train import Options
        from training.train import train as fit_router

        n = len(train.prompts)
        groups = [f"{d}:{s}" if s else d for d, s in zip(train.dataset, train.subtask, strict=True)]
        data = OutcomeData(
            list(train.prompt_ids),
            list(train.prompts),
            list(train.task),
            groups,
            list(train.pool),
            np.asarray(train.scores, dtype=np.float64),
            np.asarray(train.costs, dtype=np.float64),
            np.full((n, len(train.pool)), np.nan),
            source=f"routeeval:{train.scenario}",
        )
        catalogue = load_catalogue()
        out = Path(self._tmp.name) / "artifacts"
        fit_router(
            data,
            catalogue,
            Options(
                out=out,
                seed=self.seed,
                cache_dir=default_cache_dir(),
                force=True,
                progress=False,
                command=f"routeeval fit {train.scenario}",
                embedder_dir=Path(os.environ["PUREAI_BENCH_EMBEDDER"])
                if os.environ.get("PUREAI_BENCH_EMBEDDER")
                else None,
            ),
        )
        self.rt = Router.load(out, catalogue)

    def route_many(self, prompt_ids, pool, weights):
        import routeeval

        texts = routeeval.prompt_texts(list(prompt_ids))
        out = {}
        for w in weights:
            decisions = self.rt.select_many(texts, models=list(pool), cost_weight=float(w))
            out[w] = [d.selected_model for d in decisions]
            self.confidence[float(w)] = (
                list(prompt_ids),
                [d.selected_model for d in decisions],
                [d.confidence for d in decisions],
            )
        return out

    def route(self, prompt_ids, pool, cost_weight):
        return self.route_many(prompt_ids, pool, [cost_weight])[cost_weight]

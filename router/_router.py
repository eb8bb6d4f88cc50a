"""The Router: artifacts + catalogue -> a Decision per prompt."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _artifacts, _score
from ._calibration import POOLS, Calibrations
from ._decision import Decision
from ._quality import Features, QualityModel, logit, sigmoid
from ._score import DEFAULT_COST_WEIGHT
from ._text import Prompt, estimate_tokens, read_prompt, shape
from .errors import ArtifactError, InputError, UnknownModelError

if TYPE_CHECKING:
    from models_registry import Catalogue, ModelEntry

QUALITY_FLOOR = 1e-3  # a shifted quality stays inside (0, 1)
CACHE_SIZE = 4096
REFERENCE = 256  # training prompts on which a pool's lambda table is calibrated
TABLES = 256  # pools whose catalogue facts (`_Pool`) are cached


class Router:
    """Use `Router.load(path)`; `select` / `select_many` return `Decision`s."""

    def __init__(
        self,
        artifacts: _artifacts.Artifacts,
        catalogue: Catalogue,
        threads: int = 1,
        calibration: str = "traffic",
    ) -> None:
        from ._embed import Embedder

        self._tables = Calibrations(calibration, POOLS)  # refuses an unknown mode
        self.calibration = self._tables.mode

        self.artifacts = artifacts
        self.catalogue = catalogue
        try:
            self.embedder = Embedder(
                artifacts.path("embedder.onnx"), artifacts.path("tokenizer.json"), threads
            )
            table = artifacts.quality
            self.quality = QualityModel(
                artifacts.path("heads.onnx"), artifacts.path("knn.npz"), table, threads
            )
            self.cost_from: str = table["cost"]["from"]
            self.cost_slope = np.asarray(table["cost"]["input_slope"], dtype=np.float64)
            self.cost_base = np.asarray(table["cost"]["base"], dtype=np.float64)
            self.cost_known = list(table["cost"]["known"])
            self.reference_tokens = int(table["reference"]["input_tokens"])
        except ArtifactError:
            raise
        except Exception as exc:  # onnxruntime, numpy and JSON-shape errors all mean a bad artifact
            raise ArtifactError(
                f"{artifacts.root}: artifacts in a bad format ({type(exc).__name__}: {exc})"
            ) from None
        self._cache: OrderedDict[str, tuple[np.ndarray, ...]] = OrderedDict()
        self._reference_rows: tuple[list[tuple[np.ndarray, ...]], np.ndarray] | None = None
        self._lock = threading.Lock()
        self._bind()

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        catalogue: Catalogue | Path | str | None = None,
        threads: int = 1,
        calibration: str = "traffic",
    ) -> Router:
        """`calibration`: what a pool's cost_weight scale is fitted on. "traffic" (the default):
        the pool's own recent prompts, once it has routed a few dozen (reference training prompts
        until then), so that a cost_weight lands on the same point of *this traffic's* cost range
        whatever its costs; "reference": reference training prompts only, so a decision depends on
        nothing routed before it."""
        from models_registry import Catalogue, load_catalogue

        cat = catalogue if isinstance(catalogue, Catalogue) else load_catalogue(catalogue)
        return cls(_artifacts.load(path), cat, threads, calibration)

    def with_catalogue(self, catalogue: Catalogue) -> Router:
        """This router over another catalogue (models added or removed), without loading anything
        again: the ONNX sessions, the prompt cache and the reference prompts are shared; what the
        catalogue decides (learned columns by alias, priors, the per-pool lambda tables) is rebuilt,
        lazily, on the first decision. A pool whose models' entries are all unchanged keeps (a copy
        of) its traffic calibration."""
        new = copy.copy(self)
        new.catalogue = catalogue
        new._bind()
        same = {m for m, e in catalogue.models.items() if self.catalogue.models.get(m) == e}
        new._tables = self._tables.carried(lambda pool: all(m in same or m not in catalogue.models for m in pool))
        return new

    def fresh(self) -> Router:
        """This router as if it had routed nothing: its lambda tables come from reference prompts
        until it has traffic of its own. The ONNX sessions and the prompt cache are shared."""
        new = copy.copy(self)
        new._tables = Calibrations(self.calibration, POOLS)
        return new

    def _bind(self) -> None:
        """What depends on the catalogue: learned columns by alias and the per-pool caches (the
        traffic calibrations are the caller's to keep or reset: `with_catalogue`, `fresh`). A
        candidate's quality depends on the prompt, its own entry and the artifacts only, never on
        which other models the catalogue lists."""
        self._column = self._learned_columns()
        self._pools: dict[tuple[str, ...], _Pool] = {}
        self._reference_qc: tuple[list[str], np.ndarray, np.ndarray] | None = None

    # -- models -------------------------------------------------------------------------------
    def _learned_columns(self) -> dict[str, int]:
        """Name (artifact name, catalogue id, or alias) -> learned column."""
        column = {m: j for j, m in enumerate(self.quality.models)}
        for entry in self.catalogue.models.values():
            for name in (entry.id, *entry.aliases):
                if name in column and entry.id not in column:
                    column[entry.id] = column[name]
        return column

    def default_models(self) -> list[str]:
        ids = [m.id for m in self.catalogue.enabled()]
        known = set(ids) | {a for m in self.catalogue.models.values() for a in m.aliases}
        known |= set(self.catalogue.models)
        return ids + [m for m in self.quality.models if m not in known and self._priced_by_data(m)]

    def _priced_by_data(self, name: str) -> bool:
        """A learned model outside the catalogue can be priced only from its outcome data's costs."""
        j = self._column.get(name, -1)
        return j >= 0 and bool(self.cost_known[j])

    def _entry(self, name: str) -> ModelEntry | None:
        return self.catalogue.models.get(name)

    def _check_models(self, models: Sequence[str] | None) -> list[str]:
        if models is None:
            return self.default_models()
        if isinstance(models, str) or not isinstance(models, Sequence):
            raise InputError("models must be a list of model names", param="models")
        if not models:
            raise InputError("models is empty: name at least one model", param="models")
        names = list(dict.fromkeys(models))
        known = [*self.catalogue.models, *self.quality.models]
        for name in names:
            if not isinstance(name, str):
                raise InputError("models must be a list of model names", param="models")
            if name not in self._column and name not in self.catalogue.models:
                raise UnknownModelError(name, known)
            if name not in self.catalogue.models and not self._priced_by_data(name):
                raise InputError(
                    f"{name} has outcome data but no prices (its data has no costs): list it in the catalogue",
                    param="models",
                )
        return names

    # -- features -----------------------------------------------------------------------------
    def _features(self, texts: list[str]) -> list[tuple[np.ndarray, ...]]:
        rows: list[tuple[np.ndarray, ...] | None] = []
        with self._lock:
            for t in texts:
                hit = self._cache.get(t)
                if hit is not None:
                    self._cache.move_to_end(t)
                rows.append(hit)
        missing = sorted({t for t, r in zip(texts, rows, strict=True) if r is None})
        if missing:
            f = self.quality.features(self.embedder.embed(missing), shape(missing, self.quality.shape))
            fresh = {t: _row(f, i) for i, t in enumerate(missing)}
            with self._lock:
                for t, r in fresh.items():
                    self._cache[t] = r
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            rows = [r if r is not None else fresh[t] for t, r in zip(texts, rows, strict=True)]
        return [r for r in rows if r is not None]

    # -- scoring ------------------------------------------------------------------------------
    def _priors(self, names: Sequence[str]) -> np.ndarray:
        """(len(names), capabilities): each catalogue model's quality priors (zeros for others)."""
        rows = np.zeros((len(names), len(self.quality.capabilities)))
        for i, name in enumerate(names):
            entry = self._entry(name)
            if entry is not None:
                rows[i] = [entry.quality_priors[c] for c in self.quality.capabilities]
        return rows

    def _pool(self, models: Sequence[str]) -> _Pool:
        """The candidates' catalogue and artifact facts as arrays (cached per pool)."""
        key = tuple(models)
        pool = self._pools.get(key)
        if pool is None:
            entries = [self._entry(m) for m in models]
            col = np.array([self._column.get(m, -1) for m in models], dtype=np.int64)
            has = col >= 0
            relative = [
                self._relative(e) if e is not None and j < 0 else -1
                for e, j in zip(entries, col, strict=True)
            ]
            like = np.array(relative, dtype=np.int64)
            offset = np.array(
                [
                    e.like_offset if e is not None and r >= 0 else 0.0
                    for e, r in zip(entries, relative, strict=True)
                ]
            )
            listed = np.array([e is not None for e in entries])
            known = np.array([bool(self.cost_known[j]) if j >= 0 else False for j in col])
            data_cost = has & known & ((self.cost_from == "data") | ~listed)
            assert bool(np.all(data_cost | listed)), "a model priced by neither data nor catalogue"
            price = [
                (e.input_per_mtok, e.output_per_mtok, e.expected_output_tokens, e.reasoning_tokens)
                if e
                else (0, 0, 0, 0)
                for e in entries
            ]
            pool = _Pool(
                np.where(has, col, np.maximum(like, 0)),
                has,
                like >= 0,
                offset,
                listed,
                self._priors(models),
                data_cost,
                *np.array(price, float).T,
            )
            with self._lock:
                self._pools[key] = pool
                while len(self._pools) > TABLES:
                    self._pools.pop(next(iter(self._pools)))
        return pool

    def _relative(self, entry: ModelEntry) -> int:
        """The learned column of the model an entry without outcome data is `like`, or -1."""
        if entry.like is None or entry.like == entry.id:
            return -1
        return self._column.get(entry.like, -1)

    def _candidates(
        self, row: tuple[np.ndarray, ...], n_in: int, models: list[str]
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Per candidate: quality, expected cost (learned per prompt, or catalogue prices x tokens)
        and what the quality rests on (`quality_source`):
        - "learned": outcome data on training prompts like this one (heads, neighbours, groups);
        - "ability": the model's learned ability on this kind of prompt, from all its outcome rows
          (the prompt is unlike its training prompts); in between, a mix weighted by how near the
          prompt's neighbours are and how many of them the model has outcomes on;
        - "relative": no outcome data of its own; the learned quality of the model its catalogue
          entry is `like`, shifted by `like_offset`;
        - "prior": the catalogue's quality priors, moved by the prompt's complexity."""
        caps, groups, complexity, quality, out_tokens, ability, local = row
        p = self._pool(models)
        learned = len(quality) > 0
        if learned:
            a = local[p.col]
            mixed = a * quality[p.col] + (1 - a) * ability[p.col]
        else:
            a, mixed = np.zeros(len(models)), np.zeros(len(models))
        from_relative = sigmoid(logit(mixed) + p.like_offset)
        prior = sigmoid(
            logit(p.priors @ caps / max(float(caps.sum()), 1e-9))
            + self.quality.prior_shift(float(complexity))
        )
        q = np.where(p.has, mixed, np.where(p.like, from_relative, prior))
        sources = [
            ("learned" if aj >= 0.5 else "ability") if h else "relative" if lk else "prior"
            for h, lk, aj in zip(p.has, p.like, a, strict=True)
        ]
        if learned:  # outcome data counts only the answer; a reasoning model is billed for more
            out = np.where(p.has | p.like, out_tokens[p.col] + p.reasoning, p.expected_out)
        else:
            out = p.expected_out
        priced = (p.input_price * n_in + p.output_price * out) / 1e6
        if p.data_cost.any():
            learned_cost = self.cost_slope[p.col] * n_in + groups @ self.cost_base[:, p.col]
            priced = np.where(p.data_cost, learned_cost, priced)
        return q, priced, sources

    def _reference(self) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray]:
        """Feature rows and input tokens of up to REFERENCE training prompts (from the neighbour
        memory), on which each pool's lambda table is calibrated. Each leaves its own row out of the
        neighbour search: with it, a training prompt's predicted quality leans on its own outcomes,
        spreads wider than a new prompt's, and the table's weights land on other costs than they
        do in traffic."""
        if self._reference_rows is None:
            emb, tokens = self.quality.knn_emb, self.quality.knn_tokens
            pick = np.random.default_rng(0).permutation(len(emb))[:REFERENCE]
            if len(pick):
                f = self.quality.features(emb[pick], self.quality.knn_shape[pick], exclude=pick)
                rows = [_row(f, i) for i in range(len(pick))]
            else:
                rows = []
            n_in = tokens[pick] if tokens is not None else np.full(len(pick), self.reference_tokens)
            self._reference_rows = (rows, np.asarray(n_in))
        return self._reference_rows

    def _reference_matrix(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Predicted quality and cost of every known model on the reference prompts (once)."""
        if self._reference_qc is None:
            learned = [m for m in self._column if m in self.catalogue.models or self._priced_by_data(m)]
            names = list(dict.fromkeys([*self.catalogue.models, *learned]))
            rows, n_in = self._reference()
            q = np.zeros((len(rows), len(names)))
            c = np.zeros_like(q)
            for r, (row, n) in enumerate(zip(rows, n_in, strict=True)):
                q[r], c[r], _ = self._candidates(row, int(n), names)
            self._reference_qc = (names, q, c)
        return self._reference_qc

    def lambda_table(self, models: Sequence[str]) -> np.ndarray:
        """The pool's lambda per calibrated weight: fitted on the pool's recent traffic (see
        `router._calibration`), or on reference prompts until it has some or with
        `calibration="reference"`."""
        key = tuple(models)

        def reference() -> tuple[np.ndarray, np.ndarray]:
            names, q, c = self._reference_matrix()
            cols = [names.index(m) for m in key]
            return q[:, cols], c[:, cols]

        return self._tables.table(key, reference)

    def calibrated_on(self, models: Sequence[str]) -> int:
        """How many of the pool's routed prompts its current cost_weight scale was fitted on
        (0: reference training prompts only)."""
        return self._tables.traffic(tuple(models))

    def _decide(
        self,
        row: tuple[np.ndarray, ...],
        scored: tuple[np.ndarray, np.ndarray, list[str]],
        n_in: int,
        models: list[str],
        w: float,
        table: np.ndarray,
        shift: Mapping[str, float] | None = None,
    ) -> Decision:
        caps, complexity = row[0], row[2]
        cx = float(complexity)
        q, c, src = scored
        if shift:
            q = np.clip(q + np.array([shift.get(m, 0.0) for m in models]), QUALITY_FLOOR, 1 - QUALITY_FLOOR)
        ranked = _score.rank(models, q, c, src, w, table)
        best = ranked[0]
        capabilities = {c: 0.0 for c in _all_capabilities()}
        capabilities.update(
            {c: round(float(p), 4) for c, p in zip(self.quality.capabilities, caps, strict=True)}
        )
        top = int(np.argmax(caps))
        entry = self._entry(best.model)
        relative = entry.like if entry is not None else None
        text = _score.reasoning(ranked, self.quality.capabilities[top], float(caps[top]), cx, w, relative)
        return Decision(
            best.model,
            float(best.confidence),
            text,
            tuple(ranked),
            capabilities,
            cx,
            w,
            n_in,
            {"capability": self.quality.capabilities[top]},
        )

    # -- public -------------------------------------------------------------------------------
    def select(
        self,
        prompt: Prompt,
        models: Sequence[str] | None = None,
        cost_weight: float = DEFAULT_COST_WEIGHT,
        quality_shift: Mapping[str, float] | None = None,
    ) -> Decision:
        """The decision for one prompt. `cost_weight` in [0, 1]: 0 = best predicted quality, 1 =
        cheapest (default `DEFAULT_COST_WEIGHT`, 0.5, as POST /v1/router). `quality_shift`: per
        model, added to its predicted quality before ranking (what feedback has taught since
        training; clipped to (0, 1))."""
        return self.select_many([prompt], models, cost_weight, quality_shift)[0]

    def select_many(
        self,
        prompts: Sequence[Prompt],
        models: Sequence[str] | None = None,
        cost_weight: float = DEFAULT_COST_WEIGHT,
        quality_shift: Mapping[str, float] | None = None,
    ) -> list[Decision]:
        """One decision per prompt, as `select` gives (the same defaults), embedded in one batch."""
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise InputError("prompts must be a list of prompts (use select for one)", param="prompts")
        w = _check_weight(cost_weight)
        names = self._check_models(models)
        shift = _check_shift(quality_shift)
        read = [read_prompt(p) for p in prompts]
        rows = self._features([t for t, _ in read])
        n_in = [estimate_tokens(chars) for _, chars in read]
        scored = [self._candidates(r, n, names) for r, n in zip(rows, n_in, strict=True)]
        if scored:
            self._tables.observe(tuple(names), np.array([s[0] for s in scored]), np.array([s[1] for s in scored]))
        table = self.lambda_table(names)
        return [
            self._decide(r, sc, n, names, w, table, shift)
            for r, sc, n in zip(rows, scored, n_in, strict=True)
        ]


@dataclass(frozen=True)
class _Pool:
    col: np.ndarray  # learned column per candidate, its relative's, or 0 (see `has`, `like`)
    has: np.ndarray  # has a learned column of its own
    like: np.ndarray  # has none, and its catalogue entry names a relative that has one
    like_offset: np.ndarray  # logits added to the relative's quality
    listed: np.ndarray  # is in the catalogue
    priors: np.ndarray  # (candidates, capabilities) catalogue quality priors
    data_cost: np.ndarray  # cost from the learned per-prompt cost model, not catalogue prices
    input_price: np.ndarray  # USD per 1M input tokens (catalogue)
    output_price: np.ndarray
    expected_out: np.ndarray  # output tokens without a learned estimate
    reasoning: np.ndarray  # hidden reasoning tokens added to a learned answer length


def _row(f: Features, i: int) -> tuple[np.ndarray, ...]:
    return (
        f.capabilities[i],
        f.groups[i],
        f.complexity[i],
        f.quality[i],
        f.out_tokens[i],
        f.ability[i],
        f.local[i],
    )


def _check_weight(cost_weight: Any) -> float:
    if isinstance(cost_weight, bool) or not isinstance(cost_weight, int | float) or not 0 <= cost_weight <= 1:
        raise InputError("cost_weight must be a number between 0 and 1", param="cost_weight")
    return float(cost_weight)


def _check_shift(shift: Any) -> dict[str, float] | None:
    if shift is None:
        return None
    if not isinstance(shift, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and -1 <= v <= 1
        for k, v in shift.items()
    ):
        raise InputError("quality_shift must map model names to numbers in [-1, 1]", param="quality_shift")
    return {k: float(v) for k, v in shift.items()}


def _all_capabilities() -> tuple[str, ...]:
    from models_registry import CAPABILITIES

    return tuple(CAPABILITIES)

"""Learning from traffic, end to end on loopback: requests through a real gateway (prompt logging
on), feedback, `pureai export` and `pureai train` as subprocesses, and the new artifacts loaded by
the router; with prompt logging off (the default), nothing is exported."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models_registry import load_catalogue
from router import Router
from tests.service.calls import chat, h
from tests.service.conftest import gateway_env
from tests.service.gateway_server import PUREAI, Gateway

TOPICS = [
    "sort a python list", "prove the integral converges", "a poem about the sea", "the capital of France",
    "summarise this contract", "fix this SQL query", "explain recursion", "translate hello into German",
]  # fmt: skip
MODELS = ["gpt-4o-mini", "claude-3-haiku"]


@pytest.fixture(scope="module")
def logging_gateway(
    catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, dict[str, str]]]:
    """A gateway with prompt logging on, and the environment a CLI needs to reach its store."""
    env = gateway_env(catalogue_file, tmp_path_factory.mktemp("export"), PUREAI_LOG_PROMPTS="true")
    with Gateway.start(dict(env)) as gw:
        yield gw, {**os.environ, **env}


def pureai(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(PUREAI), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def test_requests_feedback_export_train(
    logging_gateway: tuple[Gateway, dict[str, str]], fresh: Any, tmp_path: Path
) -> None:
    gw, env = logging_gateway
    key = gw.new_key(tenant="t-export")
    start = time.time()
    expected = {}
    for i in range(24):
        model = MODELS[i % 2]
        content = f"{TOPICS[i % len(TOPICS)]} (#{i})"
        body = chat(content, model=model)
        body["messages"].insert(0, {"role": "system", "content": "be brief"})
        r = gw.http.post("/v1/chat/completions", headers=h(key), json=body)
        assert r.status_code == 200, r.text
        if i == 23:
            continue  # no feedback: not exported
        score = 1.0 if model == "gpt-4o-mini" else 0.0
        assert (
            gw.http.post(
                "/v1/feedback", headers=h(key), json={"request_id": r.json()["id"], "score": score}
            ).status_code
            == 201
        )
        expected[r.json()["id"]] = (content, model, score)
    out = tmp_path / "export"
    done = pureai("export", "--since", str(start - 1), "--out", str(out), env=env)
    assert json.loads(done.stdout)["rows"] == 23
    lines = [json.loads(x) for x in (out / "traffic.jsonl").read_text().splitlines()]
    got = {x["prompt_id"]: (x["prompt"], x["model"], x["score"]) for x in lines}
    assert got == expected  # the last user turn, not the system message
    assert all(x["cost_usd"] > 0 and x["output_tokens"] > 0 for x in lines)
    later = pureai("export", "--since", "2999-01-01", "--out", str(tmp_path / "none"), env=env)
    assert json.loads(later.stdout)["rows"] == 0

    # the retrain learns from the export beside the shipped base set (the default for JSON Lines)
    artifacts = tmp_path / "artifacts"
    pureai("train", "--data", str(out), "--out", str(artifacts), "--folds", "1", "--quiet", env=env)
    rows = json.loads((artifacts / "report" / "metrics.json").read_text())["rows"]
    assert (rows["base"], rows["user"], rows["user_weight"]) == (8000, 23, 10.0)
    catalogue = load_catalogue(env["PUREAI_CATALOGUE"])
    router, shipped = Router.load(artifacts, catalogue), Router.load(None, catalogue)
    assert router.quality.models == shipped.quality.models  # the export's models are shipped ones
    decision = router.select("sort a python list", MODELS, 0.0)
    assert decision.selected_model in MODELS

    def lead(rt: Router) -> float:
        """gpt-4o-mini's mean lead in predicted quality over claude-3-haiku on new prompts of the
        topics whose feedback scored it 1 and claude-3-haiku 0."""
        ds = rt.select_many([f"{t} (#99)" for t in TOPICS], MODELS, 0.0)
        q = [{c.model: c.quality for c in d.candidates} for d in ds]
        return sum(x["gpt-4o-mini"] - x["claude-3-haiku"] for x in q) / len(q)

    assert lead(router) > lead(shipped) + 0.05


def test_prompts_are_not_kept_by_default(catalogue_file: Path, fresh: Any, tmp_path: Path) -> None:
    env = gateway_env(catalogue_file, tmp_path / "data")
    with Gateway.start(env) as gw:
        key = gw.new_key(tenant="t-export")
        r = gw.http.post("/v1/chat/completions", headers=h(key), json=chat("a secret"))
        assert r.status_code == 200
        rated = gw.http.post("/v1/feedback", headers=h(key), json={"request_id": r.json()["id"], "score": 1})
        assert rated.status_code == 201
        done = pureai("export", "--out", str(tmp_path / "out"), env={**os.environ, **env})
    assert json.loads(done.stdout)["rows"] == 0
    assert (tmp_path / "out" / "traffic.jsonl").read_text() == ""
    assert "PUREAI_LOG_PROMPTS" in done.stderr

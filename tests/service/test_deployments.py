"""The admin API for `pureai/<id>` deployments, against real gateways (`pureai serve`) and the fake
upstreams: registered in one gateway, served by another on the same store, kept across a restart,
gone once deleted; bad requests get 4xx in OpenAI's error shape; keys are never shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models_registry import load_catalogue
from service.deployments import Deployments, NewDeployment
from service.sealing import Sealer
from service.store import open_store
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import SECRET_KEY, Gateway

SECRET = "sk-deploy-Qv7Lw3Zr9T"
MODEL = "pureai/fake-llama"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Hello deployment"}]}
PRICED = {"input_per_mtok": 0.1, "output_per_mtok": 0.2}


def register_body(upstreams: tuple[FakeUpstream, FakeUpstream]) -> dict[str, Any]:
    return {
        "id": "fake-llama",
        "api_base": upstreams[0].url,
        "api_key": SECRET,
        "context_window": 8192,
        "input_per_mtok": 0.1,
        "output_per_mtok": 0.2,
        "quality_priors": {"default": 0.6, "code": 0.7},
        "providers": [{"id": "replica-b", "api_base": upstreams[1].url}],
    }


def model_ids(gw: Gateway, key: str) -> list[str]:
    r = gw.http.get("/v1/models", headers={"x-api-key": key})
    assert r.status_code == 200, r.text
    return [m["id"] for m in r.json()["data"]]


def error_of(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture()
def env(catalogue_file: Path, tmp_path: Path) -> dict[str, str]:
    """One store for the gateways of a test; every request re-reads the registered deployments."""
    return gateway_env(catalogue_file, tmp_path, PUREAI_DEPLOYMENT_CACHE_S="0")


@pytest.fixture()
def pair(env: dict[str, str]) -> Iterator[tuple[Gateway, Gateway]]:
    """Two gateway processes on one store, as two workers or two hosts are."""
    with Gateway.start(env) as one, Gateway.start(env) as two:
        yield one, two


def test_a_deployment_registered_in_one_gateway_is_served_by_another(
    pair: tuple[Gateway, Gateway], fresh: tuple[FakeUpstream, FakeUpstream]
) -> None:
    one, two = pair
    tenant = one.new_key(tenant="t-deploy", name="user")
    assert MODEL not in model_ids(two, tenant)

    made = one.http.post("/v1/admin/deployments", headers=one.admin(), json=register_body(fresh))
    assert made.status_code == 201, made.text
    shown = made.json()
    assert SECRET not in made.text
    assert (shown["id"], shown["object"], shown["model"], shown["api_key_set"]) == (
        "fake-llama",
        "deployment",
        MODEL,
        True,
    )
    assert (shown["context_window"], shown["input_per_mtok"], shown["output_per_mtok"]) == (8192, 0.1, 0.2)
    assert (shown["source"], shown["free"], shown["priced"]) == ("registered", False, True)
    assert shown["quality_priors"]["code"] == 0.7 and shown["quality_priors"]["math"] == 0.6
    assert [(p["id"], p["type"], p["api_base"], p["api_key_set"]) for p in shown["providers"]] == [
        ("pureai", "primary", fresh[0].url, True),
        ("replica-b", "backup", fresh[1].url, True),  # the deployment's key, as api_key_env is inherited
    ]

    # the other gateway: listed, with its providers, and served from its api_base with its key
    assert MODEL in model_ids(two, tenant)
    providers = two.http.get("/v1/providers", headers={"x-api-key": tenant}, params={"model": MODEL})
    assert [(p["id"], p["type"]) for p in providers.json()["providers"]] == [
        ("pureai", "primary"),
        ("replica-b", "backup"),
    ]
    r = two.http.post("/v1/chat/completions", headers={"x-api-key": tenant}, json=CHAT)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == MODEL
    assert r.json()["choices"][0]["message"]["content"] == "Hello from A: Hello deployment"
    usage = r.json()["usage"]
    expected = (usage["prompt_tokens"] * 0.1 + usage["completion_tokens"] * 0.2) / 1e6
    assert usage["total_cost_usd"] == pytest.approx(expected)
    (sent,) = fresh[0].requests()
    assert (sent["model"], sent["headers"]["authorization"]) == ("fake-llama", f"Bearer {SECRET}")

    # a text completion gets the raw prompt at /v1/completions; a failing primary fails over
    fresh[0].script({"status": 500, "model": "fake-llama"})
    r = two.http.post(
        "/v1/completions", headers={"x-api-key": tenant}, json={"model": MODEL, "prompt": "Say hi"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["text"] == "Hello from B: Say hi"
    assert fresh[0].requests()[-1]["path"] == "/v1/completions"
    assert fresh[1].requests()[-1]["headers"]["authorization"] == f"Bearer {SECRET}"

    # a candidate of the router: the cheapest here, so chosen at cost_weight 1, and run
    routed = two.http.post(
        "/v1/router",
        headers={"x-api-key": tenant},
        json={**CHAT, "models": ["gpt-4o", MODEL], "cost_weight": 1.0, "execute": True},
    )
    assert routed.status_code == 200, routed.text
    assert routed.json()["model"] == MODEL and routed.json()["routing"]["selected_model"] == MODEL

    listed = two.http.get("/v1/admin/deployments", headers=two.admin())
    registered = [d["model"] for d in listed.json()["data"] if d["source"] == "registered"]
    assert registered == [MODEL] and SECRET not in listed.text
    again = one.http.post("/v1/admin/deployments", headers=one.admin(), json=register_body(fresh))
    assert error_of(again, 409)["code"] == "deployment_exists"
    for gw in pair:
        assert SECRET not in gw.logs()

    # removed in one, gone from the other
    gone = one.http.delete("/v1/admin/deployments/fake-llama", headers=one.admin())
    assert gone.status_code == 200 and gone.json() == {
        "id": "fake-llama",
        "object": "deployment",
        "deleted": True,
    }
    assert MODEL not in model_ids(two, tenant)
    r = two.http.post("/v1/chat/completions", headers={"x-api-key": tenant}, json=CHAT)
    assert error_of(r, 404)["code"] == "model_not_found"
    missing = two.http.delete("/v1/admin/deployments/fake-llama", headers=two.admin())
    assert error_of(missing, 404)["code"] == "deployment_not_found"


def test_a_deployment_survives_a_restart(
    env: dict[str, str], fresh: tuple[FakeUpstream, FakeUpstream]
) -> None:
    with Gateway.start(env) as gw:
        made = gw.http.post("/v1/admin/deployments", headers=gw.admin(), json=register_body(fresh))
        assert made.status_code == 201, made.text
    with Gateway.start(env) as gw:
        assert MODEL in model_ids(gw, gw.admin()["x-api-key"])
        r = gw.http.post("/v1/chat/completions", headers=gw.admin(), json=CHAT)
        assert r.status_code == 200, r.text
        assert fresh[0].requests()[-1]["headers"]["authorization"] == f"Bearer {SECRET}"  # its key kept
        decision = gw.http.post(
            "/v1/router", headers=gw.admin(), json={**CHAT, "models": ["gpt-4o", MODEL], "cost_weight": 1.0,
                                                    "execute": False},
        )  # fmt: skip
        assert decision.status_code == 200 and decision.json()["selected_model"] == MODEL


BAD = [
    ({"id": "has space", "api_base": "http://h/v1"}, 400, "id", "invalid_value"),
    ({"id": "../etc", "api_base": "http://h/v1"}, 400, "id", "invalid_value"),
    ({"id": "", "api_base": "http://h/v1"}, 400, "id", "invalid_value"),
    ({"api_base": "http://h/v1"}, 400, "id", "missing_field"),
    ({"id": "x"}, 400, "api_base", "missing_field"),
    ({"id": "x", "api_base": "ftp://h/v1"}, 400, "api_base", "invalid_value"),
    ({"id": "x", "api_base": "not a url"}, 400, "api_base", "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "input_per_mtok": -1}, 400, "input_per_mtok", "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "context_window": 0}, 400, "context_window", "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "quality_priors": {"code": 2}}, 400, "quality_priors.code", "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "quality_priors": {"code": 0.5}}, 400, "quality_priors", "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "api_key_env": "sk-not a name"}, 400, "api_key_env", "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "api_base_url": "http://h"}, 400, "api_base_url", "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "providers": [{"id": "b", "api_base": "gopher://h"}]}, 400,
     "providers[0].api_base", "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "providers": [{"id": "pureai"}]}, 400, "providers[0].id",
     "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "providers": [{"id": "b"}, {"id": "b"}]}, 400, "providers[1].id",
     "invalid_value"),
    ({"id": "x", "api_base": "http://h/v1", "providers": [{"id": "p", "type": "primary"}, {"id": "q", "type": "primary"}]},
     400, "providers", "invalid_value"),
    ({"id": "gemma-3-4b-it", "api_base": "http://h/v1"}, 409, "id", "model_exists"),
    ({"id": "pureai/gemma-3-4b-it", "api_base": "http://h/v1"}, 409, "id", "model_exists"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "param", "code"), BAD)
def test_bad_deployments_are_refused_in_the_openai_error_shape(
    gateway: Gateway, body: dict[str, Any], status: int, param: str, code: str
) -> None:
    r = gateway.http.post("/v1/admin/deployments", headers=gateway.admin(), json={**PRICED, **body})
    error = error_of(r, status)
    assert (error["param"], error["code"]) == (param, code), error
    assert error["type"] == "invalid_request_error"
    assert "Traceback" not in error["message"] and ".toml" not in error["message"]
    listed = gateway.http.get("/v1/admin/deployments", headers=gateway.admin())
    assert listed.status_code == 200 and "pureai/x" not in [d["model"] for d in listed.json()["data"]]


UNPRICED = [
    ({}, "input_per_mtok", "missing_field"),
    ({"output_per_mtok": 0.2}, "input_per_mtok", "missing_field"),
    ({"input_per_mtok": 0.1}, "output_per_mtok", "missing_field"),
    ({"input_per_mtok": 0.1, "cached_input_per_mtok": 0.05}, "output_per_mtok", "missing_field"),
    ({"free": False}, "input_per_mtok", "missing_field"),
    ({"free": True, "input_per_mtok": 0.1}, "input_per_mtok", "invalid_value"),
    ({"free": True, "input_per_mtok": 0, "output_per_mtok": 0.2}, "output_per_mtok", "invalid_value"),
    ({"free": True, "cached_input_per_mtok": 0.05}, "cached_input_per_mtok", "invalid_value"),
    ({"free": "yes"}, "free", "invalid_value"),
]


@pytest.mark.parametrize(("prices", "param", "code"), UNPRICED)
def test_a_deployment_gives_both_prices_or_says_it_is_free(
    gateway: Gateway, prices: dict[str, Any], param: str, code: str
) -> None:
    """Never a $0 model by omission: it would win every decision that weighs cost."""
    body = {"id": "unpriced", "api_base": "http://h/v1", **prices}
    error = error_of(gateway.http.post("/v1/admin/deployments", headers=gateway.admin(), json=body), 400)
    assert (error["param"], error["code"]) == (param, code), error
    assert param in error["message"] and ("free" in error["message"] or param == "free")
    assert "pureai/unpriced" not in model_ids(gateway, gateway.admin()["x-api-key"])


@pytest.mark.parametrize("prices", [{}, {"input_per_mtok": 0, "output_per_mtok": 0.0}])
def test_a_free_deployment_costs_nothing_by_intent(
    gateway: Gateway, fresh: tuple[FakeUpstream, FakeUpstream], prices: dict[str, Any]
) -> None:
    body = {"id": "free-llama", "api_base": fresh[0].url, "free": True, **prices}
    made = gateway.http.post("/v1/admin/deployments", headers=gateway.admin(), json=body)
    try:
        assert made.status_code == 201, made.text
        shown = made.json()
        assert (shown["free"], shown["priced"]) == (True, True)
        assert [shown[f"{kind}_per_mtok"] for kind in ("input", "output", "cached_input")] == [0, 0, 0]
        listed = gateway.http.get("/v1/admin/deployments", headers=gateway.admin()).json()["data"]
        assert [d["free"] for d in listed if d["model"] == "pureai/free-llama"] == [True]
        chat = {**CHAT, "model": "pureai/free-llama"}
        r = gateway.http.post("/v1/chat/completions", headers=gateway.admin(), json=chat)
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["total_cost_usd"] == 0
    finally:
        gateway.http.delete("/v1/admin/deployments/free-llama", headers=gateway.admin())


def test_the_listing_has_the_catalogue_files_deployments_with_their_prices(
    catalogue_file: Path, upstreams: tuple[FakeUpstream, FakeUpstream], tmp_path: Path
) -> None:
    """`Deployments.listing`, GET /v1/admin/deployments' data: the registered ones, then the
    catalogue file's pureai/ models with their base URL, prices and context window."""
    base = load_catalogue(catalogue_file)
    store, sealer = open_store(str(tmp_path / "unused.db")), Sealer([SECRET_KEY])
    deployments = Deployments(base, store, 0.0, lambda *_: None, sealer=sealer)
    mine, _ = deployments.build(NewDeployment(id="mine", api_base="http://h/v1", api_key=SECRET, free=True))
    listed = deployments.listing([mine])
    assert [(d["model"], d["source"]) for d in listed] == [
        ("pureai/mine", "registered"),
        ("pureai/gemma-3-4b-it", "catalogue"),
        ("pureai/DeepSeek-R1-Distill-Llama-8B", "catalogue"),
    ]
    assert (listed[0]["free"], listed[0]["api_key_set"], listed[0]["created"] > 0) == (True, True, True)
    gemma = listed[1]
    assert gemma["api_base"] == upstreams[0].url
    assert (gemma["input_per_mtok"], gemma["output_per_mtok"]) == (0.02, 0.04)
    assert (gemma["context_window"], gemma["free"], gemma["priced"]) == (131072, False, True)
    assert (gemma["api_key_set"], gemma["created"]) == (False, None)
    assert [(p["id"], p["type"], p["api_base"]) for p in gemma["providers"]] == [
        ("pureai", "primary", upstreams[0].url)
    ]
    assert set(gemma) == set(listed[0])  # one shape for both kinds


def test_the_deployment_api_is_for_admin_keys(gateway: Gateway, key: str) -> None:
    for method, path in (
        ("POST", "/v1/admin/deployments"),
        ("GET", "/v1/admin/deployments"),
        ("DELETE", "/v1/admin/deployments/x"),
    ):
        body = {"id": "x", "api_base": "http://h/v1"} if method == "POST" else None
        assert error_of(gateway.http.request(method, path, json=body), 401)["code"] == "missing_api_key"
        refused = gateway.http.request(method, path, json=body, headers={"x-api-key": key})
        assert error_of(refused, 403)["code"] == "admin_only"
    catalogue_one = gateway.http.delete("/v1/admin/deployments/gemma-3-4b-it", headers=gateway.admin())
    error = error_of(catalogue_one, 404)
    assert error["code"] == "deployment_not_found" and "catalogue file" in error["message"]

"""Router roll-out on a running gateway (issue 9): versioned artifacts, hot reload (admin call and
SIGHUP), rollback, shadow decisions. Real gateway subprocesses over the fake upstreams (A serves
gpt-4o-mini). A second version of the shipped artifacts is a copy whose manifest carries one more
harmless field: every file still matches its sha256, and the manifest, hence the version, differs.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from router._artifacts import default_dir
from service.rollout import version_of
from tests.service.calls import h
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway
from tests.service.prom import scrape, value

Upstreams = tuple[FakeUpstream, FakeUpstream]
ROUTER = "/v1/router"
ASK = {"messages": [{"role": "user", "content": "Write Python code to sort a list"}], "execute": False}


def release(dest: Path, note: str | None) -> Path:
    """A copy of the shipped artifacts; with `note`, a new version (the manifest gains a field)."""
    shutil.copytree(default_dir(), dest)
    if note is not None:
        manifest = dest / "manifest.json"
        data = json.loads(manifest.read_text())
        data["note"] = note
        manifest.write_text(json.dumps(data, indent=1))
    return dest


def version(path: Path) -> str:
    return version_of(json.loads((path / "manifest.json").read_text()))


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.05)  # polling with a deadline


def shadow_lines(gw: Gateway) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in gw.logs().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("logger") == "pureai.shadow"]


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("releases")
    corrupt = release(root / "corrupt", None)
    (corrupt / "quality.json").write_text(json.dumps({"replaced": True}))
    return {
        "v1": release(root / "v1", None),
        "v2": release(root / "v2", "v2"),
        "v3": release(root / "v3", "v3"),
        "corrupt": corrupt,
    }


@pytest.fixture(scope="module")
def gw(
    catalogue_file: Path, releases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    env = gateway_env(
        catalogue_file, tmp_path_factory.mktemp("rollout"), PUREAI_ARTIFACTS=str(releases["v1"])
    )
    with Gateway.start(env) as g:
        yield g


@pytest.fixture()
def key(gw: Gateway) -> str:
    return gw.new_key(tenant="t-rollout")


def state(gw: Gateway) -> dict[str, Any]:
    r = gw.http.get("/v1/admin/router", headers=gw.admin())
    assert r.status_code == 200, r.text
    return dict(r.json())


def admin(gw: Gateway, path: str, artifacts: Path | None = None) -> Any:
    body = None if artifacts is None else {"artifacts": str(artifacts)}
    return gw.http.post(path, headers=gw.admin(), json=body)


def test_reload_swaps_the_router_without_a_restart_and_requests_in_flight_finish(
    gw: Gateway, releases: dict[str, Path], key: str, fresh: Upstreams
) -> None:
    pid, before = gw.process.pid, state(gw)["version"]
    a, _ = fresh
    a.script({"delay_ms": 1500})
    body = {**ASK, "execute": True, "models": ["gpt-4o-mini"]}
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(gw.http.post, ROUTER, headers=h(key), json=body)
        a.wait_for(lambda seen: len(seen) == 1)  # the request is upstream, decided by the old router
        r = admin(gw, "/v1/admin/router/reload", releases["v2"])
        answered = slow.result()
    assert r.status_code == 200, r.text
    assert r.json() == {"version": version(releases["v2"]), "previous": before, "shadow": None}
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-pureai-router-version"] == before
    assert answered.json()["routing"].keys() == {"selected_model", "confidence", "reasoning"}
    decided = gw.http.post(ROUTER, headers=h(key), json=ASK)
    assert decided.status_code == 200, decided.text
    assert decided.json()["router_version"] == version(releases["v2"])
    assert decided.headers["x-pureai-router-version"] == version(releases["v2"])
    assert gw.http.get("/ready").json()["router_version"] == version(releases["v2"])
    assert gw.process.pid == pid and gw.process.poll() is None
    selected = decided.json()["selected_model"]
    samples = scrape(gw)
    assert (
        value(samples, "pureai_routing_decisions_total", model=selected, version=version(releases["v2"])) >= 1
    )


def test_bad_artifacts_are_refused_and_the_router_stays(gw: Gateway, releases: dict[str, Path]) -> None:
    before = state(gw)
    r = admin(gw, "/v1/admin/router/reload", releases["corrupt"])
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_artifacts" and "quality.json" in error["message"]
    missing = admin(gw, "/v1/admin/router/reload", releases["v1"].parent / "nowhere")
    assert missing.status_code == 400 and "not a directory" in missing.json()["error"]["message"]
    relative = gw.http.post("/v1/admin/router/reload", headers=gw.admin(), json={"artifacts": "v2"})
    assert relative.status_code == 400 and relative.json()["error"]["param"] == "artifacts"
    assert state(gw) == before


def test_rollback_returns_to_the_previous_router(gw: Gateway, releases: dict[str, Path], key: str) -> None:
    old = state(gw)["version"]
    assert admin(gw, "/v1/admin/router/reload", releases["v3"]).status_code == 200
    assert state(gw)["version"] == version(releases["v3"])
    r = admin(gw, "/v1/admin/router/rollback")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == old and r.json()["previous"] == version(releases["v3"])
    assert gw.http.post(ROUTER, headers=h(key), json=ASK).json()["router_version"] == old


def test_shadow_decisions_are_logged_with_both_versions(
    gw: Gateway, releases: dict[str, Path], key: str, fresh: Upstreams
) -> None:
    current = state(gw)["version"]
    r = admin(gw, "/v1/admin/router/shadow", releases["v3"])
    assert r.status_code == 200, r.text
    assert r.json()["shadow"] == version(releases["v3"]) and r.json()["version"] == current
    try:
        executed = gw.http.post(ROUTER, headers=h(key), json={**ASK, "execute": True})
        assert executed.status_code == 200, executed.text
        request_id = executed.headers["x-request-id"]
        selected = executed.json()["routing"]["selected_model"]
        assert executed.headers["x-pureai-model"] == selected  # the current router's choice ran
        assert executed.headers["x-pureai-router-version"] == current
        line = eventually(lambda: [x for x in shadow_lines(gw) if x["request_id"] == request_id])[0]
        assert line["level"] == "info"
        assert line["version"] == current and line["selected_model"] == selected
        assert line["shadow_version"] == version(releases["v3"])
        assert line["agree"] == (line["shadow_selected_model"] == selected)
        agreed = "true" if line["agree"] else "false"
        assert value(scrape(gw), "pureai_shadow_agreement_total", agree=agreed) >= 1
    finally:
        stopped = gw.http.delete("/v1/admin/router/shadow", headers=gw.admin())
    assert stopped.status_code == 200 and stopped.json()["shadow"] is None
    quiet = gw.http.post(ROUTER, headers=h(key), json=ASK).headers["x-request-id"]
    gw.http.post(ROUTER, headers=h(key), json=ASK)  # the access lines of both are written by now
    eventually(lambda: quiet in gw.logs())
    assert all(x["request_id"] != quiet for x in shadow_lines(gw))


def test_metrics_show_the_mean_feedback_per_router_version(
    gw: Gateway, releases: dict[str, Path], key: str, fresh: Upstreams
) -> None:
    assert admin(gw, "/v1/admin/router/reload", releases["v3"]).status_code == 200
    versions: dict[str, str] = {}
    for score in (1.0, 0.5):
        routed = gw.http.post(
            ROUTER, headers=h(key), json={**ASK, "execute": True, "models": ["gpt-4o-mini"]}
        )
        assert routed.status_code == 200, routed.text
        versions[routed.headers["x-request-id"]] = routed.headers["x-pureai-router-version"]
        rated = gw.http.post(
            "/v1/feedback", headers=h(key), json={"request_id": routed.json()["id"], "score": score}
        )
        assert rated.status_code == 201, rated.text
        if score == 1.0:
            assert admin(gw, "/v1/admin/router/rollback").status_code == 200  # the second: the other version
    first, second = versions.values()
    assert first == version(releases["v3"]) and second != first
    samples = scrape(gw)
    for v, score in ((first, 1.0), (second, 0.5)):
        labels = {"model": "gpt-4o-mini", "version": v}
        assert value(samples, "pureai_router_feedback_score_count", **labels) >= 1
        if v == first:  # v3 answered no other rated request
            assert value(samples, "pureai_router_feedback_score_sum", **labels) == score


def test_tenant_keys_cannot_manage_the_router(gw: Gateway, releases: dict[str, Path], key: str) -> None:
    calls = [
        gw.http.get("/v1/admin/router", headers=h(key)),
        gw.http.post("/v1/admin/router/reload", headers=h(key), json={"artifacts": str(releases["v2"])}),
        gw.http.post("/v1/admin/router/rollback", headers=h(key)),
        gw.http.post("/v1/admin/router/shadow", headers=h(key), json={"artifacts": str(releases["v2"])}),
        gw.http.delete("/v1/admin/router/shadow", headers=h(key)),
    ]
    assert [r.status_code for r in calls] == [403] * len(calls)
    assert gw.http.get("/v1/admin/router").status_code == 401


def test_sighup_reloads_from_the_configured_artifacts(
    catalogue_file: Path, tmp_path: Path, releases: dict[str, Path]
) -> None:
    live = release(tmp_path / "live", None)
    env = gateway_env(
        catalogue_file, tmp_path / "data", PUREAI_ARTIFACTS=str(live), PUREAI_ROUTER_CALIBRATION="reference"
    )
    (tmp_path / "data").mkdir()
    with Gateway.start(env) as g:
        first = state(g)
        assert first == {
            "version": version(live),
            "previous": None,
            "shadow": None,
            "calibration": "reference",
            "learning": {},
        }
        none = admin(g, "/v1/admin/router/rollback")
        assert none.status_code == 400 and none.json()["error"]["code"] == "no_previous_router"
        shutil.copy(releases["v2"] / "manifest.json", live / "manifest.json")  # a new release in place
        g.process.send_signal(signal.SIGHUP)
        after = eventually(lambda: (s := state(g))["version"] != first["version"] and s)
        expected = {"version": version(releases["v2"]), "previous": first["version"], "shadow": None}
        assert after == {**expected, "calibration": "reference", "learning": {}}
        assert g.process.poll() is None

"""A deployment is named in the admin API's URLs with or without its `pureai/` prefix, as in the
POST body: GET and DELETE of `/v1/admin/deployments/<id>` and `/v1/admin/deployments/pureai/<id>`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway

PATH = "/v1/admin/deployments"


def _register(gateway: Gateway, upstream: FakeUpstream, name: str) -> None:
    body = {"id": name, "api_base": upstream.url, "input_per_mtok": 0.1, "output_per_mtok": 0.2}
    made = gateway.http.post(PATH, headers=gateway.admin(), json=body)
    assert made.status_code == 201, made.text


def _error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


@pytest.mark.parametrize("prefixed", [False, True])
def test_get_and_delete_take_the_id_with_or_without_its_prefix(
    gateway: Gateway, fresh: tuple[FakeUpstream, FakeUpstream], prefixed: bool
) -> None:
    name = f"ids-{'prefixed' if prefixed else 'bare'}"
    where = f"{PATH}/pureai/{name}" if prefixed else f"{PATH}/{name}"
    _register(gateway, fresh[0], name)
    try:
        for url in (f"{PATH}/{name}", f"{PATH}/pureai/{name}"):
            shown = gateway.http.get(url, headers=gateway.admin())
            assert shown.status_code == 200, shown.text
            assert (shown.json()["id"], shown.json()["model"]) == (name, f"pureai/{name}")
        deleted = gateway.http.delete(where, headers=gateway.admin())
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"id": name, "object": "deployment", "deleted": True}
    finally:
        gateway.http.delete(f"{PATH}/{name}", headers=gateway.admin())
    for url in (f"{PATH}/{name}", f"{PATH}/pureai/{name}"):
        _error(gateway.http.get(url, headers=gateway.admin()), 404, "deployment_not_found")
        _error(gateway.http.delete(url, headers=gateway.admin()), 404, "deployment_not_found")
    models = gateway.http.get("/v1/models", headers=gateway.admin()).json()["data"]
    assert f"pureai/{name}" not in [m["id"] for m in models]


def test_a_catalogue_deployment_is_not_found_here_and_says_why(gateway: Gateway) -> None:
    for url in (f"{PATH}/gemma-3-4b-it", f"{PATH}/pureai/gemma-3-4b-it"):
        for method in ("GET", "DELETE"):
            r = gateway.http.request(method, url, headers=gateway.admin())
            _error(r, 404, "deployment_not_found")
            assert "catalogue file" in r.json()["error"]["message"]


def test_the_single_deployment_routes_are_for_admin_keys(gateway: Gateway, key: str) -> None:
    for method in ("GET", "DELETE"):
        r = gateway.http.request(method, f"{PATH}/pureai/gemma-3-4b-it", headers={"x-api-key": key})
        _error(r, 403, "admin_only")

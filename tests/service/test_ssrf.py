"""SSRF (issue 20, item 5): a deployment registered through the admin API cannot point the gateway at
a private, loopback, link-local or metadata address, however it is spelt, unless the operator's
PUREAI_ALLOW_PRIVATE_UPSTREAMS allows it; a host name is checked again at connect time.

Every other test gateway allows loopback (tests/service/gateway_server.py `LOOPBACK`), where the fake
upstreams run; the gateways here unset or widen that setting. They share one store, so that a
deployment one of them registers is served (or refused) by the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.relay import Relay, UpstreamStatus
from service.ssrf import Refused, Upstreams, ip_of
from tests.service.calls import chat, h
from tests.service.conftest import gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway

Upstreams_ = tuple[FakeUpstream, FakeUpstream]

DEPLOYMENTS = "/v1/admin/deployments"
CHAT = "/v1/chat/completions"
WIDE = "127.0.0.0/8,::1,0.0.0.0/32,169.254.169.254,10.0.0.0/8,192.168.0.0/16"
"""Every range the refused forms below fall in (the metadata address named exactly)."""

REFUSED = [
    ("http://127.0.0.1:8000/v1", "127.0.0.1 is a loopback address"),
    ("http://[::1]:8000/v1", "::1 is a loopback address"),
    ("http://0.0.0.0:8000/v1", "0.0.0.0 is the unspecified address"),
    ("http://169.254.169.254/latest", "169.254.169.254 is a cloud metadata address"),
    ("http://2130706433:8000/v1", "127.0.0.1 is a loopback address"),  # decimal
    ("http://0x7f000001:8000/v1", "127.0.0.1 is a loopback address"),  # hex
    ("http://017700000001:8000/v1", "127.0.0.1 is a loopback address"),  # octal
    ("http://127.1:8000/v1", "127.0.0.1 is a loopback address"),  # short form
    ("http://[::ffff:127.0.0.1]:8000/v1", "(that is 127.0.0.1) is a loopback address"),  # IPv4-mapped
    ("http://10.1.2.3:8000/v1", "10.1.2.3 is a private address"),
    ("http://192.168.1.20:8000/v1", "192.168.1.20 is a private address"),
    ("http://localhost:8000/v1", "resolves to 127.0.0.1, a loopback address"),
]


@pytest.fixture(scope="module")
def base(catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """The environment of this module's gateways: one store for all of them."""
    return {**gateway_env(catalogue_file, tmp_path_factory.mktemp("ssrf")), "PUREAI_DEPLOYMENT_CACHE_S": "0"}


@pytest.fixture(scope="module")
def strict(base: dict[str, str | None]) -> Iterator[Gateway]:
    """A gateway without the setting (relay on)."""
    with Gateway.start({**base, "PUREAI_ALLOW_PRIVATE_UPSTREAMS": None}) as gw:
        yield gw


@pytest.fixture(scope="module")
def wide(base: dict[str, str | None], strict: Gateway) -> Iterator[Gateway]:
    """A gateway on the same store whose operator allows every range of REFUSED."""
    with Gateway.start({**base, "PUREAI_ALLOW_PRIVATE_UPSTREAMS": WIDE}) as gw:
        yield gw


def register(gw: Gateway, name: str, api_base: str, **extra: Any) -> Any:
    body = {"id": name, "api_base": api_base, "free": True, **extra}
    return gw.http.post(DEPLOYMENTS, headers=gw.admin(), json=body)


def remove(gw: Gateway, name: str) -> None:
    assert gw.http.delete(f"{DEPLOYMENTS}/{name}", headers=gw.admin()).status_code == 200


def error_of(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    return error


# --- the setting, and spellings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
        ("8.8.8.8.", "8.8.8.8"),
        ("example.com", None),
        ("08.1", None),  # not octal: a name (resolved, then checked)
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
    ],
)
def test_hosts_are_read_as_the_c_library_reads_them(host: str, address: str | None) -> None:
    ip = ip_of(host)
    assert (str(ip) if ip is not None else None) == address


def test_only_public_addresses_unless_allowed_and_metadata_only_by_name() -> None:
    strict = Upstreams.parse("")
    for public in ("8.8.8.8", "2606:4700::1111"):
        assert strict.refusal(ip_of(public)) is None  # type: ignore[arg-type]
    for refused in ("100.64.0.1", "192.0.0.192", "224.0.0.1", "fd00:ec2::254", "2002:7f00:1::", "198.18.0.1"):
        assert strict.refusal(ip_of(refused)) is not None, refused  # type: ignore[arg-type]
    ranges = Upstreams.parse("169.254.0.0/16, 0.0.0.0/0")
    assert ranges.refusal(ip_of("169.254.1.1")) is None  # type: ignore[arg-type]
    assert "metadata" in (ranges.refusal(ip_of("169.254.169.254")) or "")  # type: ignore[arg-type]
    assert Upstreams.parse("169.254.169.254").refusal(ip_of("169.254.169.254")) is None  # type: ignore[arg-type]
    assert Upstreams.parse("127.0.0.0/8").refusal(ip_of("::ffff:127.0.0.1")) is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'not a host!'"):
        Upstreams.parse("10.0.0.0/8, not a host!")


# --- registration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("api_base", "reason"), REFUSED)
def test_each_private_form_is_a_400_without_the_setting_and_accepted_with_it(
    strict: Gateway, wide: Gateway, api_base: str, reason: str
) -> None:
    error = error_of(register(strict, "inside", api_base), 400)
    assert (error["param"], error["code"]) == ("api_base", "upstream_not_allowed")
    assert error["message"].startswith("api_base: ") and reason in error["message"], error["message"]
    assert "PUREAI_ALLOW_PRIVATE_UPSTREAMS" in error["message"]
    backup = {"providers": [{"id": "inside", "api_base": api_base}]}
    error = error_of(register(strict, "inside", "https://1.1.1.1/v1", **backup), 400)  # public
    assert (error["param"], error["code"]) == ("providers[0].api_base", "upstream_not_allowed")

    assert register(wide, "inside", api_base).status_code == 201
    remove(wide, "inside")


def test_credentials_in_a_url_are_a_400_naming_the_field(strict: Gateway, wide: Gateway) -> None:
    for gw in (strict, wide):
        for api_base in ("http://user:pa55word-x@llm.example.com/v1", "http://token-x@10.1.2.3/v1"):
            error = error_of(register(gw, "creds", api_base), 400)
            assert error["param"] == "api_base" and "must not hold credentials" in error["message"]
            assert "pa55word-x" not in error["message"] and "token-x" not in error["message"]
        error = error_of(register(gw, "creds", "https://llm.example.com/v1?api_key=k3y-value"), 400)
        assert error["param"] == "api_base" and "k3y-value" not in error["message"]


def test_a_name_that_does_not_resolve_cannot_be_checked(strict: Gateway) -> None:
    error = error_of(register(strict, "nowhere", "http://no-such-host.invalid/v1"), 400)
    assert (error["param"], error["code"]) == ("api_base", "upstream_not_allowed")
    assert "does not resolve" in error["message"]


def test_the_catalogue_files_endpoints_are_the_operators(strict: Gateway, fresh: Upstreams_) -> None:
    """The catalogue file points at loopback (the fake upstreams) and is served without the
    setting; a deployment at one of its endpoints (host and port) is allowed too."""
    key = strict.new_key(tenant="t-ssrf")
    r = strict.http.post(CHAT, headers=h(key), json=chat())
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello from A: Hello!"
    assert register(strict, "beside", fresh[1].url).status_code == 201
    try:
        r = strict.http.post(CHAT, headers=h(key), json=chat(model="pureai/beside"))
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"].startswith(
            "Hello from B"
        )
    finally:
        remove(strict, "beside")


# --- after registration ------------------------------------------------------------------------------


def test_a_stored_deployment_the_setting_does_not_allow_is_left_out(strict: Gateway, wide: Gateway) -> None:
    """Registered by a gateway that allows 10/8; another on the same store, without the setting,
    neither lists it among its models nor calls it."""
    assert register(wide, "ten", "http://10.9.9.9:8000/v1").status_code == 201
    try:
        key = strict.new_key(tenant="t-ssrf")
        models = strict.http.get("/v1/models", headers=h(key)).json()["data"]
        assert "pureai/ten" not in {m["id"] for m in models}
        error = error_of(strict.http.post(CHAT, headers=h(key), json=chat(model="pureai/ten")), 404)
        assert error["code"] == "model_not_found"
        assert (
            "registered deployment pureai/ten is left out: 10.9.9.9: 10.9.9.9 is a private address"
            in strict.logs()
        )
    finally:
        remove(wide, "ten")


@pytest.mark.parametrize("relay", [True, False], ids=["relay", "litellm"])
def test_a_name_is_checked_again_at_connect_time(
    base: dict[str, str | None], wide: Gateway, fresh: Upstreams_, relay: bool
) -> None:
    """`localhost` at the fake upstream's port, registered where loopback is allowed, is served by a
    gateway on the same store without the setting only as far as connecting: the relay's resolver
    (or, through litellm, the executor's look-up right before the call) refuses 127.0.0.1, the
    request fails (502) and the upstream never hears of it."""
    api_base = fresh[0].url.replace("127.0.0.1", "localhost")
    assert register(wide, "rebound", api_base).status_code == 201
    env = {**base, "PUREAI_RELAY": str(relay).lower(), "PUREAI_ALLOW_PRIVATE_UPSTREAMS": None}
    try:
        with Gateway.start(env) as gw:
            key = gw.new_key(tenant="t-ssrf")
            r = gw.http.post(CHAT, headers=h(key), json=chat(model="pureai/rebound"))
            assert error_of(r, 502)["code"] == "upstream_error"
            assert fresh[0].requests() == []
            assert "localhost" in gw.logs() and "resolves to 127.0.0.1, a loopback address" in gw.logs()
            # the same deployment through the gateway that allows loopback: served
            wide_key = wide.new_key(tenant="t-ssrf")
            assert (
                wide.http.post(CHAT, headers=h(wide_key), json=chat(model="pureai/rebound")).status_code
                == 200
            )
    finally:
        remove(wide, "rebound")


def relay_call(url: str, upstreams: Upstreams) -> Any:
    """One call through a Relay with `upstreams`: its answer, or the exception it raised."""

    async def body() -> Any:
        relay = Relay(10.0, upstreams)
        try:
            return await relay.send(
                url + "/chat/completions",
                "sk-test",
                {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            )
        except Exception as exc:
            return exc
        finally:
            await relay.close()

    return asyncio.run(body())


def test_the_relays_resolver_refuses_what_the_name_resolves_to(fresh: Upstreams_) -> None:
    url = fresh[0].url.replace("127.0.0.1", "localhost")
    refused = relay_call(url, Upstreams.parse(""))
    assert isinstance(refused, aiohttp.ClientConnectorDNSError), refused
    assert isinstance(refused.os_error, Refused) and "resolves to 127.0.0.1, a loopback" in str(
        refused.os_error
    )
    literal = relay_call(fresh[0].url, Upstreams.parse(""))  # aiohttp resolves no literal: checked first
    assert isinstance(literal, Refused), literal
    assert fresh[0].requests() == []
    assert relay_call(url, Upstreams.parse("127.0.0.0/8"))["object"] == "chat.completion"
    assert relay_call(url, Upstreams.parse("localhost"))["object"] == "chat.completion"  # a name allowed


def test_the_relay_follows_no_redirect(fresh: Upstreams_) -> None:
    """A provider's redirect could lead anywhere (the metadata address): it is an error, not followed."""
    fresh[0].script({"status": 307, "headers": {"location": "http://169.254.169.254/latest/meta-data/"}})
    answer = relay_call(fresh[0].url, Upstreams.parse("127.0.0.0/8"))
    assert isinstance(answer, UpstreamStatus) and answer.status_code == 307, answer
    assert len(fresh[0].requests()) == 1

"""Fixtures for the SDK tests: the real gateway and fake upstreams of tests/service (one gateway
process per session, reused here), a client of it, and a raw-socket server for protocol faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lunar import Lunar
from tests.lunar.raw_server import RawServer
from tests.service import conftest as service
from tests.service.gateway_server import Gateway

# The service tests' fixtures, shared: pytest finds fixtures by name in a conftest's namespace.
upstreams = service.upstreams
catalogue_file = service.catalogue_file
gateway = service.gateway
fresh = service.fresh
key = service.key


@pytest.fixture(autouse=True)
def no_pureai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without PUREAI_API_KEY / PUREAI_BASE_URL; those that want them set them."""
    monkeypatch.delenv("PUREAI_API_KEY", raising=False)
    monkeypatch.delenv("PUREAI_BASE_URL", raising=False)


@pytest.fixture()
def env(gateway: Gateway, key: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """PUREAI_API_KEY and PUREAI_BASE_URL set for the session gateway and a new key (returned)."""
    monkeypatch.setenv("PUREAI_API_KEY", key)
    monkeypatch.setenv("PUREAI_BASE_URL", gateway.url)
    return key


@pytest.fixture()
def client(gateway: Gateway, key: str) -> Iterator[Lunar]:
    with Lunar(api_key=key, base_url=gateway.url) as c:
        yield c


@pytest.fixture()
def raw() -> Iterator[RawServer]:
    with RawServer() as server:
        yield server

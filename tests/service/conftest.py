"""Fixtures for the gateway tests: two fake upstreams and one real gateway process (per session).

Tests that change server settings start their own gateway with `Gateway.start`.

The store under every gateway is SQLite, or PostgreSQL when `PUREAI_TEST_STORE=postgres` (each
gateway then gets a schema of its own in the database `test` on 127.0.0.1:5432, dropped at the end):
`make test` runs this folder both ways.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import Gateway, catalogue

PROVIDER_KEYS = {
    "TEST_OPENAI_KEY": "sk-openai-Xy7Qw2",
    "TEST_GROQ_KEY": "gsk-groq-Vb9Pm4",
    "TEST_MISTRAL_KEY": "mk-Lk3",
}


TEST_STORE = os.environ.get("PUREAI_TEST_STORE", "sqlite")
RELAY = os.environ.get("PUREAI_TEST_RELAY", "true") == "true"
"""PUREAI_TEST_RELAY=false: the gateways call every upstream through litellm (PUREAI_RELAY=false)."""
PG = "postgresql://postgres@127.0.0.1:5432/test"
_schemas: list[str] = []


def store_url(data: Path) -> str:
    """The database URL of a new gateway: a file in `data`, or a fresh Postgres schema."""
    if TEST_STORE == "sqlite":
        return str(data / "pureai.db")
    assert TEST_STORE == "postgres", f"PUREAI_TEST_STORE must be sqlite or postgres, got {TEST_STORE!r}"
    schema = "gw_" + secrets.token_hex(6)
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    _schemas.append(schema)
    return f"{PG}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session", autouse=True)
def _drop_schemas() -> Iterator[None]:
    yield
    if _schemas:
        with psycopg.connect(PG, autocommit=True) as conn:
            for schema in _schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(scope="session")
def upstreams() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    a = FakeUpstream.start("A")
    b = FakeUpstream.start("B")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture(scope="session")
def catalogue_file(
    upstreams: tuple[FakeUpstream, FakeUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("catalogue") / "catalogue.toml"
    path.write_text(catalogue(upstreams[0].url, upstreams[1].url))
    return path


def gateway_env(catalogue_file: Path, data: Path, **extra: str) -> dict[str, str]:
    """The environment of a test gateway. Same-provider retries, the circuit breaker and rate-limit
    cooldowns are off: a scripted fault then costs exactly one attempt per provider, and no test
    finds a provider cooling down after an earlier test's faults (the breaker's state outlives a
    request). tests/service/test_resilience.py turns them on, on a gateway of its own.

    `Gateway.start` adds the operator's settings every test gateway shares: the admin key, the key
    that seals deployment API keys, and the SSRF allow-list for loopback (the fake upstreams')."""
    return {
        "PUREAI_CATALOGUE": str(catalogue_file),
        "PUREAI_DATABASE_URL": store_url(data),
        "PUREAI_REQUEST_TIMEOUT_S": "3",
        "PUREAI_RETRIES_PER_PROVIDER": "0",
        "PUREAI_BREAKER_FAILURES": "0",
        "PUREAI_RATE_LIMIT_COOLDOWN_MAX_S": "0",
        # `make test` runs the streaming and failover tests again with every call through litellm.
        "PUREAI_RELAY": "true" if RELAY else "false",
        "PUREAI_EXPLORE_SHARE": "0",  # a routed model is the plain choice (test_learning turns it on)
        **PROVIDER_KEYS,
        **extra,
    }


@pytest.fixture(scope="session")
def gateway(catalogue_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data = tmp_path_factory.mktemp("gateway")
    with Gateway.start(gateway_env(catalogue_file, data)) as gw:
        yield gw


@pytest.fixture()
def fresh(upstreams: tuple[FakeUpstream, FakeUpstream]) -> tuple[FakeUpstream, FakeUpstream]:
    """The upstreams with empty scripts and logs."""
    for u in upstreams:
        u.reset()
    return upstreams


@pytest.fixture()
def key(gateway: Gateway) -> str:
    """A new tenant key without limits."""
    return gateway.new_key(tenant="t-test", name="test")

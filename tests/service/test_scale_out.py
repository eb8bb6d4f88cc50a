"""Two gateway processes sharing one Redis (rate limits) and one PostgreSQL (keys and ledger)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.service.conftest import gateway_env
from tests.service.gateway_server import Gateway

PG = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture()
def pg_schema() -> Iterator[str]:
    schema = "gw_" + secrets.token_hex(6)
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_two_gateways_share_limits_keys_and_ledger(
    pg_schema: str, catalogue_file: Path, tmp_path: Path, fresh: Any
) -> None:
    env = gateway_env(
        catalogue_file,
        tmp_path,
        PUREAI_DATABASE_URL=f"{PG}?options=-csearch_path%3D{pg_schema}",
        PUREAI_REDIS_URL=REDIS,
    )
    with Gateway.start(env) as one, Gateway.start(env) as two:
        assert one.http.get("/ready").json()["checks"] == {
            "router": "ok", "executor": "ok", "store": "ok", "limiter": "ok",
        }  # fmt: skip
        key = one.new_key(tenant="shared", rpm=10)  # stored in Postgres, seen by both
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

        def call(i: int) -> int:
            gw = one if i % 2 else two
            return gw.http.post("/v1/chat/completions", headers={"x-api-key": key}, json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(call, range(24)))
        assert codes.count(200) == 10 and codes.count(429) == 14

        assert len(fresh[0].requests()) == 10
    with psycopg.connect(PG, autocommit=True) as conn:  # both servers have stopped: every row is written
        rows = conn.execute(f"SELECT status, count(*) FROM {pg_schema}.usage GROUP BY status ORDER BY status")
        assert rows.fetchall() == [(200, 10), (429, 14)]

"""Secrets (issue 20, item 6): every credential the gateway holds is redacted by value, whatever its
name or shape; the SQLite store is 0600 in a 0700 folder; deployment API keys are sealed in the store
(read here straight from the SQLite file or the PostgreSQL table) and need PUREAI_SECRET_KEY.
Credentials in a catalogue's api_base are refused at load: tests/models_registry/test_validate.py."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from service.sealing import Sealer, SealError
from service.store import SQLiteStore
from tests.service.calls import chat, h
from tests.service.conftest import TEST_STORE, gateway_env
from tests.service.fake_upstream import FakeUpstream
from tests.service.gateway_server import SECRET_KEY, Gateway, catalogue

Upstreams = tuple[FakeUpstream, FakeUpstream]

CHAT = "/v1/chat/completions"
DEPLOYMENTS = "/v1/admin/deployments"
PROD = "prodvalue" + secrets.token_hex(8)  # OPENAI_API_KEY_PROD: neither a *_KEY name nor sk- shaped
BACKUP = "backupvalue" + secrets.token_hex(8)  # GROQ_TOKEN_2, the backup provider's
DEPLOYED = "dplvalue" + secrets.token_hex(8)  # given with a registered deployment


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- redaction by value ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prod(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway at DEBUG whose gpt-4o-mini takes its keys from variables no name rule would hide."""
    a, b = upstreams
    text = catalogue(a.url, b.url).replace('"TEST_OPENAI_KEY"', '"OPENAI_API_KEY_PROD"', 1)
    text = text.replace('"TEST_GROQ_KEY"', '"GROQ_TOKEN_2"', 1)
    path = tmp_path_factory.mktemp("prod") / "catalogue.toml"
    path.write_text(text)
    data = tmp_path_factory.mktemp("prod-data")
    env = gateway_env(path, data, PUREAI_LOG_LEVEL="debug", OPENAI_API_KEY_PROD=PROD, GROQ_TOKEN_2=BACKUP)
    with Gateway.start(env) as gw:
        yield gw


def test_a_key_the_upstream_quotes_back_never_reaches_the_client_or_the_logs(
    prod: Gateway, fresh: Upstreams
) -> None:
    a, b = fresh
    key = prod.new_key(tenant="t-secrets")
    registered = {"id": "sealed-llama", "api_base": a.url, "api_key": DEPLOYED, "free": True}
    assert prod.http.post(DEPLOYMENTS, headers=prod.admin(), json=registered).status_code == 201
    bodies = []
    # the primary's key, quoted in a 400 (passed through to the client) and in a 500 (failed over)
    a.script({"status": 400, "error": {"message": f"Incorrect API key provided: {PROD}. Check it."}})
    r = prod.http.post(CHAT, headers=h(key), json=chat())
    assert (
        r.status_code == 400 and "Incorrect API key provided: ***. Check it." in r.json()["error"]["message"]
    )
    assert a.requests()[-1]["headers"]["authorization"] == f"Bearer {PROD}"  # it was the key sent
    bodies.append(r.text)
    # the backup's key, after the primary failed
    a.script({"status": 500, "error": {"message": f"internal error for {PROD}"}})
    b.script({"status": 400, "error": {"message": f"bad key {BACKUP}"}})
    r = prod.http.post(CHAT, headers=h(key), json=chat())
    assert r.status_code == 400 and "bad key ***" in r.json()["error"]["message"], r.text
    assert b.requests()[-1]["headers"]["authorization"] == f"Bearer {BACKUP}"
    bodies.append(r.text)
    # a registered deployment's key, streamed and not
    a.script({"status": 400, "error": {"message": f"no such key {DEPLOYED}"}})
    r = prod.http.post(CHAT, headers=h(key), json=chat(model="pureai/sealed-llama"))
    assert r.status_code == 400 and "no such key ***" in r.json()["error"]["message"], r.text
    bodies.append(r.text)
    a.script({"status": 400, "error": {"message": f"no such key {DEPLOYED}"}})
    r = prod.http.post(CHAT, headers=h(key), json=chat("streamed", model="pureai/sealed-llama", stream=True))
    assert r.status_code == 400
    bodies.append(r.text)
    assert a.requests()[-1]["headers"]["authorization"] == f"Bearer {DEPLOYED}"

    logs = prod.logs()
    assert any(json.loads(line)["level"] == "debug" for line in logs.splitlines() if line.strip())
    for secret in (PROD, BACKUP, DEPLOYED):
        assert secret not in logs, secret
        for body in bodies:
            assert secret not in body, (secret, body)
    prod.http.delete(f"{DEPLOYMENTS}/sealed-llama", headers=prod.admin())


# --- the SQLite file ---------------------------------------------------------------------------------


def test_the_default_store_is_0600_in_a_0700_folder(catalogue_file: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env: dict[str, str | None] = {**gateway_env(catalogue_file, tmp_path), "PUREAI_DATA_DIR": str(data)}
    env["PUREAI_DATABASE_URL"] = None  # the default: SQLite in the data folder
    with Gateway.start(env) as gw:
        gw.new_key(tenant="t-modes")  # a write: the -wal file exists
        assert mode(data) == 0o700
        files = sorted(p.name for p in data.iterdir())
        assert "pureai.db" in files and "pureai.db-wal" in files, files
        for name in files:
            assert mode(data / name) == 0o600, (name, oct(mode(data / name)))


def test_a_store_file_made_0644_by_an_earlier_version_is_made_0600(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    path = folder / "old.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)

    async def scenario() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    asyncio.run(scenario())
    assert mode(path) == 0o600
    assert mode(folder) == 0o755  # an existing folder is the operator's (it may be shared, like /tmp)


# --- deployment keys in the store --------------------------------------------------------------------


def stored_secrets(env: dict[str, str]) -> list[tuple[str, str]]:
    """(id, secrets as stored) of every deployment, read from the SQLite file or PostgreSQL table."""
    url = env["PUREAI_DATABASE_URL"]
    if TEST_STORE == "sqlite":
        with sqlite3.connect(url) as conn:
            return [(str(i), str(s)) for i, s in conn.execute("SELECT id, secrets FROM deployments")]
    with psycopg.connect(url) as conn:
        return [(str(i), str(s)) for i, s in conn.execute("SELECT id, secrets::text FROM deployments")]


def insert_clear(env: dict[str, str], model: str, api_base: str, key: str) -> None:
    """A deployment row as an earlier version wrote it: its key in clear."""
    spec = {"id": model, "owned_by": "pureai", "api_base": api_base, "context_window": 8192,
            "input_per_mtok": 0.0, "output_per_mtok": 0.0, "free": True, "quality_priors": {"default": 0.5}}  # fmt: skip
    params = (model, json.dumps(spec), json.dumps({"pureai": key}), time.time())
    url = env["PUREAI_DATABASE_URL"]
    sql = "INSERT INTO deployments (id, spec, secrets, created) VALUES (?, ?, ?, ?)"
    if TEST_STORE == "sqlite":
        with sqlite3.connect(url) as conn:
            conn.execute(sql, params)
    else:
        with psycopg.connect(url) as conn:
            conn.execute(sql.replace("?", "%s"), params)


@pytest.fixture()
def env(catalogue_file: Path, tmp_path: Path) -> dict[str, str]:
    return gateway_env(catalogue_file, tmp_path, PUREAI_DEPLOYMENT_CACHE_S="0")


def test_deployment_keys_are_sealed_in_the_store(env: dict[str, str], fresh: Upstreams) -> None:
    a = fresh[0]
    body = {"id": "sealed", "api_base": a.url, "api_key": DEPLOYED, "free": True,
            "providers": [{"id": "b", "api_base": fresh[1].url, "api_key": BACKUP}]}  # fmt: skip
    with Gateway.start(env) as gw:
        assert gw.http.post(DEPLOYMENTS, headers=gw.admin(), json=body).status_code == 201
        key = gw.new_key(tenant="t-sealed")
        assert gw.http.post(CHAT, headers=h(key), json=chat(model="pureai/sealed")).status_code == 200
        assert a.requests()[-1]["headers"]["authorization"] == f"Bearer {DEPLOYED}"
    [(model, raw)] = stored_secrets(env)
    assert model == "pureai/sealed"
    assert DEPLOYED not in raw and BACKUP not in raw
    sealed = json.loads(raw)
    assert set(sealed) == {"pureai", "b"} and all(v.startswith("fernet:") for v in sealed.values())
    if TEST_STORE == "sqlite":  # nor anywhere in the file or its WAL
        for path in Path(env["PUREAI_DATABASE_URL"]).parent.glob("pureai.db*"):
            assert DEPLOYED.encode() not in path.read_bytes(), path

    # another gateway with another key cannot open them: the deployment is left out, and logged
    other = {**env, "PUREAI_SECRET_KEY": "another-secret-key-" + secrets.token_hex(16)}
    with Gateway.start(other) as gw:
        key = gw.new_key(tenant="t-sealed")
        r = gw.http.post(CHAT, headers=h(key), json=chat(model="pureai/sealed"))
        assert r.status_code == 404, r.text
        assert (
            "registered deployment pureai/sealed is left out: sealed with another PUREAI_SECRET_KEY"
            in gw.logs()
        )
    # re-keying: "new,old" opens what the old one sealed
    rekeyed = {**env, "PUREAI_SECRET_KEY": other["PUREAI_SECRET_KEY"] + "," + SECRET_KEY}
    with Gateway.start(rekeyed) as gw:
        key = gw.new_key(tenant="t-sealed")
        assert gw.http.post(CHAT, headers=h(key), json=chat(model="pureai/sealed")).status_code == 200
        assert a.requests()[-1]["headers"]["authorization"] == f"Bearer {DEPLOYED}"


def test_without_the_secret_key_a_deployment_names_a_variable(env: dict[str, str], fresh: Upstreams) -> None:
    """No PUREAI_SECRET_KEY: a key given with a deployment is a 400 naming it (the gateway would
    have to store it in clear); `api_key_env` works; a row an earlier version stored in clear is
    still served, and logged as such."""
    bare: dict[str, str | None] = {**env, "PUREAI_SECRET_KEY": None, "DEPLOYED_KEY_VAR": DEPLOYED}
    with Gateway.start(bare) as gw:
        for body, field in (
            ({"id": "keyed", "api_base": fresh[0].url, "api_key": DEPLOYED, "free": True}, "api_key"),
            (
                {
                    "id": "keyed",
                    "api_base": fresh[0].url,
                    "free": True,
                    "providers": [{"id": "b", "api_base": fresh[1].url, "api_key": DEPLOYED}],
                },  # fmt: skip
                "providers[0].api_key",
            ),
        ):
            r = gw.http.post(DEPLOYMENTS, headers=gw.admin(), json=body)
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert error["param"] == field and "PUREAI_SECRET_KEY" in error["message"], error
            assert "api_key_env" in error["message"] and DEPLOYED not in r.text
        by_name = {"id": "named", "api_base": fresh[0].url, "api_key_env": "DEPLOYED_KEY_VAR", "free": True}
        assert gw.http.post(DEPLOYMENTS, headers=gw.admin(), json=by_name).status_code == 201
        key = gw.new_key(tenant="t-bare")
        assert gw.http.post(CHAT, headers=h(key), json=chat(model="pureai/named")).status_code == 200
        assert fresh[0].requests()[-1]["headers"]["authorization"] == f"Bearer {DEPLOYED}"
        assert stored_secrets(env) == [("pureai/named", "{}")]

        insert_clear(env, "pureai/old", fresh[0].url, BACKUP)
        assert gw.http.post(CHAT, headers=h(key), json=chat(model="pureai/old")).status_code == 200
        assert fresh[0].requests()[-1]["headers"]["authorization"] == f"Bearer {BACKUP}"
        assert "API keys stored in clear by an earlier version: pureai/old" in gw.logs()
        assert BACKUP not in gw.logs()


def test_the_sealer() -> None:
    sealer = Sealer([SECRET_KEY])
    stored = sealer.seal(DEPLOYED)
    assert stored.startswith("fernet:") and DEPLOYED not in stored and sealer.open(stored) == DEPLOYED
    assert sealer.seal(DEPLOYED) != stored  # a fresh IV each time
    assert sealer.open("sk-stored-in-clear") == "sk-stored-in-clear"  # rows of earlier versions
    with pytest.raises(SealError):
        Sealer(["x" * 40]).open(stored)
    with pytest.raises(SealError):
        sealer.open(stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB"))  # altered
    assert Sealer(["x" * 40, SECRET_KEY]).open(stored) == DEPLOYED  # new,old re-keys
    with pytest.raises(ValueError, match="at least 32"):
        Sealer(["short"])

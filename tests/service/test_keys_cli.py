"""`pureai keys create|list|revoke` and the first start's admin key, through the real CLI and server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

from tests.service.conftest import TEST_STORE, gateway_env, store_url
from tests.service.gateway_server import PUREAI, Gateway

KEY = re.compile(r"pk-[0-9a-f]{12}-[A-Za-z0-9_-]+")


def pureai(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PUREAI), *args], capture_output=True, text=True, timeout=60)


def stored_anywhere(url: str, text: str) -> bool:
    """Whether `text` is in the store: the SQLite file's bytes, or any column of the Postgres keys table."""
    if TEST_STORE == "sqlite":
        return text.encode() in Path(url).read_bytes()
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT * FROM keys").fetchall()
    return any(text in str(value) for row in rows for value in row)


def test_keys_create_list_revoke_and_use(tmp_path: Path, catalogue_file: Path) -> None:
    url = store_url(tmp_path)
    db = ["--database-url", url]
    made = pureai("keys", "create", "--tenant", "acme", "--name", "ci", "--models", "gpt-4o-mini", "--rpm", "5",
                  "--json", *db)  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    secret, key_id = created["key"], created["id"]
    assert KEY.fullmatch(secret) and secret.startswith(f"pk-{key_id}-")
    assert not stored_anywhere(url, secret)  # only its hash is stored

    listed = pureai("keys", "list", "--json", *db)
    assert listed.returncode == 0 and secret not in listed.stdout
    (row,) = json.loads(listed.stdout)
    assert row | {"created": 0} == {
        "id": key_id, "object": "api_key", "tenant": "acme", "name": "ci", "admin": False,
        "models": ["gpt-4o-mini"], "rpm": 5, "tpm": None, "budget_usd": None, "created": 0, "revoked": None,
    }  # fmt: skip

    env = gateway_env(catalogue_file, tmp_path, PUREAI_DATABASE_URL=url,
                      PUREAI_KEY_CACHE_S="0")  # fmt: skip
    with Gateway.start(env) as gw:
        auth = {"x-api-key": secret}
        assert gw.http.get("/v1/models", headers=auth).json()["data"][0]["id"] == "gpt-4o-mini"
        revoked = pureai("keys", "revoke", key_id, *db)
        assert revoked.returncode == 0 and key_id in revoked.stdout
        refused = gw.http.get("/v1/models", headers=auth)  # no key cache: the CLI's revocation holds at once
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert json.loads(pureai("keys", "list", "--json", *db).stdout)[0]["revoked"] is not None


def test_keys_cli_errors_name_what_is_wrong(tmp_path: Path) -> None:
    db = ["--database-url", store_url(tmp_path)]
    unknown = pureai("keys", "create", "--models", "gpt-9o", *db)
    assert unknown.returncode == 2 and "gpt-9o" in unknown.stderr and "Traceback" not in unknown.stderr
    again = pureai("keys", "revoke", "0123456789ab", *db)
    assert again.returncode == 2 and "0123456789ab" in again.stderr
    bad_rpm = pureai("keys", "create", "--rpm", "0", *db)
    assert bad_rpm.returncode != 0 and "--rpm" in bad_rpm.stderr
    bad_store = pureai("keys", "list", "--database-url", "mysql://x/y")
    assert bad_store.returncode == 2 and "mysql" in bad_store.stderr and "Traceback" not in bad_store.stderr


def test_first_start_prints_an_admin_key_once(tmp_path: Path, catalogue_file: Path) -> None:
    env = gateway_env(catalogue_file, tmp_path, PUREAI_ADMIN_KEY=None)
    with Gateway.start(env) as gw:
        keys = KEY.findall(gw.logs())
        assert len(keys) == 1
        admin = {"x-api-key": keys[0]}
        made = gw.http.post("/v1/admin/keys", headers=admin, json={"tenant": "first"})
        assert made.status_code == 201
        tenant = {"x-api-key": made.json()["key"]}
        assert gw.http.get("/v1/admin/keys", headers=tenant).status_code == 403
    with Gateway.start(env) as gw:
        assert KEY.findall(gw.logs()) == []  # the store has an admin key now
        assert gw.http.get("/v1/admin/keys", headers=admin).status_code == 200


def serve(env: dict[str, str | None], *args: str) -> subprocess.CompletedProcess[str]:
    """`pureai serve` with `env` over os.environ (None unsets), run until it exits."""
    full = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    command = [str(PUREAI), "serve", *args]
    return subprocess.run(command, env=full, capture_output=True, text=True, timeout=120)


def test_a_first_start_on_a_busy_port_spends_no_admin_key(tmp_path: Path, catalogue_file: Path) -> None:
    env: dict[str, str | None] = {**gateway_env(catalogue_file, tmp_path), "PUREAI_ADMIN_KEY": None}
    with socket.socket() as held:  # another server on the port
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        failed = serve(env, "--port", str(port))
    assert failed.returncode == 1, failed.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in failed.stderr and "Traceback" not in failed.stderr
    assert KEY.findall(failed.stdout + failed.stderr) == []
    with Gateway.start(env) as gw:  # the next start, on a free port, prints the key
        (key,) = KEY.findall(gw.logs())
        assert gw.http.get("/v1/admin/keys", headers={"x-api-key": key}).status_code == 200


def test_a_first_start_that_fails_later_revokes_the_key_it_printed(
    tmp_path: Path, catalogue_file: Path
) -> None:
    env: dict[str, str | None] = {**gateway_env(catalogue_file, tmp_path), "PUREAI_ADMIN_KEY": None}
    failed = serve({**env, "PUREAI_ARTIFACTS": str(tmp_path / "nowhere")}, "--port", "0")
    assert failed.returncode != 0
    (spent,) = KEY.findall(failed.stderr)
    assert "the admin key printed above" in failed.stderr and "is revoked" in failed.stderr
    with Gateway.start(env) as gw:
        (key,) = KEY.findall(gw.logs())
        assert key != spent
        assert gw.http.get("/v1/admin/keys", headers={"x-api-key": key}).status_code == 200
        assert gw.http.get("/v1/admin/keys", headers={"x-api-key": spent}).status_code == 401

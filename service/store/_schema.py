"""The one schema both stores share: migrations, statements, and rows to values and back.

Every statement here is written once, in SQL that SQLite and PostgreSQL both accept. Statements with
parameters use `?`; the PostgreSQL store turns them into `%s` with `pyformat`. The migration list
has no parameters at all.

Tables:

- `keys`: one row per API key (`allowed_models` as JSON text, `admin` as a boolean).
- `usage`: the ledger, one row per request, indexed on `(key_id, created)` and `(tenant, created)`.
- `feedback` (migration 2): one score per (request, metric), with the key that made the request;
  the ledger is also indexed on `request_id`, to find the row a score is about.
- `prompts` (migration 3): a request's prompt text, only when the operator turned prompt logging on,
  deleted after the retention period.
- `deployments` (migration 4): `pureai/` deployments registered through the admin API, their
  catalogue table and the API keys given with them as JSON text.
- `reservations` (migration 6): budget held by requests in flight (`service/budget.py`), one row
  per (request, unit), counted only until the request has a ledger row, or until it expires.
- `schema_version`: one row per applied migration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import astuple, fields
from typing import Any

from ._types import Deployment, Feedback, KeyRecord, RouterStat, Scored, TrainingRow, UsageRow, UsageTotals
from .errors import StoreError

# Migration N is MIGRATIONS[N - 1]; append, never edit one that has shipped.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE keys (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            admin BOOLEAN NOT NULL,
            allowed_models TEXT,
            rpm BIGINT,
            tpm BIGINT,
            budget_usd DOUBLE PRECISION,
            created DOUBLE PRECISION NOT NULL,
            revoked DOUBLE PRECISION,
            secret_hash TEXT NOT NULL
        )""",
        "CREATE INDEX keys_tenant_created ON keys (tenant, created)",
        """CREATE TABLE usage (
            request_id TEXT NOT NULL,
            key_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            endpoint TEXT NOT NULL,
            model TEXT,
            provider TEXT,
            status INTEGER NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            cached_tokens BIGINT NOT NULL,
            input_cost_usd DOUBLE PRECISION NOT NULL,
            output_cost_usd DOUBLE PRECISION NOT NULL,
            cache_input_cost_usd DOUBLE PRECISION NOT NULL,
            total_cost_usd DOUBLE PRECISION NOT NULL,
            latency_ms DOUBLE PRECISION,
            ttft_ms DOUBLE PRECISION,
            stream BOOLEAN NOT NULL,
            attempts INTEGER NOT NULL,
            error TEXT,
            routed BOOLEAN NOT NULL
        )""",
        "CREATE INDEX usage_key_created ON usage (key_id, created)",
        "CREATE INDEX usage_tenant_created ON usage (tenant, created)",
    ],
    [
        """CREATE TABLE feedback (
            request_id TEXT NOT NULL,
            metric TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL,
            key_id TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            comment TEXT,
            PRIMARY KEY (request_id, metric)
        )""",
        "CREATE INDEX feedback_key_created ON feedback (key_id, created)",
        "CREATE INDEX usage_request ON usage (request_id)",
    ],
    [
        """CREATE TABLE prompts (
            request_id TEXT PRIMARY KEY,
            key_id TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            prompt TEXT NOT NULL
        )""",
        "CREATE INDEX prompts_created ON prompts (created)",
    ],
    [
        """CREATE TABLE deployments (
            id TEXT PRIMARY KEY,
            spec TEXT NOT NULL,
            secrets TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL
        )""",
    ],
    [
        "ALTER TABLE usage ADD COLUMN router_version TEXT",
        "ALTER TABLE usage ADD COLUMN predicted_quality DOUBLE PRECISION",
        "CREATE INDEX feedback_created ON feedback (created)",
    ],
    [
        """CREATE TABLE reservations (
            request_id TEXT NOT NULL,
            unit TEXT NOT NULL,
            key_id TEXT NOT NULL,
            amount DOUBLE PRECISION NOT NULL,
            expires DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (request_id, unit)
        )""",
        "CREATE INDEX reservations_key ON reservations (key_id, unit)",
    ],
]

LATEST = len(MIGRATIONS)

# -- migrations -------------------------------------------------------------------------------
CREATE_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version INTEGER PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
)
SELECT_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_version"
INSERT_VERSION = "INSERT INTO schema_version (version, applied) VALUES (?, ?)"


def pending(current: int, where: str) -> list[tuple[int, list[str]]]:
    """The migrations after version `current`, numbered; `StoreError` if the database is newer."""
    if current > LATEST:
        raise StoreError(
            f"{where}: database schema version {current} is newer than this program's ({LATEST}); "
            "upgrade pureai-router"
        )
    return [(n, MIGRATIONS[n - 1]) for n in range(current + 1, LATEST + 1)]


# -- keys -------------------------------------------------------------------------------------
_KEY_COLUMNS = [f.name for f in fields(KeyRecord)]
_KEYS = ", ".join(_KEY_COLUMNS)

INSERT_KEY = (
    f"INSERT INTO keys ({_KEYS}) VALUES ({', '.join('?' for _ in _KEY_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
SELECT_KEY = f"SELECT {_KEYS} FROM keys WHERE id = ?"
LIST_KEYS = f"SELECT {_KEYS} FROM keys ORDER BY created, id"
LIST_TENANT_KEYS = f"SELECT {_KEYS} FROM keys WHERE tenant = ? ORDER BY created, id"
REVOKE_KEY = "UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL"
COUNT_ADMIN_KEYS = "SELECT COUNT(*) FROM keys WHERE admin = ? AND revoked IS NULL"
COUNT_ADMIN_KEYS_PARAMS = (True,)


def key_params(record: KeyRecord) -> tuple[Any, ...]:
    """`record` as parameters of `INSERT_KEY`."""
    allowed = None if record.allowed_models is None else json.dumps(list(record.allowed_models))
    values = {f: getattr(record, f) for f in _KEY_COLUMNS}
    values["allowed_models"] = allowed
    return tuple(values[f] for f in _KEY_COLUMNS)


def key_from_row(row: Sequence[Any]) -> KeyRecord:
    """A `KeyRecord` from a row selected with the key columns."""
    values = dict(zip(_KEY_COLUMNS, row, strict=True))
    allowed = values["allowed_models"]
    values["allowed_models"] = None if allowed is None else tuple(json.loads(allowed))
    values["admin"] = bool(values["admin"])
    return KeyRecord(**values)


# -- ledger -----------------------------------------------------------------------------------
_USAGE_COLUMNS = [f.name for f in fields(UsageRow)]
_USAGE = ", ".join(_USAGE_COLUMNS)
_USAGE_BOOLEANS = ("stream", "routed")

INSERT_USAGE = f"INSERT INTO usage ({_USAGE}) VALUES ({', '.join('?' for _ in _USAGE_COLUMNS)})"
SPEND = "SELECT COALESCE(SUM(total_cost_usd), 0.0) FROM usage WHERE key_id = ?"

# -- reservations (service/budget.py) ---------------------------------------------------------------
# A reservation counts while it has not expired and its request has no ledger row: the row settles it
# in the commit that writes it. Spent and held are read in one statement, so in one snapshot (in
# PostgreSQL, each statement of a transaction sees the commits made before it began).
DELETE_DONE_RESERVATIONS = (
    "DELETE FROM reservations WHERE key_id = ? AND unit = ? AND (expires <= ? OR EXISTS "
    "(SELECT 1 FROM usage u WHERE u.request_id = reservations.request_id))"
)
SPENT_AND_HELD_USD = (
    "SELECT (SELECT COALESCE(SUM(total_cost_usd), 0.0) FROM usage WHERE key_id = ?), "
    "(SELECT COALESCE(SUM(r.amount), 0.0) FROM reservations r WHERE r.key_id = ? AND r.unit = ? "
    "AND r.expires > ? AND NOT EXISTS (SELECT 1 FROM usage u WHERE u.request_id = r.request_id))"
)
INSERT_RESERVATION = (
    "INSERT INTO reservations (request_id, unit, key_id, amount, expires) VALUES (?, ?, ?, ?, ?)"
)
DELETE_RESERVATION = "DELETE FROM reservations WHERE request_id = ? AND unit = ?"
RENEW_RESERVATION = "UPDATE reservations SET expires = ? WHERE request_id = ? AND unit = ?"
USD = "usd"
"""The unit of a reservation of budget (a later one, "tokens", could hold tokens per minute)."""


def usage_params(row: UsageRow) -> tuple[Any, ...]:
    """`row` as parameters of `INSERT_USAGE` (its fields hold no containers: `astuple`'s deep copy,
    ~15 us a row, would buy nothing)."""
    return tuple([getattr(row, name) for name in _USAGE_COLUMNS])


def usage_from_row(row: Sequence[Any]) -> UsageRow:
    """A `UsageRow` from a row selected with the usage columns."""
    values = dict(zip(_USAGE_COLUMNS, row, strict=True))
    for name in _USAGE_BOOLEANS:
        values[name] = bool(values[name])
    return UsageRow(**values)


SELECT_USAGE_OF = f"SELECT {_USAGE} FROM usage WHERE request_id = ? ORDER BY created, status"


def usage_query(
    key_id: str | None, tenant: str | None, since: float | None, until: float | None, limit: int
) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters of `Store.usage`: filters joined with AND, newest first."""
    if limit < 0:
        raise StoreError(f"usage limit must be 0 or more, not {limit}")
    where, params = _usage_where(key_id, tenant, since, until)
    # request_id breaks ties between rows of the same instant, so the order is always the same.
    sql = f"SELECT {_USAGE} FROM usage{where} ORDER BY created DESC, request_id DESC LIMIT ?"
    return sql, (*params, limit)


def usage_totals_query(
    key_id: str | None, tenant: str | None, since: float | None, until: float | None
) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters of `Store.usage_totals`: the sums over every row `usage_query`
    filters in, whatever its limit."""
    where, params = _usage_where(key_id, tenant, since, until)
    sql = (
        "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
        f"COALESCE(SUM(total_cost_usd), 0.0) FROM usage{where}"
    )
    return sql, params


def usage_totals_from_row(row: Sequence[Any] | None) -> UsageTotals:
    if row is None:
        return UsageTotals(0, 0, 0, 0.0)
    requests, prompt, completion, cost = row
    return UsageTotals(int(requests), int(prompt), int(completion), float(cost))


def _usage_where(
    key_id: str | None, tenant: str | None, since: float | None, until: float | None
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (empty without filters) and parameters of the ledger's filters."""
    conditions: list[str] = []
    params: list[Any] = []
    for condition, value in (
        ("key_id = ?", key_id),
        ("tenant = ?", tenant),
        ("created >= ?", since),
        ("created < ?", until),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    return (f" WHERE {' AND '.join(conditions)}" if conditions else ""), tuple(params)


# -- feedback ---------------------------------------------------------------------------------
_FEEDBACK_COLUMNS = [f.name for f in fields(Feedback)]
_FEEDBACK = ", ".join(_FEEDBACK_COLUMNS)

SELECT_FEEDBACK_ONE = "SELECT 1 FROM feedback WHERE request_id = ? AND metric = ?"
UPSERT_FEEDBACK = (
    f"INSERT INTO feedback ({_FEEDBACK}) VALUES ({', '.join('?' for _ in _FEEDBACK_COLUMNS)}) "
    "ON CONFLICT (request_id, metric) DO UPDATE SET "
    "score = excluded.score, key_id = excluded.key_id, created = excluded.created, comment = excluded.comment"
)


def feedback_params(feedback: Feedback) -> tuple[Any, ...]:
    """`feedback` as parameters of `UPSERT_FEEDBACK`."""
    return astuple(feedback)


def feedback_from_row(row: Sequence[Any]) -> Feedback:
    return Feedback(**dict(zip(_FEEDBACK_COLUMNS, row, strict=True)))


def feedback_query(
    key_id: str | None, request_id: str | None, since: float | None, until: float | None, limit: int
) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters of `Store.feedback`: filters joined with AND, newest first."""
    if limit < 0:
        raise StoreError(f"feedback limit must be 0 or more, not {limit}")
    conditions: list[str] = []
    params: list[Any] = []
    for condition, value in (
        ("key_id = ?", key_id),
        ("request_id = ?", request_id),
        ("created >= ?", since),
        ("created < ?", until),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT {_FEEDBACK} FROM feedback{where} ORDER BY created DESC, request_id DESC, metric LIMIT ?"
    return sql, (*params, limit)


# -- deployments ------------------------------------------------------------------------------
INSERT_DEPLOYMENT = (
    "INSERT INTO deployments (id, spec, secrets, created) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
LIST_DEPLOYMENTS = "SELECT id, spec, secrets, created FROM deployments ORDER BY created, id"
DELETE_DEPLOYMENT = "DELETE FROM deployments WHERE id = ?"


def deployment_params(deployment: Deployment) -> tuple[Any, ...]:
    """`deployment` as parameters of `INSERT_DEPLOYMENT`."""
    spec = json.dumps(deployment.spec, sort_keys=True)
    return deployment.id, spec, json.dumps(deployment.secrets, sort_keys=True), deployment.created


def deployment_from_row(row: Sequence[Any]) -> Deployment:
    deployment_id, spec, secrets, created = row
    return Deployment(deployment_id, json.loads(spec), json.loads(secrets), float(created))


# -- prompts ----------------------------------------------------------------------------------
INSERT_PROMPT = (
    "INSERT INTO prompts (request_id, key_id, created, prompt) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (request_id) DO NOTHING"
)
FORGET_PROMPTS = "DELETE FROM prompts WHERE created < ?"
_TRAINING = (
    "SELECT u.request_id, u.key_id, u.created, u.model, p.prompt, f.score, u.total_cost_usd, "
    "u.completion_tokens FROM usage u "
    "JOIN prompts p ON p.request_id = u.request_id "
    "JOIN feedback f ON f.request_id = u.request_id AND f.key_id = u.key_id AND f.metric = 'score' "
    "WHERE u.status = 200 AND u.error IS NULL AND u.attempts > 0 AND u.model IS NOT NULL"
)


def training_query(since: float | None, until: float | None) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters of `Store.training_rows`: answered requests (not decisions
    alone, not failures) with a prompt and a "score", oldest first."""
    sql, params = _in_range(_TRAINING, [], since, until)
    return sql + " ORDER BY u.created, u.request_id", params


def _in_range(
    sql: str, params: list[Any], since: float | None, until: float | None
) -> tuple[str, tuple[Any, ...]]:
    """`sql` (ending in a WHERE clause on `usage u`) limited to `since <= u.created < until`."""
    if since is not None:
        sql += " AND u.created >= ?"
        params.append(since)
    if until is not None:
        sql += " AND u.created < ?"
        params.append(until)
    return sql, tuple(params)


_ROUTER_STATS = (
    "SELECT u.router_version, u.model, COUNT(*), COUNT(f.score), AVG(f.score) FROM usage u "
    "LEFT JOIN feedback f ON f.request_id = u.request_id AND f.key_id = u.key_id AND f.metric = 'score' "
    "WHERE u.routed = ?"
)


def router_stats_query(since: float | None, until: float | None) -> tuple[str, tuple[Any, ...]]:
    """The statement and parameters of `Store.router_stats`."""
    sql, params = _in_range(_ROUTER_STATS, [True], since, until)
    return sql + " GROUP BY u.router_version, u.model ORDER BY u.router_version, u.model", params


SCORED = (
    "SELECT u.model, u.predicted_quality, f.score FROM feedback f "
    "JOIN usage u ON u.request_id = f.request_id AND u.key_id = f.key_id "
    "WHERE f.metric = 'score' AND u.routed = ? AND u.router_version = ? "
    "AND u.predicted_quality IS NOT NULL AND u.model IS NOT NULL "
    "ORDER BY f.created DESC, f.request_id DESC LIMIT ?"
)


def scored_from_row(row: Sequence[Any]) -> Scored:
    model, predicted, score = row
    return Scored(model, float(predicted), float(score))


def router_stat_from_row(row: Sequence[Any]) -> RouterStat:
    version, model, requests, scored, mean = row
    return RouterStat(version, model, int(requests), int(scored), None if mean is None else float(mean))


def training_from_row(row: Sequence[Any]) -> TrainingRow:
    request_id, key_id, created, model, prompt, score, cost, tokens = row
    return TrainingRow(
        request_id, key_id, float(created), model, prompt, float(score), float(cost), int(tokens)
    )


def pyformat(sql: str) -> str:
    """`sql` with `?` placeholders written as `%s` (psycopg's style); no statement here has a
    literal `?` or `%`."""
    return sql.replace("?", "%s")

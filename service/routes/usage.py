"""GET /v1/usage: the ledger's rows for the calling key (an admin key may read any key or tenant).

`data` holds the newest `limit` rows matching the filters (`start`, `end`, `key_id`, `tenant`);
`totals` sums every row they match, however many `limit` leaves out (two statements: a row written
between them can be in one and not the other).
"""

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request

from ..errors import BadRequest
from ..export import parse_time
from . import gateway

router = APIRouter(tags=["usage"])


@router.get("/v1/usage")
async def usage(request: Request) -> dict[str, Any]:
    gw = gateway(request)
    ctx = await gw.authenticate(request, "usage")
    q = request.query_params
    since, until = time_param(q.get("start"), "start"), time_param(q.get("end"), "end")
    limit = _int(q.get("limit"), "limit", 1000)
    key_id: str | None = ctx.key.id
    tenant: str | None = None
    if ctx.key.admin:
        key_id, tenant = q.get("key_id") or None, q.get("tenant") or None
    assert gw.store is not None
    rows = await gw.store.usage(key_id=key_id, tenant=tenant, since=since, until=until, limit=limit)
    totals = await gw.store.usage_totals(key_id=key_id, tenant=tenant, since=since, until=until)
    return {
        "object": "list",
        "data": [asdict(r) for r in rows],
        "totals": {**asdict(totals), "total_cost_usd": round(totals.total_cost_usd, 10)},
    }


def time_param(value: str | None, name: str) -> float | None:
    """A query parameter's unix-or-ISO time; a 400 naming it when it is neither."""
    try:
        return parse_time(value)
    except ValueError:
        raise BadRequest(
            f"'{name}' must be unix seconds or an ISO 8601 time, got {value!r}",
            param=name,
            code="invalid_value",
        ) from None


def _int(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= 100_000:
        raise BadRequest(
            f"'{name}' must be an integer in [1, 100000], got {value!r}", param=name, code="invalid_value"
        )
    return n

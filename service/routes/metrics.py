"""GET /metrics: the Prometheus text format (see `service/metrics.py`).

Open by default, as exporters usually are: it holds counts and timings by endpoint, model,
provider and tenant, never a key or a prompt. With `PUREAI_METRICS_KEY` set, it needs that key
(`Authorization: Bearer <key>`, Prometheus' `authorization` scrape setting, or `x-api-key`).
"""

import hashlib
import hmac

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import Unauthorized
from ..keys import presented_key
from . import gateway

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    gw = gateway(request)
    required = gw.settings.metrics_key
    if required is not None:
        given = presented_key(request) or ""
        if not hmac.compare_digest(_digest(given), _digest(required.get_secret_value())):
            raise Unauthorized("/metrics needs the metrics key (PUREAI_METRICS_KEY)", code="invalid_api_key")
    body, content_type = gw.metrics.render()
    return Response(body, media_type=content_type)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()

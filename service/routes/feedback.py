"""Feedback on answers: how good a request's answer was, as the client judged it.

POST /v1/feedback   {"request_id", "score" | "thumbs", "metric", "comment"}   201 new, 200 replaced
GET  /v1/feedback   ?request_id=                                            this key's feedback

`request_id` is the id of an earlier request (its `x-request-id` header, and the `id` of a
completion). A key may rate only its own requests: any other id, or one never recorded, is a 404.
One score is kept per (request, metric): sending it again replaces it, so a retry is harmless.
A "score" (or thumbs) on a routed request also teaches the router in service how far off its
prediction for that model was (service/learning.py).

POST counts toward the key's requests per minute (admitted before its body is read, so a refused
one counts too); `request_id` is at most MAX_ID_CHARS long, in the body and in GET's query.
"""

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import BadRequest, NotFound, shown
from ..protocol import MAX_ID_CHARS, FeedbackRequest, parse_body
from ..shaping import JSON
from ..store import Feedback, UsageRow
from . import gateway

router = APIRouter(tags=["feedback"])


def feedback_json(feedback: Feedback, model: str | None) -> dict[str, Any]:
    return {
        "object": "feedback",
        "request_id": feedback.request_id,
        "metric": feedback.metric,
        "score": feedback.score,
        "comment": feedback.comment,
        "model": model,
        "created": feedback.created,
    }


@router.post("/v1/feedback")
async def create_feedback(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request, "feedback")
    await gw.admit(ctx)
    req = parse_body(await request.body(), FeedbackRequest)
    score = req.value()
    assert gw.store is not None
    rows = [r for r in await gw.store.usage_of(req.request_id) if r.key_id == ctx.key.id]
    if not rows:
        raise NotFound(
            f"no request {shown(req.request_id)} made with this key",
            code="request_not_found",
            param="request_id",
        )
    feedback = Feedback(req.request_id, req.metric, score, ctx.key.id, time.time(), req.comment)
    new = await gw.store.put_feedback(feedback)
    row = rows[-1]
    model, version = row.model, row.router_version if row.routed else None
    gw.metrics.feedback(model, req.metric, score, version)
    if new and req.metric == "score" and gw.settings.feedback_learning:
        _learn(gw, row, score)
    return JSON(feedback_json(feedback, model), status_code=201 if new else 200)


def _learn(gw: Any, row: UsageRow, score: float) -> None:
    """A first score on a routed request teaches the router in service (service/learning.py)."""
    if row.model is None or row.router_version is None or row.predicted_quality is None:
        return
    if gw.learner.learn(row.model, row.predicted_quality, score, row.router_version):
        gw.metrics.learned(row.model, gw.learner.shift(row.model))


@router.get("/v1/feedback")
async def list_feedback(request: Request) -> dict[str, Any]:
    gw = gateway(request)
    ctx = await gw.authenticate(request, "feedback")
    assert gw.store is not None
    request_id = request.query_params.get("request_id") or None
    if request_id is not None and len(request_id) > MAX_ID_CHARS:
        raise BadRequest(
            f"invalid 'request_id': longer than {MAX_ID_CHARS} characters",
            param="request_id",
            code="invalid_value",
        )
    found = await gw.store.feedback(key_id=ctx.key.id, request_id=request_id)
    models: dict[str, str | None] = {}
    for f in found:
        if f.request_id not in models:
            rows = await gw.store.usage_of(f.request_id)
            models[f.request_id] = rows[-1].model if rows else None
    return {"object": "list", "data": [feedback_json(f, models[f.request_id]) for f in found]}

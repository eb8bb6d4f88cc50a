"""POST /v1/feedback and GET /v1/feedback against the session gateway and the fake upstreams: the
request id a client rates is the one every answer carries, a key rates only its own requests, and a
second score for the same (request, metric) replaces the first."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service import prom
from tests.service.calls import chat, h
from tests.service.gateway_server import Gateway
from tests.service.sse import stream


def answer(gateway: Gateway, key: str, content: str = "Hello!", model: str = "gpt-4o-mini") -> str:
    """The request id of a chat completion (checked to be its header and its body's id)."""
    r = gateway.http.post("/v1/chat/completions", headers=h(key), json=chat(content, model=model))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == r.headers["x-request-id"]
    return str(r.json()["id"])


def rate(gateway: Gateway, key: str, **body: Any) -> Any:
    return gateway.http.post("/v1/feedback", headers=h(key), json=body)


def test_feedback_is_stored_once_per_request_and_metric(gateway: Gateway, fresh: Any, key: str) -> None:
    request_id = answer(gateway, key)
    first = rate(gateway, key, request_id=request_id, score=0.8, comment="good")
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["object"], body["request_id"], body["metric"]) == ("feedback", request_id, "score")
    assert (body["score"], body["comment"], body["model"]) == (0.8, "good", "gpt-4o-mini")
    again = rate(gateway, key, request_id=request_id, score=0.8, comment="good")
    assert again.status_code == 200 and again.json()["score"] == 0.8  # a retry changes nothing
    down = rate(gateway, key, request_id=request_id, thumbs="down")
    assert down.status_code == 200 and down.json()["score"] == 0.0 and down.json()["comment"] is None
    other = rate(gateway, key, request_id=request_id, metric="helpfulness", thumbs="up")
    assert other.status_code == 201 and other.json()["score"] == 1.0
    listed = gateway.http.get("/v1/feedback", headers=h(key), params={"request_id": request_id})
    assert listed.status_code == 200
    assert sorted((f["metric"], f["score"]) for f in listed.json()["data"]) == [
        ("helpfulness", 1.0),
        ("score", 0.0),
    ]


def test_streamed_and_routed_answers_carry_the_request_id(gateway: Gateway, fresh: Any, key: str) -> None:
    r, events = stream(gateway.http, "/v1/chat/completions", h(key), chat(stream=True))
    assert r.status_code == 200 and events[-1] == "[DONE]"
    assert {e["id"] for e in events[:-1]} == {r.headers["x-request-id"]}
    assert rate(gateway, key, request_id=r.headers["x-request-id"], score=1).status_code == 201

    routed = gateway.http.post(
        "/v1/router",
        headers=h(key),
        json={"messages": [{"role": "user", "content": "Hi"}], "models": ["gpt-4o-mini", "claude-3-haiku"]},
    )
    assert routed.status_code == 200, routed.text
    assert routed.json()["id"] == routed.headers["x-request-id"]
    rated = rate(gateway, key, request_id=routed.json()["id"], score=0.5)
    assert rated.status_code == 201 and rated.json()["model"] == routed.json()["routing"]["selected_model"]


def test_a_key_rates_only_its_own_requests(gateway: Gateway, fresh: Any, key: str) -> None:
    mine = answer(gateway, key)
    other = gateway.new_key(tenant="t-test", name="other")
    for request_id, who in ((mine, other), ("req_" + "0" * 24, key)):
        r = rate(gateway, who, request_id=request_id, score=1.0)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "request_not_found"
    assert gateway.http.get("/v1/feedback", headers=h(other)).json()["data"] == []
    no_key = gateway.http.post("/v1/feedback", json={"request_id": mine, "score": 1.0})
    assert no_key.status_code == 401


def test_bad_feedback_is_a_400(gateway: Gateway, fresh: Any, key: str) -> None:
    request_id = answer(gateway, key)
    for body, param in (
        ({"score": 1.5}, "score"),
        ({"score": -0.1}, "score"),
        ({"score": True}, "score"),
        ({"thumbs": "sideways"}, "thumbs"),
        ({}, "score"),
        ({"score": 1.0, "thumbs": "up"}, "score"),
        ({"score": 1.0, "rating": 5}, "rating"),
        ({"score": 1.0, "metric": ""}, "metric"),
    ):
        r = rate(gateway, key, request_id=request_id, **body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param, (body, r.json())
        assert r.json()["error"]["code"] in ("invalid_value", "missing_field"), (body, r.json())
    assert gateway.http.get("/v1/feedback", headers=h(key)).json()["data"] == []


def test_metrics_show_the_mean_feedback_per_model(gateway: Gateway, fresh: Any, key: str) -> None:
    before = prom.scrape(gateway)
    for score in (0.0, 0.5, 1.0):
        assert rate(gateway, key, request_id=answer(gateway, key), score=score).status_code == 201
    rate(gateway, key, request_id=answer(gateway, key), metric="tone", score=1.0)  # not "score": not counted
    after = prom.scrape(gateway)
    labels = {"model": "gpt-4o-mini"}
    count = prom.value(after, "pureai_feedback_score_count", **labels)
    total = prom.value(after, "pureai_feedback_score_sum", **labels)
    assert count - prom.value(before, "pureai_feedback_score_count", **labels) == 3
    assert total - prom.value(before, "pureai_feedback_score_sum", **labels) == pytest.approx(1.5)

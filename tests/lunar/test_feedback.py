"""`client.feedback` against the real gateway: scoring an answer by its id, replacing the score,
listing it back, the errors of a request that is not the key's, and the async twin."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import lunar
from lunar import AsyncLunar, Lunar
from tests.service.gateway_server import Gateway

HELLO = [{"role": "user", "content": "Hello!"}]


def test_feedback_create_and_list(client: Lunar, fresh: Any) -> None:
    response = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    created = client.feedback.create(request_id=response.id, score=0.25, comment="too short")
    assert isinstance(created, lunar.Feedback)
    assert (created.request_id, created.metric, created.score) == (response.id, "score", 0.25)
    assert (created.comment, created.model) == ("too short", "gpt-4o-mini")
    replaced = client.feedback.create(request_id=response.id, thumbs="up")
    assert replaced.score == 1.0 and replaced.comment is None
    client.feedback.create(request_id=response.id, metric="tone", thumbs="down")
    listed = client.feedback.list(request_id=response.id)
    assert isinstance(listed, lunar.FeedbackList)
    assert sorted((f.metric, f.score) for f in listed) == [("score", 1.0), ("tone", 0.0)]
    assert len(client.feedback.list()) >= 2


def test_feedback_errors(client: Lunar, gateway: Gateway, fresh: Any) -> None:
    with pytest.raises(lunar.NotFoundError):
        client.feedback.create(request_id="req_000000000000000000000000", score=1.0)
    response = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    with pytest.raises(lunar.BadRequestError):
        client.feedback.create(request_id=response.id, score=2.0)
    other = Lunar(api_key=gateway.new_key(tenant="t-other"), base_url=gateway.url)
    with other, pytest.raises(lunar.NotFoundError):
        other.feedback.create(request_id=response.id, score=1.0)
    with pytest.raises(TypeError, match="request_id"):
        client.feedback.create(score=1.0)  # type: ignore[call-arg]


def test_async_feedback(gateway: Gateway, key: str, fresh: Any) -> None:
    async def body() -> None:
        async with AsyncLunar(api_key=key, base_url=gateway.url) as client:
            response = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            created = await client.feedback.create(request_id=response.id, thumbs="down")
            assert created.score == 0.0 and created.model == "gpt-4o-mini"
            listed = await client.feedback.list(request_id=response.id)
            assert [f.score for f in listed] == [0.0]

    asyncio.run(body())

"""The client's configuration (arguments, else PUREAI_API_KEY / PUREAI_BASE_URL), what it sends on
the wire (seen by the raw-socket server), and its lifecycle."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import lunar
from lunar import AsyncLunar, Lunar
from tests.lunar.raw_server import RawServer, json_reply
from tests.service.gateway_server import Gateway

HELLO = [{"role": "user", "content": "Hello!"}]
MODELS = {"object": "list", "data": [{"id": "m", "object": "model", "created": 1, "owned_by": "x"}]}


def test_the_environment_configures_a_client_without_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUREAI_API_KEY", "pk-env")
    monkeypatch.setenv("PUREAI_BASE_URL", "http://gateway.internal:8000/v1/")
    with Lunar() as client:
        assert (client.api_key, client.base_url) == ("pk-env", "http://gateway.internal:8000")
    with Lunar(api_key="pk-arg", base_url="https://other.example") as client:
        assert (client.api_key, client.base_url) == ("pk-arg", "https://other.example")


def test_defaults() -> None:
    with Lunar(api_key="k") as client:
        assert client.base_url == lunar.DEFAULT_BASE_URL == "https://api.pureai-api.com"
        assert client.timeout == httpx.Timeout(600.0, connect=5.0) == lunar.DEFAULT_TIMEOUT
        assert client.max_retries == lunar.DEFAULT_MAX_RETRIES == 2
    with Lunar(api_key="k", timeout=3, max_retries=0) as client:
        assert client.timeout == httpx.Timeout(3.0) and client.max_retries == 0
    with Lunar(api_key="k", timeout=None) as client:
        assert client.timeout == httpx.Timeout(None)


@pytest.mark.parametrize("client_type", [Lunar, AsyncLunar])
def test_a_missing_key_fails_at_construction(client_type: type[Lunar] | type[AsyncLunar]) -> None:
    with pytest.raises(lunar.LunarError, match="PUREAI_API_KEY"):
        client_type()
    with pytest.raises(lunar.LunarError, match="PUREAI_API_KEY"):
        client_type(api_key="")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": "api.pureai-api.com"}, "http:// or https://"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
    ],
)
def test_bad_configuration_is_a_lunar_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(lunar.LunarError, match=message):
        Lunar(api_key="k", **options)  # type: ignore[arg-type]


def test_the_key_never_shows_in_repr() -> None:
    with Lunar(api_key="pk-secret-123") as client:
        assert "pk-secret-123" not in repr(client)
        assert "pk-secret-123" not in repr(client._requester.config)


def test_what_goes_on_the_wire(raw: RawServer) -> None:
    client = Lunar(api_key="pk-1", base_url=raw.url + "/v1", default_headers={"x-team": "a"})
    with client, pytest.raises(lunar.APIStatusError):  # 418: nothing scripted
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=HELLO,
            max_tokens=5,
            temperature=None,
            stop=("a", "b"),
            extra_headers={"x-trace": "t1", "User-Agent": "mine/1"},
            extra_query={"debug": "1"},
            extra_body={"service_tier": "flex"},
        )
    chat_request = raw.requests[0]
    assert (chat_request.method, chat_request.path) == ("POST", "/v1/chat/completions?debug=1")
    assert chat_request.json() == {
        "model": "gpt-4o-mini",
        "messages": HELLO,
        "max_tokens": 5,
        "stop": ["a", "b"],
        "service_tier": "flex",
    }  # None is left out; a tuple is a list
    h = chat_request.headers
    assert h["x-api-key"] == "pk-1" and "authorization" not in h
    assert (h["x-team"], h["x-trace"], h["content-type"]) == ("a", "t1", "application/json")
    assert h["accept"] == "application/json"
    assert [v for k, v in chat_request.header_list if k == "user-agent"] == [
        "mine/1"
    ]  # replaced, in any case


def test_get_paths_and_queries(raw: RawServer) -> None:
    model = {"id": "pureai/gemma-3-4b-it", "object": "model"}
    raw.script(json_reply(200, MODELS), json_reply(200, model), json_reply(200, {"providers": []}))
    with Lunar(api_key="k", base_url=raw.url) as client:
        assert client.models.list().ids() == ["m"]
        assert client.models.retrieve("pureai/gemma-3-4b-it").id == "pureai/gemma-3-4b-it"
        assert len(client.providers.list(model="a b&c")) == 0
    assert [(r.method, r.path) for r in raw.requests] == [
        ("GET", "/v1/models"),
        ("GET", "/v1/models/pureai/gemma-3-4b-it"),
        ("GET", "/v1/providers?model=a+b%26c"),
    ]
    assert all(r.body == b"" for r in raw.requests)


def test_router_body(raw: RawServer) -> None:
    decision = {"selected_model": "m", "reasoning": "r", "confidence": 0.5}
    raw.script(json_reply(200, decision))
    with Lunar(api_key="k", base_url=raw.url) as client:
        got = client.router.route(messages=HELLO, models=["a", "b"], cost_weight=0.25, execute=False)
    assert got == lunar.RoutingDecision(**decision)
    assert raw.requests[0].json() == {
        "messages": HELLO,
        "models": ["a", "b"],
        "cost_weight": 0.25,
        "execute": False,
    }


def test_arguments_are_checked_like_a_signature() -> None:
    with Lunar(api_key="k") as client:
        with pytest.raises(TypeError, match="unexpected keyword argument 'modle'"):
            client.chat.completions.create(modle="m", messages=HELLO)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="missing required keyword argument 'messages'"):
            client.chat.completions.create(model="m")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="'prompt'"):
            client.completions.create(model="m")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="'model'"):
            client.providers.list()  # type: ignore[call-arg]
        with pytest.raises(lunar.LunarError, match="JSON"):
            client.chat.completions.create(model="m", messages=HELLO, temperature=float("nan"))


def test_close_closes_the_pool_and_the_context_manager_closes(gateway: Gateway, key: str) -> None:
    client = Lunar(api_key=key, base_url=gateway.url)
    client.models.list()
    client.models.list()  # the same pool: one keep-alive connection
    http = client._requester.http
    client.close()
    assert http.is_closed
    with Lunar(api_key=key, base_url=gateway.url) as client:
        http = client._requester.http
    assert http.is_closed


def test_a_client_of_your_own_stays_open(raw: RawServer) -> None:
    raw.script(json_reply(200, MODELS))
    with httpx.Client() as http:
        with Lunar(api_key="k", base_url=raw.url, http_client=http) as client:
            client.models.list()
        assert not http.is_closed


def test_async_client_configuration_and_close(monkeypatch: pytest.MonkeyPatch, raw: RawServer) -> None:
    monkeypatch.setenv("PUREAI_API_KEY", "pk-async")
    monkeypatch.setenv("PUREAI_BASE_URL", raw.url)
    raw.script(json_reply(200, MODELS))

    async def main() -> None:
        client = AsyncLunar(max_retries=0)
        assert (client.api_key, client.base_url, client.max_retries) == ("pk-async", raw.url, 0)
        assert (await client.models.list()).ids() == ["m"]
        await client.close()
        assert client._requester.http.is_closed

    asyncio.run(main())
    assert raw.requests[0].headers["x-api-key"] == "pk-async"
    assert raw.requests[0].headers["user-agent"] == f"lunar-python/{lunar.__version__}"

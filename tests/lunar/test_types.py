"""The response types: immutable values that keep what the server adds and read what it leaves out."""

from __future__ import annotations

import pydantic
import pytest

import lunar


def test_responses_are_immutable() -> None:
    model = lunar.Model(id="m")
    with pytest.raises(pydantic.ValidationError):
        model.id = "other"  # type: ignore[misc]


def test_unknown_fields_are_kept_and_missing_optional_ones_are_none() -> None:
    usage = lunar.Usage.model_validate(
        {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "reasoning_tokens": 9}
    )
    assert usage.model_extra == {"reasoning_tokens": 9}
    assert usage.total_cost_usd is None and usage.ttft_ms is None and usage.cache_input_cost_usd is None
    assert usage.model_dump()["reasoning_tokens"] == 9


def test_the_references_router_response_parses() -> None:
    """The API reference's `execute: true` example: no `created`, three routing fields, four usage fields."""
    data = {
        "id": "router-abc123",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "routing": {
            "selected_model": "gpt-4o-mini",
            "reasoning": "Simple conversational request",
            "confidence": 0.92,
        },
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Here's a programming haiku..."},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 15,
            "completion_tokens": 25,
            "total_tokens": 40,
            "total_cost_usd": 0.00003,
        },
    }
    routed = lunar.RoutedCompletion.model_validate(data)
    assert routed.created is None and routed.routing.confidence == 0.92 and routed.routing.candidates is None
    assert routed.usage is not None and routed.usage.total_cost_usd == 0.00003


def test_a_decision_reads_the_candidates_it_left_out() -> None:
    decision = lunar.RoutingDecision.model_validate(
        {
            "selected_model": "gpt-4o-mini",
            "candidates": [
                {"model": "gpt-4o-mini", "quality": 0.8, "cost_usd": 1e-4, "utility": 0.7, "eligible": True},
                {"model": "gemini-2.0-flash", "eligible": False, "reason": "no_credentials", "detail": "set X"},
            ],
        }
    )
    assert decision.candidates is not None
    chosen, left_out = decision.candidates
    assert chosen.eligible and chosen.reason is None
    assert (left_out.eligible, left_out.reason, left_out.quality) == (False, "no_credentials", None)


def test_lists_iterate_over_their_items() -> None:
    models = lunar.ModelList(data=[lunar.Model(id="a"), lunar.Model(id="b")])
    assert [m.id for m in models] == ["a", "b"] == models.ids() and len(models) == 2 and models[1].id == "b"
    providers = lunar.ProviderList(providers=[lunar.Provider(id="openai", type="primary")])
    assert [p.id for p in providers] == ["openai"] and providers[0].enabled and providers[0].params == {}


def test_tool_calls_parse() -> None:
    chunk = lunar.ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{"}}
                        ]
                    },
                }
            ],
        }
    )
    call = chunk.choices[0].delta.tool_calls
    assert call is not None and call[0].function is not None and call[0].function.arguments == "{"

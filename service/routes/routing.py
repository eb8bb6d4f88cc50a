"""POST /v1/router: choose a model for the messages, then (by default) run it.

`execute: false` returns the decision only: it calls no provider, but it chooses among exactly the
candidates an executed request would (`service.eligibility`), so the model it names can be run
here. The decision carries, beside the reference's three fields, the candidates' predicted
quality, expected cost and utility, the prompt's capabilities and complexity, and the version of
the router that decided (`router_version`; every /v1/router response also has it as the header
`x-pureai-router-version`), and the candidates left out, each `"eligible": false` with a `reason`
code and a `detail` sentence.

The key is admitted (rate limit) before the body is read, so a refused body (400, 413) or an
unknown model in `models` (404) uses a request of the key's per-minute limit.
"""

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..eligibility import Refusal
from ..protocol import RouterRequest, parse_body
from ..shaping import JSON
from . import gateway

router = APIRouter(tags=["router"])


@router.post("/v1/router")
async def route(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request, "router")
    async with gw.recorded(ctx):
        await gw.admit(ctx)  # before the body is read: a refused body counts as a request
        req = parse_body(await request.body(), RouterRequest)
        messages = req.message_dicts()
        payload = {"messages": messages, **req.upstream_params()}
        decision, refused = await gw.decide(payload, req.models, req.cost_weight, ctx.key, ctx)
        ctx.model = decision.selected_model
        await gw.affordable(ctx)
        routing = decision.to_api()
        entry = gw.resolve(decision.selected_model, ctx.key)
        if not req.execute:
            gw.decided(ctx, entry)
            body = {**routing, "router_version": ctx.router_version, **_details(decision, refused)}
            return JSON(body, headers=ctx.headers())
        gw.note_prompt(ctx, messages)
        return await gw.run(
            ctx, "chat", entry, payload, req.stream, usage_chunk=req.include_usage_chunk(), routing=routing
        )


def _details(decision: Any, refused: list[Refusal]) -> dict[str, Any]:
    return {
        "cost_weight": decision.cost_weight,
        "complexity": round(decision.complexity, 4),
        "capabilities": {k: round(v, 4) for k, v in decision.capabilities.items()},
        "candidates": [
            {
                "model": c.model,
                "quality": round(c.quality, 4),
                "cost_usd": float(f"{c.cost_usd:.6g}"),
                "utility": round(c.utility, 6),
                "quality_source": c.quality_source,
                "eligible": True,
            }
            for c in decision.candidates
        ]
        + [r.to_api() for r in refused],
    }

"""POST /v1/chat/completions and POST /v1/completions, streamed or not.

The key is admitted (rate limit) before its body is read: a body refused (400, 413) or naming an
unknown model (404) has used a request of the key's per-minute limit."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..protocol import ChatRequest, CompletionRequest, parse_body
from . import gateway

router = APIRouter(tags=["completions"])


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request, "chat.completions")  # before the body is read
    async with gw.recorded(ctx):
        await gw.admit(ctx)
        req = parse_body(await request.body(), ChatRequest)
        ctx.model = req.model
        entry = gw.resolve(req.model, ctx.key)
        await gw.affordable(ctx)
        payload = {"messages": req.message_dicts(), **req.upstream_params()}
        gw.note_prompt(ctx, payload["messages"])
        return await gw.run(ctx, "chat", entry, payload, req.stream, usage_chunk=req.include_usage_chunk())


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request, "completions")
    async with gw.recorded(ctx):
        await gw.admit(ctx)
        req = parse_body(await request.body(), CompletionRequest)
        ctx.model = req.model
        entry = gw.resolve(req.model, ctx.key)
        await gw.affordable(ctx)
        payload = {"prompt": req.prompt, **req.upstream_params()}
        gw.note_prompt(ctx, None, req.prompt)
        return await gw.run(ctx, "text", entry, payload, req.stream, usage_chunk=req.include_usage_chunk())

"""A fast OpenAI-compatible stub server for tests and client benchmarks (no model).

    python scripts/stub_openai_server.py --port 8011 [--tokens 200] [--delay 0.0]
        [--fail-every N --fail-status 503] [--die-after N] [--start-delay S] [--never-healthy]
        [--context N]

Answers /health, /v1/models, /v1/chat/completions and /v1/completions; /stats counts the
completion requests it has served (``{"requests": N}``). The answer text repeats
a fingerprint of the request (last user message or prompt, seed) so a test can tell which request
an answer belongs to; ``usage.completion_tokens`` is ``--tokens`` (at most the request's
``max_tokens``). With ``--context N`` a request whose prompt (counted in words) plus ``max_tokens``
exceeds N is rejected with HTTP 400 and vLLM's message (``--messages 0.26``: vLLM 0.26's two
messages, verbatim but for the numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys

from aiohttp import web


def answer_text(prompt: str, seed) -> str:
    digest = hashlib.sha256(f"{prompt}|{seed}".encode()).hexdigest()[:12]
    return f"stub answer {digest}. The final answer is {int(digest[:4], 16) % 100}"


def context_check(body: dict, context: int, messages: str = "0.11") -> str | None:
    """vLLM's rejection of a request that does not fit the context (in 0.11's words, or in
    0.26's: ``max_tokens`` alone over the window first, then prompt plus output), or None."""
    text = body.get("prompt") or " ".join(m["content"] for m in body["messages"])
    prompt, wanted = len(text.split()), body.get("max_tokens", 16)
    if messages == "0.26" and wanted > context:
        return (
            f"max_tokens={wanted} cannot be greater than max_model_len=max_total_tokens="
            f"{context}. Please request fewer output tokens. (parameter=max_tokens, "
            f"value={wanted})"
        )
    if prompt + wanted <= context:
        return None
    if messages == "0.26":
        return (
            f"This model's maximum context length is {context} tokens. However, you requested "
            f"{wanted} output tokens and your prompt contains at least {prompt} input tokens, for "
            f"a total of at least {prompt + wanted} tokens. Please reduce the length of the input "
            f"prompt or the number of requested output tokens. (parameter=input_tokens, "
            f"value={prompt})"
        )
    return (
        f"This model's maximum context length is {context} tokens. However, you requested "
        f"{prompt + wanted} tokens ({prompt} in the messages, {wanted} in the completion). "
        "Please reduce the length of the messages or completion."
    )


def make_app(args) -> web.Application:
    state = {"requests": 0}

    async def health(request):
        return web.Response(status=503 if args.never_healthy else 200)

    async def stats(request):
        return web.json_response({"requests": state["requests"]})

    async def models(request):
        return web.json_response(
            {"object": "list", "data": [{"id": args.model, "object": "model"}]}
        )

    async def complete(request, chat: bool):
        state["requests"] += 1
        count = state["requests"]
        if args.die_after and count > args.die_after:
            os._exit(3)
        if args.fail_every and count % args.fail_every == 0:
            return web.Response(status=args.fail_status, text="stub failure")
        body = await request.json()
        if args.context:
            rejected = context_check(body, args.context, args.messages)
            if rejected:
                error = {"object": "error", "message": rejected, "type": "BadRequestError"}
                return web.json_response({**error, "code": 400}, status=400)
        if args.delay:
            await asyncio.sleep(args.delay)
        if chat:
            prompt = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": answer_text(prompt, body.get("seed"))},
                "finish_reason": "stop",
            }
        else:
            prompt = body["prompt"]
            choice = {
                "index": 0,
                "text": answer_text(prompt, body.get("seed")),
                "finish_reason": "stop",
            }
        return web.Response(
            text=json.dumps(
                {
                    "id": f"cmpl-{count}",
                    "object": "chat.completion" if chat else "text_completion",
                    "model": body.get("model"),
                    "choices": [choice],
                    "usage": {
                        "prompt_tokens": 10,
                        "completion_tokens": min(args.tokens, body.get("max_tokens", args.tokens)),
                        "total_tokens": 10 + args.tokens,
                    },
                }
            ),
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", stats)
    app.router.add_post("/v1/chat/completions", lambda r: complete(r, True))
    app.router.add_post("/v1/completions", lambda r: complete(r, False))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="stub")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--die-after", type=int, default=0)
    parser.add_argument("--start-delay", type=float, default=0.0)
    parser.add_argument("--never-healthy", action="store_true")
    parser.add_argument("--context", type=int, default=0)
    parser.add_argument(
        "--messages",
        choices=["0.11", "0.26"],
        default="0.11",
        help="--context: whose rejection messages, vLLM 0.11's or 0.26's",
    )
    parser.add_argument("--exit-at-start", type=int, default=None)
    args = parser.parse_args()
    if args.exit_at_start is not None:
        print("stub: failing at start as asked", file=sys.stderr)
        sys.exit(args.exit_at_start)
    if args.start_delay:
        import time

        time.sleep(args.start_delay)
    web.run_app(make_app(args), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

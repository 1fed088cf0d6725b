"""Asynchronous client for OpenAI-compatible servers (vLLM, TensorRT-LLM, SGLang, hosted APIs).

Requests are not streamed (per-token streaming costs more client CPU than a GPU server produces
tokens); at most ``max_concurrency`` are in flight; connection errors, 429 and 5xx answers are
retried with exponential backoff; every request has a timeout. Results are yielded as they
finish, so the caller can persist each one at once.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from distillery.errors import DistilleryError
from distillery.generation.types import Request, Result, SamplingParams

logger = logging.getLogger(__name__)

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to send requests.

    Attributes:
        base_url: server root, e.g. ``http://127.0.0.1:8000`` (``/v1`` is added).
        model: the served model name.
        endpoint: ``chat`` (the server applies the chat template) or ``completions`` (prompts
            are rendered here with the tokenizer's template).
        api_key: sent as a bearer token when set.
        max_concurrency: requests in flight at once.
        request_timeout: seconds one request may take.
        max_retries: retries of a failed request before the job fails.
        backoff: first retry delay in seconds; doubles each retry (with jitter), capped at 60.
        openai_strict: send only OpenAI's own sampling fields (hosted APIs reject the others).
        extra_body: fields merged into every request as they are (server-specific options such
            as ``chat_template_kwargs`` or ``ignore_eos``).
    """

    base_url: str
    model: str
    endpoint: str = "chat"
    api_key: str | None = None
    max_concurrency: int = 512
    request_timeout: float = 3600.0
    max_retries: int = 5
    backoff: float = 1.0
    openai_strict: bool = False
    extra_body: dict | None = None


def request_body(
    config: ClientConfig, params: SamplingParams, messages: list[dict] | None, prompt: str | None
) -> dict:
    """The JSON body of one request; non-OpenAI sampling fields only when they do something."""
    body: dict = {
        "model": config.model,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "seed": params.seed,
        "n": 1,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    if not config.openai_strict:
        if params.top_k > 0:
            body["top_k"] = params.top_k
        if params.min_p > 0:
            body["min_p"] = params.min_p
        if params.repetition_penalty != 1.0:
            body["repetition_penalty"] = params.repetition_penalty
    if messages is not None:
        body["messages"] = messages
    else:
        body["prompt"] = prompt
    if config.extra_body:
        body.update(config.extra_body)
    return body


def parse_response(data: dict, endpoint: str) -> tuple[str, int | None, str, str | None]:
    """``(text, completion tokens, finish reason, reasoning content)`` of a response body."""
    try:
        choice = data["choices"][0]
        if endpoint == "chat":
            message = choice["message"]
            text = message.get("content") or ""
            reasoning = message.get("reasoning_content") or message.get("reasoning")
        else:
            text, reasoning = choice["text"], None
    except (KeyError, IndexError, TypeError):
        raise DistilleryError(f"unexpected response from the server: {str(data)[:300]}") from None
    tokens = (data.get("usage") or {}).get("completion_tokens")
    return text, tokens, choice.get("finish_reason") or "stop", reasoning


class OpenAIClient:
    """Sends :class:`Request` objects to an OpenAI-compatible server.

    Args:
        config: see :class:`ClientConfig`.
        render: for the completions endpoint, turns messages into the prompt string.
        count_tokens: fallback token counter when the server reports no usage.
    """

    def __init__(self, config: ClientConfig, render=None, count_tokens=None):
        if config.endpoint not in ("chat", "completions"):
            raise DistilleryError(f"endpoint must be chat or completions, got {config.endpoint}")
        if config.endpoint == "completions" and render is None:
            raise DistilleryError("the completions endpoint needs a tokenizer to render prompts")
        self.config = config
        self.render = render
        self.count_tokens = count_tokens

    def generate(self, requests: Sequence[Request], params: SamplingParams) -> Iterator[Result]:
        """Yields results in completion order; raises once a request has exhausted its retries.

        The event loop runs in a thread so callers stay synchronous; a failure stops the
        remaining requests and is raised here after the results already finished.
        """
        results: queue.Queue = queue.Queue(maxsize=4 * self.config.max_concurrency)
        done = object()
        stop = threading.Event()

        def run() -> None:
            try:
                asyncio.run(self._run_all(requests, params, results, stop))
            except BaseException as err:  # handed to the consuming thread
                results.put(err)
            finally:
                results.put(done)

        thread = threading.Thread(target=run, name="openai-client", daemon=True)
        thread.start()
        error = None
        try:
            while True:
                item = results.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    error = item
                    continue
                yield item
        finally:
            stop.set()
            thread.join(timeout=30)
        if error is not None:
            raise error

    async def _run_all(self, requests, params, results: queue.Queue, stop: threading.Event):
        import aiohttp

        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        connector = aiohttp.TCPConnector(limit=self.config.max_concurrency, force_close=False)
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout)
        semaphore = asyncio.Semaphore(self.config.max_concurrency)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers
        ) as session:

            async def one(request: Request) -> None:
                async with semaphore:
                    if stop.is_set():
                        return
                    result = await self._one(session, request, params)
                    await asyncio.get_running_loop().run_in_executor(None, results.put, result)

            tasks = [asyncio.ensure_future(one(r)) for r in requests]
            try:
                for finished in asyncio.as_completed(tasks):
                    await finished
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, session, request: Request, params: SamplingParams) -> Result:
        import aiohttp

        endpoint = self.config.endpoint
        url = self.config.base_url.rstrip("/") + (
            "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
        )
        if endpoint == "chat":
            body = request_body(self.config, params, request.messages, None)
        else:
            body = request_body(self.config, params, None, self.render(request.messages))
        attempt = 0
        while True:
            began = time.time()
            try:
                async with session.post(url, json=body) as response:
                    if response.status == 200:
                        data = await response.json(content_type=None)
                        ended = time.time()
                        text, tokens, finish, reasoning = parse_response(data, endpoint)
                        if tokens is None and self.count_tokens is not None:
                            tokens = self.count_tokens(text)
                        return Result(
                            request.index, text, tokens or 0, finish, began, ended, reasoning
                        )
                    detail = (await response.text())[:500]
                    if response.status not in RETRY_STATUS:
                        raise DistilleryError(
                            f"{url} answered {response.status} for sample {request.index}: {detail}"
                        )
                    problem = f"HTTP {response.status}: {detail}"
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as err:
                problem = f"{type(err).__name__}: {err}"
            except asyncio.TimeoutError:
                problem = f"no answer within {self.config.request_timeout:g}s"
            attempt += 1
            if attempt > self.config.max_retries:
                raise DistilleryError(
                    f"sample {request.index} failed {attempt} times ({problem}); finished samples "
                    "are kept in the .partial file: rerun to continue"
                )
            delay = min(60.0, self.config.backoff * 2 ** (attempt - 1)) * (0.5 + random.random())
            logger.warning(
                "sample %d: %s; retry %d/%d in %.1fs",
                request.index,
                problem,
                attempt,
                self.config.max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    def close(self) -> None:
        pass

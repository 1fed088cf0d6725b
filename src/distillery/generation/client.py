"""Asynchronous client for OpenAI-compatible servers (vLLM, TensorRT-LLM, SGLang, hosted APIs).

Requests are not streamed (per-token streaming costs more client CPU than a GPU server produces
tokens); at most ``max_concurrency`` per server are in flight, each sent to the server replica
with the fewest in flight; connection errors, 429 and 5xx answers are retried with exponential
backoff; every request has a timeout. Results are yielded as they finish, so the caller can
persist each one at once.

A request the server rejects for good (another 4xx: a prompt plus ``max_tokens`` over the
context window, ``max_tokens`` alone over it, a malformed field) does not stop the job unless
``context_overflow`` is ``fail``: with ``reduce_generation`` a context overflow is sent again
with ``max_tokens`` cut to the room the window leaves (from the server's message, and the
prompt's length counted here where the message does not state it), and otherwise the sample
comes back with ``finish_reason`` ``error`` and the server's message.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from distillery.errors import DistilleryError
from distillery.generation.types import CONTEXT_OVERFLOW, Request, Result, SamplingParams

logger = logging.getLogger(__name__)

RETRY_STATUS = {408, 429, 500, 502, 503, 504}

# how vLLM (old and new), SGLang and TensorRT-LLM state the context and the prompt's share of it
_CONTEXT = re.compile(
    r"maximum context length (?:is |\()(\d+)|context length \((\d+)\)|max_seq_len \((\d+)\)"
    r"|max_model_len=(?:\w+=)*(\d+)",
    re.I,
)
# vLLM 0.26's rejection of max_tokens alone over the window (it states no prompt length)
_MAX_TOKENS_ONLY = re.compile(r"max_tokens=\d+ cannot be greater than max_model_len", re.I)
_PROMPT = re.compile(
    r"(\d+) in the messages|(\d+) in the prompt|has (\d+) input tokens|contains (?:at least )?"
    r"(\d+) input tokens|input length \((\d+)\)|prompt length \((\d+)\)",
    re.I,
)


def _number(pattern: re.Pattern, text: str) -> int | None:
    match = pattern.search(text)
    return None if match is None else int(next(g for g in match.groups() if g is not None))


def room_for_generation(message: str, prompt_tokens: int | None = None) -> int | None:
    """Tokens the context leaves for the generation, from a server's rejection message; None
    when the message does not state the context. The prompt's length is the message's, else
    ``prompt_tokens`` (counted here); vLLM's rejection of ``max_tokens`` alone states none, and
    without a count the whole window is the room (the retry's rejection then states it).

    Example:
        >>> room_for_generation("This model's maximum context length is 2048 tokens. However, "
        ...     "you requested 2100 tokens (100 in the messages, 2000 in the completion).")
        1948
        >>> message = ("max_tokens=5000 cannot be greater than max_model_len=max_total_tokens="
        ...     "2048. Please request fewer output tokens. (parameter=max_tokens, value=5000)")
        >>> room_for_generation(message, prompt_tokens=48), room_for_generation(message)
        (2000, 2048)
        >>> room_for_generation("bad field") is None
        True
    """
    context, prompt = _number(_CONTEXT, message), _number(_PROMPT, message)
    if context is None:
        return None
    if prompt is None:
        prompt = prompt_tokens
    if prompt is None:
        return context if _MAX_TOKENS_ONLY.search(message) else None
    return context - prompt


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to send requests.

    Attributes:
        base_url: server root, e.g. ``http://127.0.0.1:8000`` (``/v1`` is added), or the roots
            of several replicas of one server.
        model: the served model name.
        endpoint: ``chat`` (the server applies the chat template) or ``completions`` (prompts
            are rendered here with the tokenizer's template).
        api_key: sent as a bearer token when set.
        max_concurrency: requests in flight at once per server replica.
        request_timeout: seconds one request may take.
        max_retries: retries of a failed request before the job fails.
        context_overflow: what a request the server rejects for good becomes:
            ``reduce_generation`` (a context overflow is retried once with the room left),
            ``skip`` (an error sample) or ``fail`` (the job stops).
        backoff: first retry delay in seconds; doubles each retry (with jitter), capped at 60.
        openai_strict: send only OpenAI's own sampling fields (hosted APIs reject the others).
        extra_body: fields merged into every request as they are (server-specific options such
            as ``chat_template_kwargs`` or ``ignore_eos``).
    """

    base_url: str | tuple[str, ...]
    model: str
    endpoint: str = "chat"
    api_key: str | None = None
    max_concurrency: int = 512
    request_timeout: float = 3600.0
    max_retries: int = 5
    backoff: float = 1.0
    openai_strict: bool = False
    extra_body: dict | None = None
    context_overflow: str = "reduce_generation"

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.base_url,) if isinstance(self.base_url, str) else tuple(self.base_url)


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
        if config.context_overflow not in CONTEXT_OVERFLOW:
            raise DistilleryError(
                f"context_overflow must be one of {', '.join(CONTEXT_OVERFLOW)}, got "
                f"{config.context_overflow!r}"
            )
        self.config = config
        self.render = render
        self.count_tokens = count_tokens
        self.sent = dict.fromkeys(config.urls, 0)  # requests sent to each replica

    def generate(self, requests: Sequence[Request]) -> Iterator[Result]:
        """Yields results in completion order (each request sampled with its own ``params``);
        raises once a request has exhausted its retries.

        The event loop runs in a thread so callers stay synchronous; a failure stops the
        remaining requests and is raised here after the results already finished.
        """
        results: queue.Queue = queue.Queue(maxsize=4 * self.config.max_concurrency)
        done = object()
        stop = threading.Event()

        def run() -> None:
            try:
                asyncio.run(self._run_all(requests, results, stop))
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

    async def _run_all(self, requests, results: queue.Queue, stop: threading.Event):
        import aiohttp

        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        urls = self.config.urls
        pool = self.config.max_concurrency * len(urls)
        connector = aiohttp.TCPConnector(limit=pool, force_close=False)
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout)
        semaphore = asyncio.Semaphore(pool)
        in_flight = dict.fromkeys(urls, 0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers
        ) as session:

            async def one(request: Request) -> None:
                async with semaphore:
                    if stop.is_set():
                        return
                    # the replica with the fewest requests in flight (one event loop: no lock)
                    url = min(urls, key=in_flight.__getitem__)
                    in_flight[url] += 1
                    self.sent[url] += 1
                    try:
                        result = await self._one(session, url, request)
                    finally:
                        in_flight[url] -= 1
                    await asyncio.get_running_loop().run_in_executor(None, results.put, result)

            tasks = [asyncio.ensure_future(one(r)) for r in requests]
            try:
                for finished in asyncio.as_completed(tasks):
                    await finished
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, session, base_url: str, request: Request) -> Result:
        import aiohttp

        endpoint = self.config.endpoint
        url = base_url.rstrip("/") + (
            "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
        )
        params = request.params
        if endpoint == "chat":
            body = request_body(self.config, params, request.messages, None)
        else:
            body = request_body(self.config, params, None, self.render(request.messages))
        attempt = 0
        # a context overflow is cut down at most twice: vLLM's max_tokens rejection may leave
        # the prompt's length to the rejection of the retry
        reductions = 0
        first_began = time.time()
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
                        room = None
                        if reductions < 2:
                            room = self._room(detail, body["max_tokens"], request)
                        if room is not None:
                            logger.info(
                                "sample %d: over the context; retrying with max_tokens %d",
                                request.index,
                                room,
                            )
                            body, reductions = {**body, "max_tokens": room}, reductions + 1
                            continue
                        return self._rejected(request, url, response.status, detail, first_began)
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

    def _room(self, detail: str, max_tokens: int, request: Request) -> int | None:
        """The smaller ``max_tokens`` to retry a context overflow with, or None."""
        if self.config.context_overflow != "reduce_generation":
            return None
        room = room_for_generation(detail, self._prompt_tokens(request))
        return room if room is not None and 0 < room < max_tokens else None

    def _prompt_tokens(self, request: Request) -> int | None:
        """The prompt's length in tokens, when a tokenizer is at hand (a rejection that does
        not state it)."""
        if self.render is None or self.count_tokens is None:
            return None
        try:
            return self.count_tokens(self.render(request.messages))
        except Exception as err:  # a template that cannot render: the server's count decides
            logger.debug("sample %d: cannot count the prompt's tokens: %s", request.index, err)
            return None

    def _rejected(
        self, request: Request, url: str, status: int, detail: str, began: float
    ) -> Result:
        """A request the server will never accept: an error sample, or the job's end."""
        message = f"{url} answered {status} for sample {request.index}: {detail}"
        if self.config.context_overflow == "fail":
            raise DistilleryError(
                f"{message}; set the stage's context_overflow to reduce_generation or skip to "
                "write such samples as errors instead"
            )
        return Result(request.index, "", 0, "error", began, time.time(), error=message)

    def close(self) -> None:
        pass

"""In-process backend on transformers ``generate``: batched, on the CPU or the job's GPUs.

It has the same output contract as the server backends, so a config can switch between them
without touching later stages.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.generation.types import Request, Result, SamplingParams, fit_to_context
from distillery.models import dtypes

logger = logging.getLogger(__name__)


def render_chat(tokenizer, messages: list[dict]) -> str:
    """The prompt string for ``messages``: the tokenizer's chat template with the generation
    prompt, or the plain concatenated turns for a base model without a template."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bos = tokenizer.bos_token or ""
    return bos + "\n\n".join(m["content"] for m in messages)


def load_model_and_tokenizer(model_path: str | Path, dtype: str = "auto", gpus: int = 0):
    """Loads an HF model directory for inference (left padding, eval mode) in ``dtype``
    (``auto``: the device's native format, :func:`distillery.models.dtypes.resolve`), on the CPU or,
    with ``gpus`` > 0, on the visible GPUs (one: all of it there; several: its layers spread
    over them)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_path = Path(model_path)
    if not (model_path / "config.json").is_file():
        raise DistilleryError(
            f"{model_path}: not a Hugging Face model directory (no config.json); build the model "
            "first or fix the model path in the config"
        )
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if gpus > 0 and not torch.cuda.is_available():
        raise DistilleryError(
            f"server.gpus is {gpus} but torch sees no CUDA GPU here; set gpus: 0 to generate on "
            "the CPU, or run the job where the GPUs are"
        )
    device = "cuda" if gpus > 0 else "cpu"
    torch_dtype = getattr(torch, dtypes.resolve(dtype, device, "server.dtype"))
    placement = {}
    if gpus > 1:
        placement = {"device_map": "auto"}
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch_dtype, **placement)
    if gpus == 1:
        model.to("cuda")
    model.eval()
    where = f"{gpus} GPU(s) ({torch.cuda.get_device_name(0)})" if gpus else dtypes.describe_cpu()
    logger.info("%s in %s on %s", model_path, torch_dtype, where)
    return model, tokenizer


def context_length(model, tokenizer) -> int:
    """Tokens the model attends over: its position limit, else the tokenizer's (when it states
    a real one), else unbounded."""
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions:
        return int(positions)
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit and limit < 10**9 else 10**9


class HFBackend:
    """Batched ``model.generate`` over requests grouped by sampling settings and sorted by
    prompt length.

    Sampling is seeded per batch from ``params.seed`` and the batch's first request index, so a
    run is reproducible for the same batching. A request whose prompt plus ``max_tokens``
    overflows the model's context generates what fits (``context_overflow``
    ``reduce_generation``), or is returned with ``finish_reason`` ``error`` (``skip``, and a
    prompt that alone fills the context), or stops the job (``fail``).
    """

    def __init__(
        self,
        model_path: str | Path,
        batch_size: int = 8,
        dtype: str = "auto",
        gpus: int = 0,
        context_overflow: str = "reduce_generation",
    ):
        self.model, self.tokenizer = load_model_and_tokenizer(model_path, dtype, gpus)
        self.batch_size = batch_size
        self.context_overflow = context_overflow
        self.context = context_length(self.model, self.tokenizer)
        eos = self.model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        self._stop_ids = {i for i in [*eos_ids, self.tokenizer.eos_token_id] if i is not None}

    def generate(self, requests: Sequence[Request]) -> Iterator[Result]:
        """Yields a result per request; those sharing sampling settings are batched together."""
        key = lambda r: repr(r.params)  # noqa: E731  (params hold a tuple: hashable, sortable repr)
        for _, group in itertools.groupby(sorted(requests, key=key), key=key):
            group = list(group)
            yield from self._generate(group, group[0].params)

    def _generate(self, requests: Sequence[Request], params: SamplingParams) -> Iterator[Result]:
        import torch

        prompts = {r.index: render_chat(self.tokenizer, r.messages) for r in requests}
        lengths = {
            i: len(self.tokenizer(p, add_special_tokens=False).input_ids)
            for i, p in prompts.items()
        }
        for index in list(prompts):
            # one over-long input must not take the job down (or allocate gigabytes); one that
            # can generate less is batched with the rest, each batch cut to its room below
            _, overflow = fit_to_context(
                index, lengths[index], params.max_tokens, self.context, self.context_overflow
            )
            if overflow is not None:
                yield self._rejected(index, overflow)
                del prompts[index]
        order = sorted(prompts, key=lambda i: -lengths[i])
        device = self.model.device
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            # the batch's longest prompt leaves this much room in the context
            room = self.context - lengths[batch[0]]
            encoded = self.tokenizer(
                [prompts[i] for i in batch],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(device)
            torch.manual_seed(params.seed * 1_000_003 + min(batch))
            began = time.time()
            kwargs = self._generate_kwargs(params, min(params.max_tokens, room))
            with torch.inference_mode():
                output = self.model.generate(**encoded, **kwargs)
            ended = time.time()
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            for row, index in zip(new_tokens.tolist(), batch, strict=True):
                yield self._result(index, row, params, began, ended)

    def _generate_kwargs(self, params: SamplingParams, max_new_tokens: int) -> dict:
        kwargs = {
            "max_new_tokens": max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": params.repetition_penalty,
        }
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            if params.top_k > 0:
                kwargs["top_k"] = params.top_k
            if params.min_p > 0:
                kwargs["min_p"] = params.min_p
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        return kwargs

    def _result(
        self, index: int, tokens: list[int], params: SamplingParams, began: float, ended: float
    ) -> Result:
        finish = "length"
        for position, token in enumerate(tokens):
            if token in self._stop_ids:
                tokens = tokens[: position + 1]
                finish = "stop"
                break
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        for stop in params.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return Result(index, text, len(tokens), finish, began, ended)

    def _rejected(self, index: int, message: str) -> Result:
        now = time.time()
        return Result(index, "", 0, "error", now, now, error=message)

    def close(self) -> None:
        self.model = None

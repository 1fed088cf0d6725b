"""Stage: convert a GGUF model file into a plain Hugging Face model directory.

Usage::

    python -m distillery.gguf_to_hf --gguf SmolLM2-135M-Instruct.Q4_1.gguf \\
        --output results/models/smollm2-135m

The weights are dequantised to ``--dtype`` (``auto``: bf16 where this CPU computes it natively,
else fp32). The tokenizer and chat template come from the GGUF metadata.

Llama-architecture files with a byte-level BPE vocabulary (SmolLM2, Llama 3 and their
fine-tunes) are converted directly (:mod:`distillery.models.gguf_llama`: no torch, a tensor at
a time, about a sixth of the time); every other file goes through transformers' GGUF loading,
which can only save the model once the GGUF quantizer is detached (``GgufConfig(dequantize=
True)``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.errors import DistilleryError
from distillery.models import dtypes, gguf_llama
from distillery.models.files import save_model, staged_output
from distillery.models.gguf_file import GGUFFile, UnsupportedGGUF

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Convert GGUF to a Hugging Face model directory."""

    gguf: str = field(metadata={"help": "the .gguf file"})
    output: str = field(metadata={"help": "output model directory"})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "dtype of the saved weights (auto: bf16 where this CPU computes it "
            "natively, else fp32)"
        },
    )
    threads: int = field(default=1, metadata={"help": "CPU threads (torch, NumPy)"})

    def __post_init__(self):
        if self.dtype not in dtypes.NAMES:
            raise DistilleryError(f"--dtype must be one of {', '.join(dtypes.NAMES)}")


@contextlib.contextmanager
def parsed_once():
    """Within this block each GGUF file is parsed once and gguf's tensor-name map built once.

    transformers parses the file for the config, again for the tokenizer and again for the
    weights, and builds the name map again for every module (397 for SmolLM2-135M): about half
    of the conversion's 24 s on a 2-core CPU. It looks both up on the ``gguf`` module at call time,
    which is where they are cached; a transformers that imported them elsewhere would convert
    as slowly as before, not differently. The reader is read-only (a memory map), the map is
    only read after it is built.
    """
    import gguf

    reader_class, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], object] = {}

    def reader(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = reader_class(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.cache(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader_class, name_map


def main(config: Config) -> None:
    gguf = Path(config.gguf)
    if not gguf.is_file():
        raise DistilleryError(f"{gguf}: GGUF file does not exist; fix the model's path in config")
    dtype = dtypes.resolve(config.dtype, "cpu", "models.<name>.dtype")
    if not convert_directly(gguf, config.output, dtype):
        convert_with_transformers(gguf, config.output, dtype)


def convert_directly(gguf: Path, output: str, dtype: str) -> bool:
    """Converts with :mod:`distillery.models.gguf_llama` where it covers the file; False (and
    nothing written) where it does not."""
    began = time.time()
    try:
        source = GGUFFile(gguf)
    except UnsupportedGGUF as err:
        logger.info("%s; converting with transformers", err)
        return False
    with source:
        reason = gguf_llama.unsupported(source)
        if reason is not None:
            logger.info("%s: %s is converted by transformers", gguf.name, reason)
            return False
        with staged_output(output) as staging:
            params = gguf_llama.convert(source, staging, dtype)
    _log_saved(gguf, dtype, params, output, time.time() - began)
    return True


def convert_with_transformers(gguf: Path, output: str, dtype: str) -> None:
    began = time.time()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        with parsed_once():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent,
                gguf_file=gguf.name,
                quantization_config=GgufConfig(dequantize=True),
                dtype=getattr(torch, dtype),
            )
    except (ValueError, KeyError) as err:
        raise DistilleryError(f"{gguf}: transformers cannot load this GGUF file: {err}") from None
    save_model(model, tokenizer, output)
    params = sum(p.numel() for p in model.parameters())
    _log_saved(gguf, dtype, params, output, time.time() - began)


def _log_saved(gguf: Path, dtype: str, params: int, output: str, seconds: float) -> None:
    logger.info(
        "saved %s (%s, %.1fM parameters) to %s in %.1fs",
        gguf.name,
        dtype,
        params / 1e6,
        output,
        seconds,
    )


if __name__ == "__main__":
    cli.run(main, Config)

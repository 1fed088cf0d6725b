"""Stage: merge a LoRA adapter into its base model, giving a plain model directory.

Usage::

    python -m distillery.merge_lora --base results/models/smollm2-135m \\
        --adapter results/train/adapter --output results/models/smollm2-merged

The adapter is checked against the base before any weight is merged: every adapted module must
exist in the base with the shapes the adapter was trained on, so an adapter of another model
fails with a clear message instead of a size error deep inside peft (or, worse, a silent merge
into the wrong layers).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.errors import DistilleryError
from distillery.models import dtypes
from distillery.models.files import save_model

logger = logging.getLogger(__name__)

_PREFIX = "base_model.model."


@dataclass(frozen=True)
class Config:
    """Merge a LoRA adapter into its base model."""

    base: str = field(metadata={"help": "base model directory"})
    adapter: str = field(metadata={"help": "adapter directory (adapter_config.json, weights)"})
    output: str = field(metadata={"help": "merged model directory"})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "dtype of the merged weights (auto: bf16 where this CPU computes it "
            "natively, else fp32)"
        },
    )
    threads: int = field(default=1, metadata={"help": "CPU threads for torch"})

    def __post_init__(self):
        if self.dtype not in dtypes.NAMES:
            raise DistilleryError(f"--dtype must be one of {', '.join(dtypes.NAMES)}")


def adapter_shapes(adapter: Path) -> dict[str, tuple[int, int]]:
    """``{module name: (in_features, out_features)}`` the adapter expects, from its weights."""
    from safetensors import safe_open

    path = adapter / "adapter_model.safetensors"
    if not path.is_file():
        raise DistilleryError(f"{adapter}: no adapter_model.safetensors; is it a LoRA adapter?")
    shapes: dict[str, list] = {}
    with safe_open(str(path), "pt") as weights:
        for key in weights.keys():
            for part, index in ((".lora_A.", 1), (".lora_B.", 0)):
                if part in key:
                    name = key.split(part)[0].removeprefix(_PREFIX)
                    shape = weights.get_slice(key).get_shape()
                    shapes.setdefault(name, [None, None])[1 - index] = shape[index]
    return {name: tuple(io) for name, io in shapes.items()}


def check_compatible(model, adapter: Path) -> None:
    """Raises before merging when the adapter does not fit ``model``."""
    modules = dict(model.named_modules())
    problems = []
    for name, (in_features, out_features) in adapter_shapes(adapter).items():
        module = modules.get(name)
        if module is None:
            problems.append(f"{name}: not in the base model")
            continue
        if (module.in_features, module.out_features) != (in_features, out_features):
            problems.append(
                f"{name}: the adapter expects {in_features}x{out_features}, the base has "
                f"{module.in_features}x{module.out_features}"
            )
    if problems:
        config = json.loads((adapter / "adapter_config.json").read_text())
        trained_on = config.get("base_model_name_or_path", "an unrecorded base")
        listing = "; ".join(problems[:3]) + (
            f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        )
        raise DistilleryError(
            f"{adapter} does not fit this base model (it was trained on {trained_on}): "
            f"{listing}. Merge it into the model it was trained on"
        )


def merge(base: str, adapter: str, dtype: str = "auto"):
    """The base model with the adapter merged in (checked first, see :func:`check_compatible`),
    on the CPU in ``dtype`` (:func:`distillery.models.dtypes.resolve`)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter_dir = Path(adapter)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise DistilleryError(f"{adapter}: no adapter_config.json; is it a LoRA adapter?")
    if not (Path(base) / "config.json").is_file():
        raise DistilleryError(f"{base}: not a Hugging Face model directory (no config.json)")
    torch_dtype = getattr(torch, dtypes.resolve(dtype, "cpu", "models.<name>.dtype"))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    check_compatible(model, adapter_dir)
    return PeftModel.from_pretrained(model, adapter).merge_and_unload()


def main(config: Config) -> None:
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(config.threads)
    merged = merge(config.base, config.adapter, config.dtype)
    tokenizer_source = (
        config.adapter
        if (Path(config.adapter) / "tokenizer_config.json").is_file()
        else config.base
    )
    save_model(merged, AutoTokenizer.from_pretrained(tokenizer_source), config.output)
    logger.info("merged %s into %s: %s", config.adapter, config.base, config.output)


if __name__ == "__main__":
    cli.run(main, Config)

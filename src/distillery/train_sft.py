"""Stage: supervised fine-tuning of the student with TRL's SFTTrainer (full or LoRA).

Usage::

    python -m distillery.train_sft --data results/sft/sft-data.jsonl \\
        --model results/models/smollm2-135m --output results/train/model \\
        --adapter-output results/train/adapter --metrics results/train/train-metrics.json \\
        --set method=lora --set max_steps=12

The output is always a plain Hugging Face model directory that any backend can serve (LoRA is
merged into the base weights; the adapter is saved beside it). Checkpoints go to
``--checkpoint-dir``; rerunning after a kill resumes from the last one.

Samples are packed padding-free (best-fit decreasing into ``--max-seq-length`` tokens, position
ids restarting per sample, so no token attends across samples: FlashAttention's varlen kernels
from flash-attn or, without it, from PyTorch itself; flex attention on older GPUs; SDPA with a
per-sample mask on CPUs). The loss covers the assistant turn only.

On several GPUs or nodes it runs as one process per GPU under torchrun (``distillery.launch``),
data-parallel, or with ``--fsdp`` sharding weights, gradients and optimizer state (FSDP2).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.errors import DistilleryError
from distillery.generation.resume import fingerprint
from distillery.jsonl import read_jsonl, write_json
from distillery.merge_lora import merge
from distillery.models import dtypes
from distillery.models.files import save_model
from distillery.settings.training import TrainingSettings
from distillery.training.tokenization import tokenize_records

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Fine-tune a model on SFT data."""

    data: str = field(metadata={"help": "SFT data JSONL (input/output records)"})
    model: str = field(metadata={"help": "base model directory"})
    output: str = field(metadata={"help": "trained (merged) model directory"})
    metrics: str = field(metadata={"help": "training metrics JSON"})
    training: TrainingSettings = field(
        metadata={
            "help": "the training block (method, lora, learning_rate, ...), e.g. --set "
            "method=lora --set max_steps=12"
        }
    )
    adapter_output: str | None = field(
        default=None, metadata={"help": "LoRA: where to keep the adapter"}
    )
    checkpoint_dir: str | None = field(
        default=None, metadata={"help": "checkpoints, for resuming (default: <output>-checkpoints)"}
    )
    validation: str | None = field(
        default=None, metadata={"help": "validation records: eval loss every save_steps"}
    )
    threads: int = field(default=1, metadata={"help": "CPU threads for torch"})

    def __post_init__(self):
        method = self.training.method
        if method in ("lora", "qlora") and not self.adapter_output:
            raise DistilleryError(f"method {method} needs --adapter-output")
        if self.training.keep_best and not self.validation:
            raise DistilleryError("keep_best needs --validation (the eval loss picks the best)")


def last_checkpoint(directory: Path) -> str | None:
    """The newest complete ``checkpoint-N`` in ``directory``."""
    if not directory.is_dir():
        return None
    steps = [
        (int(p.name.split("-")[1]), p)
        for p in directory.glob("checkpoint-*")
        if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return str(max(steps)[1]) if steps else None


def check_model_dir(path: str) -> None:
    if not (Path(path) / "config.json").is_file():
        raise DistilleryError(
            f"{path}: not a Hugging Face model directory (no config.json); build the base model "
            "first or fix training.model in the config"
        )


def check_gpus(config: Config) -> None:
    """GPUs asked for but not visible: fail before minutes of model loading."""
    import torch

    if config.training.gpus > 0 and torch.cuda.device_count() == 0:
        raise DistilleryError(
            f"training asks for {config.training.gpus} GPU(s) but none is visible "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); run on a "
            "GPU node or set training.gpus: 0"
        )
    if config.training.fsdp and not torch.cuda.is_available():
        # accelerate would quietly run CPU processes data-parallel instead
        raise DistilleryError(
            "--fsdp shards the model over CUDA GPUs and none is visible; set training.fsdp: "
            "false to train data-parallel on CPUs"
        )


def attention_implementation(config: Config) -> str:
    import importlib.util

    import torch

    from distillery.training import varlen_attention

    if config.training.attn_implementation == varlen_attention.NAME:
        if not varlen_attention.available():
            raise DistilleryError(
                f"training.attn_implementation {varlen_attention.NAME} needs PyTorch >= 2.10 "
                "and an Ampere or newer GPU; use auto"
            )
        if not config.training.packing:
            raise DistilleryError(
                f"training.attn_implementation {varlen_attention.NAME} needs training.packing: "
                "true (it reads the packed samples' boundaries); use auto or sdpa"
            )
        return varlen_attention.register()
    if config.training.attn_implementation != "auto":
        return config.training.attn_implementation
    if not torch.cuda.is_available():
        return "sdpa"
    if importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    if not config.training.packing:
        return "sdpa"
    # Packed samples need per-sample causal attention: PyTorch's own FlashAttention varlen
    # kernel takes the sample boundaries directly; flex attention skips the masked blocks of a
    # block mask (2.5x SDPA with a dense mask on an H100)
    return varlen_attention.register() if varlen_attention.available() else "flex_attention"


def use_liger(config: Config) -> bool:
    import importlib.util

    import torch

    return (
        config.training.liger
        and torch.cuda.is_available()
        and importlib.util.find_spec("liger_kernel") is not None
    )


def use_bf16(config: Config) -> bool:
    """bf16 mixed precision: as configured, or under ``auto`` where the training device (a GPU,
    else the CPU) computes bf16 natively (:func:`distillery.models.dtypes.resolve`)."""
    device = dtypes.default_device()
    return dtypes.resolve(config.training.precision, device, "training.precision") == "bfloat16"


def param_dtype(config: Config):
    """bf16 where the model trains in bf16 on one process (the optimizer keeps fp32 masters;
    for QLoRA this is the dtype of the weights left unquantized: embeddings, LM head, norms);
    fp32 otherwise, bf16 compute then comes from autocast."""
    import torch

    if not use_bf16(config):
        return torch.float32
    one_process = int(os.environ.get("WORLD_SIZE", "1")) == 1
    if config.training.param_dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and one_process else torch.float32
    if (
        config.training.param_dtype == "bf16"
        and config.training.method == "full"
        and not one_process
    ):
        # data-parallel reduction works on param.grad, which the fp32-master optimizer empties
        raise DistilleryError(
            "--param-dtype bf16 with --method full trains in one process; with several GPUs "
            "leave training.param_dtype at auto (fp32 weights under autocast)"
        )
    return torch.bfloat16 if config.training.param_dtype == "bf16" else torch.float32


def load_model(config: Config):
    """The model to train, in :func:`param_dtype`, and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    attention = attention_implementation(config)
    if config.training.method == "qlora":
        model = load_quantized(config.model, param_dtype(config), attention)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            config.model, dtype=param_dtype(config), attn_implementation=attention
        )
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions and config.training.max_seq_length > positions:
        raise DistilleryError(
            f"--max-seq-length {config.training.max_seq_length} exceeds the model's "
            f"{positions} positions; lower training.max_seq_length"
        )
    logger.info(
        "attention: %s; weights in %s; compute in %s (%s)",
        attention,
        model.dtype,
        "bf16" if use_bf16(config) else "fp32",
        "CUDA" if dtypes.default_device() == "cuda" else dtypes.describe_cpu(),
    )
    return model, tokenizer


def build_trainer(config: Config, model, tokenizer, examples, eval_examples):
    """TRL's SFTTrainer with the stage's settings, on tokenized examples."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig

    from distillery.training.trainer import trainer_class
    from distillery.training.trl_args import Runtime, sft_arguments, sft_config_fields

    peft_config = None
    if config.training.method in ("lora", "qlora"):
        from peft import LoraConfig

        targets = list(config.training.lora.target_modules)
        peft_config = LoraConfig(
            r=config.training.lora.r,
            lora_alpha=config.training.lora.alpha,
            lora_dropout=config.training.lora.dropout,
            target_modules="all-linear" if targets == ["all-linear"] else targets,
            use_rslora=config.training.lora.use_rslora,
            task_type="CAUSAL_LM",
        )
    use_cuda = torch.cuda.is_available()
    evaluate = bool(eval_examples)
    runtime = Runtime(
        output_dir=str(checkpoint_dir(config)),
        evaluate=evaluate,
        cuda=use_cuda,
        tf32=use_cuda and torch.cuda.get_device_capability()[0] >= 8,
        bf16=use_bf16(config),
        liger=use_liger(config),
        report_to=wandb_report_to(),
        fsdp=fsdp_arguments(config),
    )
    args = SFTConfig(**sft_arguments(config.training, runtime, sft_config_fields()))
    if args.n_gpu > 1:
        # several GPUs visible to one process: the Trainer would wrap the model in
        # DataParallel, which TRL refuses
        gpus = config.training.gpus
        if gpus > 1:
            raise DistilleryError(
                f"gpus {gpus} runs one process per GPU: start it with `python -m "
                f"distillery.launch --gpus {gpus} -- distillery.train_sft ...` (the workflow does)"
            )
        logger.warning("%d GPUs visible to one process; training on the first", args.n_gpu)
        args._n_gpu = 1
    trainer = trainer_class()
    optimizer = None
    if config.training.method == "full" and model.dtype == torch.bfloat16:
        from distillery.training.master_weights import MasterWeightAdamW

        # the AdamW the Trainer would build from `optim`, over fp32 copies of the weights
        _, adamw = trainer.get_optimizer_cls_and_kwargs(args)
        optimizer = (MasterWeightAdamW, adamw)
    return trainer(
        model=model,
        optimizer_cls_and_kwargs=optimizer,
        args=args,
        train_dataset=Dataset.from_list(examples),
        eval_dataset=Dataset.from_list(eval_examples) if evaluate else None,
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def fsdp_arguments(config: Config) -> dict:
    """FSDP2 through accelerate: each decoder layer a unit (the model's ``_no_split_modules``),
    resharded after its forward pass; checkpoints saved sharded (each process writes its own
    part, none gathers the whole model)."""
    if not config.training.fsdp:
        return {}
    return {
        "fsdp": True,
        "fsdp_config": {
            "version": 2,
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "reshard_after_forward": True,
            "state_dict_type": "SHARDED_STATE_DICT",
            "activation_checkpointing": config.training.gradient_checkpointing,
        },
    }


def gathered_model(trainer, config: Config):
    """The trained model, whole, in the first process (None in the others). Under FSDP every
    process holds a shard; all of them take part in gathering the weights."""
    if not trainer.is_fsdp_enabled:
        return trainer.model if trainer.is_world_process_zero() else None
    import torch
    from transformers import AutoModelForCausalLM

    state = trainer.accelerator.get_state_dict(trainer.model)
    if not trainer.is_world_process_zero():
        return None
    model = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch.float32)
    if config.training.method == "lora":
        from peft import get_peft_model

        model = get_peft_model(model, trainer.model.peft_config["default"])
    model.load_state_dict(state)
    return model


def wandb_report_to() -> str:
    """``wandb`` when the workflow's ``wandb`` block asks for logging, with W&B's own variables
    set from it (project, mode, directory, the pipeline's group); else ``none``.

    The workflow hands the block over in ``DISTILLERY_WANDB`` (JSON, with ``dir``), the
    environment of every job, not as a rule parameter: a changed W&B setting must never rerun
    a training job.
    """
    from distillery.settings.workflow import WANDB_ENV

    text = os.environ.get(WANDB_ENV)
    if not text:
        return "none"
    from distillery.log_wandb import check_mode, pipeline_group
    from distillery.settings.base import parse
    from distillery.settings.workflow import Wandb

    block = json.loads(text)
    directory = block.pop("dir", "results")
    settings = parse(Wandb, block, WANDB_ENV)
    if settings.mode == "disabled":
        return "none"
    check_mode(settings)
    group = pipeline_group(settings, directory)
    os.environ.update(WANDB_PROJECT=settings.project, WANDB_MODE=settings.mode)
    if int(os.environ.get("RANK", "0")) == 0:
        import wandb

        # started here with the pipeline's group; the Trainer's callback logs into it
        wandb.init(
            project=settings.project,
            name="train",
            group=group,
            dir=directory,
            mode=settings.mode,
            reinit="finish_previous",
        )
    return "wandb"


def finish_wandb() -> None:
    """Closes the training's W&B run, if this process has one."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def checkpoint_dir(config: Config) -> Path:
    return Path(config.checkpoint_dir or f"{config.output}-checkpoints")


def main(config: Config) -> None:
    check_model_dir(config.model)
    records = read_jsonl(config.data)
    # an empty validation split (too few problems to hold any out) means no eval loss
    eval_records = read_jsonl(config.validation, allow_empty=True) if config.validation else []
    import torch

    torch.set_num_threads(config.threads)
    check_gpus(config)
    model, tokenizer = load_model(config)
    examples, stats = tokenize_records(records, tokenizer, config.training.max_seq_length)
    eval_examples, _ = tokenize_records(eval_records, tokenizer, config.training.max_seq_length)
    logger.info(
        "%d examples (%d tokens, %d with loss); dropped %d empty, %d over %d tokens; %d to "
        "validate on",
        stats.kept,
        stats.tokens,
        stats.loss_tokens,
        stats.dropped_empty,
        stats.dropped_too_long,
        config.training.max_seq_length,
        len(eval_examples),
    )
    if not examples:
        raise DistilleryError(
            f"{config.data}: no example fits in {config.training.max_seq_length} tokens; raise "
            "training.max_seq_length or check the SFT data"
        )
    if config.training.keep_best and not eval_examples:
        raise DistilleryError(f"{config.validation}: no validation example; --keep-best needs some")

    checkpoints = checkpoint_dir(config)
    trainer = build_trainer(config, model, tokenizer, examples, eval_examples)
    if trainer.is_fsdp_enabled:
        logger.info(
            "FSDP2: weights, gradients and optimizer state sharded over %d processes",
            trainer.accelerator.num_processes,
        )
    # one process per GPU: the first decides which checkpoints are this run's, the others
    # wait for it before they look for one to resume
    if trainer.is_world_process_zero():
        _claim_checkpoints(checkpoints, config)
    trainer.accelerator.wait_for_everyone()
    resume = last_checkpoint(checkpoints)
    if resume:
        logger.info("resuming from %s", resume)
    began = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    elapsed = time.time() - began
    finish_wandb()
    # every process has written its part of the last checkpoint before the first removes them
    trainer.accelerator.wait_for_everyone()
    trained = gathered_model(trainer, config)
    if trained is None:
        return  # the first process writes the outputs
    averaged = []
    if config.training.average_last:
        averaged = average_checkpoints(trained, checkpoints, config.training.average_last)
    if config.training.method in ("lora", "qlora"):
        trained.save_pretrained(config.adapter_output)
        tokenizer.save_pretrained(config.adapter_output)
    if config.training.method == "qlora":
        # 4-bit weights cannot take the merge without losing the adapter's precision
        trained = merge(config.model, config.adapter_output, "bfloat16")
    elif config.training.method == "lora":
        trained = trained.merge_and_unload()
    save_model(trained, tokenizer, config.output)
    history = [
        {k: v for k, v in entry.items() if k in ("step", "epoch", "loss", "learning_rate")}
        for entry in trainer.state.log_history
        if "loss" in entry
    ]
    eval_history = [
        {"step": entry["step"], "eval_loss": entry["eval_loss"]}
        for entry in trainer.state.log_history
        if "eval_loss" in entry
    ]
    write_json(
        config.metrics,
        {
            "method": config.training.method,
            "steps": trainer.state.global_step,
            "train_loss": result.training_loss,
            "train_runtime_s": round(elapsed, 2),
            "examples": stats.kept,
            "dropped_empty": stats.dropped_empty,
            "dropped_too_long": stats.dropped_too_long,
            "tokens_per_epoch": stats.tokens,
            "loss_tokens_per_epoch": stats.loss_tokens,
            "packing": config.training.packing,
            "resumed_from": resume,
            "best_checkpoint": trainer.state.best_model_checkpoint
            if config.training.keep_best
            else None,
            "averaged_checkpoints": averaged,
            "loss_history": history,
            "eval_history": eval_history,
        },
    )
    shutil.rmtree(checkpoints, ignore_errors=True)
    logger.info(
        "trained %d steps in %.0fs, final loss %s",
        trainer.state.global_step,
        elapsed,
        history[-1]["loss"] if history else math.nan,
    )


def average_checkpoints(model, directory: Path, count: int) -> list[str]:
    """Replaces the trained weights with the mean of the final ones and those of the last
    ``count - 1`` checkpoints before the end (for LoRA, the adapters are averaged)."""
    import torch
    from safetensors.torch import load_file

    adapters = hasattr(model, "peft_config")
    state = {
        key: value
        for key, value in model.state_dict().items()
        if value.dtype.is_floating_point and (not adapters or "lora_" in key)
    }
    checkpoints = sorted(
        directory.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]), reverse=True
    )
    earlier = []
    for path in checkpoints:
        weights = path / ("adapter_model.safetensors" if adapters else "model.safetensors")
        loaded = load_file(weights)
        if path == checkpoints[0] and _same_weights(state, loaded):
            continue  # a checkpoint of the final step: those weights are counted already
        earlier.append((path, loaded))
        if len(earlier) == count - 1:
            break
    if len(earlier) < count - 1:
        raise DistilleryError(
            f"--average-last {count}: only {len(earlier) + 1} sets of weights to average; lower "
            "save_steps or average fewer"
        )
    # tied weights (the LM head) are saved once; averaging the saved one updates both
    keys = [key for key in state if _lookup(earlier[0][1], key) is not None]
    with torch.no_grad():
        for key in keys:
            total = state[key].detach().float().clone()
            for _, loaded in earlier:
                total += _lookup(loaded, key).float().to(total.device)
            state[key].copy_((total / count).to(state[key].dtype))
    return [str(path) for path, _ in earlier]


def _lookup(weights: dict, key: str):
    """A model's state-dict key in a saved file (peft saves adapters without the adapter name)."""
    bare = key.replace(".default", "")
    for candidate in (key, bare):
        if candidate in weights:
            return weights[candidate]
    return None


def _same_weights(state: dict, loaded: dict) -> bool:
    for key, value in state.items():
        saved = _lookup(loaded, key)
        if saved is not None:
            return _tensors_equal(saved, value)
    return False


def _tensors_equal(saved, value) -> bool:
    return bool((saved.float() == value.detach().float().cpu()).all())


def load_quantized(model_path: str, dtype, attention: str = "sdpa"):
    """The base model in 4-bit NF4 with double quantisation and bf16 compute (QLoRA), frozen.

    The weights left unquantized (embeddings, the LM head, norms) load in ``dtype``. peft's
    ``prepare_model_for_kbit_training`` would cast them to fp32, which guards fp16 training but
    under bf16 only adds casts to every pass; the frozen base of plain LoRA is bf16 too.
    Gradient checkpointing and input gradients are set up by the trainer, as for LoRA.
    """
    import importlib.util

    import torch

    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        raise DistilleryError(
            "method qlora needs a CUDA GPU and bitsandbytes (pip install bitsandbytes); use "
            "method lora on this machine"
        )
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        model_path, quantization_config=quantization, dtype=dtype, attn_implementation=attention
    )
    model.requires_grad_(False)
    return model


def _claim_checkpoints(directory: Path, config: Config) -> None:
    """Checkpoints left by a run with other settings or data cannot be resumed: remove them."""
    data = Path(config.data).stat()
    key = fingerprint(
        {k: v for k, v in cli.resolved(config).items() if k != "threads"},
        data.st_size,
        data.st_mtime_ns,
    )
    stamp = directory / "distillery-run.json"
    # the Trainer creates its output directory: an empty one holds nothing to resume
    left = directory.is_dir() and any(directory.iterdir())
    if left and (not stamp.is_file() or stamp.read_text() != key):
        logger.warning("%s: checkpoints of a different run; starting afresh", directory)
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key)


if __name__ == "__main__":
    cli.run(main, Config)

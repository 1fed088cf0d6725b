"""The training block in TRL's terms: one pure function from our settings (and what the
machine decides) to the keyword arguments of TRL's ``SFTConfig``."""

from __future__ import annotations

from dataclasses import dataclass

from distillery.errors import DistilleryError


@dataclass(frozen=True)
class Runtime:
    """What the job decides at run time, not the config: where checkpoints go, whether there
    is a validation split, the device's capabilities and the chosen precision and kernels."""

    output_dir: str
    evaluate: bool = False
    cuda: bool = False
    tf32: bool = False
    bf16: bool = False
    liger: bool = False
    report_to: str = "none"
    # under FSDP, its own activation checkpointing (the Trainer's would all-gather twice)
    fsdp: dict | None = None


def sft_arguments(training, runtime: Runtime, fields: frozenset[str] | None = None) -> dict:
    """``SFTConfig``'s arguments for a training block. ``warmup_ratio`` goes to TRL's
    ``warmup_steps``, which in transformers 5 takes a ratio when below 1; ``trl_args`` win over
    everything, after each key is checked against ``fields`` (SFTConfig's, when given).

    Example:
        >>> from distillery.settings.training import TrainingSettings
        >>> args = sft_arguments(TrainingSettings(method="lora", warmup_ratio=0.05), Runtime("o"))
        >>> args["warmup_steps"], args["lr_scheduler_type"], args["eval_strategy"]
        (0.05, 'cosine', 'no')
    """
    t = training
    evaluate = runtime.evaluate
    args = {
        "output_dir": runtime.output_dir,
        "per_device_train_batch_size": t.micro_batch_size,
        "per_device_eval_batch_size": t.micro_batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler,
        "warmup_steps": t.warmup_ratio,
        "weight_decay": t.weight_decay,
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps,
        "max_length": t.max_seq_length,
        "packing": t.packing,
        "packing_strategy": "bfd",
        "completion_only_loss": True,
        "logging_steps": t.logging_steps or (10 if runtime.cuda else 1),
        "save_strategy": "steps",
        "save_steps": t.save_steps,
        "save_total_limit": max(2, t.average_last),
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": t.save_steps if evaluate else None,
        "load_best_model_at_end": t.keep_best,
        "metric_for_best_model": "eval_loss" if t.keep_best else None,
        "greater_is_better": False if t.keep_best else None,
        "report_to": runtime.report_to,
        "run_name": "train",
        "seed": t.seed,
        "use_cpu": not runtime.cuda,
        "bf16": runtime.bf16,
        "tf32": runtime.tf32,
        "optim": "adamw_torch_fused" if runtime.cuda else "adamw_torch",
        "use_liger_kernel": runtime.liger,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "gradient_checkpointing": t.gradient_checkpointing and not t.fsdp,
        "torch_compile": t.compile,
        **(runtime.fsdp or {}),
    }
    unknown = sorted(set(t.trl_args) - fields) if fields is not None else []
    if unknown:
        raise DistilleryError(
            f"training.trl_args: {', '.join(unknown)} is not a field of TRL's SFTConfig; fix the "
            "name (see transformers' TrainingArguments and TRL's SFTConfig)"
        )
    return {**args, **t.trl_args}


def sft_config_fields() -> frozenset[str]:
    """The field names of TRL's ``SFTConfig``."""
    import dataclasses

    from trl import SFTConfig

    return frozenset(f.name for f in dataclasses.fields(SFTConfig))

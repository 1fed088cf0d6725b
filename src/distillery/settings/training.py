"""The training block (defaults: those of distillery.train_sft)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from distillery.settings.base import Block, Name, conflicts


class Lora(Block):
    """LoRA settings (method lora)"""

    r: int = Field(16, ge=1, description="adapter rank")
    alpha: float = Field(32.0, gt=0, description="adapter scaling alpha")
    dropout: float = Field(0.05, ge=0, le=1, description="dropout on the adapter input")
    target_modules: list[str] = Field(
        ["all-linear"], min_length=1, description="module names to adapt, or [all-linear]"
    )
    use_rslora: bool = Field(False, description="rank-stabilised scaling alpha/sqrt(r)")


class TrainingSettings(Block):
    """What ``distillery.train_sft`` (and ``train_nemo_rl``) take from the ``training`` block:
    how to train (the model, nodes and backend are the rule's business)."""

    method: Literal["full", "lora", "qlora"] = Field(
        description="full = every weight; lora = low-rank adapters, merged into the output "
        "model; qlora = lora on a 4-bit NF4 base (CUDA and bitsandbytes), merged into the bf16 "
        "base"
    )
    gpus: int = Field(
        0,
        ge=0,
        description="GPUs to train on (per node); more than one runs one process per GPU "
        "through torchrun (distillery.launch)",
    )
    fsdp: bool = Field(
        False,
        description="several processes shard the weights, gradients and optimizer state "
        "(FSDP2, CUDA) instead of each holding a copy (data parallel, the default); not with "
        "qlora or average_last",
    )
    gradient_checkpointing: bool = Field(
        False,
        description="recompute activations in the backward pass (less memory, about 20% slower)",
    )
    packing: bool = Field(
        True,
        description="pack samples padding-free into max_seq_length tokens (no attention across "
        "samples); default true",
    )
    attn_implementation: Literal[
        "auto", "flash_attention_2", "torch_varlen", "sdpa", "flex_attention", "eager"
    ] = Field(
        "auto",
        description="auto = flash_attention_2 where flash-attn is installed, else (packed, GPU) "
        "torch_varlen: PyTorch's FlashAttention varlen kernel (torch >= 2.10), else "
        "flex_attention; sdpa on CPUs",
    )
    liger: bool = Field(
        True,
        description="Liger's RMSNorm, SwiGLU and RoPE kernels (CUDA; needs liger-kernel); "
        "default true",
    )
    compile: bool = Field(
        False,
        description="torch.compile the model (GPUs; minutes of compilation first; slower than "
        "without on an H100 with Liger, see docs/training.md)",
    )
    keep_best: bool = Field(
        False, description="the output is the checkpoint with the lowest eval loss, not the last"
    )
    average_last: int = Field(
        0,
        ge=0,
        description="average the weights of the last K checkpoints into the output (the "
        "model-averaged model); 0 = off",
    )
    lora: Lora = Lora()
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field(
        "cosine", description="learning-rate schedule (transformers name)"
    )
    warmup_ratio: float = Field(0.1, ge=0, le=0.99, description="share of steps spent warming up")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    epochs: float = Field(1.0, gt=0, description="passes over the data")
    max_steps: int = Field(-1, description="optimizer steps; overrides epochs when > 0")
    micro_batch_size: int = Field(
        1,
        ge=1,
        description="rows per forward pass: packed rows of max_seq_length tokens (packing), "
        "else samples",
    )
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="micro-batches per optimizer step"
    )
    max_seq_length: int = Field(
        2048, ge=8, description="samples longer than this many tokens are dropped"
    )
    save_steps: int = Field(
        50, ge=1, description="checkpoint every N steps (a killed run resumes from the last)"
    )
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto",
        description="bf16 mixed precision or fp32; auto = bf16 where the hardware computes it "
        "natively (GPUs that support it, CPUs with AVX512-BF16 or AMX), else fp32",
    )
    param_dtype: Literal["auto", "bf16", "fp32"] = Field(
        "auto",
        description="dtype the model is held in under bf16: bf16 = fp32 master weights and "
        "gradient sums in the optimizer, no per-pass weight casts (about 12% faster at 1.5B on "
        "an H100); auto = bf16 for one-process CUDA training",
    )
    # unset = chosen by the device (train_sft's 0)
    logging_steps: int | None = Field(
        None,
        ge=1,
        description="log loss, gradient norm and token accuracy every N steps (each log waits "
        "for the GPU: every step costs 8% at 0.5B on an H100); default 10 on GPUs, 1 on CPUs",
    )
    seed: int = Field(0, description="training seed")
    trl_args: dict[str, Any] = Field(
        {},
        description="fields of TRL's SFTConfig (transformers' TrainingArguments) set as they are, "
        "for what this block does not model; they win over this block's own, e.g. "
        "{max_grad_norm: 0.5, adam_beta2: 0.95}",
    )

    def conflicts(self) -> list[tuple[str, str]]:
        """Settings of this block that exclude each other: ``(key, what to do)``."""
        found = []
        if self.fsdp and self.method == "qlora":
            found.append((
                "fsdp", "FSDP does not shard qlora's 4-bit base; set fsdp: false (data parallel) "
                "or method: lora",
            ))  # fmt: skip
        if self.fsdp and self.average_last:
            found.append((
                "fsdp", "FSDP saves sharded checkpoints, which average_last cannot read; set "
                "average_last: 0 or fsdp: false",
            ))  # fmt: skip
        if self.fsdp and self.param_dtype == "bf16":
            found.append((
                "param_dtype", "FSDP keeps fp32 weight shards and gathers them in bf16 for each "
                "pass; leave param_dtype at auto",
            ))  # fmt: skip
        if self.param_dtype == "bf16" and self.precision == "fp32":
            found.append(("param_dtype", "bf16 needs precision bf16 or auto"))
        if self.average_last == 1:
            found.append(("average_last", "must be 0 (off) or at least 2"))
        if self.average_last and self.keep_best:
            found.append(("average_last", "average_last and keep_best exclude each other"))
        return found

    @model_validator(mode="after")
    def _compatible(self) -> TrainingSettings:
        found = self.conflicts()
        if found:
            raise conflicts(found)
        return self


class Training(TrainingSettings):
    """supervised fine-tuning of the student"""

    model: Name = Field(description="the student's base model (a key of `models`)")
    nodes: int = Field(
        1,
        ge=1,
        description="nodes to train on (default 1); more than one runs under Slurm only: one "
        "job of this many nodes, srun starts torchrun on each",
    )
    backend: Literal["trl", "nemo_rl"] = Field(
        "trl",
        description="trl = TRL's SFTTrainer in this workflow's environment; nemo_rl = NeMo-RL's "
        "SFT (examples/run_sft.py) in containers.nemo_rl, converted back to HF",
    )
    evaluate: bool = Field(
        True, description="eval loss on the SFT validation split every save_steps (default true)"
    )

    def conflicts(self) -> list[tuple[str, str]]:
        found = []
        if self.backend == "nemo_rl" and self.method == "qlora":
            found.append(
                ("method", "qlora runs with backend trl only; use full or lora with nemo_rl")
            )
        if self.backend == "nemo_rl" and self.trl_args:
            found.append(
                ("trl_args", "TRL's arguments do nothing with backend nemo_rl; remove them")
            )
        if self.backend == "nemo_rl" and self.nodes > 1:
            found.append((
                "nodes", "several nodes run with backend trl only (NeMo-RL's own cluster launch "
                "is not wired); set nodes: 1 or backend: trl",
            ))  # fmt: skip
        return [*found, *super().conflicts()]

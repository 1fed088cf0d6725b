"""The whole workflow config (config/config.yaml, a recipe, a scenario)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from distillery.grading import DEFAULT_EXTRACT_REGEX
from distillery.settings.base import Block, Name
from distillery.settings.data import Benchmark, RawData, SftData
from distillery.settings.generation import Evaluation, ProblemExtraction, Serving, Solutions
from distillery.settings.model_entries import ModelEntry
from distillery.settings.training import Training


class Wandb(Block):
    """Weights & Biases logging of each evaluation run (metrics and sampled generations)"""

    mode: Literal["offline", "online", "disabled"] = Field(
        "disabled",
        description="offline = written under results/wandb, upload later with `wandb sync`; "
        "online needs WANDB_API_KEY; disabled = no logging",
    )
    project: str = Field("distillery", description="W&B project")
    group: str | None = Field(None, description="W&B group of the runs")
    num_samples: int = Field(50, ge=0, description="sampled generations per run in the W&B table")


class Grading(Block):
    """how answers are extracted and compared"""

    extract_regex: str = Field(
        DEFAULT_EXTRACT_REGEX,
        description="fallback answer regex when there is no \\boxed{} (its first group is the "
        "answer)",
    )
    timeout: int = Field(10, ge=1, description="seconds math-verify may spend on one answer")


class Containers(Block):
    """container image per rule family, used with --software-deployment-method apptainer (e.g.
    docker://nvcr.io/nvidia/tensorrt-llm/release:1.0.0); a family without one runs in the job's
    own environment"""

    # the images distillery.workflow.DEFAULT_CONTAINERS names (a test keeps them equal)
    core: str = Field(
        "docker://pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime",
        description="data preparation, grading, reports",
    )
    train: str = Field(
        "docker://pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime",
        description="training, LoRA merge, GGUF conversion, the hf generation backend",
    )
    vllm: str = Field(
        "docker://vllm/vllm-openai:v0.11.0", description="generation stages served by vLLM"
    )
    sglang: str = Field(
        "docker://lmsysorg/sglang:v0.5.4", description="generation stages served by SGLang"
    )
    trtllm: str = Field(
        "docker://nvcr.io/nvidia/tensorrt-llm/release:1.0.0",
        description="generation stages served by TensorRT-LLM, and engine builds",
    )
    nemo: str = Field(
        "docker://nvcr.io/nvidia/nemo:25.07", description="NeMo / NeMo-RL checkpoint conversion"
    )
    nemo_rl: str = Field(
        "docker://nvcr.io/nvidia/nemo-rl:v0.7.0", description="training with backend nemo_rl"
    )


class WorkflowConfig(Block):
    """distillery workflow config (config/config.yaml, config/recipes/*.yaml)"""

    models: dict[Name, ModelEntry] = Field(
        min_length=1, description="models by name; stages refer to them by name"
    )
    raw_data: RawData
    benchmarks: dict[Name, Benchmark] = Field(
        min_length=1,
        description="benchmark definitions by name; evaluation.benchmarks picks which to run",
    )
    # needed when solutions are generated: config_check says so, the schema cannot
    problem_extraction: ProblemExtraction | None = None
    solutions: Solutions
    sft_data: SftData
    training: Training
    evaluation: Evaluation
    wandb: Wandb = Wandb()
    grading: Grading = Grading()
    containers: Containers = Containers()
    # unset = the evaluation's server when the job starts one, else vLLM
    serving: Serving | None = None

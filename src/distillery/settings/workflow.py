"""The whole workflow config (config/config.yaml, a recipe, a scenario)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, create_model

from distillery.generation import backends
from distillery.grading.answers import DEFAULT_EXTRACT_REGEX, LETTER_EXTRACTIONS
from distillery.settings.base import Block, Name
from distillery.settings.data import Benchmark, RawData, SftData
from distillery.settings.evaluation import Evaluation
from distillery.settings.generation import ProblemExtraction, Serving, Solutions
from distillery.settings.model_entries import ModelEntry
from distillery.settings.processing import AnswerJudge, ProblemProcessing, SummaryRewrite
from distillery.settings.training import Training

# where the workflow puts the wandb block for training, which reads it from the environment
WANDB_ENV = "DISTILLERY_WANDB"


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

    extract_from_boxed: bool = Field(
        True, description="the answer is the content of the last \\boxed{}"
    )
    regex_fallback: bool = Field(
        False,
        description="deviation from NeMo-Skills' math evaluator, which reads the box alone: "
        "without a \\boxed{} (or with an empty one), take the extract_regex match (multiple "
        "choice always does, as NeMo-Skills' multichoice evaluator)",
    )
    extract_regex: str = Field(
        DEFAULT_EXTRACT_REGEX,
        description="answer regex when there is no \\boxed{} (its first group is the answer): "
        "multiple choice, and math with regex_fallback",
    )
    letter_extraction: Literal[LETTER_EXTRACTIONS] = Field(  # type: ignore[valid-type]
        "nemo-skills",
        description="multiple-choice letters: nemo-skills = the boxed (or regex) answer, then "
        "the last 'Answer: X'; lenient (deviation) = an option named outright anywhere wins, "
        "parentheses allowed ('Answer: (C)', 'the answer is (D)'); docs/parity.md",
    )
    timeout: int = Field(10, ge=1, description="seconds math-verify may spend on one answer")


_IMAGE = "docker://pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime"


def _containers() -> type[Block]:
    """One image per rule family: the workflow's own families, and each server backend's
    (its default image declared with the backend)."""
    servers = {
        b.family: (
            str,
            Field(b.container, description=f"stages with server type {b.name}"),
        )
        for b in backends.BACKENDS.values()
        if b.container
    }
    return create_model(
        "Containers",
        __base__=Block,
        __module__=__name__,
        __doc__="container image per rule family, used with --software-deployment-method "
        "apptainer (each family has a default image, below; docs/cluster.md says how to extend "
        "them); TensorRT-LLM engine builds run in the trtllm image",
        core=(str, Field(_IMAGE, description="data preparation, grading, reports")),
        train=(
            str,
            Field(
                _IMAGE,
                description="training, LoRA merge, GGUF conversion, the hf generation backend",
            ),
        ),
        **servers,
        nemo=(
            str,
            Field(
                "docker://nvcr.io/nvidia/nemo:25.07",
                description="NeMo / NeMo-RL checkpoint conversion",
            ),
        ),
        nemo_rl=(
            str,
            Field(
                "docker://nvcr.io/nvidia/nemo-rl:v0.7.0",
                description="training with backend nemo_rl",
            ),
        ),
    )


Containers = _containers()


class WorkflowConfig(Block):
    """distillery workflow config (config/config.yaml, config/recipes/*.yaml)"""

    models: dict[Name, ModelEntry] = Field(
        min_length=1, description="models by name; stages refer to them by name"
    )
    raw_data: RawData
    benchmarks: dict[Name, Benchmark] = Field(
        {},
        description="benchmarks by name and where their problems come from; evaluation."
        "benchmarks picks which to run (a definition or group named only there is used as its "
        "definition says)",
    )
    # needed when solutions are generated: config_check says so, the schema cannot
    problem_extraction: ProblemExtraction | None = None
    problem_processing: ProblemProcessing | None = None
    solutions: Solutions
    solution_summaries: SummaryRewrite | None = None
    solution_judge: AnswerJudge | None = None
    sft_data: SftData
    training: Training
    evaluation: Evaluation
    wandb: Wandb = Wandb()
    grading: Grading = Grading()
    containers: Containers = Containers()  # type: ignore[valid-type]
    # unset = the evaluation's server when the job starts one, else vLLM
    serving: Serving | None = None

    def benchmark_source(self, bench: str) -> str:
        """The definition behind ``benchmarks.<bench>``: its ``source``, by default the
        benchmark's own name."""
        return self.benchmarks[bench].source or bench

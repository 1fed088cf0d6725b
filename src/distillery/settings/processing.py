"""The LLM processing steps of the full OpenMathReasoning pipeline: on the problem side
classification, answer extraction, proof conversion and the contamination check; on the
solution side and in evaluation, the answer judge. Each is a generation stage (any backend,
chunks, resumable) with its prompt; each is switched on by being in the config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distillery.settings.base import Block, conflict
from distillery.settings.generation import CHUNKS, Generation, Inference, Server

CLASSES = ("proof", "multiple_choice", "binary", "invalid")
# the default prompt of each step with one
BLOCK_PROMPTS = {
    "extract_answer": "prompts/extract-answer.yaml",
    "convert_proofs": "prompts/convert-proof.yaml",
    "check_contamination": "prompts/check-contamination.yaml",
    "rewrite_summaries": "prompts/summarize-solution.yaml",
    "judge_solutions": "prompts/judge-answer.yaml",
    "judge_eval": "prompts/judge-answer.yaml",
}
GREEDY = Inference(temperature=0.0, max_tokens=1024)


class Step(Generation):
    """An LLM processing step: its model server, sampling and prompt."""

    server: Server
    inference: Inference = GREEDY
    chunks: int = Field(1, ge=1, description=CHUNKS)

    @model_validator(mode="after")
    def _whole_input(self) -> Step:
        # a step answers every request it selects, with its prompt file's messages
        if self.system is not None:
            raise conflict("system", "a processing step's system prompt goes in its prompt file")
        if self.max_samples != -1:
            raise conflict("max_samples", "a processing step answers all its rows")
        return self


class Classification(Step):
    """classify each extracted problem with one yes/no classifier per class, and drop or route
    it by class (NeMo-Skills' four classifiers)"""

    prompts: dict[Literal[CLASSES], str] = Field(  # type: ignore[valid-type]
        {c: f"prompts/classify-{c.replace('multiple_choice', 'mcq')}.yaml" for c in CLASSES},
        description="prompt config file of each class's classifier (answers yes or no); a class "
        "left out is not asked about",
    )
    actions: dict[Literal[CLASSES], Literal["keep", "drop", "convert"]] = Field(  # type: ignore[valid-type]
        {"proof": "convert", "multiple_choice": "drop", "binary": "drop", "invalid": "drop"},
        description="what happens to a problem of each class: keep, drop, or convert (proofs: "
        "rewritten by convert_proofs); a problem in several classes takes the first in the "
        "order proof, multiple_choice, binary, invalid",
    )
    inference: Inference = Inference(temperature=0.0, max_tokens=16)


class AnswerExtraction(Step):
    """find the final answer of each problem in its forum discussion (expected_answer, with
    expected_answer_source: forum)"""

    prompt: str = Field(BLOCK_PROMPTS["extract_answer"], description="prompt config file")


class ProofConversion(Step):
    """rewrite the problems classified as proofs into problems with one checkable answer"""

    prompt: str = Field(BLOCK_PROMPTS["convert_proofs"], description="prompt config file")


class ContaminationCheck(Step):
    """retrieve the benchmark problems nearest to each problem (shared word n-grams, and an
    encoder when given), ask the model whether each pair is the same problem, drop the
    contaminated"""

    prompt: str = Field(BLOCK_PROMPTS["check_contamination"], description="prompt config file")
    benchmarks: list[str] | None = Field(
        None,
        description="benchmarks (keys of `benchmarks`) to check against; default those in "
        "evaluation.benchmarks",
    )
    ngram: int = Field(
        6, ge=1, description="words per n-gram; a benchmark problem sharing one is a candidate"
    )
    top_k: int = Field(1, ge=1, description="candidates checked per problem, nearest first")
    embedding_model: str | None = Field(
        None, description="optional encoder directory: its nearest problems are candidates too"
    )
    inference: Inference = Inference(temperature=0.0, max_tokens=16)


class ProblemProcessing(Block):
    """the LLM steps between problem extraction and solution generation (NeMo-Skills' full
    OpenMathReasoning recipe); each runs when its block is present, in this order"""

    classify: Classification | None = None
    extract_answer: AnswerExtraction | None = None
    convert_proofs: ProofConversion | None = None
    check_contamination: ContaminationCheck | None = None

    @model_validator(mode="after")
    def _conversion_needs_its_step(self) -> ProblemProcessing:
        converts = self.classify is not None and "convert" in self.classify.actions.values()
        if converts and self.convert_proofs is None:
            raise conflict(
                "classify.actions",
                "a class routed to convert needs the convert_proofs step; add it, or drop or keep "
                "that class",
            )
        return self


class SummaryRewrite(Step):
    """rewrite the summary a reasoning model writes after its reasoning (after
    `reasoning_end`) into a clean write-up of the solution, from the reasoning alone; a
    rewrite whose final answer differs from the original's is not used"""

    prompt: str = Field(BLOCK_PROMPTS["rewrite_summaries"], description="prompt config file")
    inference: Inference = Inference(temperature=0.7, top_p=0.95, max_tokens=2048)


class AnswerJudge(Step):
    """an LLM judges each final answer against the expected one (`judgement`, NeMo-Skills'
    format: the last line is "Judgement: Yes" or "Judgement: No")"""

    prompt: str = Field(BLOCK_PROMPTS["judge_solutions"], description="prompt config file")


class EvaluationJudge(AnswerJudge):
    """judge the evaluation answers of some benchmarks (judge_correct, both_correct and
    any_correct beside symbolic_correct); the judged run's model is `server.model`"""

    benchmarks: list[str] | None = Field(
        None,
        description="benchmarks to judge (keys of evaluation.benchmarks); default those whose "
        "definition asks for a judge (omni-math)",
    )


# each distillery.process step and its block's model
STEP_MODELS: dict[str, type[Step]] = {
    "classify": Classification,
    "extract_answer": AnswerExtraction,
    "convert_proofs": ProofConversion,
    "check_contamination": ContaminationCheck,
    "rewrite_summaries": SummaryRewrite,
    "judge_solutions": AnswerJudge,
    "judge_eval": EvaluationJudge,
}

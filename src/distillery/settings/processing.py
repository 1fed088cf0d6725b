"""The LLM processing steps of the full OpenMathReasoning pipeline: on the problem side
classification, answer extraction, proof conversion and the contamination check; on the
solution side and in evaluation, the answer judge. Each is a generation stage (any backend,
chunks, resumable) with its prompt; each is switched on by being in the config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distillery.processing.parsers import PARSES
from distillery.settings.base import Block, conflict
from distillery.settings.generation import CHUNKS, Generation, Inference, Server

# the problem-side steps (problem_processing.<step>), in the order they run
PROBLEM_STEPS = ("classify", "extract_answer", "convert_proofs", "check_contamination")
CLASSES = ("proof", "multiple_choice", "binary", "invalid")
# the label each class's classifier answers with (or "not <label>"): NeMo-Skills' modes
CLASS_LABELS = {
    "proof": "proof",
    "multiple_choice": "mcq",
    "binary": "binary",
    "invalid": "invalid",
}
# NeMo-Skills' OpenMathReasoning recipe checks its problems against these benchmarks
# (recipes/openmathreasoning/configs/problem_sdg/qwen-instruct.yaml, decontamination_datasets)
DECONTAMINATION_BENCHMARKS = (
    "math", "aime24", "aime25", "amc23", "college_math", "gaokao2023en", "gsm8k",
    "minerva_math", "olympiadbench", "omni-math",
)  # fmt: skip
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


class ParsedStep(Step):
    """A step whose outputs are read back by a parser."""

    parse: Literal[PARSES] = Field(  # type: ignore[valid-type]
        "nemo-skills",
        description="how the model's outputs are read: nemo-skills = exactly as NeMo-Skills' "
        "recipe reads them; lenient (deviation) = also chattier forms (case, markdown, a verdict "
        "after some text); docs/parity.md",
    )


class Classification(ParsedStep):
    """classify each extracted problem with one classifier per class, and drop or route it by
    class (NeMo-Skills' four classifiers: the answer starts with the class's label, proof, mcq,
    binary or invalid, or with "not <label>")"""

    prompts: dict[Literal[CLASSES], str] = Field(  # type: ignore[valid-type]
        {c: f"prompts/classify-{CLASS_LABELS[c]}.yaml" for c in CLASSES},
        description="prompt config file of each class's classifier (answers with the label or "
        "'not <label>'); a class left out is not asked about",
    )
    actions: dict[Literal[CLASSES], Literal["keep", "drop", "convert"]] = Field(  # type: ignore[valid-type]
        {"proof": "convert", "multiple_choice": "drop", "binary": "drop", "invalid": "drop"},
        description="what happens to a problem of each class: keep, drop, or convert (proofs: "
        "rewritten by convert_proofs); a problem in several classes takes the first in the "
        "order proof, multiple_choice, binary, invalid",
    )
    inference: Inference = Inference(temperature=0.0, max_tokens=16)


class AnswerExtraction(ParsedStep):
    """find the final answer of each problem in its forum discussion (expected_answer, with
    expected_answer_source: forum)"""

    prompt: str = Field(BLOCK_PROMPTS["extract_answer"], description="prompt config file")


class ProofConversion(ParsedStep):
    """rewrite the problems classified as proofs into problems with one checkable answer"""

    prompt: str = Field(BLOCK_PROMPTS["convert_proofs"], description="prompt config file")


class ContaminationCheck(ParsedStep):
    """retrieve the benchmark problems nearest to each problem, ask the model whether each pair
    is the same problem, drop the contaminated (NeMo-Skills: the nearest by embedding, always
    asked; an identical text is contaminated without asking)"""

    prompt: str = Field(BLOCK_PROMPTS["check_contamination"], description="prompt config file")
    benchmarks: list[str] = Field(
        list(DECONTAMINATION_BENCHMARKS),
        description="benchmarks (definitions, groups or keys of `benchmarks`) to check against; "
        "default NeMo-Skills' recipe's ten",
    )
    retrieval: Literal["embedding", "ngram"] = Field(
        "embedding",
        description="how candidates are found: embedding = the top_k nearest benchmark problems "
        "by cosine of embedding_model's mean-pooled embeddings, each asked about (NeMo-Skills); "
        "ngram (deviation) = only benchmark problems sharing a word n-gram, most shared first",
    )
    embedding_model: str | None = Field(
        None,
        description="the encoder for retrieval: embedding, a key of `models` or a directory "
        "(NeMo-Skills uses sentence-transformers/multi-qa-MiniLM-L6-cos-v1); with retrieval: "
        "ngram, optional (its nearest problem is a candidate too)",
    )
    ngram: int = Field(6, ge=1, description="retrieval: ngram: words per n-gram a candidate shares")
    top_k: int = Field(1, ge=1, description="candidates checked per problem, nearest first")
    inference: Inference = Inference(temperature=0.0, max_tokens=16)

    @model_validator(mode="after")
    def _retrieval_needs_an_encoder(self) -> ContaminationCheck:
        if self.retrieval == "embedding" and self.embedding_model is None:
            raise conflict(
                "embedding_model",
                "retrieval: embedding needs an encoder: add one under `models` (NeMo-Skills "
                "uses sentence-transformers/multi-qa-MiniLM-L6-cos-v1, source: hf) and name it "
                "here, or set retrieval: ngram",
            )
        return self


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
    `reasoning_end`): `samples` rewrites of each solution, the longest valid one replaces the
    summary (valid: its answer is the solution's, as a string, or both are correct); a
    solution with no valid rewrite is dropped from the SFT data (NeMo-Skills'
    merge_new_summary)"""

    prompt: str = Field(BLOCK_PROMPTS["rewrite_summaries"], description="prompt config file")
    inference: Inference = Inference(temperature=0.7, top_p=0.95, max_tokens=2048)
    samples: int = Field(4, ge=1, description="rewrites sampled per solution (one seed each)")
    keep_unrewritten: bool = Field(
        False,
        description="deviation: a solution with no valid rewrite keeps its own summary instead "
        "of being dropped from the SFT data",
    )


class AnswerJudge(ParsedStep):
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

"""The LLM processing steps' blocks in the config, built from the step registry
(``distillery.processing.steps``): ``problem_processing`` has one optional block per problem
step, in the order they run; the solution and evaluation steps are named by the workflow
config."""

from __future__ import annotations

from pydantic import create_model, model_validator

from distillery.processing.steps import PROBLEM_STEPS, STEPS
from distillery.processing.steps.check_contamination import DECONTAMINATION_BENCHMARKS
from distillery.processing.steps.judge import AnswerJudge, EvaluationJudge
from distillery.processing.steps.rewrite_summaries import SummaryRewrite
from distillery.settings.base import Block, conflict
from distillery.settings.steps import Step

__all__ = [
    "DECONTAMINATION_BENCHMARKS",
    "PROBLEM_STEPS",
    "STEP_MODELS",
    "AnswerJudge",
    "EvaluationJudge",
    "ProblemProcessing",
    "SummaryRewrite",
]

# each distillery.process step and its block's model
STEP_MODELS: dict[str, type[Step]] = {name: step.settings for name, step in STEPS.items()}


class _ProblemSteps(Block):
    """the LLM steps between problem extraction and solution generation (NeMo-Skills' full
    OpenMathReasoning recipe); each runs when its block is present, in this order"""

    @model_validator(mode="after")
    def _conversion_needs_its_step(self):
        classify = getattr(self, "classify", None)
        converts = classify is not None and "convert" in classify.actions.values()
        if converts and getattr(self, "convert_proofs", None) is None:
            raise conflict(
                "classify.actions",
                "a class routed to convert needs the convert_proofs step; add it, or drop or keep "
                "that class",
            )
        return self


ProblemProcessing = create_model(
    "ProblemProcessing",
    __base__=_ProblemSteps,
    __doc__=_ProblemSteps.__doc__,
    **{name: (STEP_MODELS[name] | None, None) for name in PROBLEM_STEPS},
)

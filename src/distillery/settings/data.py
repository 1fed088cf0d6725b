"""The data blocks: raw_data, the benchmarks, and sft_data."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, create_model, model_validator

from distillery.grading.modes import NAMES as GRADING_MODES
from distillery.grading.modes import describe
from distillery.settings.base import Block, conflict, missing_keys


class RawData(Block):
    """the raw forum posts the pipeline starts from"""

    source: Literal["demo", "aops", "nemotron"] = Field(
        description="demo = generated forum posts whose problems have known answers; aops = "
        "AoPS-Instruct threads (the OpenMathReasoning recipe's raw data); nemotron = "
        "Llama-Nemotron post-training data (problems with solutions: set solutions.source to "
        "raw_data)"
    )
    path: str | None = Field(
        None,
        description="aops: a local JSONL/CSV/parquet file; nemotron: a directory of "
        "<subset>.jsonl files; instead of the hub",
    )
    num_posts: int = Field(24, ge=1, description="demo, aops: number of posts (the first N)")
    max_tokens: int = Field(
        24000,
        ge=1,
        description="aops: token budget of a thread's discussion (NeMo-Skills: 24000)",
    )
    tokenizer: str | None = Field(
        None,
        description="aops: a key of `models` whose tokenizer counts those tokens (default: words)",
    )
    subsets: dict[str, Annotated[int, Field(ge=1)]] = Field(
        {},
        description="nemotron: subset name -> rows to take, e.g. {math: 50000, code: 20000, "
        "science: 5000}",
    )
    seed: int = Field(0, description="generator seed")
    unlabeled_share: float = Field(
        0.25,
        ge=0,
        le=1,
        description="demo: share of posts whose answer is withheld (labelled by majority vote "
        "later)",
    )
    chatter_share: float = Field(
        0.1, ge=0, le=1, description="demo: share of posts that ask no math problem"
    )

    @model_validator(mode="after")
    def _nemotron_needs_subsets(self) -> RawData:
        if self.source == "nemotron" and not self.subsets:
            raise conflict("subsets", "source nemotron needs subsets, e.g. {math: 50000}")
        return self


class Benchmark(Block):
    """a benchmark: which definition, and where its problems come from"""

    source: str | None = Field(
        None,
        description="the benchmark definition: a file of src/distillery/benchmarks/definitions "
        "(aime24, math-500, gpqa-diamond, ...); default the benchmark's own name",
    )
    path: str | None = Field(
        None,
        description="a local JSONL, CSV or parquet file instead of the hub (same columns as the "
        "hub's, or id/problem/expected_answer)",
    )
    max_samples: int = Field(-1, description="only the first N problems (quick runs); -1 = all")
    prompt: str | None = Field(
        None,
        description="evaluation prompt for this benchmark (default the definition's, else "
        "evaluation.prompt)",
    )
    size: int = Field(20, ge=1, description="demo: number of problems")
    seed: int = Field(1, description="demo: generator seed")
    grading: Literal[GRADING_MODES] | None = Field(  # type: ignore[valid-type]
        None, description=f"how answers are graded (default the definition's): {describe()}"
    )
    drop_empty_answers: bool = Field(
        False,
        description="deviation: drop the rows whose answer is empty (gaokao2023en: 2 of 385), "
        "which NeMo-Skills keeps and counts as wrong; docs/parity.md",
    )
    keep_option_order: bool = Field(
        False,
        description="deviation, SuperGPQA: keep the dataset's option order, where NeMo-Skills "
        "shuffles the options (Python's random, seed 42, one shuffle per row); docs/parity.md",
    )


def _filters() -> type[Block]:
    """The ``filters`` block: the keys of every filter step (``distillery.sft_data.filters``, in
    the order they run), and the length limit applied to the formatted records."""
    from distillery.sft_data.filters import STEPS

    fields = {
        name: (info.annotation, info)
        for step in STEPS
        if step.settings is not None
        for name, info in step.settings.model_fields.items()
    }
    return create_model(
        "Filters",
        __base__=Block,
        __module__=__name__,
        __doc__="NeMo-Skills' SFT filters, applied in this order after correctness selection "
        "and deduplication",
        **fields,
        max_seq_length=(
            int | None,
            Field(
                None,
                ge=1,
                description="drop records whose prompt plus answer exceed this many student tokens",
            ),
        ),
    )


Filters = _filters()


class Contamination(Block):
    """how remove_contaminated decides"""

    benchmarks: list[str] | None = Field(
        None,
        description="benchmarks (keys of `benchmarks`) to check against; default those in "
        "evaluation.benchmarks",
    )
    ngram: int = Field(13, ge=1, description="words per n-gram; a shared n-gram flags the problem")
    embedding_model: str | None = Field(
        None, description="optional encoder directory for an embedding-similarity pass"
    )
    embedding_threshold: float = Field(
        0.9, ge=0, le=1, description="cosine similarity that counts as contaminated"
    )


class Downsampling(Block):
    """how many solutions per problem to keep"""

    method: Literal["random", "fair"] | None = Field(
        None, description="random = uniform; fair = round robin over problems (NeMo-Skills)"
    )
    max_per_problem: int | None = Field(None, ge=1, description="most solutions kept per problem")
    num_output_samples: int | None = Field(None, ge=1, description="total records wanted")

    @model_validator(mode="after")
    def _fair_needs_a_total(self) -> Downsampling:
        if self.method == "fair":
            missing_keys(self, ["num_output_samples"], "method fair needs it")
        return self


class DualMode(Block):
    """train reasoning on and off: a share of records holds only the final answer, each mode
    with its system prompt"""

    thinking_off_share: float = Field(
        0.0, ge=0, le=1, description="share of records without the reasoning"
    )
    system_on: str | None = Field(None, description="system prompt of reasoning records")
    system_off: str | None = Field(None, description="system prompt of answer-only records")
    reasoning_end: str = Field("</think>", description="tag that ends the reasoning")


class SftSelection(Block):
    """What ``distillery.prepare_sft_data`` takes from the ``sft_data`` block: which solutions
    become training data and how they are formatted (the prompt file is the rule's input)."""

    add_correct: bool = Field(
        True, description="keep solutions whose answer matches the known (or majority) answer"
    )
    add_incorrect: bool = Field(False, description="keep solutions whose answer does not match")
    add_unlabeled: bool = Field(
        False, description="keep solutions of problems for which no answer is known or voted"
    )
    fill_majority: bool = Field(
        True,
        description="label problems without a known answer with the most frequent predicted answer",
    )
    min_majority_votes: int = Field(
        0, ge=0, description="majority-labelled problems need at least this many agreeing seeds"
    )
    min_majority_percentage: float = Field(
        0.0,
        ge=0,
        le=1,
        description="majority-labelled problems need at least this share of agreeing seeds",
    )
    use_judgement: bool = Field(
        False,
        description="correct = the solution judge said so (its `judgement`), not symbolic "
        "grading; needs the solution_judge block; a solution without a readable verdict is "
        "neither correct nor incorrect and is not kept",
    )
    deduplicate: bool = Field(True, description="drop repeated (problem, solution) pairs")
    seed: int = Field(42, description="shuffle, split and dual-mode seed")
    shuffle: bool = Field(
        True, description="shuffle the records (NeMo-Skills does; the trainer shuffles anyway)"
    )
    validation_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of problems held out as the validation split "
        "(results/sft/sft-validation.jsonl)",
    )
    filters: Filters = Filters()  # type: ignore[valid-type]
    contamination: Contamination = Contamination()
    downsampling: Downsampling = Downsampling()
    dual_mode: DualMode = DualMode()


class SftData(SftSelection):
    """which solutions become training data, and how they are formatted"""

    prompt: str = Field(
        description="the student's prompt config; the SFT data pairs it with the teacher's "
        "solutions"
    )

"""Stage: turn solution samples into SFT data for the student, with a per-step report.

Usage::

    python -m distillery.prepare_sft_data --inputs results/sdg/solutions/output-rs*.jsonl \\
        --output results/sft/sft-data.jsonl --report results/sft/report.json \\
        --prompt prompts/math.yaml --tokenizer results/models/smollm2-135m

Steps, in order (each one's removals are in the report): correctness selection (majority answer
where none is known), deduplication, drop_multi_boxed, remove_contaminated, remove_no_think_tags,
majority filter, trim_solutions, length outliers, downsampling, max_seq_length, then the chat
format (dual-mode "thinking on/off" records if asked) and a train/validation split by problem.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from distillery import cli
from distillery.chat_template import ChatTemplate, TokenCounter
from distillery.errors import DistilleryError
from distillery.grading import DEFAULT_EXTRACT_REGEX, ExtractionConfig
from distillery.jsonl import iter_jsonl, write_json, write_text
from distillery.prompts import load_prompt
from distillery.sft.contamination import NGramIndex, embedding_matches
from distillery.sft.formatting import ChatFormatter
from distillery.sft.pipeline import Options, prepare

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Build SFT data from solution samples."""

    inputs: tuple[str, ...] = field(metadata={"help": "solution files, one per seed"})
    output: str = field(metadata={"help": "SFT data JSONL (training split)"})
    report: str = field(metadata={"help": "report JSON (a markdown copy goes beside it)"})
    prompt: str = field(metadata={"help": "the student's prompt config"})
    tokenizer: str = field(metadata={"help": "student model directory (its chat template)"})
    validation_output: str | None = field(default=None, metadata={"help": "validation split JSONL"})
    validation_share: float = field(
        default=0.0, metadata={"help": "share of problems held out for validation"}
    )
    add_correct: bool = field(default=True, metadata={"help": "keep correct solutions"})
    add_incorrect: bool = field(default=False, metadata={"help": "keep incorrect solutions"})
    add_unlabeled: bool = field(
        default=False, metadata={"help": "keep solutions of problems without any answer"}
    )
    fill_majority: bool = field(
        default=True, metadata={"help": "label problems without an answer by majority vote"}
    )
    min_majority_votes: int = field(default=0, metadata={"help": "majority filter: least votes"})
    min_majority_percentage: float = field(
        default=0.0, metadata={"help": "majority filter: least share of votes"}
    )
    deduplicate: bool = field(default=True, metadata={"help": "drop repeated (problem, solution)"})
    drop_multi_boxed: bool = field(default=False, metadata={"help": "drop multi-\\boxed answers"})
    remove_no_think_tags: bool = field(
        default=False, metadata={"help": "drop solutions without the --think-tags"}
    )
    think_tags: tuple[str, ...] = field(
        default=("</think>",), metadata={"help": "tags remove_no_think_tags requires"}
    )
    trim_solutions: bool = field(
        default=False, metadata={"help": "cut text after the line of the last \\boxed"}
    )
    remove_len_outlier_problems: bool = field(
        default=False, metadata={"help": "drop problems outside the token length range"}
    )
    min_problem_length: int = field(default=0, metadata={"help": "in student tokens"})
    max_problem_length: int = field(default=1024, metadata={"help": "in student tokens"})
    remove_len_outlier_solutions: bool = field(
        default=False, metadata={"help": "drop solutions outside the token length range"}
    )
    min_solution_length: int = field(default=0, metadata={"help": "in student tokens"})
    max_solution_length: int = field(default=2048, metadata={"help": "in student tokens"})
    max_seq_length: int | None = field(
        default=None, metadata={"help": "drop records longer than this (prompt + answer tokens)"}
    )
    remove_contaminated: bool = field(
        default=False, metadata={"help": "drop problems overlapping a benchmark problem"}
    )
    contamination_benchmarks: tuple[str, ...] = field(
        default=(), metadata={"help": "NAME=test.jsonl benchmarks to check against"}
    )
    contamination_output: str | None = field(
        default=None, metadata={"help": "where the flagged (problem, benchmark) pairs go"}
    )
    ngram: int = field(default=13, metadata={"help": "words per n-gram for contamination"})
    embedding_model: str | None = field(
        default=None, metadata={"help": "encoder directory for the embedding contamination pass"}
    )
    embedding_threshold: float = field(
        default=0.9, metadata={"help": "cosine similarity that counts as contaminated"}
    )
    downsampling: Literal["random", "fair"] | None = field(
        default=None, metadata={"help": "how to cut solutions per problem"}
    )
    max_per_problem: int | None = field(
        default=None, metadata={"help": "most solutions kept per problem"}
    )
    num_output_samples: int | None = field(
        default=None, metadata={"help": "total records wanted (with --downsampling)"}
    )
    thinking_off_share: float = field(
        default=0.0, metadata={"help": "share of records trained without the reasoning"}
    )
    system_on: str | None = field(
        default=None, metadata={"help": "system prompt of reasoning records"}
    )
    system_off: str | None = field(
        default=None, metadata={"help": "system prompt of answer-only records"}
    )
    reasoning_end: str = field(default="</think>", metadata={"help": "end of the reasoning"})
    extract_regex: str = field(
        default=DEFAULT_EXTRACT_REGEX, metadata={"help": "answer regex when there is no box"}
    )
    shuffle: bool = field(
        default=True, metadata={"help": "shuffle the records (as NeMo-Skills does)"}
    )
    seed: int = field(default=42, metadata={"help": "shuffle and split seed"})
    threads: int = field(
        default=1, metadata={"help": "processes to use; beyond one, answers are graded in workers"}
    )

    def __post_init__(self):
        for name in ("validation_share", "thinking_off_share", "min_majority_percentage"):
            if not 0 <= getattr(self, name) <= 1:
                raise DistilleryError(f"--{name.replace('_', '-')} must be in [0, 1]")
        if self.validation_share > 0 and not self.validation_output:
            raise DistilleryError("--validation-share needs --validation-output")
        if self.remove_contaminated and not self.contamination_benchmarks:
            raise DistilleryError("--remove-contaminated needs --contamination-benchmarks")
        for entry in self.contamination_benchmarks:
            if "=" not in entry:
                raise DistilleryError(
                    f"--contamination-benchmarks entry {entry!r} is not NAME=path"
                )
        if self.downsampling == "fair" and not self.num_output_samples:
            raise DistilleryError("--downsampling fair needs --num-output-samples")

    def options(self) -> Options:
        return Options(
            add_correct=self.add_correct,
            add_incorrect=self.add_incorrect,
            add_unlabeled=self.add_unlabeled,
            fill_majority=self.fill_majority,
            min_majority_votes=self.min_majority_votes,
            min_majority_percentage=self.min_majority_percentage,
            deduplicate=self.deduplicate,
            drop_multi_boxed=self.drop_multi_boxed,
            remove_contaminated=self.remove_contaminated,
            remove_no_think_tags=self.remove_no_think_tags,
            think_tags=self.think_tags,
            trim_solutions=self.trim_solutions,
            remove_len_outlier_problems=self.remove_len_outlier_problems,
            min_problem_length=self.min_problem_length,
            max_problem_length=self.max_problem_length,
            remove_len_outlier_solutions=self.remove_len_outlier_solutions,
            min_solution_length=self.min_solution_length,
            max_solution_length=self.max_solution_length,
            max_seq_length=self.max_seq_length,
            downsampling=self.downsampling,
            max_per_problem=self.max_per_problem,
            num_output_samples=self.num_output_samples,
            thinking_off_share=self.thinking_off_share,
            system_on=self.system_on,
            system_off=self.system_off,
            reasoning_end=self.reasoning_end,
            validation_share=self.validation_share,
            shuffle=self.shuffle,
            seed=self.seed,
            extraction=ExtractionConfig(extract_regex=self.extract_regex),
        )


def load_benchmarks(entries: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """``(problem, benchmark, id)`` of every benchmark problem."""
    problems = []
    for entry in entries:
        name, path = entry.split("=", 1)
        for number, row in iter_jsonl(path):
            if not row.get("problem"):
                raise DistilleryError(f"{path}:{number}: benchmark row has no 'problem'")
            problems.append((row["problem"], name, str(row.get("id", number))))
    return problems


def unique_problems(path: str) -> list[str]:
    seen, problems = set(), []
    for _, row in iter_jsonl(path, allow_empty=True):
        problem = row.get("problem")
        if problem and problem not in seen:
            seen.add(problem)
            problems.append(problem)
    return problems


def main(config: Config) -> None:
    prompt = load_prompt(config.prompt)
    if not Path(config.tokenizer).is_dir():
        raise DistilleryError(f"{config.tokenizer}: student model directory does not exist")
    template = ChatTemplate.from_pretrained(config.tokenizer)
    count_tokens = TokenCounter(config.tokenizer)

    ngrams, flagged = None, None
    if config.remove_contaminated:
        references = load_benchmarks(config.contamination_benchmarks)
        ngrams = NGramIndex(config.ngram)
        for text, name, identifier in references:
            ngrams.add(text, name, identifier)
        logger.info(
            "contamination: %d %d-grams from %d problems",
            len(ngrams),
            config.ngram,
            len(references),
        )
        if config.embedding_model:
            problems = unique_problems(sorted(config.inputs)[0])
            found = embedding_matches(
                problems, references, config.embedding_model, config.embedding_threshold
            )
            flagged = {problems[i]: match for i, match in found.items()}
            logger.info("contamination: %d problems flagged by embeddings", len(flagged))
    for path in config.inputs:
        if not Path(path).is_file():
            raise DistilleryError(f"{path}: solution file does not exist")
    Path(config.output).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(config.output).parent) as scratch:
        try:
            report = prepare(
                sorted(config.inputs),
                config.options(),
                prompt,
                ChatFormatter(template.render),
                Path(scratch),
                config.output,
                config.validation_output,
                config.contamination_output,
                count_tokens,
                ngrams,
                flagged,
                workers=config.threads - 1,
            )
        except ValueError as err:
            raise DistilleryError(f"{config.tokenizer}: {err}") from None
    write_json(config.report, report.as_dict())
    write_text(Path(config.report).with_suffix(".md"), report.markdown())
    logger.info("\n%s", report.markdown())


if __name__ == "__main__":
    cli.run(main, Config)

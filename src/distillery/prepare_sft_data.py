"""Stage: turn solution samples into SFT data for the student, with a per-step report.

Usage::

    python -m distillery.prepare_sft_data --inputs results/sdg/solutions/output-rs*.jsonl \\
        --output results/sft/sft-data.jsonl --report results/sft/report.json \\
        --prompt prompts/math.yaml --tokenizer results/models/smollm2-135m \\
        --set filters.drop_multi_boxed=true --set min_majority_votes=2

Steps, in order (each one's removals are in the report): correctness selection (majority answer
where none is known), then the selection steps of :mod:`distillery.sft_data.filters` (deduplication,
drop_multi_boxed, remove_contaminated, remove_no_think_tags, drop_if_regex_match, majority
filter, trim_solutions, length outliers), downsampling, max_seq_length, then the chat format
(dual-mode "thinking on/off" records if asked) and a train/validation split by problem.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.errors import DistilleryError
from distillery.grading.answers import ExtractionConfig, regex_extraction
from distillery.jsonl import iter_jsonl, write_json, write_text
from distillery.prompts import load_prompt
from distillery.settings.data import SftSelection
from distillery.sft_data.chat_template import ChatTemplate, TokenCounter
from distillery.sft_data.contamination import NGramIndex, embedding_matches, load_benchmarks
from distillery.sft_data.formatting import ChatFormatter
from distillery.sft_data.pipeline import prepare

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Build SFT data from solution samples."""

    inputs: tuple[str, ...] = field(metadata={"help": "solution files, one per seed"})
    output: str = field(metadata={"help": "SFT data JSONL (training split)"})
    report: str = field(metadata={"help": "report JSON (a markdown copy goes beside it)"})
    prompt: str = field(metadata={"help": "the student's prompt config"})
    tokenizer: str = field(metadata={"help": "student model directory (its chat template)"})
    sft: SftSelection = field(
        metadata={
            "help": "the sft_data block (selection, filters, contamination, downsampling, "
            "dual_mode), e.g. --set filters.drop_multi_boxed=true"
        }
    )
    validation_output: str | None = field(default=None, metadata={"help": "validation split JSONL"})
    contamination_benchmarks: tuple[str, ...] = field(
        default=(), metadata={"help": "NAME=test.jsonl benchmarks to check against"}
    )
    contamination_output: str | None = field(
        default=None, metadata={"help": "where the flagged (problem, benchmark) pairs go"}
    )
    extract_regex: str | None = field(
        default=None, metadata={"help": "grading.extract_regex: answer regex when there is no box"}
    )
    regex_fallback: bool = field(
        default=False, metadata={"help": "grading.regex_fallback: the regex when there is no box"}
    )
    threads: int = field(
        default=1, metadata={"help": "processes to use; beyond one, answers are graded in workers"}
    )

    def __post_init__(self):
        if self.sft.validation_share > 0 and not self.validation_output:
            raise DistilleryError("validation_share > 0 needs --validation-output")
        if self.sft.filters.remove_contaminated and not self.contamination_benchmarks:
            raise DistilleryError("filters.remove_contaminated needs --contamination-benchmarks")
        for entry in self.contamination_benchmarks:
            if "=" not in entry:
                raise DistilleryError(
                    f"--contamination-benchmarks entry {entry!r} is not NAME=path"
                )

    def extraction(self) -> ExtractionConfig:
        return regex_extraction(self.extract_regex, self.regex_fallback)


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
    contamination = config.sft.contamination
    if config.sft.filters.remove_contaminated:
        references = load_benchmarks(config.contamination_benchmarks)
        ngrams = NGramIndex(contamination.ngram)
        for text, name, identifier in references:
            ngrams.add(text, name, identifier)
        logger.info(
            "contamination: %d %d-grams from %d problems",
            len(ngrams),
            contamination.ngram,
            len(references),
        )
        if contamination.embedding_model:
            problems = unique_problems(sorted(config.inputs)[0])
            found = embedding_matches(
                problems,
                references,
                contamination.embedding_model,
                contamination.embedding_threshold,
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
                config.sft,
                config.extraction(),
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

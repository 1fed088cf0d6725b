"""Stage: split problem-extraction generations into one row per problem.

As NeMo-Skills' ``postprocess_problem_extraction.py``: the generation moves to
``problem_extraction_gen``; "No problems identified" drops the post; otherwise each non-empty
"Problem N:" block becomes a row with ``problem`` and ``extracted_problem_idx`` (0-based). Posts
whose generation has no such block are dropped too, with the reason recorded.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from distillery import cli
from distillery.errors import DistilleryError
from distillery.jsonl import iter_jsonl, write_jsonl

logger = logging.getLogger(__name__)

NO_PROBLEMS = "No problems identified"
_PROBLEM_HEADER = re.compile(r"Problem\s+\d+\s*:")
_GENERATION_FIELDS = (
    "generation",
    "num_generated_tokens",
    "finish_reason",
    "generation_start_time",
    "generation_end_time",
    "generation_time",
)


@dataclass(frozen=True)
class Config:
    """Split extracted problems into rows."""

    input: str = field(metadata={"help": "problem-extraction generations (JSONL)"})
    output: str = field(metadata={"help": "one row per extracted problem (JSONL)"})
    dropped: str = field(metadata={"help": "posts without problems, with the reason (JSONL)"})


def split_problems(generation: str) -> list[str] | None:
    """The problems in one extraction answer; ``None`` if it says there are none.

    Example:
        >>> split_problems("Problem 1: What is 2+2?\\n\\nProblem 2: Solve x+1=3.")
        ['What is 2+2?', 'Solve x+1=3.']
    """
    if NO_PROBLEMS in generation:
        return None
    pieces = _PROBLEM_HEADER.split(generation)[1:]
    return [piece.strip() for piece in pieces if piece.strip()]


def main(config: Config) -> None:
    kept, dropped, posts = [], [], 0
    for number, row in iter_jsonl(config.input):
        posts += 1
        if "generation" not in row:
            raise DistilleryError(f"{config.input}:{number}: row has no 'generation' field")
        base = {k: v for k, v in row.items() if k not in _GENERATION_FIELDS}
        base["problem_extraction_gen"] = row["generation"]
        problems = split_problems(row["generation"])
        if not problems:
            reason = "no problems identified" if problems is None else "no 'Problem N:' block"
            dropped.append({**base, "drop_reason": reason})
            continue
        for idx, problem in enumerate(problems):
            kept.append({**base, "problem": problem, "extracted_problem_idx": idx})
    if not kept:
        raise DistilleryError(
            f"{config.input}: no problems could be extracted from any of {len(dropped)} posts; "
            "read the generations there, then check the extraction prompt and model"
        )
    write_jsonl(config.dropped, dropped)
    write_jsonl(config.output, kept)
    logger.info(
        "%d problems from %d posts; %d posts dropped", len(kept), posts - len(dropped), len(dropped)
    )


if __name__ == "__main__":
    cli.run(main, Config)

"""Raw data sources for the pipeline: AoPS forum threads and the Llama-Nemotron post-training
data, streamed from the hub or read from local files."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from distillery.data.sources import (
    iter_hub_rows,
    iter_located_rows,
    locate_hub_rows,
    require_columns,
)
from distillery.errors import DistilleryError

AOPS_REPO = "DeepStudentLlama/AoPS-Instruct"
AOPS_CONFIG = "2024_not_decontaminated"
NEMOTRON_REPO = "nvidia/Llama-Nemotron-Post-Training-Dataset"
NEMOTRON_CONFIG = "SFT"
NEMOTRON_SUBSETS = ("math", "code", "science", "chat", "safety")

logger = logging.getLogger(__name__)

_QUOTE = re.compile(r"\[quote[^\]]*\](?:(?!\[quote).)*?\[/quote\]", re.DOTALL | re.IGNORECASE)


def remove_quotes(text: str) -> str:
    """Removes ``[quote...]...[/quote]`` blocks, nested ones included (innermost first).

    Example:
        >>> remove_quotes("a [quote=x]b [quote]c[/quote] d[/quote] e")
        'a  e'
    """
    while True:
        stripped = _QUOTE.sub("", text)
        if stripped == text:
            return text
        text = stripped


_RAW_FIX = "fix the file, or convert it to the source's columns (docs/data.md)"


def aops_record(row: dict, count_tokens: Callable[[str], int], max_tokens: int, where: str) -> dict:
    """One AoPS thread as the OpenMathReasoning recipe prepares it: the question as
    ``forum_post``; ``forum_discussions`` = "Post i:" blocks of the answers with quotes removed,
    stopping before the running token count would pass ``max_tokens``.

    Raises:
        DistilleryError: the row lacks a column or has one of the wrong type (``where`` names
            it).
    """
    require_columns(row, ["original_question", "original_answers"], where, _RAW_FIX)
    question, answers = row["original_question"], row["original_answers"]
    if not isinstance(question, str | None):
        raise DistilleryError(
            f"{where}: original_question must be text, got {type(question).__name__}; {_RAW_FIX}"
        )
    if isinstance(answers, str) or not isinstance(answers, list | tuple | None):
        raise DistilleryError(
            f"{where}: original_answers must be a list of answer posts, got "
            f"{type(answers).__name__}; {_RAW_FIX}"
        )
    discussion, used = "", 0
    for index, answer in enumerate(answers or [], start=1):
        if not isinstance(answer, str):
            raise DistilleryError(
                f"{where}: original_answers[{index - 1}] must be text, got "
                f"{type(answer).__name__}; {_RAW_FIX}"
            )
        block = f"Post {index}:\n{remove_quotes(answer).strip()}\n\n"
        size = count_tokens(block)
        if used + size > max_tokens:
            break
        discussion += block
        used += size
    return {"forum_post": question, "forum_discussions": discussion.strip()}


def iter_aops(path: str | None, limit: int, tokens, max_tokens: int) -> Iterator[dict]:
    """Up to ``limit`` threads; threads without a question are dropped, counted and logged (a
    forum dump has some, and the rest is still worth using)."""
    if path:
        rows = iter_located_rows(path)
    else:
        rows = locate_hub_rows(AOPS_REPO, iter_hub_rows(AOPS_REPO, AOPS_CONFIG, "train"))
    dropped = 0
    for index, (where, row) in enumerate(rows):
        if index == limit:
            break
        record = aops_record(row, tokens, max_tokens, where)
        if not (record["forum_post"] or "").strip():
            dropped += 1
            logger.debug("%s: thread without a question, dropped", where)
            continue
        yield {"id": f"aops-{index}", **record}
    if dropped:
        logger.warning("dropped %d AoPS thread(s) without a question", dropped)


def nemotron_record(row: dict, subset: str, where: str) -> dict:
    """A Llama-Nemotron post-training row as a problem and its solution (the dataset's
    response), with its reasoning mode and system prompt."""
    require_columns(row, ["input", "output"], where, _RAW_FIX)
    prompt = row["input"]
    if isinstance(prompt, list):
        users = [m.get("content") for m in prompt if _is_user_message(m)]
        if not users:
            raise DistilleryError(f"{where}: the row has no user message in 'input'; {_RAW_FIX}")
        prompt = users[-1]
    for key, value in (("input", prompt), ("output", row["output"])):
        if not isinstance(value, str):
            raise DistilleryError(
                f"{where}: '{key}' must be text (or, for input, chat messages), got "
                f"{type(value).__name__}; {_RAW_FIX}"
            )
    return {
        "problem": prompt,
        "generation": row["output"],
        "reasoning": row.get("reasoning"),
        "system_prompt": row.get("system_prompt"),
        "category": subset,
    }


def _is_user_message(message) -> bool:
    return isinstance(message, dict) and message.get("role") == "user"


def iter_nemotron(path: str | None, caps: dict[str, int]) -> Iterator[dict]:
    """``caps`` rows of each subset; ``path`` is a directory of ``<subset>.jsonl|parquet|csv``."""
    for subset, cap in caps.items():
        if subset not in NEMOTRON_SUBSETS:
            raise DistilleryError(
                f"unknown Nemotron subset {subset!r}; known: {', '.join(NEMOTRON_SUBSETS)}"
            )
        if path:
            files = sorted(Path(path).glob(f"{subset}.*"))
            if not files:
                raise DistilleryError(f"{path}: no file for subset {subset} ({subset}.jsonl, ...)")
            rows = iter_located_rows(files[0])
        else:
            hub = iter_hub_rows(NEMOTRON_REPO, NEMOTRON_CONFIG, subset)
            rows = locate_hub_rows(f"{NEMOTRON_REPO} ({subset})", hub)
        for index, (where, row) in enumerate(rows):
            if index == cap:
                break
            yield {"id": f"nemotron-{subset}-{index}", **nemotron_record(row, subset, where)}

"""Raw data sources for the pipeline: AoPS forum threads and the Llama-Nemotron post-training
data, streamed from the hub or read from local files."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.sources import iter_hub_rows, iter_local_rows, require_columns

AOPS_REPO = "DeepStudentLlama/AoPS-Instruct"
AOPS_CONFIG = "2024_not_decontaminated"
NEMOTRON_REPO = "nvidia/Llama-Nemotron-Post-Training-Dataset"
NEMOTRON_CONFIG = "SFT"
NEMOTRON_SUBSETS = ("math", "code", "science", "chat", "safety")

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


def aops_record(row: dict, count_tokens: Callable[[str], int], max_tokens: int, where: str) -> dict:
    """One AoPS thread as the OpenMathReasoning recipe prepares it: the question as
    ``forum_post``; ``forum_discussions`` = "Post i:" blocks of the answers with quotes removed,
    stopping before the running token count would pass ``max_tokens``."""
    require_columns(row, ["original_question", "original_answers"], where)
    discussion, used = "", 0
    for index, answer in enumerate(row["original_answers"] or [], start=1):
        block = f"Post {index}:\n{remove_quotes(answer).strip()}\n\n"
        size = count_tokens(block)
        if used + size > max_tokens:
            break
        discussion += block
        used += size
    return {"forum_post": row["original_question"], "forum_discussions": discussion.strip()}


def iter_aops(path: str | None, limit: int, tokens, max_tokens: int) -> Iterator[dict]:
    rows = iter_local_rows(path) if path else iter_hub_rows(AOPS_REPO, AOPS_CONFIG, "train")
    where = path or AOPS_REPO
    for index, row in enumerate(rows):
        if index == limit:
            return
        yield {"id": f"aops-{index}", **aops_record(row, tokens, max_tokens, where)}


def nemotron_record(row: dict, subset: str, where: str) -> dict:
    """A Llama-Nemotron post-training row as a problem and its solution (the dataset's
    response), with its reasoning mode and system prompt."""
    require_columns(row, ["input", "output"], where)
    prompt = row["input"]
    if isinstance(prompt, list):
        users = [m["content"] for m in prompt if m.get("role") == "user"]
        if not users:
            raise DistilleryError(f"{where}: a row has no user message in 'input'")
        prompt = users[-1]
    return {
        "problem": prompt,
        "generation": row["output"],
        "reasoning": row.get("reasoning"),
        "system_prompt": row.get("system_prompt"),
        "category": subset,
    }


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
            rows, where = iter_local_rows(files[0]), str(files[0])
        else:
            rows, where = iter_hub_rows(NEMOTRON_REPO, NEMOTRON_CONFIG, subset), NEMOTRON_REPO
        for index, row in enumerate(rows):
            if index == cap:
                break
            yield {"id": f"nemotron-{subset}-{index}", **nemotron_record(row, subset, where)}

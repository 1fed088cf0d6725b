"""rewrite_summaries: the summary a reasoning model writes after its reasoning, rewritten
``samples`` times; the longest valid rewrite replaces it, and a solution with none leaves the
SFT data (NeMo-Skills' merge_new_summary)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from distillery.jsonl import read_jsonl
from distillery.processing.base import (
    NO_VALID_SUMMARY,
    Answers,
    Outcome,
    ProcessingStep,
    StepFiles,
    request,
)
from distillery.prompts import PromptConfig, load_prompt
from distillery.settings.generation import Inference
from distillery.settings.steps import Step


class SummaryRewrite(Step):
    """rewrite the summary a reasoning model writes after its reasoning (after
    `reasoning_end`): `samples` rewrites of each solution, the longest valid one replaces the
    summary (valid: its answer is the solution's, as a string, or both are correct); a
    solution with no valid rewrite is dropped from the SFT data (NeMo-Skills'
    merge_new_summary)"""

    prompt: str = Field("prompts/summarize-solution.yaml", description="prompt config file")
    inference: Inference = Inference(temperature=0.7, top_p=0.95, max_tokens=2048)
    samples: int = Field(4, ge=1, description="rewrites sampled per solution (one seed each)")
    keep_unrewritten: bool = Field(
        False,
        description="deviation: a solution with no valid rewrite keeps its own summary instead "
        "of being dropped from the SFT data",
    )


def split_reasoning(text: str, end: str) -> tuple[str, str] | None:
    """``(reasoning, summary)`` of a reasoning model's output around the first ``end`` tag, or
    ``None`` when the reasoning never ended.

    Example:
        >>> split_reasoning("<think>try 2, then 4</think>So \\\\boxed{4}.", "</think>")
        ('<think>try 2, then 4', 'So \\\\boxed{4}.')
    """
    if end not in text:
        return None
    reasoning, summary = text.split(end, 1)
    return reasoning, summary.strip()


def summary_requests(
    seeds: list[list[dict]], prompt: PromptConfig, end: str, samples: int, where: list[str]
) -> Iterator[dict]:
    """``samples`` rewrite requests for each solution, each with its own seed (``_seed``), as
    NeMo-Skills samples one summary file per seed. The prompt gets ``{problem}``,
    ``{generation}`` (the whole solution, as NeMo-Skills gives it) and ``{reasoning}`` (the
    text before ``end``, without an opening ``<think>``)."""
    for seed, rows in enumerate(seeds):
        for line, row in enumerate(rows):
            generation = row.get("generation")
            if not generation or not row.get("problem"):
                continue
            parts = split_reasoning(generation, end)
            reasoning = (parts[0] if parts else generation).replace("<think>", "", 1).strip()
            fields = {"problem": row["problem"], "generation": generation, "reasoning": reasoning}
            for sample in range(samples):
                ref = f"{seed}:{line}:{sample}"
                yield request(ref, prompt, fields, f"{where[seed]}:{line + 1}", _seed=sample)


def reasoning_trace(generation: str, end: str, start: str = "<think>") -> str:
    """The reasoning a rewritten summary follows: the solution up to and including ``end``
    (``end`` added when the reasoning never ended), opened by ``start`` if it was not.

    Example:
        >>> reasoning_trace("try 2, then 4</think>So 4.", "</think>")
        '<think>\\ntry 2, then 4</think>'
    """
    trace = generation if start in generation else f"{start}\n{generation}"
    cut = trace.find(end)
    return trace + f"\n{end}" if cut < 0 else trace[: cut + len(end)]


def valid_rewrite(row: dict, old: str | None, new: str | None) -> bool:
    """NeMo-Skills' test of a rewritten summary: its answer is the solution's, as a string
    (both missing included), or both answers are correct (here: equivalent to the row's
    ``expected_answer``, where it has one; NeMo-Skills asks its judge)."""
    from distillery.grading.answers import is_equivalent

    if new == old:
        return True
    expected = row.get("expected_answer")
    return bool(expected) and is_equivalent(expected, old) and is_equivalent(expected, new)


def rewrite(
    seeds: list[list[dict]],
    generations: dict[str, dict],
    end: str,
    samples: int,
    extraction,
    keep_unrewritten: bool,
) -> Outcome:
    """Each solution's summary replaced by the longest valid rewrite (:func:`valid_rewrite`):
    ``generation`` = :func:`reasoning_trace`, a blank line, the rewrite; ``original_summary``
    keeps the model's own. A solution without a valid rewrite is marked
    ``no_valid_summary`` (the SFT data leaves it out, as NeMo-Skills drops it; it still votes
    for the majority answer, which NeMo-Skills computes before), or, with
    ``keep_unrewritten``, stays as it was. Rows keep their lines, so seed files stay aligned."""
    from distillery.grading.answers import extract_answer

    out = Outcome(files=seeds)
    for seed, rows in enumerate(seeds):
        for line, row in enumerate(rows):
            refs = [f"{seed}:{line}:{sample}" for sample in range(samples)]
            texts = [generations[r].get("generation") or "" for r in refs if r in generations]
            if not texts:
                continue
            old = extract_answer(row["generation"], extraction)
            valid = [t for t in texts if valid_rewrite(row, old, extract_answer(t, extraction))]
            out.counts["rewrites"] += len(texts)
            out.counts["valid_rewrites"] += len(valid)
            if valid:
                best = max(valid, key=len)
                parts = split_reasoning(row["generation"], end)
                row.update(
                    generation=f"{reasoning_trace(row['generation'], end)}\n\n{best.strip()}",
                    original_summary=parts[1] if parts else None,
                    summary_rewritten=True,
                )
                out.counts["rewritten"] += 1
            else:
                row["summary_rewritten"] = False
                if keep_unrewritten:
                    out.counts["kept_unrewritten"] += 1
                else:
                    row[NO_VALID_SUMMARY] = True
                    out.counts["no_valid_summary"] += 1
        out.kept.extend(rows)
    return out


def select(files: StepFiles, block: SummaryRewrite) -> list[dict]:
    seeds = [read_jsonl(path, allow_empty=True) for path in files.inputs]
    prompt = load_prompt(block.prompt)
    end, where = block.reasoning_end, list(files.inputs)
    return list(summary_requests(seeds, prompt, end, block.samples, where))


def apply(files: StepFiles, block: SummaryRewrite, answers: Answers) -> Outcome:
    files.per_input("rewrite_summaries apply")
    seeds = [read_jsonl(path, allow_empty=True) for path in files.inputs]
    return rewrite(
        seeds, answers.by_ref, block.reasoning_end, block.samples, files.extraction,
        block.keep_unrewritten,
    )  # fmt: skip


STEP = ProcessingStep(
    "rewrite_summaries",
    SummaryRewrite,
    select,
    apply,
    block=("solution_summaries",),
    area="sdg/summaries",
)

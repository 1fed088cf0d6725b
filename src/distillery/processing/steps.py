"""What each LLM processing step sends to the model and what it does with the answers.

Every step has two halves around one generation job: ``requests`` turns the step's input rows
into request rows (``_ref``, the row and part it belongs to, and ``_messages``, the rendered
prompt), and ``apply`` puts the parsed answers back on the input rows, keeping, dropping or
changing them. An answer that does not parse is counted, logged with its row, and treated as no
verdict: it never makes a problem contaminated, a class apply, or a solution correct.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from distillery.errors import DistilleryError
from distillery.processing.parsers import (
    parse_converted_problem,
    parse_extracted_answer,
    parse_judgement,
    parse_label,
    parse_true_false,
)
from distillery.prompts import MESSAGES_FIELD, PromptConfig
from distillery.settings.processing import CLASS_LABELS, CLASSES

logger = logging.getLogger(__name__)

REF = "_ref"
# set on a solution none of whose rewritten summaries is valid: not SFT data
NO_VALID_SUMMARY = "no_valid_summary"
# NeMo-Skills' prefilled verdicts: no model call where the answer is missing or identical
NO_ANSWER_JUDGEMENT = "Reasoning: No answer was provided.\nJudgement: No"
SAME_ANSWER_JUDGEMENT = "Reasoning: The two answers are identical.\nJudgement: Yes"


@dataclass
class Outcome:
    """The rows a step keeps and drops, and its counts (for its report)."""

    kept: list[dict] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def unparsed(self, where: str, text: str | None) -> None:
        self.counts["unparsed"] += 1
        logger.warning("%s: cannot read the model's answer (%.120r); no verdict", where, text)


def request(ref: str, prompt: PromptConfig, row: dict, where: str, **extra) -> dict:
    """A request row; ``where`` names the input row (``file:line``) in the error for a field
    the prompt uses and the row lacks."""
    missing = sorted(f for f in prompt.fields() if row.get(f) is None)
    if missing:
        raise DistilleryError(
            f"{prompt.source} uses {', '.join('{' + m + '}' for m in missing)}, but {where} has "
            f"no value for it (fields: {', '.join(sorted(row))}); fix the prompt or the step's "
            "input"
        )
    return {REF: ref, MESSAGES_FIELD: prompt.messages(row), **extra}


def by_ref(generations: list[dict]) -> dict[str, dict]:
    return {g[REF]: g for g in generations}


# --- classification -------------------------------------------------------------------------


def classify_requests(
    rows: list[dict], prompts: dict[str, PromptConfig], where: str
) -> Iterator[dict]:
    for index, row in enumerate(rows):
        for name, prompt in prompts.items():
            yield request(f"{index}:{name}", prompt, row, f"{where}:{index + 1}")


def classify_apply(
    rows: list[dict],
    generations: dict[str, dict],
    actions: dict[str, str],
    where: str,
    lenient: bool = False,
) -> Outcome:
    """``problem_class``: the first class (in NeMo-Skills' order, which asks each classifier
    only about the problems the ones before it did not claim) whose classifier answered with
    its label, else ``regular``; then the class's action (keep, drop, convert)."""
    out = Outcome()
    for index, row in enumerate(rows):
        row = dict(row)
        found = None
        for name in CLASSES:
            generation = generations.get(f"{index}:{name}")
            if generation is None:
                continue
            text = generation.get("generation")
            row[f"classify_{name}_gen"] = text
            verdict = parse_label(text, CLASS_LABELS[name], lenient)
            if verdict is None:
                out.unparsed(f"{where}:{index + 1} ({name})", text)
            elif verdict and found is None:
                found = name
        row["problem_class"] = found or "regular"
        out.counts[row["problem_class"]] += 1
        action = actions.get(found, "keep") if found else "keep"
        if action == "drop":
            out.dropped.append(row)
            continue
        if action == "convert":
            row["convert_proof"] = True
        out.kept.append(row)
    return out


# --- answer extraction ----------------------------------------------------------------------


def needs_answer(row: dict) -> bool:
    return not row.get("convert_proof") and not row.get("expected_answer")


def answer_requests(rows: list[dict], prompt: PromptConfig, where: str) -> Iterator[dict]:
    for index, row in enumerate(rows):
        if needs_answer(row) and row.get("forum_discussions"):
            yield request(str(index), prompt, row, f"{where}:{index + 1}")


def answer_apply(
    rows: list[dict], generations: dict[str, dict], where: str, lenient: bool = False
) -> Outcome:
    """``expected_answer`` from the discussion where the row had none
    (``expected_answer_source: forum``); rows are kept either way."""
    out = Outcome()
    for index, row in enumerate(rows):
        row = dict(row)
        generation = generations.get(str(index))
        if generation is None:
            if row.get("expected_answer"):
                row.setdefault("expected_answer_source", "raw_data")
            out.kept.append(row)
            continue
        text = generation.get("generation")
        row["answer_extraction_gen"] = text
        answer, readable = parse_extracted_answer(text, lenient)
        if not readable:
            out.unparsed(f"{where}:{index + 1}", text)
        elif answer is None:
            out.counts["not_found"] += 1
        else:
            row["expected_answer"] = answer
            row["expected_answer_source"] = "forum"
            out.counts["found"] += 1
        out.kept.append(row)
    return out


# --- proof conversion -----------------------------------------------------------------------


def proof_requests(rows: list[dict], prompt: PromptConfig, where: str) -> Iterator[dict]:
    for index, row in enumerate(rows):
        if row.get("convert_proof"):
            yield request(str(index), prompt, row, f"{where}:{index + 1}")


def proof_apply(
    rows: list[dict], generations: dict[str, dict], where: str, lenient: bool = False
) -> Outcome:
    """A proof becomes its rewritten problem (``original_problem`` keeps the proof; no
    expected answer); a proof the model did not rewrite (an empty output) is dropped."""
    out = Outcome()
    for index, row in enumerate(rows):
        row = {k: v for k, v in row.items() if k != "convert_proof"}
        generation = generations.get(str(index))
        if generation is None:
            out.kept.append(row)
            continue
        text = generation.get("generation")
        problem = parse_converted_problem(text, lenient)
        if problem is None:
            out.unparsed(f"{where}:{index + 1}", text)
            out.dropped.append(row)
            continue
        row.update(
            original_problem=row["problem"],
            problem=problem,
            expected_answer=None,
            converted_from_proof=True,
            proof_conversion_gen=text,
        )
        out.counts["converted"] += 1
        out.kept.append(row)
    return out


# --- contamination check --------------------------------------------------------------------


def same_problem(problem: str, candidate: str) -> bool:
    """Identical apart from case and surrounding whitespace: contaminated without asking a
    model (NeMo-Skills' prefilled verdict)."""
    return problem.strip().lower() == candidate.strip().lower()


def contamination_requests(
    rows: list[dict],
    references: list[tuple[str, str, str]],
    prompt: PromptConfig,
    candidates: list[list[int]],
) -> Iterator[dict]:
    """One request per (problem, candidate): ``candidates[i]`` are the reference indices
    retrieved for row i, nearest first. A candidate identical to the problem is decided
    without the model (``_verdict: true``). The prompt gets ``{problem}`` and
    ``{benchmark_problem}``, also as NeMo-Skills' ``{problem1}`` and ``{problem2}``."""
    for position, row in enumerate(rows):
        for rank, reference in enumerate(candidates[position]):
            text, benchmark, benchmark_id = references[reference]
            ref = f"{position}:{rank}"
            extra = {
                "benchmark": benchmark,
                "benchmark_id": benchmark_id,
                "benchmark_problem": text,
            }
            if same_problem(row["problem"], text):
                yield {REF: ref, **extra, "_verdict": True}
            else:
                pair = {"problem": row["problem"], "benchmark_problem": text}
                pair.update(problem1=pair["problem"], problem2=text)
                yield request(ref, prompt, pair, f"problem {position + 1}", **extra)


def contamination_apply(
    rows: list[dict],
    requests: list[dict],
    generations: dict[str, dict],
    where: str,
    lenient: bool = False,
) -> tuple[Outcome, list[dict]]:
    """Drops each problem the model (or an identical text) found to be a benchmark problem;
    returns the verdict of every checked pair too."""
    out = Outcome()
    verdicts = []
    contaminated: dict[int, dict] = {}
    for item in requests:
        position = int(item[REF].split(":")[0])
        if "_verdict" in item:
            verdict, text = item["_verdict"], None
        else:
            text = generations.get(item[REF], {}).get("generation")
            verdict = parse_true_false(text, lenient)
            if verdict is None:
                out.unparsed(f"{where}:{position + 1} vs {item['benchmark']}", text)
        verdicts.append(
            {
                "problem": rows[position]["problem"],
                "benchmark": item["benchmark"],
                "benchmark_id": item["benchmark_id"],
                "benchmark_problem": item.get("benchmark_problem"),
                "contaminated": verdict,
                "check_contamination_gen": text,
            }
        )
        out.counts["pairs"] += 1
        if verdict:
            contaminated.setdefault(position, item)
    for position, row in enumerate(rows):
        if position in contaminated:
            match = contaminated[position]
            out.dropped.append(
                {**row, "contaminated_by": f"{match['benchmark']}/{match['benchmark_id']}"}
            )
        else:
            out.kept.append(row)
    out.counts["contaminated"] = len(contaminated)
    return out, verdicts


# --- answer judge ---------------------------------------------------------------------------


def judge_request(ref: str, row: dict, prompt: PromptConfig, where: str) -> dict:
    """A judge request for a row with ``problem``, ``expected_answer`` and
    ``predicted_answer``, or the prefilled verdict where no model is needed (NeMo-Skills
    does the same): no prediction is wrong, an identical string is right."""
    predicted, expected = row.get("predicted_answer"), row.get("expected_answer")
    if predicted is None or predicted == "":
        return {REF: ref, "judgement": NO_ANSWER_JUDGEMENT}
    if str(predicted).strip() == str(expected).strip():
        return {REF: ref, "judgement": SAME_ANSWER_JUDGEMENT}
    fields = {"problem": row.get("problem"), "expected_answer": expected}
    return request(ref, prompt, {**fields, "predicted_answer": predicted}, where)


def count_judgement(
    out: Outcome, text: str | None, where: str, lenient: bool = False
) -> bool | None:
    verdict = parse_judgement(text, lenient)
    if verdict is None:
        out.unparsed(where, text)
    else:
        out.counts["judged_correct" if verdict else "judged_wrong"] += 1
    return verdict


# --- summary rewriting ----------------------------------------------------------------------


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


def summary_apply(
    seeds: list[list[dict]],
    generations: dict[str, dict],
    end: str,
    samples: int,
    extraction,
    keep_unrewritten: bool,
    where: list[str],
) -> Outcome:
    """Each solution's summary replaced by the longest valid rewrite (:func:`valid_rewrite`):
    ``generation`` = :func:`reasoning_trace`, a blank line, the rewrite; ``original_summary``
    keeps the model's own. A solution without a valid rewrite is marked
    ``no_valid_summary`` (the SFT data leaves it out, as NeMo-Skills drops it; it still votes
    for the majority answer, which NeMo-Skills computes before), or, with
    ``keep_unrewritten``, stays as it was. Rows keep their lines, so seed files stay aligned."""
    from distillery.grading.answers import extract_answer

    out = Outcome()
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

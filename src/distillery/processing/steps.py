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
    parse_true_false,
    parse_yes_no,
)
from distillery.prompts import MESSAGES_FIELD, PromptConfig
from distillery.settings.processing import CLASSES

logger = logging.getLogger(__name__)

REF = "_ref"
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
    rows: list[dict], generations: dict[str, dict], actions: dict[str, str], where: str
) -> Outcome:
    """``problem_class``: the first class (in NeMo-Skills' order) whose classifier said yes,
    else ``regular``; then the class's action (keep, drop, convert)."""
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
            verdict = parse_yes_no(text)
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


def answer_apply(rows: list[dict], generations: dict[str, dict], where: str) -> Outcome:
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
        answer, readable = parse_extracted_answer(text)
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


def proof_apply(rows: list[dict], generations: dict[str, dict], where: str) -> Outcome:
    """A proof becomes its rewritten problem (``original_problem`` keeps the proof; no
    expected answer); a proof the model did not rewrite is dropped."""
    out = Outcome()
    for index, row in enumerate(rows):
        row = {k: v for k, v in row.items() if k != "convert_proof"}
        generation = generations.get(str(index))
        if generation is None:
            out.kept.append(row)
            continue
        text = generation.get("generation")
        problem = parse_converted_problem(text)
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


def contamination_requests(
    rows: list[dict],
    references: list[tuple[str, str, str]],
    prompt: PromptConfig,
    ngram: int,
    top_k: int,
    embedded: dict[int, int] | None = None,
) -> Iterator[dict]:
    """One request per (problem, candidate): the ``top_k`` benchmark problems sharing the most
    word n-grams with it, and its nearest by embedding (``embedded``: row index -> reference
    index). A candidate identical to the problem (case and spacing aside) is decided without
    the model (``_verdict: true``)."""
    from distillery.sft_data.contamination import NearestIndex, same_text

    index = NearestIndex(references, ngram)
    for position, row in enumerate(rows):
        candidates = [reference for reference, _ in index.nearest(row["problem"], top_k)]
        if embedded and position in embedded and embedded[position] not in candidates:
            candidates.append(embedded[position])
        for rank, reference in enumerate(candidates):
            text, benchmark, benchmark_id = references[reference]
            ref = f"{position}:{rank}"
            extra = {
                "benchmark": benchmark,
                "benchmark_id": benchmark_id,
                "benchmark_problem": text,
            }
            if same_text(row["problem"], text):
                yield {REF: ref, **extra, "_verdict": True}
            else:
                pair = {"problem": row["problem"], "benchmark_problem": text}
                yield request(ref, prompt, pair, f"problem {position + 1}", **extra)


def contamination_apply(
    rows: list[dict], requests: list[dict], generations: dict[str, dict], where: str
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
            verdict = parse_true_false(text)
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
    if predicted is None or str(predicted).strip() == "":
        return {REF: ref, "judgement": NO_ANSWER_JUDGEMENT}
    if str(predicted).strip() == str(expected).strip():
        return {REF: ref, "judgement": SAME_ANSWER_JUDGEMENT}
    fields = {"problem": row.get("problem"), "expected_answer": expected}
    return request(ref, prompt, {**fields, "predicted_answer": predicted}, where)


def count_judgement(out: Outcome, text: str | None, where: str) -> bool | None:
    verdict = parse_judgement(text)
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
    seeds: list[list[dict]], prompt: PromptConfig, end: str, where: list[str]
) -> Iterator[dict]:
    """A rewrite request for each solution whose reasoning ended (``{problem}``,
    ``{reasoning}``: the text before ``end``, without an opening ``<think>``)."""
    for seed, rows in enumerate(seeds):
        for line, row in enumerate(rows):
            parts = split_reasoning(row.get("generation") or "", end)
            if parts is None or not row.get("problem"):
                continue
            reasoning = parts[0].replace("<think>", "", 1).strip()
            fields = {"problem": row["problem"], "reasoning": reasoning}
            yield request(f"{seed}:{line}", prompt, fields, f"{where[seed]}:{line + 1}")


def summary_apply(
    seeds: list[list[dict]], generations: dict[str, dict], end: str, extraction, where: list[str]
) -> Outcome:
    """Each solution's summary replaced by its rewrite (``generation`` = reasoning, ``end``,
    rewrite; ``original_summary`` keeps the model's own) when the rewrite's final answer is
    equivalent to the original's; otherwise (another answer, or none on either side: the
    rewriting model must not supply the teacher's answer) the solution stays as it was
    (``summary_rewritten`` false)."""
    from distillery.grading.answers import extract_answer, is_equivalent

    out = Outcome()
    for seed, rows in enumerate(seeds):
        for line, row in enumerate(rows):
            generation = generations.get(f"{seed}:{line}")
            if generation is None:
                continue
            text = generation.get("generation") or ""
            reasoning, summary = split_reasoning(row["generation"], end)
            new_answer = extract_answer(text, extraction)
            old_answer = extract_answer(summary, extraction)
            row["summary_rewritten"] = False
            if new_answer is None:
                out.unparsed(f"{where[seed]}:{line + 1}", text)
            elif old_answer is None:
                out.counts["original_without_answer"] += 1
            elif not is_equivalent(old_answer, new_answer):
                out.counts["rewrite_disagrees"] += 1
            else:
                row.update(
                    generation=f"{reasoning}{end}\n{text.strip()}",
                    original_summary=summary,
                    summary_rewritten=True,
                )
                out.counts["rewritten"] += 1
        out.kept.extend(rows)
    return out

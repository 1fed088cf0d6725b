"""SFT data from solution samples: label, select, deduplicate, format for the student.

The steps follow NeMo-Skills' OpenMathReasoning recipe: problems without a known answer get the
most frequent predicted answer across seeds (``fill_majority_answer``); a solution is correct when
its boxed answer is equivalent to ``expected_answer``; correct (and optionally incorrect or
unlabeled) solutions are kept, deduplicated on (problem, generation) and formatted with the
student's chat template, loss on the assistant turn only.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from distillery.grading import ExtractionConfig, extract_answer, is_equivalent
from distillery.prompts import PromptConfig

NO_VALID_ANSWER = "no_valid_answer_found"


@dataclass
class Report:
    """How many rows each step removed, in order."""

    steps: list[tuple[str, int, int]] = field(default_factory=list)  # (step, removed, remaining)
    notes: dict = field(default_factory=dict)

    def record(self, step: str, before: int, after: int) -> None:
        self.steps.append((step, before - after, after))

    def as_dict(self) -> dict:
        return {
            "steps": [{"step": s, "removed": r, "remaining": n} for s, r, n in self.steps],
            **self.notes,
        }

    def markdown(self) -> str:
        lines = ["| step | removed | remaining |", "|---|---:|---:|"]
        lines += [f"| {s} | {r} | {n} |" for s, r, n in self.steps]
        notes = [f"- {k}: {v}" for k, v in self.notes.items()]
        return "# SFT data report\n\n" + "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def fill_majority_answers(per_problem: list[list[dict]]) -> int:
    """Sets ``expected_answer`` of problems without one to the most frequent predicted answer.

    ``per_problem`` holds, for each problem, its rows across seeds (same line in each seed file).
    Adds ``majority_votes``, ``total_votes`` (= number of seeds, as NeMo-Skills counts) and
    ``fill_mode`` to the filled rows. Returns how many problems were filled.
    """
    filled = 0
    for rows in per_problem:
        if rows[0].get("expected_answer"):
            continue
        votes = Counter(r["predicted_answer"] for r in rows if r["predicted_answer"] is not None)
        answer, count = votes.most_common(1)[0] if votes else (NO_VALID_ANSWER, 0)
        for row in rows:
            row.update(
                expected_answer=answer,
                majority_votes=count,
                total_votes=len(rows),
                fill_mode="majority",
            )
        filled += 1
    return filled


def add_predicted_answer(row: dict, extraction: ExtractionConfig) -> None:
    row["predicted_answer"] = extract_answer(row["generation"], extraction)


def label(row: dict) -> None:
    """Sets ``symbolic_correct``: the predicted answer is equivalent to ``expected_answer``."""
    expected = row.get("expected_answer")
    row["symbolic_correct"] = expected not in (None, NO_VALID_ANSWER) and is_equivalent(
        expected, row["predicted_answer"]
    )


def is_unlabeled(row: dict) -> bool:
    return row.get("expected_answer") in (None, "", NO_VALID_ANSWER)


@dataclass(frozen=True)
class Selection:
    add_correct: bool = True
    add_incorrect: bool = False
    add_unlabeled: bool = False
    min_majority_votes: int = 0
    min_majority_percentage: float = 0.0


def select(rows: list[dict], selection: Selection, report: Report) -> list[dict]:
    """Keeps rows by correctness, then applies the majority filter; records both steps."""
    kept = []
    for row in rows:
        if is_unlabeled(row):
            keep = selection.add_unlabeled
        elif row["symbolic_correct"]:
            keep = selection.add_correct
        else:
            keep = selection.add_incorrect
        if keep:
            kept.append(row)
    report.record("correctness selection", len(rows), len(kept))
    before = len(kept)
    kept = [r for r in kept if passes_majority_filter(r, selection)]
    report.record("majority filter", before, len(kept))
    return kept


def passes_majority_filter(row: dict, selection: Selection) -> bool:
    if "majority_votes" not in row:
        return True
    votes, total = row["majority_votes"], row["total_votes"]
    return votes >= selection.min_majority_votes and votes >= total * (
        selection.min_majority_percentage
    )


def deduplicate(rows: list[dict]) -> list[dict]:
    """Drops repeated (problem, generation) pairs, keeping the first."""
    seen, out = set(), []
    for row in rows:
        key = (row["problem"], row["generation"])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def format_example(
    row: dict, prompt: PromptConfig, render: Callable[[list[dict], bool], str]
) -> dict:
    """The SFT record: chat ``messages`` plus ``input``/``output`` strings with the template
    applied, as NeMo-RL's prompt-response datasets expect.

    ``render(messages, add_generation_prompt)`` applies the student's chat template. ``output``
    is what the template adds after the prompt for the assistant turn (the answer and the
    end-of-turn tokens), so ``input + output`` is exactly the rendered conversation.
    """
    prompt_messages = prompt.messages(row)
    messages = [*prompt_messages, {"role": "assistant", "content": row["generation"]}]
    text_input = render(prompt_messages, True)
    full = render(messages, False)
    if not full.startswith(text_input):
        raise ValueError(
            "the chat template renders the prompt differently inside the full conversation; "
            "cannot split it into input and output"
        )
    return {
        "messages": messages,
        "input": text_input,
        "output": full[len(text_input) :],
        "problem": row["problem"],
        "expected_answer": row.get("expected_answer"),
    }


def shuffle(rows: list[dict], seed: int) -> list[dict]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows

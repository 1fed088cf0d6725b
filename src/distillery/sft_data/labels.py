"""Which solutions are correct: majority answers where none is known, then equivalence."""

from __future__ import annotations

from collections import Counter

from distillery.grading.answers import ExtractionConfig, extract_answer, is_equivalent

NO_VALID_ANSWER = "no_valid_answer_found"


def fill_majority_answer(rows: list[dict]) -> bool:
    """Labels one problem's rows (its solutions across seeds) with the most frequent predicted
    answer when it has no ``expected_answer``, as NeMo-Skills' ``fill_majority_answer`` does:
    exact-string votes, ``majority_votes``, ``total_votes`` (= number of seeds) and
    ``fill_mode``; ``no_valid_answer_found`` when nobody answered. Returns whether it filled."""
    if rows[0].get("expected_answer"):
        return False
    votes = Counter(r["predicted_answer"] for r in rows if r["predicted_answer"] is not None)
    answer, count = votes.most_common(1)[0] if votes else (NO_VALID_ANSWER, 0)
    for row in rows:
        row.update(
            expected_answer=answer,
            majority_votes=count,
            total_votes=len(rows),
            fill_mode="majority",
        )
    return True


def add_predicted_answer(row: dict, extraction: ExtractionConfig) -> None:
    row["predicted_answer"] = extract_answer(row["generation"], extraction)


def label(row: dict) -> None:
    """Sets ``symbolic_correct``: the predicted answer is equivalent to ``expected_answer``."""
    label_group([row])


def label_group(rows: list[dict]) -> None:
    """:func:`label` for one problem's rows, grading each distinct (gold, predicted) pair once:
    seeds of a problem mostly agree, and grading is the costly part."""
    verdicts: dict[tuple, bool] = {}
    for row in rows:
        key = (row.get("expected_answer"), row["predicted_answer"])
        if key not in verdicts:
            expected, predicted = key
            verdicts[key] = expected not in (None, NO_VALID_ANSWER) and is_equivalent(
                expected, predicted
            )
        row["symbolic_correct"] = verdicts[key]


def is_unlabeled(row: dict) -> bool:
    return row.get("expected_answer") in (None, "", NO_VALID_ANSWER)


def passes_majority_filter(row: dict, min_votes: int, min_share: float) -> bool:
    """Majority-labelled rows need enough agreeing seeds; other rows always pass."""
    if "majority_votes" not in row:
        return True
    votes = row["majority_votes"]
    return votes >= min_votes and votes >= row["total_votes"] * min_share

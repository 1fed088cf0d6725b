"""The answer judge: an LLM judges each final answer against the expected one (NeMo-Skills'
format, the last line "Judgement: Yes" or "Judgement: No"). ``judge_solutions`` judges the
teacher's labelled solutions for the SFT data; ``judge_eval`` an evaluation run's graded
answers, beside symbolic grading."""

from __future__ import annotations

from pydantic import Field

from distillery.errors import DistilleryError
from distillery.jsonl import read_jsonl, write_jsonl
from distillery.processing.base import (
    NO_VALID_SUMMARY,
    REF,
    Answers,
    Outcome,
    ProcessingStep,
    StepFiles,
    lenient,
    request,
)
from distillery.processing.parsers import parse_judgement
from distillery.prompts import PromptConfig, load_prompt
from distillery.settings.steps import ParsedStep

# NeMo-Skills' prefilled verdicts: no model call where the answer is missing or identical
NO_ANSWER_JUDGEMENT = "Reasoning: No answer was provided.\nJudgement: No"
SAME_ANSWER_JUDGEMENT = "Reasoning: The two answers are identical.\nJudgement: Yes"


class AnswerJudge(ParsedStep):
    """an LLM judges each final answer against the expected one (`judgement`, NeMo-Skills'
    format: the last line is "Judgement: Yes" or "Judgement: No")"""

    prompt: str = Field("prompts/judge-answer.yaml", description="prompt config file")


class EvaluationJudge(AnswerJudge):
    """judge the evaluation answers of some benchmarks (judge_correct, both_correct and
    any_correct beside symbolic_correct); the judged run's model is `server.model`"""

    benchmarks: list[str] | None = Field(
        None,
        description="benchmarks to judge (keys of evaluation.benchmarks); default those whose "
        "definition asks for a judge (omni-math)",
    )


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


def select_solutions(files: StepFiles, block: AnswerJudge) -> list[dict]:
    """Labels the solutions as the SFT data stage does (predicted answer; the majority answer
    where none is known; symbolic correctness) into the labelled seed files (``outputs``), and
    asks for a verdict on each labelled solution."""
    from distillery.sft_data.labels import is_unlabeled
    from distillery.sft_data.pipeline import Labelling, label_rows

    files.per_input("judge_solutions select")
    labelling = Labelling(files.extraction, files.fill_majority)
    seeds = [read_jsonl(path, allow_empty=True) for path in files.inputs]
    if len({len(rows) for rows in seeds}) > 1:
        raise DistilleryError(
            f"{', '.join(files.inputs)}: solution files have different row counts; each seed "
            "must cover the same problems in the same order"
        )
    prompt = load_prompt(block.prompt)
    requests = []
    for line, group in enumerate(zip(*seeds, strict=True)):
        answered = [row for row in group if row.get("generation") and row.get("problem")]
        label_rows(answered, labelling)
        # a solution with no valid summary is not SFT data: it votes, but is not judged
        labelled = {
            id(row) for row in answered if not is_unlabeled(row) and not row.get(NO_VALID_SUMMARY)
        }
        for seed, row in enumerate(group):
            if id(row) in labelled:
                where = f"{files.inputs[seed]}:{line + 1}"
                requests.append(judge_request(f"{seed}:{line}", row, prompt, where))
    for path, rows in zip(files.outputs, seeds, strict=True):
        write_jsonl(path, rows)
    return requests


def select_eval(files: StepFiles, block: EvaluationJudge) -> list[dict]:
    prompt = load_prompt(block.prompt)
    requests = []
    for position, path in enumerate(files.inputs):
        for line, row in enumerate(read_jsonl(path, allow_empty=True)):
            if "predicted_answer" not in row:
                raise DistilleryError(f"{path}:{line + 1}: no 'predicted_answer'; grade it first")
            where = f"{path}:{line + 1}"
            requests.append(judge_request(f"{position}:{line}", row, prompt, where))
    return requests


def put_verdicts(
    files: StepFiles, block: AnswerJudge, answers: Answers, against_symbolic: bool
) -> Outcome:
    """Puts each verdict on its row (``judgement``, and ``judge_correct`` as this step's parse
    read it: no verdict is incorrect, as NeMo-Skills counts it); rows that were not judged (no
    expected answer) get none. ``against_symbolic``: count the verdicts against
    ``symbolic_correct`` too (the report's agreement table)."""
    files.per_input("judge apply")
    decided = {item[REF]: item for item in answers.prefilled}
    generations = answers.by_ref
    out = Outcome(files=[])
    for position, path in enumerate(files.inputs):
        rows = read_jsonl(path, allow_empty=True)
        for line, row in enumerate(rows):
            ref = f"{position}:{line}"
            item = decided.get(ref) or generations.get(ref)
            if item is None:
                continue
            text = item.get("judgement") if ref in decided else item.get("generation")
            row["judgement"] = text
            verdict = parse_judgement(text, lenient(block))
            if verdict is None:
                out.unparsed(f"{path}:{line + 1}", text)
            else:
                out.counts["judged_correct" if verdict else "judged_wrong"] += 1
            row["judge_correct"] = verdict is True
            if against_symbolic and "symbolic_correct" in row:
                key = f"judge_{_word(verdict)}_symbolic_{_word(row['symbolic_correct'])}"
                out.counts[key] += 1
        out.files.append(rows)
        out.kept.extend(rows)
    if against_symbolic:
        out.report = agreement_table(out.counts)
    return out


def agreement_table(counts) -> str:
    """The judge's verdicts against symbolic grading, as a confusion table (markdown)."""
    rows = [("judge: correct", "yes"), ("judge: wrong", "no"), ("judge: no verdict", "none")]
    lines = ["| | symbolic: correct | symbolic: wrong |", "|---|---:|---:|"]
    for label, judge in rows:
        cells = [counts.get(f"judge_{judge}_symbolic_{s}", 0) for s in ("yes", "no")]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    agree = counts.get("judge_yes_symbolic_yes", 0) + counts.get("judge_no_symbolic_no", 0)
    decided = sum(
        counts.get(f"judge_{j}_symbolic_{s}", 0) for j in ("yes", "no") for s in ("yes", "no")
    )
    share = f"{100.0 * agree / decided:.1f}%" if decided else "n/a"
    return (
        "\n".join(lines)
        + f"\n\nAgreement where the judge gave a verdict: {share} ({agree} of {decided}).\n"
    )


def _word(verdict: bool | None) -> str:
    return "none" if verdict is None else ("yes" if verdict else "no")


STEPS = (
    ProcessingStep(
        "judge_solutions",
        AnswerJudge,
        select_solutions,
        lambda files, block, answers: put_verdicts(files, block, answers, False),
        block=("solution_judge",),
        area="sdg/judge",
    ),
    ProcessingStep(
        "judge_eval",
        EvaluationJudge,
        select_eval,
        lambda files, block, answers: put_verdicts(files, block, answers, True),
        block=("evaluation", "judge"),
        area="evals/{run}/judge",
    ),
)

"""The full OpenMathReasoning pipeline, for real, on the tiny-full scenario: every LLM processing
step runs the embedded model on the CPU. The model is a weak classifier and judge: the test
checks that every step ran and accounted for every row, not what the model said."""

import json

import pytest

from distillery.jsonl import read_jsonl

from .conftest import REPO, planned_jobs, scratch_workdir, snakemake

FULL = REPO / "tests" / "scenarios" / "tiny-full.yaml"
PROFILE = REPO / "profiles" / "local"
STEPS = ("classify", "extract_answer", "convert_proofs", "check_contamination")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = scratch_workdir(tmp_path_factory.mktemp("tiny-full-run"))
    targets = ("results/sft/sft-data.jsonl", "results/comparison.md")
    snakemake(workdir, "--profile", str(PROFILE), *targets, configfile=FULL)
    return workdir


def report(path):
    return json.loads(path.read_text())


def test_every_problem_step_ran_and_accounted_for_its_rows(finished_run):
    results = finished_run / "results"
    rows = len(read_jsonl(results / "sdg/extracted-problems.jsonl"))
    for step in STEPS:
        counts = report(results / f"sdg/processing/{step}/report.json")
        assert counts["rows"] == rows, (step, counts)
        kept = read_jsonl(results / f"sdg/processing/{step}/problems.jsonl", allow_empty=True)
        dropped = read_jsonl(results / f"sdg/processing/{step}/dropped.jsonl", allow_empty=True)
        assert len(kept) + len(dropped) == rows == counts["kept"] + counts["dropped"]
        rows = len(kept)
    classified = read_jsonl(results / "sdg/processing/classify/problems.jsonl")
    assert all(r["problem_class"] for r in classified)
    assert all(f"classify_{c}_gen" in r for r in classified for c in ("proof", "invalid"))
    # the solutions are generated for what the last step kept
    solved = read_jsonl(results / "sdg/solutions/output-rs0.jsonl")
    last = read_jsonl(results / "sdg/processing/check_contamination/problems.jsonl")
    assert [r["problem"] for r in solved] == [r["problem"] for r in last]
    verdicts = read_jsonl(
        results / "sdg/processing/check_contamination/verdicts.jsonl", allow_empty=True
    )
    assert report(results / "sdg/processing/check_contamination/report.json")["pairs"] == len(
        verdicts
    )


def test_solutions_are_judged_and_the_sft_data_selected_by_the_judge(finished_run):
    results = finished_run / "results"
    # the summary rewriting ran (2 rewrites of each solution, as the scenario says; each
    # solution rewritten or marked) and the judge read its files
    summaries = report(results / "sdg/summaries/report.json")
    solutions = 2 * len(read_jsonl(results / "sdg/solutions/output-rs0.jsonl"))
    assert summaries["rows"] == solutions and summaries["rewrites"] == 2 * solutions
    assert summaries.get("rewritten", 0) + summaries.get("no_valid_summary", 0) == solutions
    judged = [read_jsonl(results / f"sdg/judged/output-rs{s}.jsonl") for s in (0, 1)]
    counts = report(results / "sdg/judge/report.json")
    verdicts = [r for rows in judged for r in rows if "judgement" in r]
    assert verdicts and len(verdicts) == sum(
        counts.get(key, 0) for key in ("judged_correct", "judged_wrong", "unparsed")
    )
    assert all(isinstance(r["judge_correct"], bool) for r in verdicts)
    sft = report(results / "sft/report.json")
    assert sft["written_train"] == len(read_jsonl(results / "sft/sft-data.jsonl", allow_empty=True))


def test_the_evaluation_judge_adds_judge_metrics_and_an_agreement_table(finished_run):
    results = finished_run / "results"
    for seed in (0, 1):
        rows = read_jsonl(results / f"evals/baseline/judged/demo/output-rs{seed}.jsonl")
        assert len(rows) == 6 and all("judgement" in r and "symbolic_correct" in r for r in rows)
    metrics = report(results / "evals/baseline/eval-results/demo/metrics.json")["demo"]
    assert {"judge_correct", "both_correct", "any_correct", "symbolic_correct"} <= set(
        metrics["pass@1[avg-of-2]"]
    )
    table = (results / "evals/baseline/judge/report.md").read_text()
    assert "| | symbolic: correct | symbolic: wrong |" in table
    counts = report(results / "evals/baseline/judge/report.json")
    cells = sum(v for k, v in counts.items() if k.startswith("judge_") and "_symbolic_" in k)
    assert cells == 12  # 6 problems x 2 seeds
    assert "judge_correct" in (results / "comparison.md").read_text()


def test_nothing_left_to_do(finished_run):
    targets = ("results/sft/sft-data.jsonl", "results/comparison.md")
    assert planned_jobs(finished_run, *targets, configfile=FULL) == {}

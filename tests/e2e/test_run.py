"""The whole DAG, for real, on the tiny scenario: every stage runs the real model on the CPU."""

import csv
import io
import os
import re

import pytest
import yaml

from distillery.jsonl import read_jsonl

from ..conftest import wandb_history
from .conftest import REPO, planned_jobs, scratch_workdir, snakemake

TINY = REPO / "tests" / "scenarios" / "tiny.yaml"
PROFILE = REPO / "profiles" / "local"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = scratch_workdir(tmp_path_factory.mktemp("tiny-run"))
    snakemake(workdir, "--profile", str(PROFILE), configfile=TINY)
    return workdir


def test_every_declared_output_exists(finished_run):
    results = finished_run / "results"
    expected = [
        "models/smollm2-135m/config.json",
        "data/raw-posts.jsonl",
        "benchmarks/demo/test.jsonl",
        "sdg/problems/output.jsonl",
        "sdg/extracted-problems.jsonl",
        "sdg/extracted-problems-dropped.jsonl",
        "sdg/solutions/output-rs0.jsonl",
        "sdg/solutions/output-rs1.jsonl",
        "sft/sft-data.jsonl",
        "sft/report.json",
        "sft/report.md",
        "sft/sft-validation.jsonl",
        "sft/contamination.jsonl",
        "train/model/config.json",
        "train/model/model.safetensors",
        "train/train-metrics.json",
        "comparison.md",
        "comparison.csv",
    ]
    for run in ("baseline", "trained", "trained-nothink"):
        base = f"evals/{run}/eval-results/demo"
        expected += [f"{base}/output-rs{s}.jsonl" for s in (0, 1)]
        expected += [f"{base}/metrics.{ext}" for ext in ("json", "md", "csv", "png")]
        expected.append(f"evals/{run}/wandb-run.json")
    missing = [p for p in expected if not (results / p).is_file()]
    assert not missing
    # a generation job's chunk files stay (a rerun keeps the ones it need not generate again,
    # and their times); the processing steps' temp() ones are gone; no resume file is left
    chunks = [str(p.relative_to(results)) for p in results.rglob("*_chunk_*.jsonl")]
    assert chunks and all(re.match(r"(evals/[^/]+/generations|sdg/solutions)/", p) for p in chunks)
    assert not list(results.rglob("*.partial"))
    # W&B: the three evaluation runs, the SDG samples and the training curves, one group
    assert (results / "sdg/wandb-run.json").is_file()
    runs = list((results / "wandb").glob("offline-run-*"))
    assert len(runs) == 5
    groups = {wandb_history(run)[0] for run in runs}
    assert groups == {(results / "wandb/group").read_text().strip()}


def test_outputs_follow_the_data_contracts(finished_run):
    results = finished_run / "results"
    for row in read_jsonl(results / "evals/trained/eval-results/demo/output-rs0.jsonl"):
        assert {"id", "problem", "expected_answer", "generation", "num_generated_tokens"} <= set(
            row
        )
        assert {"finish_reason", "generation_time", "predicted_answer", "symbolic_correct"} <= set(
            row
        )
    for row in read_jsonl(results / "sdg/extracted-problems.jsonl"):
        assert {"problem", "extracted_problem_idx", "problem_extraction_gen", "forum_post"} <= set(
            row
        )
    for row in read_jsonl(results / "sft/sft-data.jsonl"):
        assert {"messages", "input", "output", "expected_answer"} <= set(row)
        assert row["messages"][-1]["role"] == "assistant"


def test_comparison_table_has_benchmarks_runs_and_columns(finished_run):
    rows = list(csv.DictReader(io.StringIO((finished_run / "results/comparison.csv").read_text())))
    assert rows
    runs = ("baseline", "trained", "trained-nothink")
    assert set(rows[0]) == {
        "benchmark",
        "evaluation_mode",
        "metric",
        *runs,
        "delta_trained",
        "delta_trained-nothink",
        *(f"std_{run}" for run in runs),
    }
    assert {r["benchmark"] for r in rows} == {"demo"}
    assert {r["evaluation_mode"] for r in rows} == {"pass@1[avg-of-2]", "majority@2", "pass@2"}
    assert {r["metric"] for r in rows} == {"symbolic_correct", "no_answer", "avg_tokens"}
    for row in rows:
        for run in runs[1:]:
            assert float(row[f"delta_{run}"]) == pytest.approx(
                float(row[run]) - float(row["baseline"])
            )
    table = (finished_run / "results/comparison.md").read_text()
    assert (
        "| benchmark | evaluation_mode | metric | baseline | trained | trained-nothink "
        "| Δ trained | Δ trained-nothink |"
    ) in table
    assert re.search(
        r"\| demo \| pass@1\[avg-of-2\] \| symbolic_correct \| [\d.]+% ± [\d.]+ \|", table
    )


def test_dual_mode_runs_sent_their_system_prompts(finished_run):
    # the two runs of the trained model differ only by their system prompt
    for run, system in (
        ("trained", "detailed thinking on"),
        ("trained-nothink", "detailed thinking off"),
    ):
        log = (finished_run / f"logs/generate_eval/{run}/chunk_0.log").read_text()
        assert f"'system': '{system}'" in log or f'"system": "{system}"' in log, log[:2000]


def test_nothing_left_to_do(finished_run):
    assert planned_jobs(finished_run, configfile=TINY) == {}


def test_editing_a_prompt_reruns_only_what_depends_on_it(finished_run):
    prompt = finished_run / "prompts/extract-problems.yaml"
    original, stat = prompt.read_text(), prompt.stat()
    prompt.write_text(original + "\n# edited\n")
    try:
        jobs = planned_jobs(finished_run, configfile=TINY)
    finally:
        prompt.write_text(original)
        os.utime(prompt, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert {"extract_problems", "generate_solutions", "train_sft"} <= set(jobs)
    assert not {"gguf_to_hf", "prepare_raw_data", "prepare_benchmark"} & set(jobs)
    # only the trained model's evaluations depend on the extraction prompt
    assert jobs["generate_eval"] == 4  # 2 runs of the trained model, 2 chunks each
    assert jobs["summarize"] == 2


def test_editing_a_stage_config_reruns_only_what_depends_on_it(finished_run, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["training"]["learning_rate"] = 1e-4
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(finished_run, configfile=edited)
    assert "train_sft" in jobs
    assert not {"extract_problems", "generate_solutions", "prepare_sft_data"} & set(jobs)
    assert jobs["generate_eval"] == 4


def test_html_report_collects_tables_and_plots(finished_run):
    report = finished_run / "report.html"
    snakemake(finished_run, "--report", str(report), configfile=TINY)
    text = report.read_text(errors="replace")
    assert "comparison.csv" in text
    assert "metrics.png" in text


def test_a_missing_chunk_file_is_named_with_the_way_out(finished_run):
    chunk = finished_run / "results/evals/baseline/generations/demo/output-rs0_chunk_1.jsonl"
    aside = chunk.with_name("aside")
    os.replace(chunk, aside)
    try:
        result = snakemake(finished_run, "-n", configfile=TINY, check=False)
    finally:
        os.replace(aside, chunk)
    assert result.returncode != 0
    assert (
        "results/evals/baseline/generations/demo/output-rs0_chunk_1.jsonl is missing, though "
        "rule generate_eval's job that writes it finished "
        "(results/evals/baseline/generations/.chunk_1.done): delete that file"
    ) in result.stdout + result.stderr
    assert planned_jobs(finished_run, configfile=TINY) == {}


def test_raising_seeds_generates_only_the_new_seed(finished_run, tmp_path):
    """Last in this module: it adds a seed to the finished run's evaluations."""
    config = yaml.safe_load(TINY.read_text())
    config["evaluation"]["benchmarks"] = {"demo": 3}
    edited = tmp_path / "three-seeds.yaml"
    edited.write_text(yaml.safe_dump(config))
    evals = finished_run / "results" / "evals"
    earlier = {p: p.read_bytes() for p in evals.glob("*/generations/demo/output-rs[01].jsonl")}
    assert len(earlier) == 6  # 3 runs x 2 seeds
    # seeds 0 and 1: their generations, chunk files, grading and the merges' and graders' logs
    kept = [
        *evals.glob("*/generations/demo/output-rs[01]*.jsonl"),
        *evals.glob("*/eval-results/demo/output-rs[01].jsonl"),
        *(finished_run / "logs").glob("merge_eval_chunks/*/demo/rs[01].log"),
        *(finished_run / "logs").glob("grade/*/demo/rs[01].log"),
    ]
    assert len(kept) == 6 * 3 + 6 + 6 + 6
    times = {p: p.stat().st_mtime_ns for p in kept}
    snakemake(finished_run, "--profile", str(PROFILE), configfile=edited)
    assert {p: p.stat().st_mtime_ns for p in kept} == times  # neither rewritten nor touched
    logs = sorted((finished_run / "logs" / "generate_eval").rglob("*.log"))
    assert len(logs) == 6  # 3 runs x 2 chunks, each run again
    for log in logs:
        # each job's share of seeds 0 and 1 came from the merged files: only seed 2 generated
        generated = re.findall(r"seed (\d+) -> \S+: (\d+) to generate", log.read_text())
        assert {seed for seed, _ in generated} <= {"2"}, log.read_text()[-2000:]
    for run in ("baseline", "trained", "trained-nothink"):
        text = "".join(p.read_text() for p in logs if p.parent.name == run)
        assert sum(int(n) for n in re.findall(r"(\d+) to generate", text)) == 6  # seed 2's rows
    assert {p: p.read_bytes() for p in earlier} == earlier
    for run in ("baseline", "trained", "trained-nothink"):
        assert len(read_jsonl(evals / run / "generations" / "demo" / "output-rs2.jsonl")) == 6

"""Provenance, plots and W&B logging of evaluation results."""

import json
from pathlib import Path

import pytest

from distillery import log_wandb, summarize
from distillery.errors import DistilleryError
from distillery.reports.plots import curves
from distillery.reports.provenance import config_hash, git_commit, package_versions
from distillery.settings.workflow import Wandb

from ..conftest import REPO, wandb_history, write_jsonl


def graded(correct, answer="1"):
    return {"symbolic_correct": correct, "predicted_answer": answer, "num_generated_tokens": 5}


def summarized(tmp_path, run="trained"):
    files = [
        str(write_jsonl(tmp_path / run / f"output-rs{s}.jsonl", [graded(c), graded(not c, "2")]))
        for s, c in enumerate([True, False, True])
    ]
    path = tmp_path / run / "metrics.json"
    summarize.main(
        summarize.Config(
            benchmark="demo", files=tuple(files), save_metrics_path=str(path), config_hash="abc"
        )
    )
    return path, files


def test_metrics_record_provenance(tmp_path):
    path, _ = summarized(tmp_path)
    data = json.loads(path.read_text())
    origin = data["_provenance"]
    assert origin["config_hash"] == "abc"
    assert {"distillery", "math-verify", "sympy"} <= set(origin["packages"])
    assert origin["git_commit"] == git_commit(REPO)
    assert origin["date"].endswith("+00:00")
    assert "commit" in (tmp_path / "trained" / "metrics.md").read_text().splitlines()[-1]


def test_plot_is_written(tmp_path):
    path, _ = summarized(tmp_path)
    png = path.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_start_at_pass_at_1():
    metrics = json.loads(
        json.dumps(
            {
                "pass@1": {"symbolic_correct": 10.0},
                "pass@2": {"symbolic_correct": 15.0},
                "pass@1[avg-of-2]": {"symbolic_correct": 12.0},
                "majority@2": {"symbolic_correct": 11.0},
            }
        )
    )
    assert curves(metrics) == {
        "pass@1[avg-of-k]": [(1, 10.0), (2, 12.0)],
        "majority@k": [(1, 10.0), (2, 11.0)],
        "pass@k": [(1, 10.0), (2, 15.0)],
    }


def test_config_hash_and_versions():
    assert config_hash({"a": 1, "b": [2]}) == config_hash({"b": [2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert "sympy" in package_versions(("sympy", "not-a-package"))


def test_wandb_offline_run_lands_in_the_results_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    path, files = summarized(tmp_path)
    note = tmp_path / "wandb-run.json"
    log_wandb.main(
        log_wandb.Config(
            run="trained",
            metrics=(str(path),),
            samples=tuple(files),
            output=str(note),
            dir=str(tmp_path / "results"),
            wandb=Wandb(mode="offline", num_samples=4),
        )
    )
    info = json.loads(note.read_text())
    assert info["mode"] == "offline" and info["sync"].startswith("wandb sync ")
    run_dir = tmp_path / "results" / "wandb"
    runs = list(run_dir.glob("offline-run-*"))
    assert len(runs) == 1 and str(runs[0]) == info["run_dir"]
    assert list(runs[0].glob("*.wandb"))


def test_wandb_flatten_skips_provenance():
    flat = log_wandb.flatten(
        {"demo": {"pass@1": {"symbolic_correct": 5.0, "num_entries": 3}}, "_provenance": {"x": 1}}
    )
    assert flat == {"demo/pass@1/symbolic_correct": 5.0, "demo/pass@1/num_entries": 3}


def test_sdg_samples_and_one_group_per_pipeline(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    problems = write_jsonl(
        tmp_path / "problems.jsonl",
        [{"forum_post": f"post {i}", "generation": f"Problem 1: {i}", "finish_reason": "stop",
          "num_generated_tokens": 5} for i in range(3)],
    )  # fmt: skip
    solutions = [
        write_jsonl(
            tmp_path / f"output-rs{seed}.jsonl",
            [
                {
                    "problem": "1+1?",
                    "generation": "\\boxed{2}",
                    "finish_reason": reason,
                    "num_generated_tokens": 4,
                }
                for reason in ("stop", "length")
            ],
        )  # fmt: skip
        for seed in (0, 1)
    ]
    results = tmp_path / "results"
    log_wandb.main(
        log_wandb.Config(
            run="sdg",
            generations=(f"problem_extraction={problems}", *(f"solutions={p}" for p in solutions)),
            output=str(tmp_path / "sdg.json"),
            dir=str(results),
            wandb=Wandb(mode="offline", num_samples=2),
        )
    )
    info = json.loads((tmp_path / "sdg.json").read_text())
    run_dir = Path(info["run_dir"])
    tables = sorted(p.name.rsplit("_", 2)[0] for p in run_dir.rglob("*.table.json"))
    assert tables == ["problem_extraction_samples", "solutions_samples"]
    solutions_table = json.loads(next(run_dir.rglob("solutions_samples*.table.json")).read_text())
    assert solutions_table["columns"] == list(log_wandb.GENERATION_COLUMNS)
    assert len(solutions_table["data"]) == 2
    group, history = wandb_history(run_dir)
    logged = {k: v for row in history for k, v in row.items()}
    assert logged["solutions/samples"] == "4" and float(logged["solutions/finish_length"]) == 50.0
    assert logged["problem_extraction/samples"] == "3"
    # the first piece made the pipeline's group; the next piece of the same results joins it
    assert group == info["group"] == (results / "wandb" / "group").read_text().strip()
    path, files = summarized(tmp_path / "eval")
    log_wandb.main(
        log_wandb.Config(run="trained", metrics=(str(path),), samples=tuple(files),
                         output=str(tmp_path / "eval.json"), dir=str(results),
                         wandb=Wandb(mode="offline", num_samples=2))
    )  # fmt: skip
    assert json.loads((tmp_path / "eval.json").read_text())["group"] == group


def test_pipeline_group(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    assert log_wandb.pipeline_group(Wandb(group="mine"), tmp_path) == "mine"
    with ThreadPoolExecutor(8) as pool:
        names = set(pool.map(lambda _: log_wandb.pipeline_group(Wandb(), tmp_path), range(16)))
    assert len(names) == 1 and names.pop().startswith("distillery-")


def test_nothing_to_log_is_an_error(tmp_path):
    config = log_wandb.Config(run="x", output=str(tmp_path / "n.json"), wandb=Wandb(mode="offline"))
    with pytest.raises(DistilleryError, match="nothing to log"):
        log_wandb.main(config)

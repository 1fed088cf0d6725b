"""Config values reach the jobs' shell commands quoted: paths with a space, a `;` and a `$(...)`
run a real evaluation through Snakemake, and nothing in them is executed; the stage's block is
its job's parameter, so a changed setting reruns the job."""

import shutil

import yaml

from .conftest import REPO, planned_jobs, snakemake

HOSTILE = "odd dir;$(touch pwned) `touch pwned2`"


def test_hostile_model_and_prompt_paths_run_and_execute_nothing(tmp_path, tiny_model_dir):
    model = tmp_path / f"model {HOSTILE}"
    shutil.copytree(tiny_model_dir, model)
    prompts = tmp_path / f"prompts {HOSTILE}"
    prompts.mkdir()
    shutil.copy(REPO / "prompts" / "math.yaml", prompts / "math $(touch pwned3).yaml")
    prompt = str((prompts / "math $(touch pwned3).yaml").relative_to(tmp_path))
    server = {"type": "hf", "batch_size": 2}
    config = {
        "models": {"tiny": {"source": "path", "path": str(model.relative_to(tmp_path))}},
        "raw_data": {"source": "demo", "num_posts": 2},
        "benchmarks": {"demo": {"size": 2}},
        "problem_extraction": {"prompt": prompt, "server": {**server, "model": "tiny"}},
        "solutions": {"prompt": prompt, "server": {**server, "model": "tiny"}, "seeds": 1},
        "sft_data": {"prompt": prompt},
        "training": {"model": "tiny", "method": "lora"},
        "evaluation": {
            "prompt": prompt,
            "benchmarks": {"demo": 1},
            "server": server,
            "inference": {"max_tokens": 4},
            "runs": {"base": "tiny"},
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    target = "results/evals/base/eval-results/demo/metrics.json"
    snakemake(tmp_path, "--cores", "2", target, configfile=path)
    assert (tmp_path / target).is_file()
    graded = tmp_path / "results/evals/base/eval-results/demo/output-rs0.jsonl"
    assert len(graded.read_text().splitlines()) == 2
    assert not list(tmp_path.rglob("pwned*"))
    assert not list(REPO.glob("pwned*"))

    # the block is the job's parameter: the same settings plan nothing, a changed one reruns
    assert planned_jobs(tmp_path, target, configfile=path) == {}
    config["evaluation"]["inference"]["temperature"] = 0.6
    path.write_text(yaml.safe_dump(config))
    replanned = planned_jobs(tmp_path, target, configfile=path)
    assert replanned["generate_eval"] == 1 and "prepare_benchmark" not in replanned

"""The planned DAG (dry runs, seconds): what each target needs, and config errors."""

import yaml

from .conftest import REPO, planned_jobs, snakemake

DEFAULT = REPO / "config" / "config.yaml"
TINY = REPO / "tests" / "scenarios" / "tiny.yaml"


def test_default_config_plans_every_stage(tmp_path):
    assert planned_jobs(tmp_path, configfile=DEFAULT) == {
        "gguf_to_hf": 1,
        "prepare_raw_data": 1,
        "prepare_benchmark": 1,
        "extract_problems": 1,
        "postprocess_problems": 1,
        "generate_solutions": 8,
        "merge_solutions": 4,
        "prepare_sft_data": 1,
        "train_sft": 1,
        "generate_eval": 8,
        "merge_eval_chunks": 8,
        "grade": 8,
        "summarize": 2,
        "compare_runs": 1,
        "log_wandb": 2,
    }


def test_baseline_metrics_target_needs_no_training(tmp_path):
    target = "results/evals/baseline/eval-results/demo/metrics.json"
    assert planned_jobs(tmp_path, target, configfile=TINY) == {
        "gguf_to_hf": 1,
        "prepare_benchmark": 1,
        "generate_eval": 4,
        "merge_eval_chunks": 2,
        "grade": 2,
        "summarize": 1,
    }


def test_sft_data_target_needs_no_evaluation(tmp_path):
    jobs = planned_jobs(tmp_path, "results/sft/sft-data.jsonl", configfile=TINY)
    assert set(jobs) == {
        "gguf_to_hf",
        "prepare_raw_data",
        "extract_problems",
        "postprocess_problems",
        "generate_solutions",
        "merge_solutions",
        "prepare_sft_data",
    }


def test_unknown_key_stops_the_run_naming_it(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["training"]["learning_rte"] = 1e-4
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", configfile=path, check=False)
    assert result.returncode != 0
    assert "config key 'training.learning_rte' is not allowed" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_model_path_that_does_not_exist(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["models"]["mine"] = {"source": "path", "path": "models/mine"}
    config["evaluation"]["runs"]["mine"] = "mine"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", configfile=path, check=False)
    assert result.returncode != 0
    message = "config key 'models.mine.path': directory models/mine does not exist"
    assert message in result.stdout + result.stderr


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", configfile=DEFAULT)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


OMR = REPO / "config" / "recipes" / "openmathreasoning.yaml"
QLORA = REPO / "config" / "recipes" / "qlora-8b-reasoning.yaml"


def test_openmathreasoning_recipe_plans_every_stage(tmp_path):
    assert planned_jobs(tmp_path, configfile=OMR) == {
        "download_model": 2,  # Qwen2.5-14B-Instruct, QwQ-32B
        "prepare_raw_data": 1,
        "prepare_benchmark": 2,  # aime24, aime25
        "extract_problems": 1,
        "postprocess_problems": 1,
        "generate_solutions": 4,  # 1 seed x 4 chunks
        "merge_solutions": 1,
        "prepare_sft_data": 1,
        "train_sft": 1,
        "generate_eval": 32,  # 2 runs x 2 benchmarks x 8 seeds
        "merge_eval_chunks": 32,
        "grade": 32,
        "summarize": 4,
        "compare_runs": 1,
        "log_wandb": 2,
    }


def test_qlora_recipe_plans_every_stage(tmp_path):
    assert planned_jobs(tmp_path, configfile=QLORA) == {
        "download_model": 1,
        "prepare_raw_data": 1,  # Nemotron: problems with their solutions, no teacher
        "prepare_benchmark": 2,  # gpqa-diamond, mmlu
        "prepare_sft_data": 1,
        "train_sft": 1,
        "generate_eval": 10,  # 2 runs x (4 + 1 seeds)
        "merge_eval_chunks": 10,
        "grade": 10,
        "summarize": 4,
        "compare_runs": 1,
        "log_wandb": 2,
    }


def test_recipe_settings_reach_the_commands(tmp_path):
    result = snakemake(tmp_path, "-n", "-p", "--forceall", configfile=OMR)
    commands = result.stdout
    assert "trtllm" in commands and "--gpus 8" in commands
    assert "accelerate launch --num_processes 8 --module distillery.train_sft" in commands
    assert "--learning-rate 1e-05" in commands and "--max-seq-length 8192" in commands
    assert "--parse-reasoning" in commands and "--max-tokens 16384" in commands
    result = snakemake(tmp_path, "-n", "-p", "--forceall", configfile=QLORA)
    commands = result.stdout
    assert "--method qlora" in commands and "--use-rslora" in commands
    assert "--lora-r 64 --lora-alpha 128" in commands
    assert "--subsets math=50000 code=20000 science=5000" in commands
    assert "--mode multichoice" in commands


def test_recipes_do_not_inherit_the_default_config(tmp_path):
    result = snakemake(tmp_path, "-n", "-p", "--forceall", configfile=QLORA)
    assert "smollm2" not in result.stdout
    assert "--max-steps" not in result.stdout  # the default's 12 steps must not leak in

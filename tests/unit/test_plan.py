from types import SimpleNamespace

import pytest
import yaml

from distillery.planning.config_check import validate_config
from distillery.planning.plan import Plan

from ..conftest import REPO

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def plan_of(config: dict, targeted: str | None = None) -> Plan:
    cfg = validate_config(config, SCHEMA, workdir=REPO, workflow_dir=REPO)
    return Plan(config, cfg, REPO, targeted)


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_settings_left_out_come_from_the_settings_models(config):
    """A stage without `gpus`, a run without chunks: the models' defaults, not the planner's."""
    config["evaluation"]["server"].pop("gpus", None)
    config["evaluation"].pop("chunks", None)
    config["training"].pop("gpus", None)
    plan = plan_of(config)
    assert plan.stage_gpus("evaluation") == 0
    assert plan.stage_mem_mb("evaluation") == 3000
    assert plan.eval_chunk_ids == [0]
    assert plan.train_resources() == {"gpu": 0, "mem_mb": 6000}


def test_gpu_stages_ask_for_gpus_and_host_memory(config):
    config["evaluation"]["server"]["gpus"] = 2
    config["training"]["gpus"] = 8
    config["training"]["nodes"] = 2
    plan = plan_of(config)
    assert plan.stage_gpus("evaluation") == 2
    assert plan.stage_mem_mb("evaluation") == 35000
    assert plan.train_resources() == {
        "nodes": 2, "tasks": 2, "mpi": "srun", "gres": "gpu:8", "mem_mb": 390000
    }  # fmt: skip


def test_a_merged_file_is_joined_from_every_chunk(config):
    config["evaluation"]["chunks"] = 3
    plan = plan_of(config)
    wildcards = SimpleNamespace(run="baseline", bench="demo", seed="1")
    assert plan.eval_chunks(wildcards) == [
        (f"results/evals/baseline/generations/demo/output-rs1_chunk_{chunk}.jsonl",
         f"results/evals/baseline/generations/.chunk_{chunk}.done")
        for chunk in range(3)
    ]  # fmt: skip


def test_a_targeted_benchmark_is_the_only_one_its_job_generates(config):
    config["evaluation"]["benchmarks"] = {"demo": 2, "gsm8k": 1}
    plan = plan_of(config, targeted="gsm8k")
    assert plan.eval_generated == ["gsm8k"]
    assert plan.eval_benchmark_files(None) == ["results/benchmarks/gsm8k/test.jsonl"]
    chunks = plan.eval_chunks(SimpleNamespace(run="trained", bench="gsm8k", seed="0"))
    assert chunks == [
        ("results/evals/trained/generations/gsm8k/output-rs0_chunk_0.jsonl",
         "results/evals/trained/generations/.chunk_0.done"),
    ]  # fmt: skip
    # the run's metrics still cover every benchmark
    metrics = plan.run_metrics(SimpleNamespace(run="trained"))
    assert [m.split("/")[-2] for m in metrics] == ["demo", "gsm8k"]


def test_the_final_targets_follow_wandb(config):
    config["wandb"] = {"mode": "disabled"}
    assert plan_of(config).final_outputs() == ["results/comparison.md"]
    config["wandb"] = {"mode": "offline"}
    outputs = plan_of(config).final_outputs()
    runs = list(config["evaluation"]["runs"])
    assert outputs[1 : 1 + len(runs)] == [f"results/evals/{r}/wandb-run.json" for r in runs]
    assert outputs[-1] == "results/sdg/wandb-run.json"  # the demo generates its solutions


def test_stage_families_name_the_environment_of_the_server(config):
    config["evaluation"]["server"] = {"type": "vllm_engine", "model": "smollm2-135m"}
    plan = plan_of(config)
    assert plan.stage_family("evaluation") == "vllm_engine"  # its own environment
    assert plan.stage_family("solutions") == "train"  # hf generation runs with torch
    assert plan.conda_env("vllm") == "../../envs/vllm.yaml"


def test_serving_falls_back_to_the_evaluations_server(config):
    config["evaluation"]["server"] = {"type": "vllm", "model": "smollm2-135m", "gpus": 4}
    plan = plan_of(config)
    assert plan.serving() == {"type": "vllm", "gpus": 4}
    assert plan.serving_gpus() == 4
    config["serving"] = {"args": ["--enforce-eager"]}
    assert plan_of(config).serving_gpus() == 0


def test_every_family_runs_in_its_image_unless_the_config_names_another(config):
    defaults = plan_of(config)
    config["containers"] = {"vllm": "docker://vllm/vllm-openai:v0.26.0", "core": "core.sif"}
    plan = plan_of(config)
    assert plan.container("vllm") == "docker://vllm/vllm-openai:v0.26.0"
    assert plan.container("core") == "core.sif"
    assert plan.container("train") == defaults.container("train") is not None


def test_an_external_endpoint_needs_no_gpu_and_no_model_files(config):
    config["solutions"]["server"] = {
        "type": "openai", "model": "gpt-x", "base_url": "https://api.example.com/v1"
    }  # fmt: skip
    plan = plan_of(config)
    assert plan.stage_gpus("solutions") == 0
    assert plan.stage_model_inputs("solutions") == []
    assert plan.stage_model_param("solutions")(None, SimpleNamespace(model=[])) == "gpt-x"


def test_sft_data_is_checked_against_the_evaluations_benchmarks_unless_told(config):
    config["sft_data"].setdefault("filters", {})["remove_contaminated"] = False
    assert plan_of(config).contamination_benchmarks() == []
    config["sft_data"]["filters"]["remove_contaminated"] = True
    assert plan_of(config).contamination_benchmarks() == list(config["evaluation"]["benchmarks"])
    config["sft_data"]["contamination"] = {"benchmarks": ["gsm8k"]}
    assert plan_of(config).contamination_benchmarks() == ["gsm8k"]


def test_the_llm_contamination_check_defaults_to_nemo_skills_ten_benchmarks(config):
    step = {"server": config["solutions"]["server"], "retrieval": "ngram"}
    config["problem_processing"] = {"check_contamination": step}
    plan = plan_of(config)
    assert len(plan.check_benchmarks()) == 10
    wildcards = SimpleNamespace(step="check_contamination")
    assert plan.contamination_check_benchmarks(wildcards)[0].startswith("results/benchmarks/")
    assert plan.contamination_check_benchmarks(SimpleNamespace(step="classify")) == []


@pytest.mark.parametrize(
    "training,launcher,resources",
    [
        ({"gpus": 1}, "python -m", {"gpu": 1, "mem_mb": 54000}),
        ({"gpus": 4}, "python -m distillery.launch --gpus 4 --nodes 1 --",
         {"gpu": 4, "mem_mb": 198000}),
        # several nodes: a GRES per node (--gpus would count the whole job), one task per node
        ({"gpus": 4, "nodes": 3}, "python -m distillery.launch --gpus 4 --nodes 3 --",
         {"nodes": 3, "tasks": 3, "mpi": "srun", "gres": "gpu:4", "mem_mb": 198000}),
        ({"gpus": 0, "nodes": 2}, "python -m distillery.launch --gpus 0 --nodes 2 --",
         {"nodes": 2, "tasks": 2, "mpi": "srun", "mem_mb": 6000}),
        ({"gpus": 8, "backend": "nemo_rl"}, "python -m", {"gpu": 8, "mem_mb": 390000}),
    ],
)  # fmt: skip
def test_training_launch_and_slurm_resources(config, training, launcher, resources):
    config["training"].update(training)
    plan = plan_of(config)
    assert " ".join(plan.train_launcher()) == launcher
    assert plan.train_resources() == resources
    nemo_rl = training.get("backend") == "nemo_rl"
    assert plan.train_module() == (
        "distillery.train_nemo_rl" if nemo_rl else "distillery.train_sft"
    )
    assert ("--adapter-output" in plan.training_paths()) is not nemo_rl


def test_solutions_from_the_raw_data_have_no_server_to_plan(config):
    config["solutions"] = {"source": "raw_data"}
    config["raw_data"] = {"source": "nemotron", "subsets": {"math": 10}}
    plan = plan_of(config)
    assert not plan.solutions_generated
    assert plan.stage_gpus("solutions") == 0 and plan.stage_family("solutions") == "train"
    assert plan.sft_inputs(None) == ["results/data/raw-posts.jsonl"]

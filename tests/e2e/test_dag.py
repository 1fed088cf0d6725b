"""The planned DAG (dry runs, seconds): what each target needs, and config errors."""

import json
import os
import re
import shlex

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
        "generate_solutions": 2,  # one job per chunk covers the 4 seeds
        "merge_solutions": 4,
        "prepare_sft_data": 1,
        "train_sft": 1,
        "generate_eval": 2,  # one job (one server) per run covers every benchmark and seed
        "merge_eval_chunks": 8,
        "grade": 8,
        "summarize": 2,
        "compare_runs": 1,
        "log_wandb": 2,
        "log_wandb_sdg": 1,  # sample tables of the extraction and the solutions
    }


def test_baseline_metrics_target_needs_no_training(tmp_path):
    target = "results/evals/baseline/eval-results/demo/metrics.json"
    assert planned_jobs(tmp_path, target, configfile=TINY) == {
        "gguf_to_hf": 1,
        "prepare_benchmark": 1,
        "generate_eval": 2,  # the baseline run's 2 chunks
        "merge_eval_chunks": 2,
        "grade": 2,
        "summarize": 1,
    }


def test_one_benchmark_target_generates_that_benchmark_alone(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["evaluation"]["benchmarks"] = {"demo": 2, "gsm8k": 1}
    two = tmp_path / "two.yaml"
    two.write_text(yaml.safe_dump(config))
    target = "results/evals/baseline/eval-results/demo/metrics.json"
    jobs = planned_jobs(tmp_path, target, configfile=two)
    assert jobs["generate_eval"] == 2 and jobs["prepare_benchmark"] == 1  # demo's file only
    plan = snakemake(tmp_path, "--dry-run", "-p", target, configfile=two).stdout
    assert "generations/demo/output-rs1_chunk_0.jsonl" in plan
    assert "gsm8k" not in plan
    # without a target, the run's jobs generate both
    assert (
        "generations/gsm8k/output-rs0_chunk_0.jsonl"
        in snakemake(tmp_path, "--dry-run", "-p", configfile=two).stdout
    )


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
        "build_trtllm_engine": 1,  # QwQ-32B for the teacher
        "prepare_raw_data": 1,
        "prepare_benchmark": 2,  # aime24, aime25
        "extract_problems": 1,
        "postprocess_problems": 1,
        "generate_solutions": 4,  # 1 seed x 4 chunks
        "merge_solutions": 1,
        "prepare_sft_data": 1,
        "train_sft": 1,
        "generate_eval": 2,  # one 8-GPU server per run for 2 benchmarks x 8 seeds
        "merge_eval_chunks": 32,
        "grade": 32,
        "summarize": 4,
        "compare_runs": 1,
        "log_wandb": 2,
        "log_wandb_sdg": 1,
    }


def test_qlora_recipe_plans_every_stage(tmp_path):
    assert planned_jobs(tmp_path, configfile=QLORA) == {
        "download_model": 1,
        "prepare_raw_data": 1,  # Nemotron: problems with their solutions, no teacher
        "prepare_benchmark": 2,  # gpqa-diamond, mmlu
        "prepare_sft_data": 1,
        "train_sft": 1,
        "generate_eval": 3,  # base, trained thinking on and off: one job each, 4 + 1 seeds
        "merge_eval_chunks": 15,
        "grade": 15,
        "summarize": 6,
        "compare_runs": 1,
        "log_wandb": 3,
    }


def test_benchmark_groups_expand_into_their_members(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["evaluation"]["benchmarks"] = {"demo": 2, "mcq-suite": None}
    path = tmp_path / "groups.yaml"
    path.write_text(yaml.safe_dump(config))
    target = "results/evals/baseline/eval-results/mmlu-pro/metrics.json"
    jobs = planned_jobs(tmp_path, target, configfile=path)
    # the target names one benchmark: the run's job per chunk generates it alone
    assert jobs["prepare_benchmark"] == 1 and jobs["generate_eval"] == 2
    commands = snakemake(tmp_path, "-n", "-p", target, configfile=path).stdout
    assert "prompts/mcq-10choices.yaml" in commands and "gpqa-diamond" not in commands
    # without a target, each run's job per chunk generates all five; gpqa-diamond's 4 seeds
    assert planned_jobs(tmp_path, configfile=path)["prepare_benchmark"] == 5
    commands = snakemake(tmp_path, "-n", "-p", configfile=path).stdout
    assert "baseline/generations/gpqa-diamond/output-rs3_chunk_0.jsonl" in commands


def bad_config(tmp_path, edit) -> str:
    """The dry run's output of the tiny scenario changed by ``edit``; it must fail."""
    config = yaml.safe_load(TINY.read_text())
    edit(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", configfile=path, check=False)
    assert result.returncode != 0
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()
    return result.stdout + result.stderr


def test_an_unknown_benchmark_lists_the_known_names_and_groups(tmp_path):
    output = bad_config(tmp_path, lambda c: c["evaluation"]["benchmarks"].update({"aime26": 8}))
    assert (
        "config key 'evaluation.benchmarks.aime26' names no benchmark; known benchmarks: " in output
    )
    assert "hmmt_feb25" in output and "groups: math-suite, mcq-suite" in output


def test_a_run_prompt_with_a_field_the_rows_lack_fails_before_any_job(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/question.yaml").write_text('user: "Solve: {question}"\n')

    def edit(config):
        config["evaluation"]["runs"]["trained"]["prompt"] = "prompts/question.yaml"

    output = bad_config(tmp_path, edit)
    assert (
        "config key 'evaluation.runs.trained.prompt': prompts/question.yaml uses {question}, which "
        "the rows of benchmark demo do not provide (they have: expected_answer, id, problem)"
    ) in output


def blocks(commands: str, module: str) -> list[dict]:
    """The config block each planned ``python -m distillery.<module>`` job is handed."""
    found = []
    for line in commands.splitlines():
        if f" distillery.{module} " in line and "--config-json" in line:
            args = shlex.split(line[line.index("python -m") :].split(" > ")[0])
            found.append(json.loads(args[args.index("--config-json") + 1]))
    return found


def test_recipe_settings_reach_the_commands(tmp_path):
    result = snakemake(tmp_path, "-n", "-p", "--forceall", configfile=OMR)
    commands = result.stdout
    assert "distillery.convert_trtllm --model results/models/qwq-32b" in commands
    assert blocks(commands, "convert_trtllm")[0]["max_seq_len"] == 10000
    assert "--gpus 8" in commands
    assert "python -m distillery.launch --gpus 8 --nodes 1 -- distillery.train_sft" in commands
    (training,) = blocks(commands, "train_sft")
    assert training["fsdp"] is True and training["learning_rate"] == 1e-05
    assert training["max_seq_length"] == 8192 and "model" not in training
    solutions = blocks(commands, "generate")
    assert any(b["server"]["type"] == "trtllm" and b["server"]["gpus"] == 8 for b in solutions)
    assert any(
        b.get("parse_reasoning") and b["inference"]["max_tokens"] == 16384 for b in solutions
    )
    result = snakemake(tmp_path, "-n", "-p", "--forceall", configfile=QLORA)
    commands = result.stdout
    (training,) = blocks(commands, "train_sft")
    assert training["method"] == "qlora" and training["lora"]["use_rslora"] is True
    assert training["lora"]["r"] == 64 and training["lora"]["alpha"] == 128
    (raw,) = blocks(commands, "prepare_raw_data")
    assert raw["subsets"] == {"math": 50000, "code": 20000, "science": 5000}
    assert "--mode multichoice" in commands


def test_recipes_do_not_inherit_the_default_config(tmp_path):
    result = snakemake(tmp_path, "-n", "-p", "--forceall", configfile=QLORA)
    assert "smollm2" not in result.stdout
    assert "--max-steps" not in result.stdout  # the default's 12 steps must not leak in


def _with(tmp_path, **changes):
    config = yaml.safe_load(TINY.read_text())
    for key, value in changes.items():
        config[key] = {**config.get(key, {}), **value}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_any_adapter_is_merged_by_naming_its_model(tmp_path):
    (tmp_path / "adapters" / "mine").mkdir(parents=True)
    models = {"merged": {"source": "lora", "base": "smollm2-135m", "adapter": "adapters/mine"}}
    path = _with(tmp_path, models=models)
    assert planned_jobs(tmp_path, "results/models/merged", configfile=path) == {
        "gguf_to_hf": 1,
        "merge_lora": 1,
    }


def test_the_training_adapter_is_merged_after_training(tmp_path):
    models = {
        "merged": {"source": "lora", "base": "smollm2-135m", "adapter": "results/train/adapter"}
    }
    jobs = planned_jobs(
        tmp_path, "results/models/merged", configfile=_with(tmp_path, models=models)
    )
    assert jobs["merge_lora"] == 1 and jobs["train_sft"] == 1


def test_a_missing_adapter_is_a_config_error(tmp_path):
    models = {"merged": {"source": "lora", "base": "smollm2-135m", "adapter": "nowhere"}}
    result = snakemake(tmp_path, "-n", configfile=_with(tmp_path, models=models), check=False)
    assert result.returncode != 0
    assert (
        "config key 'models.merged.adapter': directory nowhere does not exist"
        in result.stdout + result.stderr
    )


def test_an_unknown_base_is_a_config_error(tmp_path):
    models = {"engine": {"source": "trtllm", "base": "qwq"}}
    result = snakemake(tmp_path, "-n", configfile=_with(tmp_path, models=models), check=False)
    assert result.returncode != 0
    assert "config key 'models.engine.base' names model 'qwq'" in result.stdout + result.stderr


def test_any_model_to_nemo_by_target(tmp_path):
    jobs = planned_jobs(tmp_path, "results/nemo/smollm2-135m.nemo", configfile=TINY)
    assert jobs == {"gguf_to_hf": 1, "hf_to_nemo": 1}


def test_a_nemo_rl_checkpoint_comes_back_as_hf(tmp_path):
    (tmp_path / "nemo-rl" / "step_100").mkdir(parents=True)
    models = {
        "sft": {
            "source": "nemo", "base": "smollm2-135m", "path": "nemo-rl/step_100",
            "format": "nemo-rl-fsdp",
        }
    }  # fmt: skip
    path = _with(tmp_path, models=models)
    result = snakemake(tmp_path, "-n", "-p", "results/models/sft", configfile=path)
    assert "distillery.convert_nemo --direction to-hf --format nemo-rl-fsdp" in result.stdout


def test_serve_a_run_builds_its_model_first(tmp_path):
    assert planned_jobs(tmp_path, "serve_baseline", configfile=TINY) == {
        "gguf_to_hf": 1,
        "serve_baseline": 1,
    }
    serving = {"python": ".venv-vllm/bin/python", "gpus": 2, "args": ["--max-model-len", "4096"]}
    path = _with(tmp_path, serving=serving)
    result = snakemake(tmp_path, "-n", "-p", "serve_trained", configfile=path)
    assert (
        "python -m distillery.serve --model results/train/model --served-model-name trained"
    ) in result.stdout
    assert blocks(result.stdout, "serve") == [{"type": "vllm", **serving}]


def _rule_settings(configfile):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "rule_requests", REPO / "scripts/rule_requests.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.rule_settings(str(configfile))


def test_each_rule_family_runs_in_its_image_and_environment(tmp_path):
    settings = _rule_settings(OMR)
    image = {rule: value[1] for rule, value in settings.items()}
    env = {rule: value[2] for rule, value in settings.items()}
    assert image["extract_problems"] == image["generate_eval"] == "vllm/vllm-openai:v0.26.0"
    assert env["extract_problems"] == env["generate_eval"] == "vllm.yaml"
    assert image["generate_solutions"] == "nvcr.io/nvidia/tensorrt-llm/release:1.0.0"
    assert image["build_trtllm_engine"] == image["generate_solutions"]
    assert env["generate_solutions"] == "trtllm.yaml"
    assert image["train_sft"].startswith("pytorch/pytorch:") and env["train_sft"] == "train.yaml"
    assert env["grade"] == env["summarize"] == "core.yaml"
    assert image["nemo_to_hf"].startswith("nvcr.io/nvidia/nemo:")
    # the embedded default generates in-process: the training image and environment
    default = _rule_settings(DEFAULT)
    assert default["generate_eval"][2] == "train.yaml"


def test_a_configured_image_replaces_the_default(tmp_path):
    config = yaml.safe_load(OMR.read_text())
    config["containers"] = {"vllm": "docker://registry.example/vllm:pinned"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    settings = _rule_settings(path)
    assert settings["generate_eval"][1] == "registry.example/vllm:pinned"
    assert settings["generate_solutions"][1] == "nvcr.io/nvidia/tensorrt-llm/release:1.0.0"


def test_apptainer_dry_run_pulls_one_image_per_family_in_use(tmp_path, monkeypatch):
    # `--sdm apptainer` only checks that the binary answers; a stand-in lets the dry run plan
    # here, where Apptainer cannot be installed
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apptainer").write_text("#!/bin/sh\necho 'apptainer version 1.3.6'\n")
    (bin_dir / "apptainer").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = snakemake(tmp_path, "-n", "--sdm", "apptainer", configfile=OMR)
    pulls = set(
        re.findall(r"Singularity image (\S+) will be pulled", result.stdout + result.stderr)
    )
    assert pulls == {
        "docker://vllm/vllm-openai:v0.26.0",
        "docker://nvcr.io/nvidia/tensorrt-llm/release:1.0.0",
        "docker://pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime",
    }


def test_nemo_rl_backend_runs_its_own_launcher(tmp_path):
    config = yaml.safe_load(OMR.read_text())
    config["training"]["backend"] = "nemo_rl"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "-p", "--forceall", "results/train/model", configfile=path)
    assert "python -m distillery.train_nemo_rl" in result.stdout
    from distillery import cli, train_nemo_rl

    (block,) = blocks(result.stdout, "train_nemo_rl")
    argv = ["--data", "d", "--model", "m", "--output", "o", "--metrics", "x.json"]
    stage = cli.parse_config(train_nemo_rl.Config, [*argv, "--config-json", json.dumps(block)])
    assert stage.global_batch_size == 32  # micro 1 x accumulation 4 x 8 GPUs
    assert "distillery.launch" not in result.stdout
    config["training"]["method"] = "qlora"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", configfile=path, check=False)
    assert "qlora runs with backend trl only" in result.stdout + result.stderr


def test_training_on_several_nodes_is_one_job_of_that_many_nodes(tmp_path):
    config = yaml.safe_load(OMR.read_text())
    config["training"]["nodes"] = 2
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "-p", "--forceall", "results/train/model", configfile=path)
    assert "python -m distillery.launch --gpus 8 --nodes 2 -- distillery.train_sft" in result.stdout
    config["training"]["backend"] = "nemo_rl"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", configfile=path, check=False)
    assert "several nodes run with backend trl only" in result.stdout + result.stderr


OMR_FULL = REPO / "config" / "recipes" / "openmathreasoning-full.yaml"


def test_full_openmathreasoning_recipe_plans_every_stage_with_its_gpus(tmp_path):
    assert planned_jobs(tmp_path, configfile=OMR_FULL) == {
        # Qwen2.5-14B-Instruct, Qwen2.5-32B-Instruct, QwQ-32B, the retrieval encoder
        "download_model": 4,
        "prepare_raw_data": 1,
        # aime24, aime25, omni-math; the contamination check's ten (NeMo-Skills' list)
        "prepare_benchmark": 10,
        "extract_problems": 1,
        "postprocess_problems": 1,
        # classify, extract_answer, convert_proofs, check_contamination: select and apply
        # around their generation jobs (4 + 4 + 1 + 1 chunks), then the summary rewriting's
        # and the solution judge's 4 chunks each and one evaluation judge job per run
        "select_problem_step": 4,
        "apply_problem_step": 4,
        "process_generate": 20,
        "process_merge": 8,
        "generate_solutions": 8,  # 8 seeds x 8 chunks: one job per chunk
        "merge_solutions": 8,
        "select_summaries": 1,
        "apply_summaries": 1,
        "select_solution_judge": 1,
        "apply_solution_judge": 1,
        "prepare_sft_data": 1,
        "train_sft": 1,
        "generate_eval": 2,
        "merge_eval_chunks": 34,
        "grade": 34,
        "select_eval_judge": 2,
        "apply_eval_judge": 2,
        "summarize": 6,
        "compare_runs": 1,
        "log_wandb": 2,
        "log_wandb_sdg": 1,
    }
    commands = snakemake(tmp_path, "-n", "-p", configfile=OMR_FULL).stdout
    # every LLM step's generation job holds the processing model's 8 GPUs
    gpu_jobs = re.findall(r"rule process_generate:.*?resources: ([^\n]*)", commands, re.DOTALL)
    assert len(gpu_jobs) == 20 and all("gpu=8" in r for r in gpu_jobs)
    assert "--model results/models/qwen2.5-32b-instruct" in commands
    # a step's own defaults reach its jobs: the classifiers answer in 16 tokens, greedily
    classify = [
        b for b in blocks(commands, "generate") if b.get("inference", {}).get("max_tokens") == 16
    ]
    assert classify and all(b["inference"]["temperature"] == 0.0 for b in classify)


def test_a_nemo_skills_prompt_is_fetched_once_then_read_like_a_file(tmp_path, monkeypatch):
    """``nemo-skills:<name>`` as a run's prompt plans the fetch before the evaluation; the
    fetch rule runs for real against a local mirror of the pinned repository."""
    import functools
    import http.server
    import threading

    from distillery import nemo_skills_prompts as nsp

    config = yaml.safe_load(TINY.read_text())
    config["evaluation"]["runs"] = {"baseline": {"model": "smollm2-135m",
                                                 "prompt": "nemo-skills:generic/math"}}  # fmt: skip
    path = tmp_path / "ns.yaml"
    path.write_text(yaml.safe_dump(config))
    target = "results/evals/baseline/eval-results/demo/metrics.json"
    jobs = planned_jobs(tmp_path, target, configfile=path)
    assert jobs["fetch_nemo_skills_prompt"] == 1 and jobs["generate_eval"] >= 1
    root = tmp_path / "mirror" / nsp.COMMIT / "nemo_skills" / "prompt" / "config" / "generic"
    root.mkdir(parents=True)
    fixture = REPO / "tests" / "fixtures" / "nemo-skills" / "generic" / "math.yaml"
    (root / "math.yaml").write_text(fixture.read_text())
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "mirror")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(nsp.URL_ENV, f"http://127.0.0.1:{server.server_port}")
    try:
        prompt = nsp.cache_path("nemo-skills:generic/math")
        snakemake(tmp_path, "--cores", "1", prompt, configfile=path)
        assert (tmp_path / prompt).read_text() == fixture.read_text()
        # fetched once: the evaluation now plans without it
        assert "fetch_nemo_skills_prompt" not in planned_jobs(tmp_path, target, configfile=path)
    finally:
        server.shutdown()

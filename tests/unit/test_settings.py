"""The settings models: the schema file generated from them, and what they accept and say."""

import copy

import pytest
import yaml
from jsonschema import Draft202012Validator

from distillery.errors import DistilleryError
from distillery.settings import WorkflowConfig, parse, set_dotted
from distillery.settings import schema as schema_module
from distillery.settings.generation import Inference, Server
from distillery.settings.training import Training

from ..conftest import REPO

CONFIGS = sorted(
    [
        REPO / "config" / "config.yaml",
        *(REPO / "config" / "recipes").glob("*.yaml"),
        *(REPO / "tests" / "scenarios").glob("*.yaml"),
    ]
)


@pytest.fixture(scope="module")
def validator():
    return Draft202012Validator(schema_module.json_schema())


@pytest.fixture
def default_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_the_checked_in_schema_is_generated_from_the_models():
    assert schema_module.SCHEMA_PATH == REPO / "workflow" / "schemas" / "config.schema.yaml"
    assert schema_module.SCHEMA_PATH.read_text() == schema_module.render(), (
        f"{schema_module.SCHEMA_PATH} is stale: regenerate it with `{schema_module.COMMAND}`"
    )


def test_check_fails_on_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "config.schema.yaml"
    stale.write_text(schema_module.render().replace("minimum: 1", "minimum: 2", 1))
    monkeypatch.setattr(schema_module, "SCHEMA_PATH", stale)
    assert schema_module.main(["--check"]) == 1
    assert schema_module.COMMAND in capsys.readouterr().err
    assert schema_module.main([]) == 0
    assert schema_module.main(["--check"]) == 0


def test_the_schema_is_valid_draft_2020_12(validator):
    Draft202012Validator.check_schema(validator.schema)
    assert validator.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "title" not in set(keywords(validator.schema))


def keywords(node):
    """The keywords used anywhere in a schema (not the names of properties or definitions)."""
    if isinstance(node, list):
        for value in node:
            yield from keywords(value)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            named = key in ("properties", "$defs") and isinstance(value, dict)
            for child in value.values() if named else [value]:
                yield from keywords(child)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate_and_parse(path, validator):
    config = yaml.safe_load(path.read_text())
    assert [e.message for e in validator.iter_errors(config)] == []
    parsed = parse(WorkflowConfig, config)
    assert parsed.training.model == config["training"]["model"]


def test_defaults_fill_what_the_config_leaves_out(default_config):
    config = parse(WorkflowConfig, default_config)
    assert config.training.gpus == 0 and config.training.lora.target_modules == ["all-linear"]
    assert config.evaluation.server.max_concurrency == 512
    assert config.sft_data.filters.think_tags == ["</think>"]
    assert config.serving is None and config.evaluation.max_seq_len is None


def test_each_server_backend_brings_its_container_family():
    from distillery.generation import backends
    from distillery.settings.workflow import Containers

    images = Containers().model_dump()
    for backend in backends.BACKENDS.values():
        if backend.container:
            assert images[backend.family] == backend.container
    assert Containers(vllm="docker://mine").vllm == "docker://mine"
    assert images["core"].startswith("docker://pytorch/pytorch")


@pytest.mark.parametrize(
    "cls,key,data,message",
    [
        (
            Training,
            "training",
            {"model": "m", "method": "lora", "learning_rte": 1e-4},
            "config key 'training.learning_rte' is not allowed; allowed keys of 'training': "
            "attn_implementation, average_last, backend, compile, epochs,",
        ),
        (
            Inference,
            "evaluation.inference",
            {"temperature": -0.5},
            "config key 'evaluation.inference.temperature' must be >= 0",
        ),
        (
            Inference,
            "evaluation.inference",
            {"top_p": 0},
            "config key 'evaluation.inference.top_p' must be > 0",
        ),
        (
            Server,
            "server",
            {"type": "vlm"},
            "config key 'server.type' must be one of 'hf', 'vllm', 'vllm_engine', 'trtllm', "
            "'sglang', 'openai', got 'vlm'",
        ),
        (Training, "training", {"method": "lora"}, "config key 'training.model' is missing"),
        (
            Training,
            "training",
            {"model": "m", "method": "lora", "save_steps": "4"},
            "config key 'training.save_steps' must be of type integer, got '4'",
        ),
        (
            Training,
            "training",
            {"model": "m", "method": "lora", "seed": None},
            "config key 'training.seed' must not be null",
        ),
        (
            WorkflowConfig,
            "",
            {"extra": 1},
            "config key 'extra' is not allowed; allowed keys of '<top level>': benchmarks,",
        ),
    ],
)
def test_parse_names_the_key(cls, key, data, message):
    with pytest.raises(DistilleryError) as err:
        parse(cls, data, key)
    assert message in str(err.value)


def test_parse_reports_every_problem_on_its_own_line(default_config):
    default_config["training"].update(epochs=0, method="dpo")
    default_config["models"]["local"] = {"source": "hf"}
    with pytest.raises(DistilleryError) as err:
        parse(WorkflowConfig, default_config)
    assert str(err.value).splitlines()[1:] == [
        "  - config key 'models.local.repo' is missing (source hf needs it)",
        "  - config key 'training.method' must be one of 'full', 'lora', 'qlora', got 'dpo'",
        "  - config key 'training.epochs' must be > 0.0, got 0",
    ]


@pytest.mark.parametrize(
    "assignment,expected",
    [
        ("inference.temperature=0.6", {"inference": {"temperature": 0.6, "top_p": 0.9}}),
        ("inference.stop=[a, b]", {"inference": {"top_p": 0.9, "stop": ["a", "b"]}}),
        ("parse_reasoning=true", {"inference": {"top_p": 0.9}, "parse_reasoning": True}),
        ("server.model='x y'", {"inference": {"top_p": 0.9}, "server": {"model": "x y"}}),
        ("a.b.c=1", {"inference": {"top_p": 0.9}, "a": {"b": {"c": 1}}}),
        ("inference.top_p=", {"inference": {"top_p": None}}),
    ],
)
def test_set_dotted(assignment, expected):
    data = {"inference": {"top_p": 0.9}}
    set_dotted(data, assignment)
    assert data == expected


def test_set_dotted_matches_names_with_dots():
    data = {"models": {"qwen2.5-7b": {"source": "hf"}}}
    set_dotted(data, "models.qwen2.5-7b.revision=abc")
    assert data == {"models": {"qwen2.5-7b": {"source": "hf", "revision": "abc"}}}


@pytest.mark.parametrize("assignment", ["inference.temperature", "=1", "a..b=1"])
def test_set_dotted_needs_key_and_value(assignment):
    with pytest.raises(DistilleryError, match="is not KEY=VALUE") as err:
        set_dotted({}, assignment)
    assert repr(assignment) in str(err.value)


def test_set_dotted_into_a_value_fails():
    with pytest.raises(DistilleryError, match="config key 'inference.top_p' is not a mapping"):
        set_dotted({"inference": {"top_p": 0.9}}, "inference.top_p.x=1")


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c.update(extra=1), "config key 'extra' is not allowed"),
        (
            lambda c: c["models"].update(local={"source": "path"}),
            "config key 'models.local.path' is missing (source path needs it)",
        ),
        (
            lambda c: c["models"].update(local={"source": "gguf"}),
            "config key 'models.local.package' is missing (source gguf needs it)",
        ),
        (
            lambda c: c["evaluation"]["runs"].update(x={"model": "trained", "seed": 1}),
            "config key 'evaluation.runs.x.seed' is not allowed",
        ),
        (
            lambda c: c["solutions"].pop("seeds"),
            "config key 'solutions.seeds' is missing (solutions are generated)",
        ),
        (
            lambda c: c["evaluation"]["runs"].update({"bad name": "trained"}),
            "config key 'evaluation.runs.bad name'",
        ),
        (lambda c: c["evaluation"].update(runs={}), "config key 'evaluation.runs' must have"),
        (
            lambda c: c["solutions"]["inference"].update(stop=None),
            "config key 'solutions.inference.stop' must not be null",
        ),
    ],
)
def test_rejected_as_before(default_config, validator, edit, message):
    edit(default_config)
    assert list(validator.iter_errors(default_config))
    with pytest.raises(DistilleryError) as err:
        parse(WorkflowConfig, default_config)
    assert message in str(err.value)


def solutions_from_raw_data(config):
    config["solutions"] = {"source": "raw_data"}


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["evaluation"].update(max_seq_len=None),
        lambda c: c["models"].update(local={"source": "gguf", "path": "x.gguf"}),
        solutions_from_raw_data,
    ],
)
def test_accepted_as_before(default_config, validator, edit):
    edit(default_config)
    assert [e.message for e in validator.iter_errors(default_config)] == []
    parse(WorkflowConfig, copy.deepcopy(default_config))


def test_a_benchmark_without_seeds_takes_its_definitions(default_config):
    from distillery.planning import workflow as wf

    config = copy.deepcopy(default_config)
    config["benchmarks"]["aime24"] = {"path": "aime24.jsonl"}
    config["evaluation"]["benchmarks"] = {"demo": 2, "aime24": None}  # `aime24:` in YAML
    schema = yaml.safe_load(schema_module.SCHEMA_PATH.read_text())
    assert not list(Draft202012Validator(schema).iter_errors(config))
    assert wf.eval_seeds(parse(WorkflowConfig, config), "aime24") == list(range(8))
    config["evaluation"]["benchmarks"]["demo"] = 0
    assert list(Draft202012Validator(schema).iter_errors(config))


def test_gpus_must_be_used_by_the_backend():
    from distillery.settings.generation import Generation

    assert parse(Generation, {"server": {"type": "hf", "gpus": 1}}).server.gpus == 1
    with pytest.raises(DistilleryError, match="server.gpus.*server type openai uses no GPUs"):
        parse(Generation, {"server": {"type": "openai", "base_url": "http://x", "gpus": 2}})
    server = {"type": "vllm", "gpus": 8, "tensor_parallel": 3}
    with pytest.raises(DistilleryError, match=r"gpus \(8\) must be a multiple of it \(3\)"):
        parse(Generation, {"server": server})
    with pytest.raises(DistilleryError, match="server type hf does not split its GPUs"):
        parse(Generation, {"server": {"type": "hf", "tensor_parallel": 1}})
    engine = {"type": "vllm_engine", "gpus": 4, "tensor_parallel": 2}
    assert parse(Generation, {"server": engine}).server.tensor_parallel == 2
    assert parse(Generation, {"server": {**server, "tensor_parallel": 2}}).server.gpus == 8


def test_engines_share_a_gpu_only_in_process():
    from distillery.generate import _replica_gpus, replicas
    from distillery.settings.generation import Generation

    shared = {"type": "vllm_engine", "gpus": 2, "engines_per_gpu": 3}
    server = parse(Generation, {"server": shared}).server
    assert replicas(server) == 3  # one group of 2 GPUs, three engines on it
    assert _replica_gpus({"CUDA_VISIBLE_DEVICES": "1,2"}, 2, 3, 3) == ["1,2"] * 3
    split = parse(Generation, {"server": {**shared, "tensor_parallel": 1}}).server
    assert replicas(split) == 6
    assert _replica_gpus({}, 2, 6, 3) == ["0", "0", "0", "1", "1", "1"]
    for other in ({"type": "vllm", "gpus": 1}, {"type": "vllm_engine", "gpus": 0}):
        with pytest.raises(DistilleryError, match="server.engines_per_gpu.*vllm_engine and gpus"):
            parse(Generation, {"server": {**other, "engines_per_gpu": 2}})

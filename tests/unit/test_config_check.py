import copy

import pytest
import yaml

from distillery.errors import DistilleryError
from distillery.planning.config_check import validate_config

from ..conftest import REPO

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture
def default_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def check(config):
    validate_config(config, SCHEMA, workdir=REPO)


def test_default_config_is_valid(default_config):
    check(default_config)


def test_the_check_returns_the_typed_config_with_left_out_settings_filled(default_config):
    default_config["solutions"].pop("chunks", None)
    default_config["evaluation"]["benchmarks"] = {"demo": 3}
    typed = validate_config(default_config, SCHEMA, workdir=REPO)
    assert typed.solutions.chunks == 1  # Solutions' own default
    assert typed.evaluation.benchmarks == {"demo": 3}
    assert set(typed.models) == set(default_config["models"])


def test_scenario_configs_are_valid():
    for path in sorted((REPO / "tests" / "scenarios").glob("*.yaml")):
        check(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda c: c["solutions"]["inference"].update(temperture=1.0),
            "config key 'solutions.inference.temperture' is not allowed; allowed keys of "
            "'solutions.inference': extra_body, max_tokens, min_p",
        ),
        (lambda c: c.update(extra=1), "config key 'extra' is not allowed"),
        (
            lambda c: c["solutions"].update(seeds="4"),
            "config key 'solutions.seeds' must be of type integer, got '4'",
        ),
        (
            lambda c: c["training"].update(method="dpo"),
            "config key 'training.method' must be one of 'full', 'lora', 'qlora', got 'dpo'",
        ),
        (lambda c: c["training"].pop("model"), "config key 'training' is missing: 'model'"),
        (
            lambda c: c["solutions"]["inference"].update(top_p=0),
            "config key 'solutions.inference.top_p'",
        ),
        (
            lambda c: c["evaluation"]["runs"].update(other="gpt-9"),
            "config key 'evaluation.runs.other' names model 'gpt-9'; known models: smollm2-135m "
            "or 'trained'",
        ),
        (
            lambda c: c["solutions"]["server"].update(model="trained"),
            "config key 'solutions.server.model' names model 'trained'",
        ),
        (
            lambda c: c["sft_data"].update(prompt="prompts/nope.yaml"),
            "config key 'sft_data.prompt': file prompts/nope.yaml does not exist",
        ),
        (
            lambda c: c["models"].update(local={"source": "path", "path": "no/such/dir"}),
            "config key 'models.local.path': directory no/such/dir does not exist",
        ),
        (
            lambda c: c["evaluation"]["benchmarks"].update(aime99=8),
            "config key 'evaluation.benchmarks.aime99' names no benchmark; known benchmarks",
        ),
        (
            lambda c: c["training"].update(fsdp=True, method="qlora"),
            "config key 'training.fsdp': FSDP does not shard qlora's 4-bit base",
        ),
        (
            lambda c: c["training"].update(fsdp=True, average_last=3),
            "config key 'training.fsdp': FSDP saves sharded checkpoints",
        ),
        (
            lambda c: c["training"].update(nodes=0),
            "config key 'training.nodes'",
        ),
    ],
)
def test_errors_name_the_key(default_config, edit, message):
    config = copy.deepcopy(default_config)
    edit(config)
    with pytest.raises(DistilleryError) as err:
        check(config)
    assert message in str(err.value)


def test_every_schema_key_is_described():
    schema = yaml.safe_load(SCHEMA.read_text())
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, f"{path} allows any key"
                for key, sub in node["properties"].items():
                    if "description" not in sub and "$ref" not in sub:
                        missing.append(f"{path}.{key}")
            for key, sub in node.items():
                walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(schema, "$")
    assert not missing


def test_a_definition_or_group_named_only_in_the_evaluation_is_resolved(default_config):
    config = copy.deepcopy(default_config)
    config["evaluation"]["benchmarks"] = {"math-suite": 2, "aime24": None}
    check(config)
    benchmarks = config["evaluation"]["benchmarks"]
    assert benchmarks["aime24"] is None  # its own entry wins over the group's number
    assert benchmarks["hmmt_feb25"] == 2 and "math-suite" not in benchmarks
    assert config["benchmarks"]["olympiadbench"] == {} and config["benchmarks"]["demo"]


def test_a_prompt_field_the_rows_lack_is_named_with_its_key(default_config, tmp_path):
    config = copy.deepcopy(default_config)
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/q.yaml").write_text('user: "{question} ({subject})"\n')
    config["evaluation"]["runs"]["trained"] = {"model": "trained", "prompt": "prompts/q.yaml"}
    with pytest.raises(DistilleryError) as err:
        validate_config(config, SCHEMA, workdir=tmp_path, workflow_dir=REPO)
    assert (
        "config key 'evaluation.runs.trained.prompt': prompts/q.yaml uses {question}, {subject}, "
        "which the rows of benchmark demo do not provide"
    ) in str(err.value)


def test_a_local_file_in_the_contract_provides_its_own_columns(default_config, tmp_path):
    config = copy.deepcopy(default_config)
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/q.yaml").write_text('user: "{problem} (topic: {topic})"\n')
    (tmp_path / "mine.jsonl").write_text(
        '{"id": "1", "problem": "1+1", "expected_answer": "2", "topic": "sums"}\n'
    )
    config["benchmarks"]["demo"] = {"source": "demo", "path": "mine.jsonl"}
    config["evaluation"]["prompt"] = "prompts/q.yaml"
    validate_config(config, SCHEMA, workdir=tmp_path, workflow_dir=REPO)
    config["benchmarks"]["demo"] = {"source": "demo"}
    with pytest.raises(DistilleryError, match=r"uses \{topic\}, which the rows of benchmark demo"):
        validate_config(config, SCHEMA, workdir=tmp_path, workflow_dir=REPO)


FULL = yaml.safe_load((REPO / "tests" / "scenarios" / "tiny-full.yaml").read_text())


def test_the_full_pipeline_scenario_is_valid():
    check(copy.deepcopy(FULL))


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda c: c.pop("solution_judge"),
            "config key 'sft_data.use_judgement' needs the solution_judge block",
        ),
        (
            lambda c: c["problem_processing"].pop("convert_proofs"),
            "a class routed to convert needs the convert_proofs step",
        ),
        (
            lambda c: (
                c["sft_data"].update(fill_majority=False),
                c["raw_data"].update(source="aops"),
                c["problem_processing"].pop("extract_answer"),
            ),
            "nothing provides expected answers; set sft_data.fill_majority: true or add "
            "problem_processing.extract_answer",
        ),  # fmt: skip
        (
            lambda c: c["evaluation"]["judge"].update(benchmarks=["aime24"]),
            "config key 'evaluation.judge.benchmarks' names 'aime24', which is not evaluated",
        ),
        (
            lambda c: c["solution_judge"]["server"].update(model="qwen-judge"),
            "config key 'solution_judge.server.model' names model 'qwen-judge'",
        ),
        (
            lambda c: c["problem_processing"]["classify"].update(
                prompts={"proof": "prompts/nope.yaml"}
            ),
            "config key 'problem_processing.classify': file prompts/nope.yaml does not",
        ),
        (
            lambda c: c["problem_processing"]["check_contamination"].update(benchmarks=["aime26"]),
            "config key 'problem_processing.check_contamination.benchmarks' names 'aime26', no "
            "benchmark; known benchmarks",
        ),
        (
            lambda c: c["solution_judge"].update(system="be strict"),
            "a processing step's system prompt goes in its prompt file",
        ),
    ],
)
def test_full_pipeline_errors_name_the_key(edit, message):
    config = copy.deepcopy(FULL)
    edit(config)
    with pytest.raises(DistilleryError) as err:
        check(config)
    assert message in str(err.value)


def test_contamination_check_benchmarks_resolve_groups_and_definitions():
    config = copy.deepcopy(FULL)
    config["problem_processing"]["check_contamination"]["benchmarks"] = ["mcq-suite", "aime24"]
    check(config)
    names = config["problem_processing"]["check_contamination"]["benchmarks"]
    assert names == ["gpqa-diamond", "mmlu-pro", "mmlu-redux", "supergpqa", "aime24"]
    assert config["benchmarks"]["aime24"] == {}  # prepared, not evaluated


def test_contamination_check_defaults_to_nemo_skills_ten_benchmarks():
    config = copy.deepcopy(FULL)
    config["problem_processing"]["check_contamination"].pop("benchmarks", None)
    check(config)
    # recipes/openmathreasoning/configs/problem_sdg/qwen-instruct.yaml, decontamination_datasets
    assert config["problem_processing"]["check_contamination"]["benchmarks"] == [
        "math", "aime24", "aime25", "amc23", "college_math", "gaokao2023en", "gsm8k",
        "minerva_math", "olympiadbench", "omni-math",
    ]  # fmt: skip
    assert all(name in config["benchmarks"] for name in ("gsm8k", "omni-math"))


def test_contamination_retrieval_by_embedding_needs_an_encoder_that_exists():
    config = copy.deepcopy(FULL)
    config["problem_processing"]["check_contamination"]["embedding_model"] = "no-such-encoder"
    with pytest.raises(DistilleryError, match="embedding_model': 'no-such-encoder' is neither"):
        check(config)
    config["problem_processing"]["check_contamination"].pop("embedding_model")
    with pytest.raises(DistilleryError, match="retrieval: embedding needs an encoder"):
        check(config)

"""NeMo-RL's SFT command line against its examples/run_sft.py and examples/configs/sft.yaml
(NeMo-RL needs NVIDIA GPUs and its container: not run here)."""

import json

import pytest

from distillery import train_nemo_rl
from distillery.errors import DistilleryError
from distillery.settings.base import parse
from distillery.settings.training import TrainingSettings

PATHS = {"data", "model", "output", "metrics", "validation", "checkpoint_dir", "nemo_rl_dir"}


def config(**kw):
    """8 GPUs x micro-batch 1 x 4 accumulation steps: a global batch of 32."""
    values = dict(
        data="results/sft/sft-data.jsonl", model="/models/qwen", output="/out", metrics="/m.json",
        validation="results/sft/sft-validation.jsonl", method="full", gpus=8, learning_rate=1e-5,
        gradient_accumulation_steps=4, max_seq_length=8192, epochs=2, save_steps=50,
    )  # fmt: skip
    values.update(kw)
    block = {k: v for k, v in values.items() if k not in PATHS}
    for key in [k for k in block if k.startswith("lora_")]:
        block.setdefault("lora", {})[key.removeprefix("lora_")] = block.pop(key)
    paths = {k: v for k, v in values.items() if k in PATHS}
    return train_nemo_rl.Config(**paths, training=parse(TrainingSettings, block))


def overrides(command):
    return dict(arg.split("=", 1) for arg in command if "=" in arg)


def test_full_sft_command():
    command = train_nemo_rl.sft_command(config())
    assert command[:5] == [
        "uv", "run", "/opt/nemo-rl/examples/run_sft.py",
        "--config", "/opt/nemo-rl/examples/configs/sft.yaml",
    ]  # fmt: skip
    values = overrides(command)
    assert values["policy.model_name"] == "/models/qwen"
    assert values["policy.train_global_batch_size"] == "32"
    assert values["policy.max_total_sequence_length"] == "8192"
    assert values["policy.optimizer.kwargs.lr"] == "1e-05"
    assert values["policy.sequence_packing.enabled"] == "true"
    assert values["sft.max_num_epochs"] == "2"
    assert values["cluster.gpus_per_node"] == "8"
    assert values["data.train.dataset_name"] == "openai_format"
    assert values["data.train.chat_key"] == "messages"
    assert values["data.validation.data_path"] == "results/sft/sft-validation.jsonl"
    assert values["checkpointing.save_period"] == "50"
    assert values["logger.wandb_enabled"] == "false"
    assert "policy.dtensor_cfg.lora_cfg.enabled" not in values


def test_lora_and_no_validation():
    values = overrides(train_nemo_rl.sft_command(config(method="lora", lora_r=64, validation=None)))
    assert values["policy.dtensor_cfg.lora_cfg.enabled"] == "true"
    assert values["policy.dtensor_cfg.lora_cfg.dim"] == "64"
    assert values["data.validation"] == "null"
    assert values["sft.val_period"] == "0"


def test_last_checkpoint_is_converted(tmp_path):
    for step in (50, 100, 75):
        (tmp_path / f"step_{step}").mkdir()
    assert train_nemo_rl.last_step(tmp_path).name == "step_100"
    with pytest.raises(DistilleryError, match="no step_N checkpoint"):
        train_nemo_rl.last_step(tmp_path / "none")


def test_without_nemo_rl_the_error_names_the_container(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    cfg = config(model=str(model), output=str(tmp_path / "out"), nemo_rl_dir=str(tmp_path / "x"))
    with pytest.raises(DistilleryError, match=r"run_sft.py not found.*containers.nemo_rl"):
        train_nemo_rl.main(cfg)
    assert not (tmp_path / "out").exists()

"""The training block mapped onto TRL's SFTConfig: one pure function, checked against TRL's own
fields."""

import pytest

from distillery.errors import DistilleryError
from distillery.settings.base import parse
from distillery.settings.training import Training, TrainingSettings
from distillery.training.trl_args import Runtime, sft_arguments, sft_config_fields


def test_every_argument_is_a_field_of_trls_sft_config():
    fields = sft_config_fields()
    fsdp = {"fsdp": True, "fsdp_config": {"version": 2}}
    args = sft_arguments(TrainingSettings(method="full"), Runtime("out", evaluate=True, fsdp=fsdp))
    assert set(args) <= fields
    assert {"warmup_steps", "lr_scheduler_type", "max_length", "packing"} <= set(args)


def test_warmup_is_the_ratio_trl_takes_below_one():
    from trl import SFTConfig

    args = sft_arguments(TrainingSettings(method="lora", warmup_ratio=0.1), Runtime("out"))
    config = SFTConfig(**{**args, "use_cpu": True, "bf16": False})
    assert config.warmup_steps == 0.1
    assert config.get_warmup_steps(200) == 20  # a share of the steps, as the block means it


def test_trl_args_pass_through_and_win():
    settings = TrainingSettings(method="lora", trl_args={"max_grad_norm": 0.5, "seed": 7})
    args = sft_arguments(settings, Runtime("out"), sft_config_fields())
    assert args["max_grad_norm"] == 0.5 and args["seed"] == 7


def test_an_unknown_trl_arg_is_named():
    settings = TrainingSettings(method="lora", trl_args={"max_grad_nrom": 0.5})
    with pytest.raises(DistilleryError, match="trl_args: max_grad_nrom is not a field of TRL"):
        sft_arguments(settings, Runtime("out"), sft_config_fields())


def test_trl_args_are_refused_with_nemo_rl():
    block = {"model": "m", "method": "lora", "backend": "nemo_rl", "trl_args": {"seed": 1}}
    with pytest.raises(DistilleryError, match="trl_args"):
        parse(Training, block, "training")

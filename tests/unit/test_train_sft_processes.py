"""train_sft as it runs with gpus > 1: one process per device, here two CPU processes started by
torchrun (gloo) in place of two GPUs under `accelerate launch` (whose --cpu starts one)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..conftest import write_jsonl
from .test_train_sft import records

SRC = Path(__file__).resolve().parents[2] / "src"


def launch(tmp_path, model, **popen):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--module", "distillery.train_sft",
        "--data", str(tmp_path / "sft.jsonl"), "--model", str(model),
        "--output", str(tmp_path / "model"), "--metrics", str(tmp_path / "metrics.json"),
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--method", "full", "--max-steps", "6",
        "--save-steps", "2", "--micro-batch-size", "1", "--max-seq-length", "128",
        "--learning-rate", "1e-3",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    log = open(tmp_path / "train.log", "a")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, **popen)


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


def test_two_processes_train_resume_after_a_kill_and_write_the_outputs_once(
    tmp_path, tiny_model_dir
):
    write_jsonl(tmp_path / "sft.jsonl", records(24))
    first = launch(tmp_path, tiny_model_dir, start_new_session=True)
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

    second = launch(tmp_path, tiny_model_dir)
    assert second.wait(timeout=300) == 0, (tmp_path / "train.log").read_text()[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 6
    assert metrics["resumed_from"] and "checkpoint-" in metrics["resumed_from"]
    assert [h["step"] for h in metrics["loss_history"]] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "ckpt").exists()  # removed after every process finished
    log = (tmp_path / "train.log").read_text()
    assert log.count("trained 6 steps") == 1  # the first process alone writes the outputs

import os
import signal
import subprocess
import sys
import time

import pytest

from distillery.errors import DistilleryError
from distillery.generation.gpus import gpu_lease
from distillery.generation.servers import ManagedServer, ServerSpec, free_port, server_command

from ..conftest import STUB_SERVER


def test_vllm_command():
    spec = ServerSpec("vllm", "/models/qwq", gpus=8, args=("--max-model-len", "16384"), python="py")
    assert server_command(spec, 5000) == [
        "py", "-m", "vllm.entrypoints.openai.api_server", "--model", "/models/qwq",
        "--served-model-name", "/models/qwq", "--host", "127.0.0.1", "--port", "5000",
        "--tensor-parallel-size", "8", "--max-model-len", "16384",
    ]  # fmt: skip


def test_trtllm_command():
    spec = ServerSpec(
        "trtllm", "/engines/qwq", gpus=8, tokenizer="/models/qwq", args=("--backend", "tensorrt")
    )
    assert server_command(spec, 5000) == [
        "trtllm-serve", "/engines/qwq", "--host", "127.0.0.1", "--port", "5000", "--tp_size", "8",
        "--tokenizer", "/models/qwq", "--backend", "tensorrt",
    ]  # fmt: skip


def test_sglang_command():
    spec = ServerSpec("sglang", "/m", gpus=2, served_model_name="qwen", python="py")
    assert server_command(spec, 30000) == [
        "py", "-m", "sglang.launch_server", "--model-path", "/m", "--served-model-name", "qwen",
        "--host", "127.0.0.1", "--port", "30000", "--tp-size", "2",
    ]  # fmt: skip


def test_unknown_server_type():
    with pytest.raises(
        DistilleryError, match="known: hf, vllm, vllm_engine, trtllm, sglang, openai"
    ):
        server_command(ServerSpec("tgi", "/m"), 1)
    with pytest.raises(DistilleryError, match="those that do: vllm, trtllm, sglang"):
        server_command(ServerSpec("hf", "/m"), 1)


def stub(port, *flags):
    return [sys.executable, str(STUB_SERVER), "--port", str(port), *flags]


def test_server_lifecycle_stops_the_process_group():
    port = free_port()
    with ManagedServer(stub(port), f"http://127.0.0.1:{port}", health_timeout=30) as server:
        pid = server.process.pid
        assert server.alive()
    assert not server.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_server_that_exits_fails_fast():
    port = free_port()
    began = time.monotonic()
    with pytest.raises(DistilleryError, match="exited with status 7 before it was ready"):
        with ManagedServer(stub(port, "--exit-at-start", "7"), f"http://127.0.0.1:{port}", 60):
            pass
    assert time.monotonic() - began < 15


def test_server_that_never_gets_healthy_times_out():
    port = free_port()
    began = time.monotonic()
    with pytest.raises(DistilleryError, match="did not answer .*/health within 3s"):
        with ManagedServer(stub(port, "--never-healthy"), f"http://127.0.0.1:{port}", 3):
            pass
    assert time.monotonic() - began < 3 + 5


def test_port_taken():
    port = free_port()
    other = stub(port, "--model", "someone-else")
    first = subprocess.Popen(other, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        with pytest.raises(DistilleryError, match="(exited with status|another server answers)"):
            with ManagedServer(stub(port), f"http://127.0.0.1:{port}", 20, model="stub"):
                pass
    finally:
        first.kill()
        first.wait()


def test_missing_server_program():
    with pytest.raises(DistilleryError, match="cannot start the server"):
        with ManagedServer(["no-such-server-binary"], "http://127.0.0.1:1", 5):
            pass


def test_gpu_leases_are_disjoint(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with gpu_lease(2, total=4, lock_dir=tmp_path) as first:
        with gpu_lease(2, total=4, lock_dir=tmp_path) as second:
            ids = first["CUDA_VISIBLE_DEVICES"].split(",") + second["CUDA_VISIBLE_DEVICES"].split(
                ","
            )
            assert sorted(ids) == ["0", "1", "2", "3"]
            with pytest.raises(DistilleryError, match="waited 0.5s for 1 free GPUs"):
                with gpu_lease(1, total=4, lock_dir=tmp_path, wait=0.5):
                    pass
    with gpu_lease(4, total=4, lock_dir=tmp_path) as again:
        assert again["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"


def test_gpu_lease_respects_scheduler_and_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    with gpu_lease(2, lock_dir=tmp_path) as env:
        assert env == {}
    with pytest.raises(DistilleryError, match="gives it 2"):
        with gpu_lease(4, lock_dir=tmp_path):
            pass
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with pytest.raises(DistilleryError, match="needs 2 GPUs but this machine has 0"):
        with gpu_lease(2, total=0, lock_dir=tmp_path):
            pass
    with gpu_lease(0) as env:
        assert env == {}


def test_sigterm_to_a_job_stops_its_server(tmp_path):
    """The job installs a SIGTERM handler, so Snakemake/Slurm stopping it stops the server."""
    port = free_port()
    code = (
        "import sys, time\n"
        "from distillery.generation.servers import ManagedServer\n"
        f"with ManagedServer({stub(port)!r}, 'http://127.0.0.1:{port}', 30) as s:\n"
        f"    open({str(tmp_path / 'pid')!r}, 'w').write(str(s.process.pid))\n"
        "    time.sleep(60)\n"
    )
    job = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    pid_file = tmp_path / "pid"
    deadline = time.time() + 30
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    server_pid = int(pid_file.read_text())
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=30) == 128 + signal.SIGTERM
    assert not running(server_pid)


def test_sigkill_of_a_job_still_stops_its_server(tmp_path):
    port = free_port()
    code = (
        "import time\n"
        "from distillery.generation.servers import ManagedServer\n"
        f"with ManagedServer({stub(port)!r}, 'http://127.0.0.1:{port}', 30) as s:\n"
        f"    open({str(tmp_path / 'pid')!r}, 'w').write(str(s.process.pid))\n"
        "    time.sleep(60)\n"
    )
    job = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    pid_file = tmp_path / "pid"
    deadline = time.time() + 30
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    server_pid = int(pid_file.read_text())
    job.kill()
    job.wait()
    deadline = time.time() + 10
    while time.time() < deadline and running(server_pid):
        time.sleep(0.1)
    assert not running(server_pid), "the server outlived its killed job"


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for a parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_jobs_per_gpu_lets_jobs_share_a_gpu(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("DISTILLERY_JOBS_PER_GPU", "2")
    with gpu_lease(1, total=1, lock_dir=tmp_path) as first:
        with gpu_lease(1, total=1, lock_dir=tmp_path) as second:
            assert first == second == {"CUDA_VISIBLE_DEVICES": "0"}
            with pytest.raises(DistilleryError, match="waited 0.5s for 1 free GPUs"):
                with gpu_lease(1, total=1, lock_dir=tmp_path, wait=0.5):
                    pass
    # a job of two GPUs takes a slot on each of two distinct GPUs
    with gpu_lease(2, total=2, lock_dir=tmp_path) as both:
        assert both["CUDA_VISIBLE_DEVICES"] == "0,1"
    monkeypatch.setenv("DISTILLERY_JOBS_PER_GPU", "0")
    with pytest.raises(DistilleryError, match="DISTILLERY_JOBS_PER_GPU='0'"):
        with gpu_lease(1, total=1, lock_dir=tmp_path):
            pass

"""Disjoint GPUs for concurrent jobs on one machine.

Snakemake's ``gpu`` resource keeps the number of GPUs in use within the machine's count but does
not say which ones a job gets. Where no scheduler has set ``CUDA_VISIBLE_DEVICES`` (Slurm does),
a job takes an exclusive lock per GPU (``flock`` on a file per GPU id) and holds it for its life;
the kernel releases the locks when the job ends, however it ends. With
``DISTILLERY_JOBS_PER_GPU=N`` each GPU has N such slots, so N jobs share it (the models must fit
together: e.g. vLLM's ``--gpu-memory-utilization``); Snakemake then gets N gpu resources per GPU.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from distillery.errors import DistilleryError
from distillery.generation.processes import process_tree

logger = logging.getLogger(__name__)

LOCK_DIR_ENV = "DISTILLERY_GPU_LOCK_DIR"
# jobs that may share one GPU (small models: an in-process vLLM engine with a share of the
# memory, LoRA training); give Snakemake as many gpu resources (--resources gpu=GPUs x this)
JOBS_PER_GPU_ENV = "DISTILLERY_JOBS_PER_GPU"


def jobs_per_gpu() -> int:
    """How many jobs may share one GPU (``DISTILLERY_JOBS_PER_GPU``, default 1)."""
    value = os.environ.get(JOBS_PER_GPU_ENV, "1")
    if not value.isdigit() or int(value) < 1:
        raise DistilleryError(
            f"{JOBS_PER_GPU_ENV}={value!r}: give a whole number of jobs, 1 or more"
        )
    return int(value)


def _try_lock(directory: Path, total: int, count: int, slots: int = 1) -> list[tuple[int, int]]:
    """A slot on each of ``count`` distinct GPUs, or nothing: holding some while waiting for
    others could deadlock two jobs that each hold part of what the other needs. With one slot
    per GPU a job has its GPUs to itself."""
    held = []
    for gpu in range(total):
        for slot in range(slots):
            name = f"gpu{gpu}.lock" if slots == 1 else f"gpu{gpu}-slot{slot}.lock"
            fd = os.open(directory / name, os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held.append((gpu, fd))
            break
        if len(held) == count:
            return held
    for _, fd in held:
        os.close(fd)
    return []


def visible_gpu_count() -> int:
    """GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([g for g in visible.split(",") if g.strip() and g.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def leased_gpu_ids(gpu_env: dict, count: int) -> list[str]:
    """The GPU ids a job holds: those its lease chose, else those its scheduler set in
    ``CUDA_VISIBLE_DEVICES``, else the first ``count``.

    Example:
        >>> leased_gpu_ids({"CUDA_VISIBLE_DEVICES": "2,3"}, 2)
        ['2', '3']
    """
    visible = gpu_env.get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
    if visible is None:
        return [str(i) for i in range(count)]
    return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"][:count]


@contextlib.contextmanager
def gpu_lease(
    count: int, total: int | None = None, lock_dir: str | Path | None = None, wait: float = 3600.0
) -> Iterator[dict]:
    """Holds ``count`` GPUs for the ``with`` block; yields the environment to give the server.

    Args:
        count: GPUs needed (0: none, yields ``{}``).
        total: GPUs on the machine (default: detected).
        lock_dir: where the lock files live (default ``$DISTILLERY_GPU_LOCK_DIR`` or the temp
            directory); jobs that share GPUs must share it.
        wait: seconds to wait for free GPUs before failing.
    """
    if count <= 0:
        yield {}
        return
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        available = visible_gpu_count()
        if available < count:
            raise DistilleryError(
                f"the job needs {count} GPUs but CUDA_VISIBLE_DEVICES gives it {available}"
            )
        yield {}
        return
    total = visible_gpu_count() if total is None else total
    if total < count:
        raise DistilleryError(
            f"the job needs {count} GPUs but this machine has {total}; lower server.gpus or run "
            "on a bigger machine"
        )
    directory = Path(lock_dir or os.environ.get(LOCK_DIR_ENV) or tempfile.gettempdir())
    directory = directory / "distillery-gpu-locks"
    directory.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    held: list[tuple[int, int]] = []
    try:
        while True:
            held = _try_lock(directory, total, count, jobs_per_gpu())
            if held:
                break
            if time.monotonic() > deadline:
                raise DistilleryError(
                    f"waited {wait:g}s for {count} free GPUs; other jobs hold the rest "
                    f"(locks in {directory}); give Snakemake the machine's GPU count "
                    "(--resources gpu=N) so it does not start more GPU jobs than fit"
                )
            time.sleep(1)
        ids = ",".join(str(g) for g, _ in sorted(held))
        logger.info("using GPUs %s", ids)
        yield {"CUDA_VISIBLE_DEVICES": ids}
    finally:
        for _, fd in held:
            os.close(fd)


class GpuMemory:
    """The peak GPU memory of this process and its descendants (a server, vLLM's engine core),
    sampled from ``nvidia-smi`` every ``interval`` seconds in a background thread. ``peak_mib``
    stays None without ``nvidia-smi`` or where the GPU processes cannot be matched to ours (a
    container with its own process ids)."""

    def __init__(self, interval: float = 2.0):
        import threading

        self.peak_mib: int | None = None
        self._stop = threading.Event()
        self._thread = None
        if shutil.which("nvidia-smi") is not None:
            self._thread = threading.Thread(
                target=self._run, args=(interval,), name="gpu-memory", daemon=True
            )
            self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            used = self.sample()
            if used is not None:
                self.peak_mib = max(self.peak_mib or 0, used)
            self._stop.wait(interval)

    @staticmethod
    def sample() -> int | None:
        """MiB of GPU memory held by this process tree now, or None when unknown."""
        try:
            listing = subprocess.run(
                ["nvidia-smi", "--query-compute-apps=pid,used_memory",
                 "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=10, check=True,
            ).stdout  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        ours = process_tree(os.getpid())
        used = [int(mib) for pid, mib in _rows(listing) if pid in ours]
        return sum(used) if used else None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)


def _rows(listing: str) -> list[tuple[int, str]]:
    rows = []
    for line in listing.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            rows.append((int(parts[0]), parts[1]))
    return rows

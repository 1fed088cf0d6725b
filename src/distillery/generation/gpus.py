"""Disjoint GPUs for concurrent jobs on one machine.

Snakemake's ``gpu`` resource keeps the number of GPUs in use within the machine's count but does
not say which ones a job gets. Where no scheduler has set ``CUDA_VISIBLE_DEVICES`` (Slurm does),
a job takes an exclusive lock per GPU (``flock`` on a file per GPU id) and holds it for its life;
the kernel releases the locks when the job ends, however it ends.
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

logger = logging.getLogger(__name__)

LOCK_DIR_ENV = "DISTILLERY_GPU_LOCK_DIR"


def _try_lock(directory: Path, total: int, count: int) -> list[tuple[int, int]]:
    """All ``count`` GPU locks or none: holding some while waiting for others could deadlock
    two jobs that each hold part of what the other needs."""
    held = []
    for gpu in range(total):
        fd = os.open(directory / f"gpu{gpu}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        held.append((gpu, fd))
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
            held = _try_lock(directory, total, count)
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

"""Inference servers a generation job starts and stops: vLLM, TensorRT-LLM and SGLang.

Each is started on a free loopback port with tensor parallelism over the job's GPUs, in a
process group of its own, its output going to the job's log. The job waits for the server's
``/health`` endpoint, and always stops the whole group afterwards: on success, on error, and on
SIGTERM (how Snakemake and Slurm stop a job). If the job itself is killed outright, the kernel
sends the server SIGTERM (``PR_SET_PDEATHSIG``), so no server outlives its job.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from distillery.errors import DistilleryError
from distillery.generation import backends
from distillery.models import dtypes

if TYPE_CHECKING:
    from distillery.settings.generation import Server, Serving

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSpec:
    """What to serve and how.

    Attributes:
        type: ``vllm``, ``trtllm`` or ``sglang``.
        model: model directory (or, for TensorRT-LLM, an engine directory).
        gpus: tensor-parallel size (GPUs of one server replica).
        args: extra command-line arguments for the server, passed through unchanged.
        python: interpreter that runs the server (vLLM, SGLang) when it lives in another env.
        served_model_name: the name clients use; defaults to the model path.
        tokenizer: tokenizer directory, for TensorRT-LLM engines that do not carry one.
        dtype: the server's ``--dtype`` (vLLM, SGLang), or None for the server's own choice.
    """

    type: str
    model: str
    gpus: int = 1
    args: tuple[str, ...] = ()
    python: str = sys.executable
    served_model_name: str | None = None
    tokenizer: str | None = None
    env: dict = field(default_factory=dict, hash=False)
    dtype: str | None = None

    @property
    def name(self) -> str:
        return self.served_model_name or self.model

    @classmethod
    def from_settings(
        cls, server: Server | Serving, model: str, name: str | None = None
    ) -> ServerSpec:
        """The spec of a stage's ``server`` block (or the ``serving`` block) serving ``model``
        (``gpus`` 0 = a CPU build, still one tensor-parallel rank; a stage's
        ``tensor_parallel`` smaller than its ``gpus`` = one replica's share)."""
        return cls(
            type=server.type,
            model=model,
            gpus=max(1, getattr(server, "tensor_parallel", None) or server.gpus),
            args=tuple(server.args),
            python=server.python,
            served_model_name=name or getattr(server, "served_model_name", None),
            tokenizer=getattr(server, "tokenizer", None),
            env=dict(server.env),
            dtype=server_dtype(server.type, server.gpus, server.dtype),
        )


def server_dtype(type: str, gpus: int, dtype: str) -> str | None:
    """The ``--dtype`` a vLLM or SGLang server is started with. On GPUs ``auto`` is the server's
    own choice; on a CPU (``gpus`` 0) it is the CPU's native format
    (:mod:`distillery.models.dtypes`), since the server's own choice follows the model's stored
    dtype, not what the CPU computes natively.

    Example:
        >>> server_dtype("vllm", 1, "auto") is None
        True
    """
    if not backends.get(type).takes_dtype:
        return None
    if gpus > 0:
        return None if dtype == "auto" else dtypes.resolve(dtype, "cuda", "server.dtype")
    return dtypes.resolve(dtype, "cpu", "server.dtype")


def server_command(spec: ServerSpec, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line that starts the server (its backend's entry in :mod:`.backends`).

    Example:
        >>> server_command(ServerSpec("vllm", "/m", gpus=2, python="python"), 8000)[:5]
        ['python', '-m', 'vllm.entrypoints.openai.api_server', '--model', '/m']
    """
    backend = backends.get(spec.type)
    if not backend.starts_server:
        raise DistilleryError(
            f"server type {spec.type!r} starts no server; those that do: "
            f"{', '.join(backends.SERVERS)}"
        )
    command = backend.command(spec, port, host)
    if spec.dtype and backend.takes_dtype:
        # before the user's args, so an explicit --dtype there wins (the last flag counts)
        command += ["--dtype", spec.dtype]
    return command + list(spec.args)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """In a process the job starts (a server, a vLLM replica): get SIGTERM when the job
    process dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ManagedServer:
    """Runs a server command for the duration of a ``with`` block.

    Args:
        command: the server's command line.
        base_url: where it will listen, e.g. ``http://127.0.0.1:8000``.
        health_timeout: seconds to wait for ``/health`` to answer 200.
        env: extra environment for the server (``CUDA_VISIBLE_DEVICES``, ...).
        stop_timeout: seconds between SIGTERM and SIGKILL when stopping.
        model: the name the server must list at ``/v1/models``; checked once it is healthy,
            so another server that already held the port is not mistaken for ours.
    """

    def __init__(
        self,
        command: list[str],
        base_url: str,
        health_timeout: float = 600.0,
        env: dict | None = None,
        stop_timeout: float = 30.0,
        model: str | None = None,
    ):
        self.command = command
        self.model = model
        self.base_url = base_url
        self.health_timeout = health_timeout
        self.env = {**os.environ, **(env or {})}
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen | None = None
        self._previous_handler = None

    def __enter__(self) -> ManagedServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def start(self) -> None:
        """Starts the server process (SIGTERM now stops the job, and with it the server)."""
        self._previous_handler = signal.signal(signal.SIGTERM, _raise_on_sigterm)
        logger.info("starting server: %s", " ".join(self.command))
        try:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sys.stderr.fileno(),
                stderr=sys.stderr.fileno(),
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError as err:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None
            raise DistilleryError(
                f"cannot start the server ({err}); is it installed in this environment?"
            ) from None

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None

    def wait_ready(self) -> None:
        """Waits for ``/health``, then checks the server is ours."""
        began = time.monotonic()
        url = self.base_url.rstrip("/") + "/health"
        while True:
            code = self.process.poll()
            if code is not None:
                raise DistilleryError(
                    f"the server exited with status {code} before it was ready; its output is "
                    "above in this log (bad model path? port taken? not enough memory?)"
                )
            with contextlib.suppress(urllib.error.URLError, OSError):
                with urllib.request.urlopen(url, timeout=5) as response:
                    healthy = response.status == 200
                if healthy:
                    self._check_identity()
                    logger.info("server ready after %.0fs", time.monotonic() - began)
                    return
            waited = time.monotonic() - began
            if waited > self.health_timeout:
                raise DistilleryError(
                    f"the server did not answer {url} within {self.health_timeout:g}s; its "
                    "output is above in this log (raise server.health_timeout for big models)"
                )
            time.sleep(0.2 if waited < 10 else 1.0)

    def _check_identity(self) -> None:
        if self.model is None:
            return
        with urllib.request.urlopen(self.base_url.rstrip("/") + "/v1/models", timeout=10) as r:
            served = [m.get("id") for m in json.load(r).get("data", [])]
        if self.model not in served or self.process.poll() is not None:
            raise DistilleryError(
                f"another server answers on {self.base_url} (it serves {served}); the port was "
                "taken: rerun the job to get a new port"
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the server (it shuts its workers down), then SIGKILL to whatever is left
        of its process group."""
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the server leads its own group
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                logger.warning("server ignored SIGTERM for %gs; killing it", self.stop_timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        self.process.wait()
        self.process = None
        logger.info("server stopped")


def _raise_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def serve(
    spec: ServerSpec, health_timeout: float, gpu_env: dict, replica_gpus: list[str] | None = None
) -> Iterator[list[str]]:
    """Starts the server for ``spec`` and yields its base URLs: one, or one per replica when
    ``replica_gpus`` gives each replica's ``CUDA_VISIBLE_DEVICES``. Replicas load their weights
    at the same time; if any fails to start, all are stopped."""
    envs = [gpu_env] if replica_gpus is None else [
        {**gpu_env, "CUDA_VISIBLE_DEVICES": ids} for ids in replica_gpus
    ]  # fmt: skip
    with contextlib.ExitStack() as stack:
        servers = []
        for env in envs:
            port = free_port()
            server = ManagedServer(
                server_command(spec, port),
                f"http://127.0.0.1:{port}",
                health_timeout,
                env={**spec.env, **env},
                model=spec.name,
            )
            stack.push(server.__exit__)
            server.start()
            servers.append(server)
        for server in servers:
            server.wait_ready()
        yield [server.base_url for server in servers]

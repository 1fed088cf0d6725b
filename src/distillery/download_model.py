"""Stage: download a model from the Hugging Face hub into a plain model directory.

Usage::

    python -m distillery.download_model --repo Qwen/Qwen2.5-14B-Instruct \\
        --revision cf98f3b --output results/models/qwen2.5-14b-instruct

The revision should be pinned (a commit hash) so a rerun gets the same weights. ``HF_TOKEN`` is
read from the environment for gated models. The download goes to a temporary directory beside
the output and is renamed into place when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from distillery import cli
from distillery.errors import DistilleryError

logger = logging.getLogger(__name__)

# What serving and training need; skips other formats a repo may also carry.
DEFAULT_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.py")


@dataclass(frozen=True)
class Config:
    """Download a model snapshot."""

    repo: str = field(metadata={"help": "hub repository id, e.g. Qwen/Qwen2.5-14B-Instruct"})
    output: str = field(metadata={"help": "model directory to create"})
    revision: str | None = field(
        default=None, metadata={"help": "commit hash or tag (pin it for reproducible runs)"}
    )
    allow_patterns: tuple[str, ...] = field(
        default=DEFAULT_PATTERNS, metadata={"help": "files to download"}
    )


def main(config: Config) -> None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if config.revision is None:
        logger.warning("no revision pinned for %s: downloading the latest", config.repo)
    output = Path(config.output)
    tmp = output.with_name(f".{output.name}.download")
    try:
        snapshot_download(
            repo_id=config.repo,
            revision=config.revision,
            local_dir=tmp,
            allow_patterns=list(config.allow_patterns),
            token=os.environ.get("HF_TOKEN"),
        )
    except GatedRepoError:
        raise DistilleryError(
            f"{config.repo} is gated: accept its terms on the hub and export HF_TOKEN"
        ) from None
    except RevisionNotFoundError:
        raise DistilleryError(f"{config.repo} has no revision {config.revision!r}") from None
    except RepositoryNotFoundError:
        raise DistilleryError(
            f"{config.repo}: no such model on the hub (or it is private: export HF_TOKEN)"
        ) from None
    except (OSError, ConnectionError) as err:
        raise DistilleryError(
            f"cannot download {config.repo}: {err}. Without network access, copy the model "
            "here and use `source: path` for it in the config"
        ) from None
    if not (tmp / "config.json").is_file():
        raise DistilleryError(f"{config.repo}: the download has no config.json; is it a model?")
    shutil.rmtree(tmp / ".cache", ignore_errors=True)
    if output.exists():
        shutil.rmtree(output)
    tmp.rename(output)
    logger.info("downloaded %s@%s to %s", config.repo, config.revision or "latest", output)


if __name__ == "__main__":
    cli.run(main, Config)

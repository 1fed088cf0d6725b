"""Stage: fetch one of NeMo-Skills' own prompt configs, pinned to a commit.

A prompt may be named ``nemo-skills:<name>`` wherever a prompt file goes
(``nemo-skills:judge/math``, ``nemo-skills:generic/math``, ``nemo-skills:eval/aai/mcq-4choices``):
the workflow fetches
``nemo_skills/prompt/config/<name>.yaml`` of NeMo-Skills at :data:`COMMIT` once, into
``results/prompts/nemo-skills@<commit>/<name>.yaml`` beside the benchmark downloads, and the
stages read it from there like any prompt file (NeMo-Skills' format: ``system``, ``user``, and
``few_shot_examples``, whose ``{examples}`` is empty without an example set).

Usage::

    python -m distillery.nemo_skills_prompts --name judge/math --output judge-math.yaml

Without network access, download the file elsewhere, put it at the output path, and the
workflow uses it as it is; ``DISTILLERY_NEMO_SKILLS_URL`` points at a mirror of the
repository's raw files (``<mirror>/<commit>/nemo_skills/prompt/config/<name>.yaml``).
"""

from __future__ import annotations

import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from distillery import cli
from distillery.errors import DistilleryError
from distillery.jsonl import write_text
from distillery.prompts import load_prompt

logger = logging.getLogger(__name__)

PREFIX = "nemo-skills:"
# the NeMo-Skills commit our parity is checked against (docs/parity.md)
COMMIT = "0b012df8a09cd4730d31b16e90a0d8f13d145fb8"
BASE_URL = "https://raw.githubusercontent.com/NVIDIA-NeMo/Skills"
URL_ENV = "DISTILLERY_NEMO_SKILLS_URL"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


def is_nemo_skills(prompt: str) -> bool:
    return prompt.startswith(PREFIX)


def prompt_name(prompt: str) -> str:
    """The config name of ``nemo-skills:<name>``, checked (no ``..``, no absolute path).

    Example:
        >>> prompt_name("nemo-skills:judge/math")
        'judge/math'
    """
    name = prompt[len(PREFIX) :].removesuffix(".yaml")
    if not _NAME.fullmatch(name) or ".." in name:
        raise DistilleryError(
            f"{prompt!r}: not a NeMo-Skills prompt name; write nemo-skills:<name> with the path "
            "under nemo_skills/prompt/config, e.g. nemo-skills:judge/math"
        )
    return name


def cache_path(prompt: str, results: str = "results") -> str:
    """Where the workflow keeps a fetched NeMo-Skills prompt.

    Example:
        >>> cache_path("nemo-skills:judge/math")
        'results/prompts/nemo-skills@0b012df/judge/math.yaml'
    """
    return f"{results}/prompts/nemo-skills@{COMMIT[:7]}/{prompt_name(prompt)}.yaml"


def prompt_url(name: str) -> str:
    base = os.environ.get(URL_ENV) or BASE_URL
    return f"{base.rstrip('/')}/{COMMIT}/nemo_skills/prompt/config/{name}.yaml"


@dataclass(frozen=True)
class Config:
    """Fetch a NeMo-Skills prompt config."""

    name: str = field(metadata={"help": "the config's name, e.g. judge/math"})
    output: str = field(metadata={"help": "where to write it"})
    timeout: float = field(default=60.0, metadata={"help": "seconds to wait for the download"})


def fetch(name: str, timeout: float = 60.0) -> str:
    """The text of NeMo-Skills' prompt config ``name`` at :data:`COMMIT`."""
    url = prompt_url(prompt_name(PREFIX + name))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        raise DistilleryError(
            f"cannot fetch NeMo-Skills prompt {name!r} from {url}: HTTP {err.code} {err.reason}; "
            "check the name against nemo_skills/prompt/config at that commit"
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError, UnicodeDecodeError) as err:
        raise DistilleryError(
            f"cannot fetch NeMo-Skills prompt {name!r} from {url}: "
            f"{getattr(err, 'reason', err)}. Without network access, download that file "
            f"elsewhere and put it at the output path, or set {URL_ENV} to a mirror"
        ) from None


def main(config: Config) -> None:
    text = fetch(config.name, config.timeout)
    write_text(config.output, text)
    try:
        load_prompt(config.output)  # a file that is not a prompt config fails here, not later
    except DistilleryError:
        os.unlink(config.output)
        raise
    logger.info("fetched NeMo-Skills prompt %s (commit %s) to %s", config.name, COMMIT[:7],
                config.output)  # fmt: skip


if __name__ == "__main__":
    cli.run(main, Config)

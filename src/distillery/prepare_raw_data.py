"""Stage: write the raw data the pipeline starts from.

Usage::

    python -m distillery.prepare_raw_data --source demo --num-posts 24 --output raw.jsonl
    python -m distillery.prepare_raw_data --source aops --num-posts 1000 --output raw.jsonl \\
        [--path aops.parquet] [--tokenizer models/qwen2.5-32b-instruct] [--max-tokens 24000]
    python -m distillery.prepare_raw_data --source nemotron --subsets math=50000 code=20000 \\
        --output raw.jsonl [--path dir-with-subset-files]

``demo`` and ``aops`` give forum posts (``forum_post``, ``forum_discussions``) for problem
extraction; ``nemotron`` gives problems with ready solutions (``problem``, ``generation``,
``reasoning``, ``system_prompt``) for the SFT data stage. Hub sources are streamed, so memory does
not grow with the number of rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from distillery import cli
from distillery.errors import DistilleryError
from distillery.jsonl import atomic_output, dumps

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Prepare raw data."""

    output: str = field(metadata={"help": "raw data JSONL"})
    source: Literal["demo", "aops", "nemotron"] = field(
        default="demo",
        metadata={"help": "demo: generated posts; aops: AoPS-Instruct; nemotron: Llama-Nemotron"},
    )
    path: str | None = field(
        default=None,
        metadata={"help": "local file (aops) or directory (nemotron) instead of the hub"},
    )
    num_posts: int = field(default=24, metadata={"help": "demo, aops: how many posts"})
    seed: int = field(default=0, metadata={"help": "demo: generator seed"})
    unlabeled_share: float = field(
        default=0.25, metadata={"help": "demo: share of posts whose answer is withheld"}
    )
    chatter_share: float = field(
        default=0.1, metadata={"help": "demo: share of posts that ask no problem"}
    )
    max_tokens: int = field(
        default=24000, metadata={"help": "aops: token budget of a thread's discussion"}
    )
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "aops: model directory whose tokenizer counts tokens (default: words)"},
    )
    subsets: tuple[str, ...] = field(
        default=(), metadata={"help": "nemotron: SUBSET=CAP entries, e.g. math=50000"}
    )

    def __post_init__(self):
        if self.num_posts < 1:
            raise DistilleryError("--num-posts must be at least 1")
        for name in ("unlabeled_share", "chatter_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise DistilleryError(f"--{name.replace('_', '-')} must be in [0, 1]")
        if self.source == "nemotron" and not self.subsets:
            raise DistilleryError("--source nemotron needs --subsets, e.g. math=50000")
        for entry in self.subsets:
            name, _, cap = entry.partition("=")
            if not cap.isdigit():
                raise DistilleryError(f"--subsets entry {entry!r} is not SUBSET=CAP")


def _token_counter(tokenizer: str | None):
    if tokenizer is None:
        return lambda text: len(text.split())
    from distillery.chat_template import TokenCounter

    counter = TokenCounter(tokenizer)
    return lambda text: counter([text])[0]


def main(config: Config) -> None:
    if config.source == "demo":
        from distillery.demo_data import make_forum_posts

        rows = make_forum_posts(
            config.num_posts, config.seed, config.unlabeled_share, config.chatter_share
        )
    elif config.source == "aops":
        from distillery.raw_sources import iter_aops

        rows = iter_aops(
            config.path, config.num_posts, _token_counter(config.tokenizer), config.max_tokens
        )
    else:
        from distillery.raw_sources import iter_nemotron

        caps = {entry.split("=")[0]: int(entry.split("=")[1]) for entry in config.subsets}
        rows = iter_nemotron(config.path, caps)
    count = 0
    with atomic_output(config.output) as out:
        for row in rows:
            out.write(dumps(row))
            count += 1
        if count == 0:
            raise DistilleryError(f"{config.path or config.source}: no rows")
    logger.info("wrote %d %s rows to %s", count, config.source, config.output)


if __name__ == "__main__":
    cli.run(main, Config)

"""Stage: write the raw forum posts (``forum_post``, ``forum_discussions``) to start from.

Usage::

    python -m distillery.prepare_raw_data --source demo --num-posts 24 --output raw-posts.jsonl
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from distillery import cli
from distillery.errors import DistilleryError
from distillery.jsonl import write_jsonl

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Prepare raw forum posts."""

    output: str = field(metadata={"help": "raw posts JSONL"})
    source: Literal["demo"] = field(
        default="demo", metadata={"help": "demo: generated posts with known answers"}
    )
    num_posts: int = field(default=24, metadata={"help": "how many posts"})
    seed: int = field(default=0, metadata={"help": "generator seed"})
    unlabeled_share: float = field(
        default=0.25, metadata={"help": "demo: share of posts whose answer is withheld"}
    )
    chatter_share: float = field(
        default=0.1, metadata={"help": "demo: share of posts that ask no problem"}
    )

    def __post_init__(self):
        if self.num_posts < 1:
            raise DistilleryError("--num-posts must be at least 1")
        for name in ("unlabeled_share", "chatter_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise DistilleryError(f"--{name.replace('_', '-')} must be in [0, 1]")


def main(config: Config) -> None:
    from distillery.demo_data import make_forum_posts

    posts = make_forum_posts(
        config.num_posts, config.seed, config.unlabeled_share, config.chatter_share
    )
    write_jsonl(config.output, posts)
    labelled = sum(p["expected_answer"] is not None for p in posts)
    logger.info(
        "wrote %d posts (%d with a known answer) to %s", len(posts), labelled, config.output
    )


if __name__ == "__main__":
    cli.run(main, Config)

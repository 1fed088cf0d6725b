"""Stage: write the raw data the pipeline starts from.

Usage::

    python -m distillery.prepare_raw_data --set source=demo --set num_posts=24 --output raw.jsonl
    python -m distillery.prepare_raw_data --set source=aops --set num_posts=1000 \\
        --output raw.jsonl [--set path=aops.parquet] [--tokenizer models/qwen2.5-32b-instruct]
    python -m distillery.prepare_raw_data --output raw.jsonl \\
        --config-json '{"source": "nemotron", "subsets": {"math": 50000, "code": 20000}}'

``demo`` and ``aops`` give forum posts (``forum_post``, ``forum_discussions``) for problem
extraction; ``nemotron`` gives problems with ready solutions (``problem``, ``generation``,
``reasoning``, ``system_prompt``) for the SFT data stage. Hub sources are streamed, so memory does
not grow with the number of rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from distillery import cli
from distillery.errors import DistilleryError
from distillery.jsonl import atomic_output, dumps
from distillery.settings.data import RawData

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Prepare the raw forum posts."""

    output: str = field(metadata={"help": "raw data JSONL"})
    raw: RawData = field(
        metadata={"help": 'the raw_data block, e.g. --config-json \'{"source": "demo"}\''}
    )
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "aops: model directory whose tokenizer counts tokens (default: words)"},
    )


def _token_counter(tokenizer: str | None):
    if tokenizer is None:
        return lambda text: len(text.split())
    from distillery.sft_data.chat_template import TokenCounter

    counter = TokenCounter(tokenizer)
    return lambda text: counter([text])[0]


def main(config: Config) -> None:
    if config.raw.source == "demo":
        from distillery.data.demo import make_forum_posts

        rows = make_forum_posts(
            config.raw.num_posts,
            config.raw.seed,
            config.raw.unlabeled_share,
            config.raw.chatter_share,
        )
    elif config.raw.source == "aops":
        from distillery.data.raw_sources import iter_aops

        rows = iter_aops(
            config.raw.path,
            config.raw.num_posts,
            _token_counter(config.tokenizer),
            config.raw.max_tokens,
        )
    else:
        from distillery.data.raw_sources import iter_nemotron

        rows = iter_nemotron(config.raw.path, dict(config.raw.subsets))
    count = 0
    with atomic_output(config.output) as out:
        for row in rows:
            out.write(dumps(row))
            count += 1
        if count == 0:
            raise DistilleryError(f"{config.raw.path or config.raw.source}: no rows")
    logger.info("wrote %d %s rows to %s", count, config.raw.source, config.output)


if __name__ == "__main__":
    cli.run(main, Config)

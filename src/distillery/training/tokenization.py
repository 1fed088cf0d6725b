"""Tokenization of SFT records with the loss on the assistant turn only.

``input`` (the prompt with the chat template applied) and ``output`` (the assistant turn and its
end-of-turn tokens) are tokenized separately, exactly as the model sees them at inference:
the prompt alone, then what it generates. ``completion_mask`` is 1 on ``output`` tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenizeStats:
    kept: int = 0
    dropped_empty: int = 0
    dropped_too_long: int = 0
    tokens: int = 0
    loss_tokens: int = 0


def tokenize_records(
    records: list[dict], tokenizer, max_seq_length: int
) -> tuple[list[dict], TokenizeStats]:
    """``input_ids`` and ``completion_mask`` per record; empty and over-long ones are dropped
    and counted (truncating would cut off the answer the loss is about)."""
    stats = TokenizeStats()
    examples = []
    for record in records:
        prompt_ids = tokenizer(record["input"], add_special_tokens=False).input_ids
        answer_ids = tokenizer(record["output"], add_special_tokens=False).input_ids
        if not answer_ids or not record["output"].strip():
            stats.dropped_empty += 1
            continue
        if len(prompt_ids) + len(answer_ids) > max_seq_length:
            stats.dropped_too_long += 1
            continue
        examples.append(
            {
                "input_ids": prompt_ids + answer_ids,
                "completion_mask": [0] * len(prompt_ids) + [1] * len(answer_ids),
            }
        )
        stats.kept += 1
        stats.tokens += len(prompt_ids) + len(answer_ids)
        stats.loss_tokens += len(answer_ids)
    return examples, stats

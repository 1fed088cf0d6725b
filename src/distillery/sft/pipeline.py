"""The streaming SFT data pipeline.

Seed files are read line by line in lockstep (line i of every file is problem i), so memory does
not grow with the data: what is kept between rows is a set of 64-bit hashes for deduplication and
one count per problem. Pass 1 labels, selects and filters, writing the surviving solutions to a
scratch file; per-problem quotas for downsampling follow from the counts; pass 2 downsamples,
formats for the student, splits train and validation by problem, and shuffles through bucket
files. Every step's removals are counted, in order, for the report.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from distillery.errors import DistilleryError
from distillery.grading import ExtractionConfig
from distillery.jsonl import atomic_output, dumps
from distillery.prompts import PromptConfig
from distillery.sft.contamination import Match, NGramIndex
from distillery.sft.filters import answer_part, has_multiple_boxed, has_think_tags, trim_solution
from distillery.sft.formatting import ChatFormatter
from distillery.sft.labels import (
    add_predicted_answer,
    fill_majority_answer,
    is_unlabeled,
    label,
    passes_majority_filter,
)

logger = logging.getLogger(__name__)

BUCKETS = 16
_SCRATCH_FIELDS = (
    "problem",
    "generation",
    "expected_answer",
    "predicted_answer",
    "symbolic_correct",
    "majority_votes",
    "total_votes",
)


@dataclass(frozen=True)
class Options:
    """What the pipeline keeps and how it formats it (see the stage's flags for each)."""

    add_correct: bool = True
    add_incorrect: bool = False
    add_unlabeled: bool = False
    fill_majority: bool = True
    min_majority_votes: int = 0
    min_majority_percentage: float = 0.0
    deduplicate: bool = True
    drop_multi_boxed: bool = False
    remove_contaminated: bool = False
    remove_no_think_tags: bool = False
    think_tags: tuple[str, ...] = ("</think>",)
    trim_solutions: bool = False
    remove_len_outlier_problems: bool = False
    min_problem_length: int = 0
    max_problem_length: int = 1024
    remove_len_outlier_solutions: bool = False
    min_solution_length: int = 0
    max_solution_length: int = 2048
    max_seq_length: int | None = None
    downsampling: str | None = None
    max_per_problem: int | None = None
    num_output_samples: int | None = None
    thinking_off_share: float = 0.0
    system_on: str | None = None
    system_off: str | None = None
    reasoning_end: str = "</think>"
    validation_share: float = 0.0
    seed: int = 42
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)


class Report:
    """Rows removed by each step, in order, and notes."""

    def __init__(self) -> None:
        self.read = 0
        self.removed: dict[str, int] = {}
        self.notes: dict = {}

    def drop(self, step: str, count: int = 1) -> None:
        self.removed[step] = self.removed.get(step, 0) + count

    def step(self, name: str) -> None:
        self.removed.setdefault(name, 0)

    def as_dict(self) -> dict:
        remaining = self.read
        steps = []
        for name, count in self.removed.items():
            remaining -= count
            steps.append({"step": name, "removed": count, "remaining": remaining})
        return {"rows_read": self.read, "steps": steps, **self.notes}

    def markdown(self) -> str:
        data = self.as_dict()
        lines = ["| step | removed | remaining |", "|---|---:|---:|"]
        lines.append(f"| rows read | | {self.read} |")
        lines += [f"| {s['step']} | {s['removed']} | {s['remaining']} |" for s in data["steps"]]
        notes = [f"- {k}: {v}" for k, v in self.notes.items()]
        return "# SFT data report\n\n" + "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def _seed_groups(paths: list[str], report: Report) -> Iterator[list[dict]]:
    """Rows of line i of every seed file; rows without generation or problem are counted."""
    with ExitStack() as stack:
        handles = [stack.enter_context(open(path, "rb")) for path in paths]
        number = 0
        while True:
            lines = [handle.readline() for handle in handles]
            number += 1
            if not any(lines):
                return
            if not all(lines):
                raise DistilleryError(
                    f"solution files have different line counts (they differ at line {number}); "
                    "each seed must cover the same problems in the same order"
                )
            group = []
            for path, line in zip(paths, lines, strict=True):
                report.read += 1
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError:
                        raise DistilleryError(
                            f"{path}:{number}: line is not valid UTF-8; fix or remove it"
                        ) from None
                    raise DistilleryError(f"{path}:{number}: line is not valid JSON") from None
                if not isinstance(row, dict) or not row.get("generation") or not row.get("problem"):
                    report.drop("rows missing generation or problem")
                    continue
                group.append(row)
            yield group


def _keep(row: dict, options: Options) -> bool:
    if is_unlabeled(row):
        return options.add_unlabeled
    return options.add_correct if row["symbolic_correct"] else options.add_incorrect


def _unit(text: str, seed: int) -> float:
    """A uniform number in [0, 1) from ``text``, the same in every run with ``seed``."""
    digest = hashlib.blake2b(f"{seed}\x00{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class Tokens:
    """Token counting with the student's tokenizer, for the length filters."""

    count: Callable[[list[str]], list[int]] | None = None

    def __call__(self, texts: list[str]) -> list[int]:
        if self.count is None:
            raise DistilleryError("length filters need the student's tokenizer")
        return self.count(texts)


def prepare(
    inputs: list[str],
    options: Options,
    prompt: PromptConfig,
    formatter: ChatFormatter,
    scratch: Path,
    train_path: str,
    validation_path: str | None,
    contamination_path: str | None,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
    ngrams: NGramIndex | None = None,
    flagged_by_embedding: dict[str, tuple[Match, float]] | None = None,
) -> Report:
    """Runs both passes; returns the report. See the module docstring."""
    report = Report()
    tokens = Tokens(count_tokens)
    keep_fields = set(_SCRATCH_FIELDS) | prompt.fields()
    counts = _filter_pass(
        inputs,
        options,
        report,
        tokens,
        ngrams,
        flagged_by_embedding,
        scratch,
        contamination_path,
        keep_fields,
    )
    survivors = sum(counts.values())
    if survivors == 0:
        raise DistilleryError(
            "nothing to train on: every solution was filtered out.\n"
            + report.markdown()
            + "Generate more solutions (seeds, problems), use a stronger teacher, or relax the "
            "selection (add_incorrect, add_unlabeled, min_majority_votes, filters)."
        )
    quotas = downsampling_quotas(counts, options)
    written = _format_pass(
        options,
        prompt,
        formatter,
        scratch,
        quotas,
        counts,
        tokens,
        report,
        train_path,
        validation_path,
    )
    report.notes.update(written)
    return report


def _filter_pass(
    inputs,
    options,
    report,
    tokens,
    ngrams,
    flagged_by_embedding,
    scratch,
    contamination_path,
    keep_fields,
) -> dict[int, int]:
    seen: set[int] = set()
    counts: dict[int, int] = {}
    filled = 0
    flagged = 0
    for name in (
        "correctness selection",
        "deduplicate (problem, generation)",
        "drop_multi_boxed",
        "remove_contaminated",
        "remove_no_think_tags",
        "majority filter",
        "remove_len_outlier_problems",
        "remove_len_outlier_solutions",
    ):
        report.step(name)
    with ExitStack() as stack:
        scratch_file = stack.enter_context(open(scratch / "filtered.jsonl", "wb"))
        flagged_file = (
            stack.enter_context(atomic_output(contamination_path)) if contamination_path else None
        )
        for index, rows in enumerate(_seed_groups(inputs, report)):
            if not rows:
                continue
            for row in rows:
                add_predicted_answer(row, options.extraction)
            if options.fill_majority:
                filled += fill_majority_answer(rows)
            for row in rows:
                label(row)
            kept = [r for r in rows if _keep(r, options)]
            report.drop("correctness selection", len(rows) - len(kept))
            if options.deduplicate:
                unique = []
                for row in kept:
                    key = hash((row["problem"], row["generation"]))
                    if key not in seen:
                        seen.add(key)
                        unique.append(row)
                report.drop("deduplicate (problem, generation)", len(kept) - len(unique))
                kept = unique
            if options.drop_multi_boxed:
                before = len(kept)
                kept = [r for r in kept if not has_multiple_boxed(r["generation"])]
                report.drop("drop_multi_boxed", before - len(kept))
            if options.remove_contaminated and kept:
                problem = kept[0]["problem"]
                match = ngrams.match(problem) if ngrams is not None else None
                score = None
                if match is None and flagged_by_embedding and problem in flagged_by_embedding:
                    match, score = flagged_by_embedding[problem]
                if match is not None:
                    flagged += 1
                    if flagged_file is not None:
                        flagged_file.write(
                            dumps(
                                {
                                    "problem": problem,
                                    "benchmark": match.benchmark,
                                    "benchmark_id": match.benchmark_id,
                                    "overlap": match.overlap,
                                    "method": "ngram" if score is None else "embedding",
                                    "similarity": score,
                                }
                            )
                        )
                    report.drop("remove_contaminated", len(kept))
                    kept = []
            if options.remove_no_think_tags:
                before = len(kept)
                kept = [r for r in kept if has_think_tags(r["generation"], options.think_tags)]
                report.drop("remove_no_think_tags", before - len(kept))
            before = len(kept)
            kept = [
                r
                for r in kept
                if passes_majority_filter(
                    r, options.min_majority_votes, options.min_majority_percentage
                )
            ]
            report.drop("majority filter", before - len(kept))
            if options.trim_solutions:
                for row in kept:
                    row["generation"] = trim_solution(row["generation"])
            if options.remove_len_outlier_problems and kept:
                (length,) = tokens([kept[0]["problem"]])
                if not options.min_problem_length <= length <= options.max_problem_length:
                    report.drop("remove_len_outlier_problems", len(kept))
                    kept = []
            if options.remove_len_outlier_solutions and kept:
                lengths = tokens([r["generation"] for r in kept])
                before = len(kept)
                kept = [
                    r
                    for r, n in zip(kept, lengths, strict=True)
                    if options.min_solution_length <= n <= options.max_solution_length
                ]
                report.drop("remove_len_outlier_solutions", before - len(kept))
            for row in kept:
                record = {k: row[k] for k in keep_fields if k in row}
                record["_group"] = index
                scratch_file.write(dumps(record))
            if kept:
                counts[index] = len(kept)
    report.notes["problems_labelled_by_majority"] = filled
    report.notes["problems_flagged_as_contaminated"] = flagged
    return counts


def downsampling_quotas(counts: dict[int, int], options: Options) -> dict[int, int]:
    """Solutions to keep per problem.

    ``random``: at most ``max_per_problem`` each, then (with ``num_output_samples``) a uniform
    share of the rest. ``fair``: NeMo-Skills' round robin, one solution per problem per round,
    until ``num_output_samples``, i.e. every problem gets the same number, capped by what it has.
    """
    quotas = dict(counts)
    if options.max_per_problem is not None:
        quotas = {g: min(n, options.max_per_problem) for g, n in quotas.items()}
    target = options.num_output_samples
    if options.downsampling is None or target is None or target >= sum(quotas.values()):
        return quotas
    if options.downsampling == "fair":
        sizes = sorted(quotas.values())
        level, remaining, open_groups = 0, target, len(sizes)
        for size in sizes:
            step = size - level
            if step * open_groups > remaining:
                break
            remaining -= step * open_groups
            level = size
            open_groups -= 1
        level += remaining // max(open_groups, 1)
        extra = remaining % max(open_groups, 1)
        order = sorted(quotas, key=lambda g: _unit(str(g), options.seed))
        fair = {}
        for group in order:
            share = min(quotas[group], level)
            if extra and quotas[group] > level:
                share += 1
                extra -= 1
            fair[group] = share
        return fair
    total = sum(quotas.values())
    picked = random.Random(options.seed).sample(range(total), target)
    chosen: dict[int, int] = {}
    positions = sorted(picked)
    start, pointer = 0, 0
    for group in sorted(quotas):
        end = start + quotas[group]
        count = 0
        while pointer < len(positions) and positions[pointer] < end:
            count += 1
            pointer += 1
        chosen[group] = count
        start = end
    return chosen


def _format_pass(
    options,
    prompt,
    formatter,
    scratch,
    quotas,
    counts,
    tokens,
    report,
    train_path,
    validation_path,
) -> dict:
    report.step("downsampling")
    report.step("max_seq_length")
    rng = random.Random(options.seed)
    buckets = {
        name: [open(scratch / f"{name}-{b}.jsonl", "wb") for b in range(BUCKETS)]
        for name in ("train", "validation")
    }
    written = {"train": 0, "validation": 0, "thinking_off": 0}
    try:
        for group, rows in _scratch_groups(scratch / "filtered.jsonl"):
            quota = quotas.get(group, 0)
            if quota < len(rows):
                rows = random.Random(f"{options.seed}-{group}").sample(rows, quota)
                report.drop("downsampling", counts[group] - quota)
            records = [_record(row, options, prompt, formatter) for row in rows]
            if options.max_seq_length is not None and records:
                lengths = tokens([r["input"] + r["output"] for r in records])
                before = len(records)
                records = [
                    r for r, n in zip(records, lengths, strict=True) if n <= options.max_seq_length
                ]
                report.drop("max_seq_length", before - len(records))
            for record in records:
                is_validation = (
                    options.validation_share > 0
                    and _unit(record["problem"], options.seed) < options.validation_share
                )
                name = "validation" if is_validation else "train"
                buckets[name][rng.randrange(BUCKETS)].write(dumps(record))
                written[name] += 1
                written["thinking_off"] += record.get("thinking") == "off"
    finally:
        for files in buckets.values():
            for handle in files:
                handle.close()
    if written["train"] == 0:
        raise DistilleryError(
            "nothing to train on after downsampling and the sequence-length limit.\n"
            + report.markdown()
        )
    _concatenate_shuffled(scratch, "train", train_path, options.seed)
    if validation_path:
        _concatenate_shuffled(scratch, "validation", validation_path, options.seed)
    return {
        "written_train": written["train"],
        "written_validation": written["validation"],
        "thinking_off_records": written["thinking_off"],
    }


def _scratch_groups(path: Path) -> Iterator[tuple[int, list[dict]]]:
    current, rows = None, []
    with open(path, "rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            group = row.pop("_group")
            if group != current and rows:
                yield current, rows
                rows = []
            current = group
            rows.append(row)
    if rows:
        yield current, rows


def _record(row: dict, options: Options, prompt: PromptConfig, formatter: ChatFormatter) -> dict:
    messages = prompt.messages(row)
    answer = row["generation"]
    thinking = None
    if options.thinking_off_share > 0 or options.system_on or options.system_off:
        thinking = "on"
        short = answer_part(answer, options.reasoning_end)
        off = short is not None and _unit(answer, options.seed + 1) < options.thinking_off_share
        if off:
            thinking, answer = "off", short
        system = options.system_off if off else options.system_on
        messages = [m for m in messages if m["role"] != "system"]
        if system:
            messages.insert(0, {"role": "system", "content": system})
    messages.append({"role": "assistant", "content": answer})
    text_input, text_output = formatter.split(messages)
    record = {
        "messages": messages,
        "input": text_input,
        "output": text_output,
        "problem": row["problem"],
        "expected_answer": row.get("expected_answer"),
    }
    if thinking is not None:
        record["thinking"] = thinking
    return record


def _concatenate_shuffled(scratch: Path, name: str, path: str, seed: int) -> None:
    rng = random.Random(seed)
    with atomic_output(path) as out:
        for bucket in range(BUCKETS):
            part = scratch / f"{name}-{bucket}.jsonl"
            lines = part.read_bytes().splitlines(keepends=True)
            rng.shuffle(lines)
            out.writelines(lines)
            part.unlink()

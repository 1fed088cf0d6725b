"""The streaming SFT data pipeline.

Seed files are read line by line in lockstep (line i of every file is problem i), so memory does
not grow with the data: what is kept between rows is a set of 64-bit hashes for deduplication and
one count per problem. Pass 1 labels, selects and filters, writing the surviving solutions to a
scratch file; per-problem quotas for downsampling follow from the counts; pass 2 downsamples,
formats for the student, splits train and validation by problem, and shuffles through bucket
files. Every step's removals are counted, in order, for the report.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import multiprocessing
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from distillery.errors import DistilleryError
from distillery.grading.answers import ExtractionConfig
from distillery.jsonl import atomic_output, dumps
from distillery.prompts import PromptConfig
from distillery.settings.data import Downsampling, SftSelection
from distillery.sft_data import filters
from distillery.sft_data.contamination import Match, NGramIndex
from distillery.sft_data.filters import answer_part
from distillery.sft_data.formatting import ChatFormatter
from distillery.sft_data.labels import add_predicted_answer, fill_majority_answer, label_group

logger = logging.getLogger(__name__)

BUCKETS = 16
_SCRATCH_FIELDS = (
    "problem",
    "generation",
    "expected_answer",
    "predicted_answer",
    "symbolic_correct",
    "judgement",
    "majority_votes",
    "total_votes",
    "reasoning",
    "system_prompt",
)


@dataclass(frozen=True)
class Labelling:
    """What labelling a problem's solutions needs (sent to the grading workers)."""

    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    fill_majority: bool = True


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


def _line_groups(paths: list[str]) -> Iterator[tuple[int, tuple[bytes, ...]]]:
    """``(line number, lines)``: line i of every seed file, in lockstep."""
    with ExitStack() as stack:
        handles = [stack.enter_context(open(path, "rb", buffering=1 << 20)) for path in paths]
        for number, lines in enumerate(itertools.zip_longest(*handles), start=1):
            if None in lines:
                raise DistilleryError(
                    f"solution files have different line counts (they differ at line {number}); "
                    "each seed must cover the same problems in the same order"
                )
            yield number, lines


@dataclass
class _Labels:
    """Per line group, per valid row: ``(predicted_answer, symbolic_correct, majority)`` where
    majority is ``(expected_answer, votes, total)`` for majority-labelled problems."""

    groups: list[list[tuple]]
    missing: int = 0
    filled: int = 0


def _parse(number: int, lines: tuple[bytes, ...], paths: list[str]) -> tuple[list[dict], int]:
    rows, missing = [], 0
    for path, line in zip(paths, lines, strict=True):
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise DistilleryError(f"{path}:{number}: {_why_unreadable(line)}") from None
        if not isinstance(row, dict) or not row.get("generation") or not row.get("problem"):
            missing += 1
            continue
        rows.append(row)
    return rows, missing


def label_rows(rows: list[dict], labelling: Labelling) -> bool:
    """Adds predicted answers, majority answers and correctness to one problem's rows; whether
    its answer is a majority one (filled here, or by the solution judge's labelling before)."""
    filled = False
    if rows:
        for row in rows:
            add_predicted_answer(row, labelling.extraction)
        if labelling.fill_majority:
            filled = fill_majority_answer(rows)
        filled = filled or rows[0].get("fill_mode") == "majority"
        label_group(rows)
    return filled


def _label_chunk(chunk: list[tuple[int, tuple[bytes, ...]]], paths, labelling) -> _Labels:
    """Labels a chunk of line groups in a worker process; only the compact labels travel back
    (sending whole rows back would cost the main process as much as grading them)."""
    out = _Labels([])
    for number, lines in chunk:
        rows, missing = _parse(number, lines, paths)
        out.missing += missing
        out.filled += label_rows(rows, labelling)
        out.groups.append(
            [
                (
                    r["predicted_answer"],
                    r["symbolic_correct"],
                    (r["expected_answer"], r["majority_votes"], r["total_votes"])
                    if "majority_votes" in r
                    else None,
                )
                for r in rows
            ]
        )
    return out


def _labelled_groups(
    paths: list[str], labelling: Labelling, workers: int, report: Report, chunk_size: int = 256
) -> Iterator[list[dict]]:
    """Labelled line groups in input order; with ``workers``, grading runs in that many
    processes while this one parses and filters."""
    if workers <= 0:
        for number, lines in _line_groups(paths):
            rows, missing = _parse(number, lines, paths)
            report.read += len(lines)
            report.drop("rows missing generation or problem", missing)
            report.notes["problems_labelled_by_majority"] += label_rows(rows, labelling)
            yield rows
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["distillery.sft_data.pipeline"])
    work = functools.partial(_label_chunk, paths=paths, labelling=labelling)
    chunks = _chunks(_line_groups(paths), chunk_size)
    pending: list[list[tuple[int, tuple[bytes, ...]]]] = []

    def remember(items):
        for chunk in items:
            pending.append(chunk)
            yield chunk

    with context.Pool(workers) as pool:
        for labels in pool.imap(work, remember(chunks)):
            chunk = pending.pop(0)
            report.drop("rows missing generation or problem", labels.missing)
            report.notes["problems_labelled_by_majority"] += labels.filled
            for (number, lines), group_labels in zip(chunk, labels.groups, strict=True):
                report.read += len(lines)
                rows, _ = _parse(number, lines, paths)
                for row, (predicted, correct, majority) in zip(rows, group_labels, strict=True):
                    row["predicted_answer"] = predicted
                    row["symbolic_correct"] = correct
                    if majority is not None:
                        expected, votes, total = majority
                        row.update(
                            expected_answer=expected,
                            majority_votes=votes,
                            total_votes=total,
                            fill_mode="majority",
                        )
                yield rows


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _why_unreadable(line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "line is not valid UTF-8; fix or remove it"
    return "line is not valid JSON; fix or remove it"


def _unit(text: str, seed: int) -> float:
    """A uniform number in [0, 1) from ``text``, the same in every run with ``seed``."""
    digest = hashlib.blake2b(f"{seed}\x00{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


STEPS = (
    "rows missing generation or problem",
    *(step.name for step in filters.STEPS if step.counted),
    "downsampling",
    "max_seq_length",
)


def prepare(
    inputs: list[str],
    settings: SftSelection,
    extraction: ExtractionConfig,
    prompt: PromptConfig,
    formatter: ChatFormatter,
    scratch: Path,
    train_path: str,
    validation_path: str | None,
    contamination_path: str | None,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
    ngrams: NGramIndex | None = None,
    flagged_by_embedding: dict[str, tuple[Match, float]] | None = None,
    workers: int = 0,
) -> Report:
    """Runs the pipeline; returns the report. See the module docstring.

    Downsampling to a total (``num_output_samples``) needs every problem's count first, so it
    takes two passes through a scratch file; otherwise filtered groups go straight to the
    writer.
    """
    report = Report()
    for name in STEPS:
        report.step(name)
    report.notes["problems_labelled_by_majority"] = 0
    labelling = Labelling(extraction, settings.fill_majority)
    downsampling, seed = settings.downsampling, settings.seed
    with ExitStack() as stack:
        flagged_file = (
            stack.enter_context(atomic_output(contamination_path)) if contamination_path else None
        )
        selector = _Filter(
            settings, report, count_tokens, ngrams, flagged_by_embedding, flagged_file
        )
        writer = _Writer(settings, prompt, formatter, selector.context.tokens, report, scratch)
        groups = (
            (index, selector.select(rows))
            for index, rows in enumerate(_labelled_groups(inputs, labelling, workers, report))
        )
        if downsampling.method is not None and downsampling.num_output_samples is not None:
            counts = _write_scratch(groups, scratch / "filtered.jsonl", prompt)
            quotas = downsampling_quotas(counts, downsampling, seed)
            for group, rows in _scratch_groups(scratch / "filtered.jsonl"):
                writer.add(_sample(rows, quotas.get(group, 0), group, seed, report))
        else:
            for group, rows in groups:
                if downsampling.max_per_problem is not None:
                    rows = _sample(rows, downsampling.max_per_problem, group, seed, report)
                writer.add(rows)
    report.notes["problems_flagged_as_contaminated"] = selector.flagged
    if selector.survivors == 0:
        raise DistilleryError(
            "nothing to train on: every solution was filtered out.\n"
            + report.markdown()
            + "Generate more solutions (seeds, problems), use a stronger teacher, or relax the "
            "selection (add_incorrect, add_unlabeled, min_majority_votes, filters)."
        )
    report.notes.update(writer.finish(train_path, validation_path))
    return report


def _sample(rows: list[dict], quota: int, group: int, seed: int, report: Report):
    if quota >= len(rows):
        return rows
    report.drop("downsampling", len(rows) - quota)
    return random.Random(f"{seed}-{group}").sample(rows, quota)


def _write_scratch(groups, path: Path, prompt: PromptConfig) -> dict[int, int]:
    keep = set(_SCRATCH_FIELDS) | prompt.fields()
    counts: dict[int, int] = {}
    with open(path, "wb") as handle:
        for group, rows in groups:
            for row in rows:
                record = {k: row[k] for k in keep if k in row}
                record["_group"] = group
                handle.write(dumps(record))
            if rows:
                counts[group] = len(rows)
    return counts


class _Filter:
    """Runs the selection steps (:data:`distillery.sft_data.filters.STEPS`) on each problem's
    labelled solutions, counting each step's removals."""

    def __init__(self, settings, report, count_tokens, ngrams, flagged_by_embedding, flagged_file):
        self.settings = settings
        self.report = report
        self.context = filters.Context(count_tokens, self._contaminated)
        self.ngrams = ngrams
        self.flagged_by_embedding = flagged_by_embedding
        self.flagged_file = flagged_file
        self.flagged = 0
        self.survivors = 0

    def select(self, rows: list[dict]) -> list[dict]:
        for step in filters.STEPS:
            if not rows:
                break
            if not step.is_on(self.settings):
                continue
            kept = step.apply(rows, self.settings, self.context)
            if step.counted:
                self.report.drop(step.name, len(rows) - len(kept))
            rows = kept
        self.survivors += len(rows)
        return rows

    def _contaminated(self, problem: str) -> bool:
        match = self.ngrams.match(problem) if self.ngrams is not None else None
        score = None
        if match is None and self.flagged_by_embedding and problem in self.flagged_by_embedding:
            match, score = self.flagged_by_embedding[problem]
        if match is None:
            return False
        self.flagged += 1
        if self.flagged_file is not None:
            self.flagged_file.write(
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
        return True


def downsampling_quotas(
    counts: dict[int, int], downsampling: Downsampling, seed: int
) -> dict[int, int]:
    """Solutions to keep per problem.

    ``random``: at most ``max_per_problem`` each, then (with ``num_output_samples``) a uniform
    share of the rest. ``fair``: NeMo-Skills' round robin, one solution per problem per round,
    until ``num_output_samples``, i.e. every problem gets the same number, capped by what it has.
    """
    quotas = dict(counts)
    if downsampling.max_per_problem is not None:
        quotas = {g: min(n, downsampling.max_per_problem) for g, n in quotas.items()}
    target = downsampling.num_output_samples
    if downsampling.method is None or target is None or target >= sum(quotas.values()):
        return quotas
    if downsampling.method == "fair":
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
        order = sorted(quotas, key=lambda g: _unit(str(g), seed))
        fair = {}
        for group in order:
            share = min(quotas[group], level)
            if extra and quotas[group] > level:
                share += 1
                extra -= 1
            fair[group] = share
        return fair
    total = sum(quotas.values())
    picked = random.Random(seed).sample(range(total), target)
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


class _Writer:
    """Formats records, applies the sequence-length limit, splits by problem, and writes them
    to bucket files that :meth:`finish` shuffles into the outputs."""

    def __init__(self, settings, prompt, formatter, tokens, report, scratch: Path):
        self.settings = settings
        self.prompt = prompt
        self.formatter = formatter
        self.tokens = tokens
        self.report = report
        self.scratch = scratch
        self.rng = random.Random(settings.seed)
        # without shuffling, one "bucket" per split, concatenated as it is
        count = BUCKETS if settings.shuffle else 1
        self.buckets = {
            name: [
                open(scratch / f"{name}-{b}.jsonl", "wb", buffering=1 << 20) for b in range(count)
            ]
            for name in ("train", "validation")
        }
        self.written = {"train": 0, "validation": 0, "thinking_off": 0}

    def add(self, rows: list[dict]) -> None:
        if not rows:
            return
        settings = self.settings
        records = [_record(row, settings, self.prompt, self.formatter) for row in rows]
        limit = settings.filters.max_seq_length
        if limit is not None:
            lengths = self.tokens([r["input"] + r["output"] for r in records])
            before = len(records)
            records = [r for r, n in zip(records, lengths, strict=True) if n <= limit]
            self.report.drop("max_seq_length", before - len(records))
        for record in records:
            is_validation = (
                settings.validation_share > 0
                and _unit(record["problem"], settings.seed) < settings.validation_share
            )
            name = "validation" if is_validation else "train"
            files = self.buckets[name]
            files[self.rng.randrange(len(files)) if len(files) > 1 else 0].write(dumps(record))
            self.written[name] += 1
            self.written["thinking_off"] += record.get("thinking") == "off"

    def finish(self, train_path: str, validation_path: str | None) -> dict:
        for files in self.buckets.values():
            for handle in files:
                handle.close()
        if self.written["train"] == 0:
            raise DistilleryError(
                "nothing to train on after downsampling and the sequence-length limit.\n"
                + self.report.markdown()
            )
        seed = self.settings.seed if self.settings.shuffle else None
        count = len(self.buckets["train"])
        _concatenate(self.scratch, "train", count, train_path, seed)
        if validation_path:
            _concatenate(self.scratch, "validation", count, validation_path, seed)
        return {
            "written_train": self.written["train"],
            "written_validation": self.written["validation"],
            "thinking_off_records": self.written["thinking_off"],
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


def _record(row: dict, settings, prompt: PromptConfig, formatter: ChatFormatter) -> dict:
    messages = prompt.messages(row)
    dual = settings.dual_mode
    answer = row["generation"]
    thinking = None
    given = row.get("reasoning")
    if given in ("on", "off"):
        # the data says which mode the answer is in (Llama-Nemotron): keep it as it is
        thinking = given
        system = (dual.system_on if given == "on" else dual.system_off) or row.get("system_prompt")
        messages = [m for m in messages if m["role"] != "system"]
        if system:
            messages.insert(0, {"role": "system", "content": system})
    elif dual.thinking_off_share > 0 or dual.system_on or dual.system_off:
        thinking = "on"
        short = answer_part(answer, dual.reasoning_end)
        off = short is not None and _unit(answer, settings.seed + 1) < dual.thinking_off_share
        if off:
            thinking, answer = "off", short
        system = dual.system_off if off else dual.system_on
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


def _concatenate(scratch: Path, name: str, count: int, path: str, seed: int | None) -> None:
    """Joins the bucket files into ``path``; each bucket shuffled when ``seed`` is given."""
    rng = random.Random(seed)
    with atomic_output(path) as out:
        for bucket in range(count):
            part = scratch / f"{name}-{bucket}.jsonl"
            if seed is None:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
            else:
                lines = part.read_bytes().splitlines(keepends=True)
                rng.shuffle(lines)
                out.writelines(lines)
            part.unlink()

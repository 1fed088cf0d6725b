"""Stage and CLI: metrics for evaluation outputs in NeMo-Skills' layout.

Usage::

    # every benchmark under a results directory (also one written by NeMo-Skills itself)
    python -m distillery.summarize results/evals/trained
    # one benchmark from explicit seed files (what the workflow runs)
    python -m distillery.summarize --benchmark demo --files out-rs0.jsonl out-rs1.jsonl \\
        --save-metrics-path results/evals/trained/eval-results/demo/metrics.json

Writes ``metrics.json`` (``{benchmark: {evaluation_mode: {metric: value}}}``, NeMo-Skills' shape,
plus ``_provenance``: config hash, package versions, git commit, date) and, beside it,
``metrics.md``, ``metrics.csv`` and a PNG of the metrics against k; only after checking that
the numbers can be right (:func:`check_invariants`): otherwise it writes nothing and names
the file that broke one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from distillery import cli
from distillery.errors import DistilleryError
from distillery.grade import TIMED_OUT
from distillery.jsonl import iter_jsonl, write_json, write_text
from distillery.reports.metrics import METRICS, compute_metrics
from distillery.reports.plots import plot_metrics
from distillery.reports.provenance import provenance
from distillery.reports.tables import csv_table, markdown_table

logger = logging.getLogger(__name__)

PROVENANCE_KEY = "_provenance"


@dataclass(frozen=True)
class Config:
    """Compute metrics.json and tables for evaluation outputs."""

    results_dir: str | None = field(
        default=None,
        metadata={
            "help": "directory with eval-results/<bench>/output*.jsonl (or <bench>/...)",
            "positional": True,
        },
    )
    benchmark: str | None = field(default=None, metadata={"help": "benchmark name for --files"})
    files: tuple[str, ...] = field(default=(), metadata={"help": "seed files of one benchmark"})
    benchmarks: tuple[str, ...] = field(
        default=(), metadata={"help": "only these benchmarks of --results-dir"}
    )
    max_seq_len: int | None = field(
        default=None, metadata={"help": "longer generations count as wrong and unanswered"}
    )
    save_metrics_path: str | None = field(
        default=None, metadata={"help": "metrics.json path (default: <results dir>/metrics.json)"}
    )
    config_hash: str | None = field(
        default=None, metadata={"help": "hash of the workflow config, recorded as provenance"}
    )
    plots: bool = field(default=True, metadata={"help": "write a PNG of the metrics against k"})
    test_file: str | None = field(
        default=None,
        metadata={"help": "the benchmark's test.jsonl: every seed file must have its rows"},
    )
    max_samples: int = field(
        default=-1, metadata={"help": "with --test-file: only its first N rows were generated"}
    )
    metrics: Literal[tuple(METRICS)] = field(  # type: ignore[valid-type]
        default="math", metadata={"help": "the benchmarks' metric type (their definition's)"}
    )

    def __post_init__(self):
        if bool(self.files) == bool(self.results_dir):
            raise DistilleryError("give either --results-dir or --files (with --benchmark)")
        if self.files and not self.benchmark:
            raise DistilleryError("--files needs --benchmark")
        if self.files and not self.save_metrics_path:
            raise DistilleryError("--files needs --save-metrics-path")


def read_seed_files(files: list[str]) -> list[list[dict]]:
    """Joins seed files by ``id`` into per-problem prediction lists, in the first file's order.

    Files whose rows carry no ``id`` (NeMo-Skills writes none for some benchmarks) are joined by
    position, as NeMo-Skills does.

    Raises:
        DistilleryError: a file is missing, a line is not JSON (``file:line``), a row is not
            graded, an id repeats within a file, or a file's ids differ from the first file's
            (naming the file and the first differing id).
    """
    files = sorted(files)
    seeds = [_read_seed_file(path) for path in files]
    counts = {path: len(rows) for path, rows in zip(files, seeds, strict=True)}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{Path(p).name}: {n}" for p, n in counts.items())
        raise DistilleryError(
            f"seed files of one benchmark have different row counts ({listing}); every seed "
            "must cover every problem: regenerate the short ones"
        )
    if not seeds[0]:
        raise DistilleryError(f"{', '.join(files)}: no predictions to summarize")
    if not any("id" in row for rows in seeds for _, row in rows):
        return [list(predictions) for predictions in zip(*(_rows(r) for r in seeds), strict=True)]
    reference, *others = [_by_id(path, rows) for path, rows in zip(files, seeds, strict=True)]
    for path, rows in zip(files[1:], others, strict=True):
        if rows.keys() != reference.keys():
            first = next(
                (i for i in reference if i not in rows),
                next((i for i in rows if i not in reference), None),
            )
            raise DistilleryError(
                f"{path}: its problem ids differ from {files[0]}'s (first differing id: "
                f"{first!r}); every seed must cover the same problems: regenerate it"
            )
    return [[reference[i], *(rows[i] for rows in others)] for i in reference]


def _rows(numbered: list[tuple[int, dict]]) -> list[dict]:
    return [row for _, row in numbered]


def _by_id(path: str, numbered: list[tuple[int, dict]]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    lines: dict[str, int] = {}
    for number, row in numbered:
        if "id" not in row:
            raise DistilleryError(
                f"{path}:{number}: row has no 'id' while other rows of the benchmark have ids; "
                "regenerate it"
            )
        key = str(row["id"])
        if key in out:
            raise DistilleryError(
                f"{path}:{number}: id {key!r} repeats line {lines[key]}; each problem must "
                "appear once per seed file: regenerate it"
            )
        out[key], lines[key] = row, number
    return out


def _read_seed_file(path: str) -> list[tuple[int, dict]]:
    if not Path(path).is_file():
        raise DistilleryError(f"{path}: seed file does not exist")
    rows = list(iter_jsonl(path, allow_empty=True))
    for number, row in rows:
        if "predicted_answer" not in row:
            raise DistilleryError(
                f"{path}:{number}: no 'predicted_answer' field; grade the file first"
            )
    return rows


def benchmark_files(bench_dir: Path) -> list[str]:
    """The seed files of one benchmark directory, as NeMo-Skills selects them."""
    greedy = bench_dir / "output.jsonl"
    sampled = sorted(
        str(p)
        for p in bench_dir.glob("*.jsonl")
        if p.name != "output.jsonl" and "_chunk_" not in p.name and p.name.startswith("output")
    )
    if greedy.exists() and sampled:
        raise DistilleryError(
            f"{bench_dir}: both output.jsonl and output-rs*.jsonl exist; remove one set"
        )
    if greedy.exists():
        return [str(greedy)]
    if not sampled:
        raise DistilleryError(f"{bench_dir}: no output*.jsonl files")
    return sampled


def find_benchmarks(results_dir: Path) -> dict[str, list[str]]:
    if list(results_dir.glob("output*.jsonl")):
        return {results_dir.name: benchmark_files(results_dir)}
    if (results_dir / "eval-results").is_dir():
        results_dir = results_dir / "eval-results"
    found = {
        p.name: benchmark_files(p)
        for p in sorted(results_dir.iterdir())
        if p.is_dir() and "-logs" not in p.name and list(p.glob("output*.jsonl"))
    }
    if not found:
        raise DistilleryError(f"{results_dir}: no <benchmark>/output*.jsonl files found")
    return found


def summarize(
    inputs: dict[str, list[str]], max_seq_len: int | None, metric_type: str = "math"
) -> tuple[dict[str, dict], dict[str, int]]:
    """``{benchmark (or benchmark-subset): metrics}`` for ``{benchmark: seed files}``, and per
    benchmark how many samples' grading timed out (counted wrong)."""
    results: dict[str, dict] = {}
    timed_out: dict[str, int] = {}
    for benchmark, files in inputs.items():
        problems = read_seed_files(files)
        try:
            per_subset = compute_metrics(problems, max_seq_len, metric_type)
        except ValueError as err:
            raise DistilleryError(f"{benchmark}: {err}") from None
        for subset, metrics in per_subset.items():
            results[benchmark if subset == "_all_" else f"{benchmark}-{subset}"] = metrics
        timed_out[benchmark] = sum(bool(p.get(TIMED_OUT)) for ps in problems for p in ps)
    return results, timed_out


_COUNTS = {"num_entries", "avg_tokens", "gen_seconds", "generation_errors"}


def check_invariants(
    results: dict[str, dict], inputs: dict[str, list[str]], expected_rows: int | None
) -> None:
    """What must hold before metrics are written: every seed file has the benchmark's rows,
    every percentage is in 0-100, and for every correctness score pass@n >= pass@1[avg-of-n]
    and majority@n <= pass@n, n being all seeds. (Below n, pass@k is the unbiased estimator over
    every k of the n samples while the other two read the first k seeds, so either may be the
    larger: two correct first seeds out of four give majority@2 = 1 and pass@2 = 5/6.)

    Raises:
        DistilleryError: naming the file (or the benchmark, mode and metric) that broke one.
    """
    if expected_rows is not None:
        for benchmark, files in inputs.items():
            # the seed files were read with equal row counts: num_entries is each one's
            count = next(iter(results[benchmark].values()))["num_entries"]
            if count != expected_rows:
                raise DistilleryError(
                    f"{sorted(files)[0]}: {count} rows, but the benchmark has {expected_rows}; "
                    "a seed file must cover every problem: regenerate it"
                )
    for benchmark, modes in results.items():
        for mode, metrics in modes.items():
            for key, value in metrics.items():
                if key in _COUNTS or not isinstance(value, int | float):
                    continue
                if not 0.0 <= value <= 100.0:
                    raise DistilleryError(
                        f"{benchmark} {mode} {key} = {value}, outside 0-100; computed from "
                        f"{', '.join(_files_of(inputs, benchmark))}"
                    )
        ks = [int(m.split("@")[1]) for m in modes if m.startswith("pass@") and "[" not in m]
        if not ks:
            continue
        n = max(ks)
        for key, best in modes[f"pass@{n}"].items():
            if not key.endswith("_correct"):
                continue
            for other, relation in (
                (f"pass@1[avg-of-{n}]", "pass@1"),
                (f"majority@{n}", "majority"),
            ):
                value = modes.get(other, {}).get(key)
                if value is not None and value > best + 1e-9:
                    raise DistilleryError(
                        f"{benchmark} {key}: {other} = {value:.4f} exceeds pass@{n} = "
                        f"{best:.4f} ({relation} over all seeds can never beat pass@n); "
                        f"computed from {', '.join(_files_of(inputs, benchmark))}"
                    )


def _files_of(inputs: dict[str, list[str]], name: str) -> list[str]:
    """The seed files behind a benchmark's (or one of its subsets') metrics."""
    return next((files for b, files in inputs.items() if name == b or name.startswith(b + "-")), [])


def expected_row_count(test_file: str, max_samples: int) -> int:
    rows = sum(1 for _ in iter_jsonl(test_file))
    return min(rows, max_samples) if max_samples > 0 else rows


def write_outputs(
    results: dict[str, dict], metrics_path: Path, origin: dict, plots: bool = True
) -> None:
    """metrics.json (NeMo-Skills' shape plus ``_provenance``, where ``grading_timed_out``
    counts per benchmark the samples whose grading ran out of time or memory), .md, .csv and
    PNG plots."""
    write_json(metrics_path, {**results, PROVENANCE_KEY: origin})
    markdown = "\n".join(markdown_table(b, m) for b, m in results.items())
    timed_out = {b: n for b, n in origin.get(TIMED_OUT, {}).items() if n}
    notes = "".join(
        f"\n_{n} sample(s) of {b} could not be graded within the time, memory or size budget "
        "and count as wrong_\n"
        for b, n in timed_out.items()
    )
    footer = (
        f"{notes}\n_distillery {origin['packages'].get('distillery', '?')}, commit "
        f"{origin['git_commit'] or 'unknown'}, config {origin['config_hash'] or 'unknown'}, "
        f"math-verify {origin['packages'].get('math-verify', '?')}, {origin['date']}_\n"
    )
    write_text(metrics_path.with_suffix(".md"), markdown + footer)
    write_text(metrics_path.with_suffix(".csv"), csv_table(results))
    if plots:
        for benchmark, metrics in results.items():
            name = "" if len(results) == 1 else f"-{benchmark}"
            path = metrics_path.with_name(f"{metrics_path.stem}{name}.png")
            plot_metrics(metrics, benchmark, path)


def main(config: Config) -> None:
    if config.files:
        inputs = {config.benchmark: list(config.files)}
        metrics_path = Path(config.save_metrics_path)
    else:
        results_dir = Path(config.results_dir)
        if not results_dir.is_dir():
            raise DistilleryError(f"{results_dir}: results directory does not exist")
        inputs = find_benchmarks(results_dir)
        if config.benchmarks:
            unknown = sorted(set(config.benchmarks) - set(inputs))
            if unknown:
                raise DistilleryError(f"{unknown} not found; present: {sorted(inputs)}")
            inputs = {b: f for b, f in inputs.items() if b in config.benchmarks}
        default = (results_dir / "eval-results").is_dir()
        base = results_dir / "eval-results" if default else results_dir
        metrics_path = Path(config.save_metrics_path or base / "metrics.json")
    results, timed_out = summarize(inputs, config.max_seq_len, config.metrics)
    expected = None
    if config.test_file is not None:
        expected = expected_row_count(config.test_file, config.max_samples)
    check_invariants(results, inputs, expected)
    origin = {**provenance(config.config_hash), TIMED_OUT: timed_out}
    write_outputs(results, metrics_path, origin, config.plots)
    for benchmark, metrics in results.items():
        logger.info("\n%s", markdown_table(benchmark, metrics))
    logger.info("wrote %s (+ .md, .csv)", metrics_path)


if __name__ == "__main__":
    cli.run(main, Config)

"""Metric tables: NeMo-Skills' printed table as markdown and CSV, and the run comparison."""

from __future__ import annotations

import csv
import io

from distillery.reports.metrics import PRINTED_METRICS, modes_to_print

_INT_METRICS = {"num_entries", "avg_tokens", "gen_seconds"}


def _std(metrics: dict, key: str) -> float | None:
    return metrics.get(f"{key}_statistics", {}).get("std_dev_across_runs")


def format_value(key: str, value, metrics: dict) -> str:
    """As NeMo-Skills prints it: ``12.50% ± 3.10%`` for scores, integers for counts."""
    std = _std(metrics, key)
    if key in _INT_METRICS:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.2f}%" + (f" ± {100.0 * std:.2f}%" if std is not None else "")
    return str(value)


def benchmark_columns(bench_metrics: dict) -> list[str]:
    rows = modes_to_print(bench_metrics)
    return [m for m in PRINTED_METRICS if any(m in bench_metrics[r] for r in rows)]


def markdown_table(benchmark: str, bench_metrics: dict) -> str:
    """One benchmark's table: a row per evaluation mode, NeMo-Skills' columns."""
    rows = modes_to_print(bench_metrics)
    columns = benchmark_columns(bench_metrics)
    lines = [
        f"### {benchmark}",
        "",
        "| evaluation_mode | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for mode in rows:
        metrics = bench_metrics[mode]
        cells = [format_value(c, metrics[c], metrics) if c in metrics else "" for c in columns]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(all_metrics: dict[str, dict]) -> str:
    """Every evaluation mode of every benchmark, raw numbers, one row each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["benchmark", "evaluation_mode", *PRINTED_METRICS, "symbolic_correct_std"])
    for benchmark, bench_metrics in all_metrics.items():
        for mode, metrics in bench_metrics.items():
            std = _std(metrics, "symbolic_correct")
            writer.writerow(
                [
                    benchmark,
                    mode,
                    *(metrics.get(m, "") for m in PRINTED_METRICS),
                    "" if std is None else 100.0 * std,
                ]
            )
    return out.getvalue()


def comparison_rows(runs: dict[str, dict[str, dict]]) -> list[dict]:
    """Long-form comparison: per benchmark, printed mode and metric, a value per run.

    ``runs`` maps run name to that run's ``{benchmark: metrics}``; the first run is the
    reference for deltas. ``std_<run>`` is the standard deviation across seeds, in points,
    where the mode has one (``pass@1[avg-of-k]``).
    """
    names = list(runs)
    reference = names[0]
    benchmarks = sorted({b for metrics in runs.values() for b in metrics})
    rows = []
    for benchmark in benchmarks:
        present = [n for n in names if benchmark in runs[n]]
        if reference not in present:
            continue
        modes = modes_to_print(runs[reference][benchmark])
        for mode in modes:
            for metric in ("symbolic_correct", "judge_correct", "no_answer", "avg_tokens"):
                row = {"benchmark": benchmark, "evaluation_mode": mode, "metric": metric}
                base = runs[reference][benchmark].get(mode, {}).get(metric)
                if base is None:
                    continue
                for name in names:
                    metrics = runs[name].get(benchmark, {}).get(mode, {})
                    value = metrics.get(metric)
                    row[name] = value
                    std = _std(metrics, metric) if value is not None else None
                    if std is not None:
                        row[f"std_{name}"] = 100.0 * std
                    if name != reference:
                        row[f"delta_{name}"] = None if value is None else value - base
                rows.append(row)
    return rows


def comparison_markdown(runs: dict[str, dict[str, dict]]) -> str:
    names = list(runs)
    reference, others = names[0], names[1:]
    header = ["benchmark", "evaluation_mode", "metric", *names, *(f"Δ {n}" for n in others)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|---|---|" + "---:|" * (len(names) + len(others)),
    ]
    rows = comparison_rows(runs)
    for row in rows:
        percent = row["metric"] != "avg_tokens"

        def cell(value, signed=False, percent=percent, std=None):
            if value is None:
                return "n/a"
            if not percent:
                return f"{value:+.0f}" if signed else f"{value:.0f}"
            if signed:
                return f"{value:+.2f}"
            return f"{value:.2f}%" + ("" if std is None else f" ± {std:.2f}")

        cells = [row["benchmark"], row["evaluation_mode"], row["metric"]]
        cells += [cell(row.get(n), std=row.get(f"std_{n}")) for n in names]
        cells += [cell(row.get(f"delta_{n}"), signed=True) for n in others]
        lines.append("| " + " | ".join(cells) + " |")
    note = ""
    if any(key.startswith("std_") for row in rows for key in row):
        note += "\n± is the standard deviation of pass@1 across seeds, in percentage points.\n"
    if others:
        note += (
            f"\nΔ columns are differences from `{reference}` in percentage points "
            "(tokens for avg_tokens).\n"
        )
    return "\n".join(lines) + "\n" + note + generation_errors_note(runs)


def generation_errors_note(runs: dict[str, dict[str, dict]]) -> str:
    """A line per run and benchmark with samples that could not be generated, or nothing."""
    lines = []
    for name, benchmarks in runs.items():
        for benchmark, metrics in sorted(benchmarks.items()):
            modes = [m for m in metrics.values() if isinstance(m, dict)]
            errors = max((m.get("generation_errors", 0) for m in modes), default=0)
            if errors:
                lines.append(
                    f"- `{name}` on {benchmark}: {errors} sample(s) could not be generated "
                    "(over the model's context, or rejected by the server; see the generation "
                    "log); they count as unanswered and wrong."
                )
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def comparison_csv(runs: dict[str, dict[str, dict]]) -> str:
    names = list(runs)
    fields = ["benchmark", "evaluation_mode", "metric", *names, *(f"delta_{n}" for n in names[1:])]
    fields += [f"std_{n}" for n in names]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in comparison_rows(runs):
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    return out.getvalue()

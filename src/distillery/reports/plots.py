"""Metric-against-k plots: pass@1[avg-of-k], majority@k and pass@k for one benchmark."""

from __future__ import annotations

import re
from pathlib import Path

from distillery.jsonl import atomic_output

_MODES = {
    "pass@1[avg-of-k]": re.compile(r"^pass@1\[avg-of-(\d+)\]$"),
    "majority@k": re.compile(r"^majority@(\d+)$"),
    "pass@k": re.compile(r"^pass@(\d+)$"),
}


def curves(bench_metrics: dict, metric: str = "symbolic_correct") -> dict[str, list[tuple]]:
    """``{mode family: [(k, value), ...]}``; ``pass@1`` (k = 1) starts every family."""
    out: dict[str, list[tuple]] = {name: [] for name in _MODES}
    for mode, values in bench_metrics.items():
        for name, pattern in _MODES.items():
            match = pattern.match(mode)
            if match and metric in values:
                out[name].append((int(match.group(1)), values[metric]))
    if "pass@1" in bench_metrics and metric in bench_metrics["pass@1"]:
        start = (1, bench_metrics["pass@1"][metric])
        for name in ("pass@1[avg-of-k]", "majority@k"):
            out[name].append(start)
    return {name: sorted(points) for name, points in out.items() if points}


def plot_metrics(bench_metrics: dict, title: str, path: str | Path) -> None:
    """Writes a PNG of the three curves against k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    for name, points in curves(bench_metrics).items():
        ks, values = zip(*points, strict=True)
        ax.plot(ks, values, marker="o", label=name)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("symbolic_correct (%)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_output(path) as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)

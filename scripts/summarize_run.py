"""Print the numbers of a finished workflow run: command wall time and peak RSS (from
`/usr/bin/time -f "%e %M"` files), the slowest rules from `benchmarks/**.tsv`, and the
comparison table.

    python scripts/summarize_run.py --run-dir . --time run=run.time
"""

import argparse
import csv
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=Path("."))
    parser.add_argument("--time", action="append", default=[], help="NAME=file with '%%e %%M'")
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()

    if args.time:
        print("| command | wall (s) | peak RSS of one process (MB) |\n|---|---:|---:|")
        for entry in args.time:
            name, path = entry.split("=", 1)
            wall, rss_kb = Path(path).read_text().split()[-2:]
            print(f"| make {name} | {float(wall):.0f} | {int(rss_kb) / 1024:.0f} |")
        print()

    rows = []
    for tsv in sorted((args.run_dir / "benchmarks").rglob("*.tsv")):
        with tsv.open() as handle:
            record = next(csv.DictReader(handle, delimiter="\t"))
        job = str(tsv.relative_to(args.run_dir / "benchmarks").with_suffix(""))
        rows.append((float(record["s"]), float(record["max_rss"]), job))
    if rows:
        total = sum(r[0] for r in rows)
        title = f"slowest jobs (of {len(rows)} benchmarked, {total:.0f} s)"
        print(f"| {title} | wall (s) | max RSS (MB) |")
        print("|---|---:|---:|")
        for seconds, rss, job in sorted(rows, reverse=True)[: args.top]:
            print(f"| {job} | {seconds:.1f} | {rss:.0f} |")
        print()

    comparison = args.run_dir / "results" / "comparison.md"
    if comparison.exists():
        print(comparison.read_text())


if __name__ == "__main__":
    main()

"""Data preparation benchmark: benchmarks from local files, and AoPS raw data at growing sizes.

    python scripts/bench_data_prep.py [--aops 10000 100000]

1. ``prepare_benchmark`` from a local file for every downloadable benchmark, with files of the
   real benchmarks' sizes and columns (synthetic text, or the test fixtures' rows repeated):
   rows written and wall time of the whole process.
2. ``prepare_raw_data --set source=aops`` from local parquet files of N synthetic threads (a
   question and five quoted answers each): wall time and peak RSS, which must not grow with N.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
WORDS = "find the number of ordered pairs such that sum product prime divides integer".split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "wb") as handle:
        for row in rows:
            handle.write(orjson.dumps(row) + b"\n")
    return path


def benchmark_files(directory: Path) -> dict[str, Path]:
    """Local files shaped like each hub benchmark (sizes of the real ones)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(0)
    files = {
        "aime24": write_jsonl(
            directory / "aime24.jsonl",
            ({"id": i, "problem": text(rng, 80), "answer": str(i)} for i in range(30)),
        ),
        "aime25": write_jsonl(
            directory / "aime25.jsonl",
            ({"question": text(rng, 80), "answer": str(i)} for i in range(30)),
        ),
        "math-500": write_jsonl(
            directory / "math500.jsonl",
            (
                {"unique_id": f"u{i}", "problem": text(rng, 60), "answer": "\\frac{1}{2}"}
                for i in range(500)
            ),
        ),
        "gsm8k": write_jsonl(
            directory / "gsm8k.jsonl",
            (
                {"question": text(rng, 50), "answer": f"{text(rng, 40)}\n#### {i}"}
                for i in range(1319)
            ),
        ),
    }
    gpqa = [
        {"Question": text(rng, 70), "Correct Answer": "a", "Incorrect Answer 1": "b",
         "Incorrect Answer 2": "c", "Incorrect Answer 3": "d", "Subdomain": "Physics"}
        for _ in range(448)
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(gpqa), directory / "gpqa.parquet")
    files["gpqa-diamond"] = files["gpqa-main"] = directory / "gpqa.parquet"
    choices = ["1", "2", "3", "4"]
    mmlu = [
        {"question": text(rng, 40), "subject": "algebra", "choices": choices, "answer": i % 4}
        for i in range(14042)
    ]
    pq.write_table(pa.Table.from_pylist(mmlu), directory / "mmlu.parquet")
    files["mmlu"] = directory / "mmlu.parquet"
    for name, rows in FIXTURE_SIZES.items():
        files[name] = write_jsonl(directory / f"{name}.jsonl", scaled_fixture(name, rows))
    return files


# the newer benchmarks: their real sizes; rows repeat the test fixtures (the real columns)
FIXTURE_SIZES = {
    "hmmt_feb25": 30,
    "brumo25": 30,
    "amc23": 40,
    "olympiadbench": 675,
    "minerva_math": 272,
    "omni-math": 4428,
    "math": 5000,
    "college_math": 2818,
    "gaokao2023en": 385,
    "mmlu-pro": 12032,
    "mmlu-redux": 5700,
    "supergpqa": 26529,
}
ID_COLUMNS = ("id", "problem_idx", "idx", "unique_id", "question_id", "uuid")


def scaled_fixture(name: str, count: int):
    """``count`` rows cycling through the benchmark's test fixture, ids made unique."""
    fixture = REPO / "tests" / "fixtures" / "benchmarks" / f"{name}.jsonl"
    rows = [orjson.loads(line) for line in fixture.read_bytes().splitlines() if line.strip()]
    for i in range(count):
        row = dict(rows[i % len(rows)])
        for column in ID_COLUMNS:
            if column in row:
                row[column] = i if isinstance(row[column], int) else f"{row[column]}-{i}"
        yield row


def aops_file(directory: Path, count: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(count)
    path = directory / f"aops-{count}.parquet"
    writer = None
    for start in range(0, count, 10_000):
        rows = [
            {
                "original_question": text(rng, 60),
                "original_answers": [
                    f"[quote={rng.randint(1, 9)}]{text(rng, 20)}[/quote] {text(rng, 120)}"
                    for _ in range(5)
                ],
            }
            for _ in range(min(10_000, count - start))
        ]
        table = pa.Table.from_pylist(rows)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return path


def run(command: list[str]) -> tuple[float, float]:
    import psutil

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, watched = 0, psutil.Process(process.pid)
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - began
    if process.returncode != 0:
        raise RuntimeError(process.stderr.read().decode()[-2000:])
    return wall, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aops", type=int, nargs="*", default=[10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        print("| benchmark from a local file | rows | wall (s) |\n|---|---:|---:|")
        for name, path in benchmark_files(scratch).items():
            out = scratch / f"{name}-test.jsonl"
            command = [
                sys.executable,
                "-m",
                "distillery.prepare_benchmark",
                "--set",
                f"source={name}",
            ]
            wall, _ = run(command + ["--set", f"path={path}", "--output", str(out)])
            rows = sum(1 for _ in open(out, "rb"))
            print(f"| {name} | {rows} | {wall:.2f} |")
        print("\n| aops threads (local parquet) | wall (s) | peak RSS (MB) |\n|---|---:|---:|")
        for count in args.aops:
            path = aops_file(scratch, count)
            command = [sys.executable, "-m", "distillery.prepare_raw_data", "--set", "source=aops"]
            command += ["--set", f"path={path}", "--set", f"num_posts={count}"]
            wall, rss = run(command + ["--output", str(scratch / "raw.jsonl")])
            print(f"| {count:,} | {wall:.1f} | {rss:.0f} |")


if __name__ == "__main__":
    main()

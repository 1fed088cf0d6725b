"""Grading many answers: a cheap fast path in this process, math-verify in worker processes
with a hard per-answer timeout.

math-verify's own timeouts use ``signal.alarm``, which only works on a process's main thread, and
some inputs hang past it (Math-Verify issue #65). So every answer that needs sympy runs in a
worker process; when one takes longer than the timeout, the worker is killed and replaced, and
the answer counts as wrong. Identical (gold, prediction) pairs are graded once.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from distillery.grading.answers import fast_verdict, normalize, over_budget, symbolic_equal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    correct: bool
    timed_out: bool = False
    seconds: float = 0.0


# Address space a worker may add to what it starts with: sympy on a pathological expression can
# grow without bound, and a MemoryError there is a wrong answer, not a machine out of memory.
WORKER_MEMORY_BYTES = 2 * 1024**3


def _limit_memory() -> None:
    with contextlib.suppress(OSError, ValueError):
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + WORKER_MEMORY_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _worker(conn: Connection, timeout: int) -> None:
    _limit_memory()
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        key, gold, predicted = task
        try:
            verdict = symbolic_equal(gold, predicted, timeout)
        except MemoryError:
            verdict = None  # over the memory budget: counted as timed out
        conn.send((key, verdict))


class _Worker:
    def __init__(self, context, timeout: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, timeout), daemon=True)
        self.process.start()
        child.close()
        self.task: tuple | None = None
        self.started = 0.0

    def send(self, task: tuple) -> None:
        self.task = task
        self.started = time.monotonic()
        self.conn.send(task)

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=1)
        if self.process.is_alive():
            self.kill()


def grade_pairs(
    pairs: Sequence[tuple[str | None, str | None]], workers: int = 1, timeout: float = 10.0
) -> list[Verdict]:
    """Verdicts for ``(gold, predicted)`` pairs, in order.

    Args:
        pairs: gold answer first (equivalence is asymmetric in math-verify).
        workers: worker processes for the sympy path.
        timeout: seconds one answer may take before its worker is killed; the answer is then
            wrong, and logged.
    """
    verdicts: dict[tuple, Verdict] = {}
    pending: dict[tuple, tuple[str, str]] = {}  # pair -> its normal forms, in order
    for key in pairs:
        if key in verdicts or key in pending:
            continue
        fast = fast_verdict(*key)
        if fast is not None:
            verdicts[key] = Verdict(fast)
            continue
        normal = (normalize(str(key[0])), normalize(str(key[1])))
        if over_budget(*normal):
            _log_wrong(key, "it is too long or too deeply nested for symbolic equivalence")
            verdicts[key] = Verdict(False, timed_out=True)
        else:
            pending[key] = normal
    if pending:
        verdicts.update(_run_pool(pending, workers, timeout))
    return [verdicts[key] for key in pairs]


def _log_wrong(key: tuple, why: str) -> None:
    logger.warning(
        "answer counted as wrong because %s: gold=%.80r predicted=%.80r", why, key[0], key[1]
    )


def _run_pool(
    pending: dict[tuple, tuple[str, str]], workers: int, timeout: float
) -> dict[tuple, Verdict]:
    # forkserver, not fork: this process may hold threads (torch's, logging's) whose locks a
    # forked child would inherit; the server imports math-verify once, so replacing a killed
    # worker costs a fork, not an interpreter start.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["math_verify", "distillery.grading.answers"])
    inner_timeout = max(1, int(timeout))
    pool = [_Worker(context, inner_timeout) for _ in range(min(workers, len(pending)))]
    queue = list(reversed(pending.items()))
    results: dict[tuple, Verdict] = {}
    try:
        while queue or any(w.task for w in pool):
            for worker in pool:
                if worker.task is None and queue:
                    key, (gold, predicted) = queue.pop()
                    worker.send((key, gold, predicted))
            busy = [w for w in pool if w.task is not None]
            now = time.monotonic()
            next_deadline = min(w.started + timeout for w in busy)
            ready = wait([w.conn for w in busy], timeout=max(0.0, next_deadline - now))
            now = time.monotonic()
            for worker in busy:
                key = worker.task[0]
                failure = None
                if worker.conn in ready:
                    try:
                        _, correct = worker.conn.recv()
                    except (EOFError, OSError):
                        failure = "its worker process died"
                    else:
                        if correct is not None:
                            results[key] = Verdict(correct, seconds=now - worker.started)
                            worker.task = None
                            continue
                        failure = "it ran out of memory"
                elif now - worker.started >= timeout:
                    failure = f"it took longer than {timeout:g}s"
                else:
                    continue
                _log_wrong(key, failure)
                results[key] = Verdict(False, timed_out=True, seconds=now - worker.started)
                worker.kill()
                pool[pool.index(worker)] = _Worker(context, inner_timeout)
    finally:
        for worker in pool:
            worker.stop()
    return results

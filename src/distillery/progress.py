"""Progress reporting: a tqdm bar on a terminal, periodic log lines in a job's log file."""

from __future__ import annotations

import logging
import sys
import time

logger = logging.getLogger(__name__)


class Progress:
    """Counts finished units of work and reports rate and ETA.

    Args:
        total: units expected (already-done units count towards it through ``done``).
        desc: what is being counted, e.g. ``"samples"``.
        done: units finished before this run started (resumed work).
        every: seconds between log lines when not on a terminal.
    """

    def __init__(self, total: int, desc: str, done: int = 0, every: float = 30.0):
        self.total = total
        self.desc = desc
        self.count = done
        self._start_count = done
        self._every = every
        self._start = time.monotonic()
        self._last_log = self._start
        self._bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, desc=desc, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last_log >= self._every or self.count >= self.total:
            self._last_log = now
            logger.info("%s", self.status())

    def status(self) -> str:
        elapsed = time.monotonic() - self._start
        fresh = self.count - self._start_count
        rate = fresh / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.count) / rate if rate > 0 else float("nan")
        return (
            f"{self.desc}: {self.count}/{self.total} done, {rate:.2f}/s, "
            f"elapsed {elapsed:.0f}s, eta {eta:.0f}s"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

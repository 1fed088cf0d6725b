"""A job's process tree, from ``/proc``: who descends from the job (whose GPU memory it
reports), and a guard that takes helper processes with it when the job dies without cleaning up.

vLLM's engine can run its core in a process of its own (``VLLM_ENABLE_V1_MULTIPROCESSING=1``).
A job killed outright (``kill -9``, the out-of-memory killer) cannot stop it, and that process
would live on holding its share of the GPU. The processes the job starts itself (servers,
replicas) ask the kernel for a signal when the job dies (``servers.die_with_parent``); a process
vLLM starts cannot be asked, so a small watcher process kills it instead once the job is gone.
Linux only (it reads ``/proc``); elsewhere there is no guard.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# polls its parent (the job) and, once the job is gone, kills the processes it was given
_WATCHER = """
import os, signal, sys, time
parent, pids = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
while os.getppid() == parent:
    time.sleep(0.2)
for pid in pids:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""


def process_table() -> dict[int, tuple[int, str]]:
    """Each live process's parent and state (``R``, ``S``, ``Z`` ...), from ``/proc``; empty
    where there is none."""
    table: dict[int, tuple[int, str]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return table
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # the command name (second field) may hold spaces and parentheses: read past its ')'
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        table[int(entry.name)] = (int(parent), state)
    return table


def child_pids(pid: int | None = None) -> list[int]:
    """The live (not zombie) child processes of ``pid``, default this process."""
    pid = os.getpid() if pid is None else pid
    return sorted(c for c, (p, state) in process_table().items() if p == pid and state != "Z")


def process_tree(root: int) -> set[int]:
    """``root`` and every process descended from it."""
    parents = {pid: parent for pid, (parent, _) in process_table().items()}
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return tree


class ChildGuard:
    """Kills the given processes if this process dies before :meth:`release` (see the module
    docstring). Nothing to guard: no watcher."""

    def __init__(self, pids: list[int]):
        self.pids = list(pids)
        self.watcher = None
        if self.pids:
            self.watcher = subprocess.Popen(
                [sys.executable, "-c", _WATCHER, str(os.getpid()), *map(str, self.pids)],
                # none of the job's streams: a caller reading the job's output to its end
                # would otherwise wait for the watcher too
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    @classmethod
    def around(cls, start):
        """``start()`` (e.g. building an engine) and a guard of the processes it left running
        as this process's children: ``(its result, the guard)``."""
        before = set(child_pids())
        result = start()
        return result, cls([p for p in child_pids() if p not in before])

    def release(self) -> None:
        """The job stops the processes itself: the watcher goes first, so that it never
        signals a process id the system has since given to another process."""
        if self.watcher is not None:
            self.watcher.kill()
            self.watcher.wait()
            self.watcher = None

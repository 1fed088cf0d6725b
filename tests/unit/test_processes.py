"""The job's process tree read from /proc (Linux)."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from distillery.generation.processes import child_pids, process_table, process_tree

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")


def test_the_tree_holds_children_and_grandchildren_and_nothing_else():
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30; wait"])
    try:
        deadline = time.time() + 10
        while len(child_pids(shell.pid)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        grandchildren = child_pids(shell.pid)
        assert len(grandchildren) == 2
        tree = process_tree(os.getpid())
        assert {shell.pid, *grandchildren} <= tree
        assert process_table()[shell.pid][0] == os.getpid()
        assert os.getppid() not in tree and shell.pid in child_pids()
    finally:
        for pid in child_pids(shell.pid):
            os.kill(pid, 9)
        shell.kill()
        shell.wait()
    assert shell.pid not in child_pids()  # reaped: gone from the table

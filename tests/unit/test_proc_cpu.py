"""bench/proc_cpu.py, the CPU accounting of the benchmarks: a child that burns CPU and is
reaped counts towards its parent, and nothing else is counted."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import proc_cpu


def test_a_reaped_child_s_cpu_counts_towards_its_parent_and_nothing_else_counts() -> None:
    me = os.getpid()
    before = proc_cpu.snapshot()
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)  # ends and is reaped before the snapshot
    after = proc_cpu.snapshot()
    assert me in proc_cpu.descendants(after, me)
    spent = proc_cpu.cpu_by_group(before, after, lambda proc: "me" if proc.pid == me else None)
    assert 0.25 <= spent["me"] < 5, spent
    assert proc_cpu.cpu_by_group(before, after, lambda proc: None) == {}

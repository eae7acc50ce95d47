"""cloudpipe_common/memory.py: the programs ask glibc for at most two malloc arenas (the
soak's flat RSS depends on it, bench/soak.py), and glibc's own MALLOC_ARENA_MAX wins."""

from __future__ import annotations

import os
import subprocess
import sys

from cloudpipe_common.memory import limit_malloc_arenas

# Eight threads allocate at once; glibc's malloc_stats() then prints one "Arena N:" per arena.
PROBE = """
import ctypes, ctypes.util, sys, threading
from cloudpipe_common.memory import limit_malloc_arenas
applied = limit_malloc_arenas({}) if sys.argv[1] == "limit" else False
started, allocated = threading.Barrier(8), threading.Barrier(8)
def churn():  # all eight alive at once, each allocating: none can reuse an ended one's arena
    started.wait()
    blob = [bytes(64) for _ in range(1000)]
    allocated.wait()
    del blob
threads = [threading.Thread(target=churn) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(applied, flush=True)
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()
"""


def arenas(mode: str) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, timeout=60, env=env
    )
    return done.stdout.strip(), sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_a_process_that_limits_its_arenas_keeps_to_two_whatever_its_threads_do() -> None:
    applied, limited = arenas("limit")
    assert applied == "True" and 1 <= limited <= 2, (applied, limited)
    applied, without = arenas("none")
    assert applied == "False" and without > 2, "without the limit the eight threads get arenas of their own"


def test_glibc_s_own_setting_wins() -> None:
    assert limit_malloc_arenas({"MALLOC_ARENA_MAX": "4"}) is False

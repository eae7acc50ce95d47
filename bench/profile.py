"""Sample a running process with py-spy and summarise where its CPU went, for the
flame summaries in bench/RESULTS.md (`python -m bench.suite --profile DIR`).

py-spy is not a dependency of Cloudpipe: install it into any virtualenv
(`pip install py-spy`) and put it on PATH, or give `Recording` its path. The recording is py-spy's
"raw" format (collapsed stacks: `frame;frame;frame count` per line, which flamegraph.pl
and speedscope read), sampled without stopping the process (`--nonblocking`), idle
threads left out, all threads of the process together.

    with Recording(pid, Path("server.collapsed")) as recording: ... work ...
    print(summary(recording.path))
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections import Counter
from itertools import zip_longest
from pathlib import Path
from types import TracebackType


class Recording:
    """py-spy recording `pid` from entry to exit of the block into `path`."""

    def __init__(self, pid: int, path: Path, py_spy: str = "py-spy", rate: int = 250) -> None:
        found = shutil.which(py_spy)
        if found is None:
            raise SystemExit(f"--profile needs py-spy on PATH ({py_spy!r} not found): pip install py-spy")
        self.path = path
        self._command = [found, "record", "--pid", str(pid), "--format", "raw", "--nolineno"]
        self._command += ["--nonblocking", "--rate", str(rate), "--output", str(path)]
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Recording:
        self._process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # attached before the work begins
        if self._process.poll() is not None:
            raise SystemExit(f"py-spy failed: {self._process.stderr.read().decode(errors='replace')[-500:]}")  # type: ignore[union-attr]
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks, root first, with their sample counts."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _short(frame: str) -> str:
    """`name (path/to/module.py)` -> `name (module.py)`; py-spy's thread frames stay."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rstrip(')').rsplit('/', 1)[-1]})" if where else frame


def _ours(frame: str) -> bool:
    """A frame of Cloudpipe's code, other than the entry point at the root of the main
    thread's every stack."""
    name, _, where = frame.partition(" (")
    return "cloudpipe_" in where and not where.endswith("__main__.py)") and name != "<module>"


def summary(path: Path, top: int = 15) -> str:
    """A Markdown summary as shares of all samples: the functions holding the CPU
    themselves (self, any code), and Cloudpipe's own functions by the samples they are
    on the stack for (inclusive: what each costs with everything it calls)."""
    stacks = read_stacks(path)
    total = sum(stacks.values())
    if not total:
        return f"(no samples in {path})"
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, count in stacks.items():
        own[_short(stack[-1])] += count
        for frame in {_short(frame) for frame in stack if _ours(frame)}:
            inclusive[frame] += count
    lines = [f"{total:,} samples ({path.name})", ""]
    lines += ["| self | function | | inclusive | Cloudpipe function |", "|---|---|---|---|---|"]
    for left, right in zip_longest(own.most_common(top), inclusive.most_common(top)):
        cells = [
            f"{count / total:.1%} | `{name}`" if count else " | " for name, count in (left or ("", 0), right or ("", 0))
        ]
        lines.append(f"| {cells[0]} | | {cells[1]} |")
    return "\n".join(lines)

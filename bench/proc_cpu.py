"""CPU seconds spent by groups of processes between two snapshots of /proc (stdlib only:
`bench/ray_local.py` imports it from the Ray virtualenv too).

CPU time is what a machine shared with other work measures best: wall time per job
moves with the load, CPU seconds per job much less. A process's own time and the time
of the children it reaped (utime + stime + cutime + cstime) are counted, so the short
lived processes a warm agent forks per job count towards the agent. A process that ended
between the snapshots is counted only through its parent.

    before = snapshot()
    ... work ...
    spent = cpu_by_group(before, snapshot(), group)  # {"server": 1.9, ...}
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    cmdline: str
    cpu: float  # seconds: its own and its reaped children's


def snapshot() -> dict[int, Proc]:
    """Every process readable now, by pid."""
    procs: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                stat = handle.read()
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # ended meanwhile
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[1] is ppid; 11..14 are utime, stime, cutime, cstime (stat(5), from field 3)
        cpu = sum(int(value) for value in fields[11:15]) / _TICK
        procs[int(name)] = Proc(int(name), int(fields[1]), comm, cmdline, cpu)
    return procs


def descendants(procs: dict[int, Proc], root: int) -> set[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def cpu_by_group(
    before: dict[int, Proc], after: dict[int, Proc], group: Callable[[Proc], str | None]
) -> dict[str, float]:
    """CPU seconds spent between the snapshots per `group(process)` (None: not counted).
    A process that is new in `after` counts in full; one whose pid was reused counts
    from zero."""
    spent: dict[str, float] = {}
    for pid, proc in after.items():
        name = group(proc)
        if name is None:
            continue
        earlier = before.get(pid)
        start = earlier.cpu if earlier is not None and earlier.comm == proc.comm else 0.0
        if proc.cpu > start:
            spent[name] = spent.get(name, 0.0) + proc.cpu - start
    return spent

"""A progress bar for waiting on many jobs: drawn with rich when the stream is a
terminal (or when asked), nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


def wanted(progress: bool | None, stream: TextIO) -> bool:
    """`progress` when given, else whether `stream` is a terminal."""
    if progress is not None:
        return progress
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Tracker:
    """Counts finished (and failed) jobs; `print` writes a line above the bar (or just
    a line when there is no bar)."""

    def __init__(self, stream: TextIO, bar: Any = None, task: Any = None) -> None:
        self._stream = stream
        self._bar = bar
        self._task = task
        self._failures = 0

    def advance(self, finished: int = 1, *, failed: int = 0) -> None:
        self._failures += failed
        if self._bar is not None:
            label = f"[red]{self._failures} failed" if self._failures else ""
            self._bar.update(self._task, advance=finished, failed=label)

    def print(self, text: str, *, style: str | None = None) -> None:
        if self._bar is not None:
            self._bar.console.print(text, style=style, highlight=False)
        else:
            print(text, file=self._stream, flush=True)


@contextmanager
def progress_bar(
    total: int, *, enabled: bool, description: str = "jobs", stream: TextIO | None = None
) -> Iterator[Tracker]:
    """Yield a Tracker; draws a bar on `stream` (default stderr) while open when enabled."""
    out = stream or sys.stderr
    if not enabled or total <= 0:
        yield Tracker(out)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]}"),
        TimeElapsedColumn(),
        console=Console(file=out, force_terminal=True),
        transient=False,
    ) as bar:
        yield Tracker(out, bar, bar.add_task(description, total=total, failed=""))

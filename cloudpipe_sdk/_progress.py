"""A progress bar for waiting on many jobs: drawn with rich when the stream is a
terminal (or when asked), nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO


class Advance(Protocol):
    def __call__(self, finished: int = 1, *, failed: int = 0) -> None: ...


def wanted(progress: bool | None, stream: TextIO) -> bool:
    """`progress` when given, else whether `stream` is a terminal."""
    if progress is not None:
        return progress
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def progress_bar(
    total: int, *, enabled: bool, description: str = "jobs", stream: TextIO | None = None
) -> Iterator[Advance]:
    """Yield a function that records finished (and failed) jobs; draws a bar while open."""
    if not enabled or total <= 0:

        def ignore(finished: int = 1, *, failed: int = 0) -> None:
            return None

        yield ignore
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=stream or sys.stderr, force_terminal=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total, failed="")
        failures = 0

        def advance(finished: int = 1, *, failed: int = 0) -> None:
            nonlocal failures
            failures += failed
            bar.update(task, advance=finished, failed=f"[red]{failures} failed" if failures else "")

        yield advance

"""bench/profile.py's summary of py-spy's collapsed stacks (its `raw` format)."""

from __future__ import annotations

from pathlib import Path

from bench.profile import read_stacks, summary

ROOT = 'process 1:"python -m cloudpipe_server";thread (0x7F01);run (asyncio/runners.py)'
CLAIM = "_claim (/srv/cloudpipe_server/jobs/dispatcher.py)"
WORKER = 'process 1:"python -m cloudpipe_server";thread (0x7F02);worker (concurrent/futures/thread.py)'
COLLAPSED = f"""\
{ROOT};{CLAIM};execute (sqlite3.py) 30
{ROOT};{CLAIM} 10
{WORKER};execute (sqlite3.py) 60
not a stack line
"""


def test_self_and_inclusive_shares_of_all_samples(tmp_path: Path) -> None:
    path = tmp_path / "server.collapsed"
    path.write_text(COLLAPSED)
    stacks = read_stacks(path)
    assert sum(stacks.values()) == 100 and len(stacks) == 3
    text = summary(path)
    assert text.startswith("100 samples (server.collapsed)")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "%" in line]
    # self: sqlite's execute holds 90 of 100 samples, wherever it was called from
    assert rows[0].startswith("| 90.0% | `execute (sqlite3.py)` |")
    # inclusive, Cloudpipe's own functions only: _claim is on the stack in 40
    assert rows[0].endswith("| 40.0% | `_claim (dispatcher.py)` |")
    assert rows[1] == "| 10.0% | `_claim (dispatcher.py)` | |  |  |", "one Cloudpipe function on any stack"


def test_an_empty_recording_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.collapsed"
    path.write_text("")
    assert summary(path) == f"(no samples in {path})"

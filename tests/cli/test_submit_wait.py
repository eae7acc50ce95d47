"""`cloudpipe submit --wait` as a person watches it: output appears while the job runs
(stdout to stdout, stderr to stderr, on success and on failure), the exit code is the
job's, and a Python function that raises gives one clean message, not the CLI's own
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.support import cloudpipe
from tests.support import ROOT, ServerProcess

pytestmark = pytest.mark.docker


def test_output_appears_while_the_job_runs(server: ServerProcess) -> None:
    command = [sys.executable, "-m", "cloudpipe_sdk.cli", "--address", server.address, "--api-key", server.api_key]
    script = "echo first; echo to-stderr >&2; sleep 4; echo second"
    process = subprocess.Popen(
        [*command, "submit", "--wait", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        still_running = process.poll() is None
        assert first == b"first\n"
        assert still_running, "the first line came only after the CLI had exited"
        assert process.stderr.readline() == b"to-stderr\n"
        assert process.poll() is None  # the job sleeps: its stderr came live too
        rest, errors = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, rest) == (0, b"second\n"), errors


def test_exit_code_is_the_jobs_and_no_output_is_dropped(server: ServerProcess) -> None:
    done = cloudpipe(server, "submit", "--wait", "echo out; echo err >&2")
    assert (done.exit_code, done.stdout, done.stderr) == (0, "out\n", "err\n")
    failed = cloudpipe(server, "submit", "--wait", "echo partial; echo oops >&2; exit 3")
    assert failed.exit_code == 3
    assert failed.stdout == "partial\n"  # stdout of a failed job is not dropped
    assert failed.stderr.startswith("oops\n")
    assert "ended error: exited with code 3" in failed.stderr


def test_a_failing_function_gives_a_clean_message(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(
        "import sys, time\n"
        "def noisy(n):\n"
        "    print('working on', n, flush=True)\n"
        "    print('a warning', file=sys.stderr, flush=True)\n"
        "    return n * 2\n"
        "def broken(n):\n"
        "    print('about to fail', flush=True)\n"
        "    raise ValueError(f'bad input {n}')\n"
    )
    ok = cloudpipe(server, "submit", "--wait", "tasks:noisy", "21", cwd=tmp_path)
    assert (ok.exit_code, ok.stdout) == (0, "working on 21\n42\n"), ok.stderr
    assert "a warning" in ok.stderr
    raised = cloudpipe(server, "submit", "--wait", "tasks:broken", "7", cwd=tmp_path)
    assert raised.exit_code == 1
    assert raised.stdout == "about to fail\n"
    assert "raised ValueError: bad input 7" in raised.stderr
    assert "cloudpipe_sdk" not in raised.stderr, raised.stderr  # no frame of the CLI itself
    assert raised.stderr.count("Traceback (most recent call last)") <= 1  # only the function's
    job_id = raised.stderr.split("job ", 1)[1].split()[0]
    shown = cloudpipe(server, "result", job_id)
    assert shown.exit_code == 1 and "raised ValueError: bad input 7" in shown.stderr
    assert "cloudpipe_sdk" not in shown.stderr


def test_a_killed_job_exits_non_zero(server: ServerProcess) -> None:
    started = time.monotonic()
    killed = cloudpipe(server, "submit", "--wait", "--timeout", "2", "echo started; sleep 60")
    assert killed.exit_code != 0 and killed.stdout == "started\n"
    assert "ended" in killed.stderr
    assert time.monotonic() - started < 60

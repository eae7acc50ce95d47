"""Run `cloudpipe` as a user types it: a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support import ROOT, ServerProcess


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def cloudpipe(
    server: ServerProcess | None,
    *args: str,
    stdin: str | None = None,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 90,
) -> Result:
    command = [sys.executable, "-m", "cloudpipe_sdk.cli"]
    if server is not None:
        command += ["--address", server.address, "--api-key", server.api_key]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run(
        [*command, *args], input=stdin, capture_output=True, text=True, cwd=cwd, env=environment, timeout=timeout
    )
    return Result(done.returncode, done.stdout, done.stderr)

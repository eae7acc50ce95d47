"""Run `cloudpipe` as a user types it: a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


class TmuxServer:
    """A tmux server of its own (socket `name` in the temp dir, no user config).
    Sessions on the shared default server race: when a test kills the last session
    that server exits, and the next test's `new-session`, connecting as it goes, fails
    with "server exited unexpectedly" (1 in 200 here)."""

    def __init__(self, name: str) -> None:
        self.socket = Path(tempfile.gettempdir()) / f"{name}.tmux"

    def command(self, *args: str) -> list[str]:
        return ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args]

    def stop(self) -> None:
        """Ends every session; tmux leaves its socket behind, so it goes too."""
        subprocess.run(self.command("kill-server"), check=False, capture_output=True)
        self.socket.unlink(missing_ok=True)

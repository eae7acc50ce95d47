"""`cloudpipe` on a real pseudo-terminal, typed into the way a person types: the
process is the session leader of a new pty (`pty.fork`), so Ctrl-C written to the
terminal becomes SIGINT from the line discipline, and Ctrl-D end of input."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from collections.abc import Callable

from tests.support import ROOT, ServerProcess

CTRL_C = b"\x03"
CTRL_D = b"\x04"


class Terminal:
    """One `cloudpipe ...` run on its own pseudo-terminal (stdout and stderr both)."""

    def __init__(self, server: ServerProcess, *args: str) -> None:
        argv = [sys.executable, "-m", "cloudpipe_sdk.cli", "--address", server.address, "--api-key", server.api_key]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"}
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec at once (the parent has threads)
            try:
                os.chdir(ROOT)
                os.execve(sys.executable, [*argv, *args], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.screen = b""
        self.exit_code: int | None = None

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            self.screen += chunk

    def expect(self, text: str, timeout: float = 60) -> None:
        """Wait until `text` is on the screen."""
        self._until(lambda: text.encode() in self.screen, timeout, f"{text!r} never appeared")

    def wait(self, timeout: float = 60) -> int:
        """Wait for the process to exit (reading the screen meanwhile); its exit code,
        or -SIGNAL (`Fatal Python error` aborts are -6, a shell's 134)."""

        def exited() -> bool:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
            return self.exit_code is not None

        self._until(exited, timeout, "still running")
        for _ in range(20):  # what is left on the terminal
            before = len(self.screen)
            self._read(0.05)
            if len(self.screen) == before:
                break
        os.close(self.fd)
        assert self.exit_code is not None
        return self.exit_code

    def _until(self, condition: Callable[[], bool], timeout: float, failure: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"{failure} after {timeout} s; the screen:\n{self.text}")
            self._read(0.1)

    @property
    def text(self) -> str:
        return self.screen.decode("utf-8", "replace").replace("\r\n", "\n")

    def kill(self) -> None:
        if self.exit_code is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.exit_code = -9

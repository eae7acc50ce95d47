"""`cloudpipe submit --tty` / `attach` on a tty job in a real terminal (tmux), typed
into the way a person types: keys go to the job's own terminal (one echo, Ctrl-C and
Ctrl-Z as signals there), its size follows the tmux window, the detach keys leave it
running, and our terminal is restored (`stty -a` shows `icanon` and `echo`) however
the attachment ends."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from cloudpipe_sdk import Client, JobStatus
from tests.cli.support import TmuxServer, cloudpipe
from tests.support import (
    OWNER_LABEL,
    ROOT,
    SESSION_PREFIX,
    ServerProcess,
    remove_labelled_containers,
    start_server,
)

pytestmark = pytest.mark.docker
PROMPT = r"cloudpipe@\w+:~\$"  # the job's bash, as the runner image's user


class Tmux:
    """A bash in a detached tmux session (a real terminal, `columns` x `rows`), its
    prompt `host$ `, with `cloudpipe` aliased to this checkout's CLI on `server`."""

    def __init__(self, server: ServerProcess, columns: int = 100, rows: int = 30) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("these tests need tmux (apt-get install tmux; scripts/setup.sh installs it)")
        self.name = f"cloudpipe-tty-{uuid.uuid4().hex[:8]}"
        self.tmux = TmuxServer(self.name)
        shell = "env -i PATH=/usr/bin:/bin TERM=xterm HOME=/tmp bash --norc --noprofile"
        subprocess.run(
            self.tmux.command("new-session", "-d", "-s", self.name, "-x", str(columns), "-y", str(rows), shell),
            check=True,
        )
        cli = shlex.join([sys.executable, "-m", "cloudpipe_sdk.cli", "--address", server.address])
        self.line(
            f"cd {shlex.quote(str(ROOT))}; export PYTHONPATH={shlex.quote(str(ROOT))} "
            f"CLOUDPIPE_API_KEY={shlex.quote(server.api_key)}; alias cloudpipe={shlex.quote(cli)}; "
            "PS1='host$ '; clear"
        )
        try:
            self.expect(r"host\$", timeout=20)
        except BaseException:
            self.close()  # no fixture teardown runs for a fixture that failed to start
            raise

    def line(self, text: str) -> None:
        """Type `text` and Enter."""
        self.keys(text, "Enter")

    def keys(self, *keys: str) -> None:
        """tmux key names (`C-c`, `Enter`) or literal text."""
        subprocess.run(self.tmux.command("send-keys", "-t", self.name, *keys), check=True)

    def screen(self) -> str:
        """Everything on the terminal so far, wrapped lines joined."""
        return subprocess.run(
            self.tmux.command("capture-pane", "-p", "-J", "-S", "-1000", "-t", self.name),
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def expect(self, pattern: str, timeout: float = 60, count: int = 1) -> str:
        """Wait until the screen shows `pattern` (a regular expression) `count` times
        (tmux drops the spaces that end a line)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if len(re.findall(pattern, screen)) >= count:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} (x{count}) never appeared; the screen:\n{screen}")
            time.sleep(0.2)

    def exit_code(self) -> int:
        """The last command's exit code, asked of the host shell once its prompt is back
        (keys typed before are the command's: it reads them until it exits)."""
        self.expect(r"host\$\s*\Z")
        marker = uuid.uuid4().hex[:6]
        self.line(f"echo {marker}-$?")
        return int(self.expect(rf"\n{marker}-(\d+)").split(f"\n{marker}-")[-1].split()[0])

    def assert_restored(self) -> None:
        """Our terminal is as a shell leaves it: line editing and echo on."""
        self.line("stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo")
        screen = self.expect(r"\n(-?icanon|-?echo) (-?icanon|-?echo) \n")
        last = re.findall(r"\n(-?icanon|-?echo) (-?icanon|-?echo) \n", screen)[-1]
        assert sorted(last) == ["echo", "icanon"], screen

    def resize(self, columns: int, rows: int) -> None:
        subprocess.run(
            self.tmux.command("resize-window", "-t", self.name, "-x", str(columns), "-y", str(rows)), check=True
        )

    def close(self) -> None:
        self.tmux.stop()


@pytest.fixture
def tmux(server: ServerProcess) -> Iterator[Tmux]:
    terminal = Tmux(server)
    yield terminal
    terminal.close()


def assert_clean(screen: str) -> None:
    assert "Fatal Python error" not in screen and "Traceback" not in screen, screen


def test_a_tty_shell_is_a_terminal_of_the_window_and_ends_with_its_code(tmux: Tmux, client: Client) -> None:
    tmux.line("cloudpipe submit --tty --wait bash")
    tmux.expect(PROMPT, timeout=90)
    tmux.line("tty; stty size; echo $((6 * 7))")
    screen = tmux.expect(r"\n42\r?\n")
    assert re.search(r"\n/dev/pts/\d+\n30 100\n42\n", screen), screen
    assert screen.count("echo $((6 * 7))") == 1, "typed once, echoed once (by the job's terminal)"
    tmux.resize(90, 25)
    time.sleep(1)
    tmux.line("stty size")
    tmux.expect(r"\n25 90\n")
    tmux.line("exit 3")
    assert tmux.exit_code() == 3, "submit --wait exits with the job's code"
    tmux.assert_restored()
    assert_clean(tmux.screen())
    (job,) = client.list(limit=1)
    assert job.status is JobStatus.ERROR and job.return_code == 3


def test_ctrl_c_and_ctrl_z_reach_the_job_through_its_terminal(tmux: Tmux, client: Client) -> None:
    job = client.shell("bash", tty=True)
    tmux.line(f"cloudpipe attach {job.id}")
    tmux.expect(PROMPT, timeout=90)
    tmux.line("sleep 300")
    time.sleep(1.5)
    tmux.keys("C-c")
    tmux.expect(r"\^C")
    tmux.line("echo interrupted-$?")
    tmux.expect(r"\ninterrupted-130\n")  # the sleep got SIGINT; the shell kept going
    tmux.line("sleep 301")
    time.sleep(1.5)
    tmux.keys("C-z")
    tmux.expect(r"Stopped\s+sleep 301")  # SIGTSTP: the job's shell has job control
    tmux.line("fg")
    tmux.expect(r"\nsleep 301\n")
    time.sleep(0.5)
    tmux.keys("C-\\")  # SIGQUIT
    tmux.expect(r"Quit")
    tmux.line("echo quit-$?; exit 0")
    tmux.expect(r"\nquit-131\n")
    assert tmux.exit_code() == 0, "attach: 0 when the job ends done"
    tmux.assert_restored()
    assert_clean(tmux.screen())
    assert job.wait(30) is JobStatus.DONE


def test_the_detach_keys_leave_the_job_running_and_restore_the_terminal(tmux: Tmux, client: Client) -> None:
    job = client.shell("bash", tty=True)
    try:
        tmux.line(f"cloudpipe attach {job.id}")
        tmux.expect(PROMPT, timeout=90)
        tmux.line("echo first-visit")
        tmux.expect(r"\nfirst-visit\n")
        tmux.keys("C-p", "C-q")
        tmux.expect(f"detached from job {job.id}; it keeps running")
        assert tmux.exit_code() == 130
        tmux.assert_restored()
        assert job.refresh().status is JobStatus.PROCESSING
        tmux.line(f"cloudpipe attach --detach-keys ctrl-x,x {job.id}")
        tmux.expect(r"\nfirst-visit\n", count=2)  # attaching again replays the output
        tmux.line("echo second-visit")
        tmux.expect(r"\nsecond-visit\n")
        tmux.keys("C-x", "x")
        tmux.expect(f"detached from job {job.id}", count=2)
        assert tmux.exit_code() == 130
        tmux.assert_restored()
        assert job.refresh().status is JobStatus.PROCESSING
        assert_clean(tmux.screen())
    finally:
        job.kill()


def test_python_on_a_terminal_echoes_once_and_exit_ends_attach(tmux: Tmux, client: Client) -> None:
    job = client.shell("python3 -i", tty=True)
    tmux.line(f"cloudpipe attach {job.id}")
    tmux.expect(">>>", timeout=90)
    tmux.line("print(6 * 7)")
    screen = tmux.expect(r"\n42\n")
    assert screen.count("print(6 * 7)") == 1 and screen.count("\n42\n") == 1, screen
    tmux.line("exit()")
    assert tmux.exit_code() == 0
    tmux.assert_restored()
    assert_clean(tmux.screen())
    assert job.wait(30) is JobStatus.DONE


def test_the_terminal_is_restored_when_the_server_goes_away(tmp_path: Path, docker_engine: docker.DockerClient) -> None:
    server = start_server(tmp_path / "gone")
    terminal: Tmux | None = None
    try:
        terminal = Tmux(server)
        job = server.client().shell("bash", tty=True)
        terminal.line(f"cloudpipe attach {job.id}")
        terminal.expect(PROMPT, timeout=90)
        server.stop()  # its job's container is left running, for a restart to adopt
        terminal.expect("cannot reach the server", timeout=60)
        assert terminal.exit_code() == 5
        terminal.assert_restored()
        assert_clean(terminal.screen())
    finally:
        if terminal is not None:
            terminal.close()
        server.stop()
        owner = f"{SESSION_PREFIX}{server.address.rsplit(':', 1)[1]}"  # the server's identity
        remove_labelled_containers(docker_engine, f"{OWNER_LABEL}={owner}")


def test_a_tty_job_from_pipes_is_attached_as_today(server: ServerProcess, client: Client) -> None:
    job = client.shell("bash", tty=True)
    done = cloudpipe(server, "attach", str(job.id), stdin="echo from-a-pipe\n")
    assert done.exit_code == 0, done  # the end of the pipe is the terminal's end of file: bash exits
    assert "from-a-pipe" in done.stdout and done.stderr == ""
    assert job.wait(30) is JobStatus.DONE


def test_bad_detach_keys_are_a_usage_error(server: ServerProcess) -> None:
    done = cloudpipe(server, "attach", "--detach-keys", "ctrl-1", "1")
    assert done.exit_code == 2
    assert "'ctrl-1' is not a key" in done.stderr

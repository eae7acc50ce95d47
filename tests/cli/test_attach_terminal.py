"""`cloudpipe attach` on a real pseudo-terminal, typed into the way a person types.

Each path once ended in `Fatal Python error: _enter_buffered_busy` (exit 134): a job
that ends by itself, `exit()` in `python3 -i`, Ctrl-C, typing into a job that is not
interactive. Each must exit with the code docs/cli.md states, and say why."""

from __future__ import annotations

import time

import pytest

from cloudpipe_sdk import Client, JobStatus
from tests.cli.terminal import CTRL_C, Terminal
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


def assert_clean(terminal: Terminal) -> None:
    assert "Fatal Python error" not in terminal.text and "Traceback" not in terminal.text, terminal.text


def test_exit_in_an_attached_python_ends_attach_cleanly(server: ServerProcess, client: Client) -> None:
    job = client.shell("python3 -i", interactive=True)
    terminal = Terminal(server, "attach", str(job.id))
    terminal.expect(">>> ", timeout=90)
    terminal.type(b"print(6 * 7)\n")
    terminal.expect("42")
    terminal.type(b"exit()\n")
    assert terminal.wait() == 0
    assert_clean(terminal)
    assert terminal.text.count("print(6 * 7)") == 1  # echoed once, by the terminal
    assert terminal.text.count("42") == 1
    assert job.wait(timeout=30) is JobStatus.DONE


def test_a_job_ending_by_itself_ends_attach_with_its_status(server: ServerProcess, client: Client) -> None:
    job = client.shell("echo started; sleep 2; echo bye >&2; exit 3", interactive=True)
    terminal = Terminal(server, "attach", str(job.id))
    assert terminal.wait() == 1  # ended error: 1
    assert_clean(terminal)
    assert "started" in terminal.text and "bye" in terminal.text
    done = client.shell("sleep 1; echo all good", interactive=True)
    terminal = Terminal(server, "attach", str(done.id))
    assert terminal.wait() == 0
    assert "all good" in terminal.text
    assert_clean(terminal)


def test_ctrl_c_is_sent_to_the_job_as_sigint(server: ServerProcess, client: Client) -> None:
    job = client.shell("echo ready; sleep 60", interactive=True)
    terminal = Terminal(server, "attach", str(job.id))
    terminal.expect("ready", timeout=90)
    typed = time.monotonic()
    terminal.type(CTRL_C)
    code = terminal.wait()
    took = time.monotonic() - typed
    # the job first: whether the INT reached it, and when attach ended, tell a lost
    # Ctrl-C from a lost message
    status = job.wait(timeout=10)
    assert status is JobStatus.ERROR and job.return_code == 130, (status, job.return_code, took, terminal.text)
    assert code == 1, (code, took, terminal.text)  # the job ended error, killed by SIGINT
    assert_clean(terminal)
    assert "sent INT to job" in terminal.text


def test_a_second_ctrl_c_detaches_and_leaves_the_job_running(server: ServerProcess, client: Client) -> None:
    job = client.shell("trap '' INT; echo ready; sleep 60", interactive=True)
    terminal = Terminal(server, "attach", str(job.id))
    terminal.expect("ready", timeout=90)
    terminal.type(CTRL_C)
    terminal.expect("Ctrl-C again to detach")
    terminal.type(CTRL_C)
    assert terminal.wait() == 130
    assert_clean(terminal)
    assert f"detached from job {job.id}; it keeps running" in terminal.text
    assert job.status is JobStatus.PROCESSING
    job.kill()
    assert job.wait(timeout=30) is JobStatus.KILLED


def test_typing_into_a_job_not_submitted_interactive_says_so(server: ServerProcess, client: Client) -> None:
    job = client.shell("echo ready; sleep 60")
    terminal = Terminal(server, "attach", str(job.id))
    terminal.expect("ready", timeout=90)
    terminal.type(b"hello\n")
    assert terminal.wait() == 2
    assert_clean(terminal)
    assert "was not submitted interactive" in terminal.text and "--interactive" in terminal.text
    assert job.status is JobStatus.PROCESSING  # typing did not harm it
    job.kill()


def test_attach_to_a_finished_job_says_it_ended(server: ServerProcess, client: Client) -> None:
    job = client.shell("echo over", interactive=True)
    assert job.wait(timeout=90) is JobStatus.DONE
    terminal = Terminal(server, "attach", str(job.id))
    assert terminal.wait() == 2
    assert f"job {job.id} already ended done" in terminal.text and "cannot close stdin" not in terminal.text
    assert_clean(terminal)

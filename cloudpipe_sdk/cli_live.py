"""Live jobs on the terminal: `cloudpipe attach`, and the output `submit --wait` streams.

Standard input is read with `os.read` on file descriptor 0 in a daemon thread that
the main thread never joins. It never touches the buffered `sys.stdin` object: a daemon
thread blocked inside `sys.stdin.buffer.readline()` holds that object's lock when the
interpreter shuts down, and Python aborts with `Fatal Python error:
_enter_buffered_busy` (exit 134). A thread blocked in `os.read` holds no such lock, so
`sys.exit` from the main thread is clean on every path. Only the main thread writes to
the `sys.stdout` and `sys.stderr` objects (the Ctrl-C notice goes to fd 2 directly).

Ctrl-C while attached is forwarded to the job as SIGINT; a second Ctrl-C detaches
(the job keeps running) and exits 130, as a shell reports a command ended by SIGINT.
A tty job attached from a terminal is attached raw instead (cli_tty: keys as bytes,
the window size, the detach keys, also exit 130 when they detach).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import click

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._errors import JobFailed
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._outcome import settle
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._stream import Attachment
from cloudpipe_sdk._types import Exit, JobSnapshot, Output
from cloudpipe_sdk.cli_output import emit_line, json_option, outcome_dict, output_line
from cloudpipe_sdk.cli_tty import DEFAULT_DETACH_KEYS, attach_raw, detach_keys_option, parse_detach_keys, terminals

DETACHED = 130  # exit code after the second Ctrl-C, the shell's for "ended by SIGINT"
ENDED = 2  # attach to a job that already ended, or type into one that is not interactive
NOTICE_DELAY = 0.05  # seconds from a forwarded Ctrl-C to its notice (see _Interrupts)


def write_output(event: Output, *, as_json: bool = False) -> None:
    """Job output to our stdout or stderr, as it comes (or as a JSON line)."""
    if as_json:
        output_line(event)
        return
    target = sys.stdout if event.stream == "stdout" else sys.stderr
    target.buffer.write(event.data)
    target.flush()


def stream_until_exit(job: Job, *, as_json: bool = False) -> Exit:
    """Print the job's stdout and stderr live until it ends; return how it ended."""
    for event in job.stream():
        if isinstance(event, Output):
            write_output(event, as_json=as_json)
        elif isinstance(event, Exit):
            return event
    raise click.ClickException(f"job {job.id}: the stream ended before the job did")  # pragma: no cover


def write_result(value: Any) -> None:
    """A job's result on stdout: bytes as they are, a str as text, anything else repr'd."""
    if isinstance(value, bytes):
        sys.stdout.buffer.write(value)
        sys.stdout.flush()
    elif isinstance(value, str):
        click.echo(value)
    else:
        click.echo(repr(value))


def report_outcome(snapshot: JobSnapshot, *, streamed: bool = False) -> int:
    """Print a finished job's result (stdout) or its failure (stderr, one paragraph and,
    for a function that raised, its remote traceback, never the CLI's own); the exit
    code: 0 with a result, 1 without. `streamed`: its output was already printed live,
    so a shell job's stdout result, the failure's output tails and a function's
    traceback (the runner writes it to stderr) are not repeated."""
    value, error = settle(snapshot)
    if error is None:
        if not (streamed and snapshot.spec.result_source == "stdout" and not snapshot.spec.is_function):
            write_result(value)
        return 0
    if isinstance(error, JobFailed):
        message = f"job {error.job_id} ended {error.status}" + (f": {error.reason}" if error.reason else "")
        click.echo(f"cloudpipe: {message if streamed else error}", err=True)
        return 1
    click.echo(f"cloudpipe: job {snapshot.id} raised {type(error).__name__}: {error}", err=True)
    if error.__cause__ is not None and not streamed:  # when streamed, the runner printed it
        click.echo(str(error.__cause__).strip("\n"), err=True)
    return 1


def exit_code(snapshot: JobSnapshot) -> int:
    """`submit --wait`'s exit code: 0 when the job ended done; a shell command's own
    exit code when it exited non-zero (as a shell reports it); 1 otherwise (a
    function that raised, a job killed before it ran, stalled...)."""
    if snapshot.status is JobStatus.DONE:
        return 0
    code = snapshot.return_code
    if not snapshot.spec.is_function and code is not None and 0 < code < 256:
        return code
    return 1


def run_to_end(job: Job, *, as_json: bool = False) -> int:
    """`submit --wait`: stream the job's stdout and stderr live, then print its result
    or failure; the exit code (see `exit_code`). With `as_json`: JSON lines, the last
    `{"exit": ...}` with the result or error."""
    stream_until_exit(job, as_json=as_json)
    snapshot = job.refresh()
    if as_json:
        emit_line({"exit": outcome_dict(snapshot)})
        return exit_code(snapshot)
    failed = report_outcome(snapshot, streamed=True)
    return exit_code(snapshot) if failed or snapshot.status is not JobStatus.DONE else 0


class _StdinPump:
    """Our fd 0 into the job's stdin, from a daemon thread (see the module docstring).

    For a job not submitted interactive, the first bytes typed end the attachment and
    set `refused` (the job has no open stdin to write them to)."""

    def __init__(self, session: Attachment, *, interactive: bool) -> None:
        self._session = session
        self._interactive = interactive
        self.refused = False

    def start(self) -> None:
        try:
            fd = sys.stdin.fileno() if sys.stdin is not None else -1
        except (OSError, ValueError):  # stdin closed or not a real file: nothing to read
            fd = -1
        if fd >= 0:
            threading.Thread(target=self._run, args=(fd,), name="cloudpipe-stdin", daemon=True).start()

    def _run(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            if not self._interactive:
                self.refused = True
                self._session.close()
                return
            self._session.write(data)
        if self._interactive:
            self._session.close_stdin()


class _Interrupts:
    """SIGINT while attached: the first is sent to the job, the second detaches; one
    that comes after the attachment ended does nothing (we are exiting with the job's
    code, never with click's "Aborted!").

    It is installed before the attachment opens and left installed until the process
    exits (both commands that attach exit next), so no Ctrl-C finds Python's default
    handler in between. The handler only counts and starts a thread: the session's lock
    may be held by the frame it interrupted. That thread forwards the signal, then says
    so on fd 2 with `os.write` (no buffered stream's lock, see the module docstring),
    `NOTICE_DELAY` later: the terminal driver sends SIGINT first and only then flushes
    the output not yet read (Linux's n_tty), so a notice written at once can be flushed
    away by the very Ctrl-C it answers."""

    def __init__(self, job_id: int) -> None:
        self._job_id = job_id
        self._session: Attachment | None = None
        self._notices: list[threading.Thread] = []
        self.count = 0

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)

    def attached(self, session: Attachment) -> None:
        """The live session, until `finish`."""
        self._session = session

    def finish(self) -> None:
        """Ended: later Ctrl-Cs do nothing, and a notice on its way is written before we
        exit (a daemon thread would die with the process, its notice unwritten)."""
        self._session = None
        for thread in self._notices:
            thread.join(NOTICE_DELAY + 1.0)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        session = self._session
        if session is None:
            return
        self.count += 1
        if self.count == 1:
            notice = threading.Thread(target=self._forward, args=(session,), daemon=True)
            self._notices.append(notice)
            notice.start()
        else:
            threading.Thread(target=session.close, daemon=True).start()

    def _forward(self, session: Attachment) -> None:
        session.signal("INT")
        time.sleep(NOTICE_DELAY)
        message = f"\ncloudpipe: sent INT to job {self._job_id}; Ctrl-C again to detach\n"
        with contextlib.suppress(OSError):
            os.write(2, message.encode())


@click.command()
@click.argument("job_id", type=int)
@detach_keys_option
@json_option
@click.pass_obj
def attach(client: Client, job_id: int, detach_keys: bytes, as_json: bool) -> None:
    """Connect our stdin, stdout and stderr to a running job until it ends.

    What you type goes to the job's stdin (it must have been submitted with
    --interactive); end of input (Ctrl-D) closes it. Ctrl-C sends SIGINT to the job; a
    second Ctrl-C detaches and leaves the job running.

    A job submitted with --tty, attached from a terminal, gets our terminal raw: every
    key goes to the job (Ctrl-C, Ctrl-Z, Ctrl-\\ are signals through its terminal,
    Ctrl-D its end of file), the window size follows ours, and the detach keys
    (Ctrl-P Ctrl-Q, or --detach-keys) leave it running. Our terminal is restored
    however the attachment ends. From pipes it is attached as any interactive job.

    Exit 0 when the job ends done, 1 when it does not, 2 when it had already ended or
    you typed into a job that is not interactive, 130 when you detached.

    \b
    job=$(cloudpipe submit --interactive 'python3 -i')
    cloudpipe attach "$job"
    echo 'print(1)' | cloudpipe attach --json "$job"      # JSON lines
    job=$(cloudpipe submit --tty bash)
    cloudpipe attach --detach-keys ctrl-x,x "$job"
    """
    sys.exit(attach_to(client.get(job_id), as_json=as_json, detach_keys=detach_keys))


def attach_to(job: Job, *, job_code: bool = False, as_json: bool = False, detach_keys: bytes | None = None) -> int:
    """`cloudpipe attach` (and `submit --interactive --wait`): our terminal on the job
    until it ends or we detach; the exit code the attach command documents, or with
    `job_code` (for submit --wait) the job's own when it ends (see `exit_code`). A tty
    job from a terminal (unless `as_json`) is attached raw (see cli_tty)."""
    job_id = job.id
    snapshot = job.snapshot
    if snapshot.status.finished:
        click.echo(
            f"cloudpipe: job {job_id} already ended {snapshot.status.value}; "
            f"nothing to attach to (its output: cloudpipe logs {job_id})",
            err=True,
        )
        return ENDED
    if snapshot.spec.tty and not as_json and terminals():
        keys = parse_detach_keys(DEFAULT_DETACH_KEYS) if detach_keys is None else detach_keys
        with job.attach() as session:
            ended = attach_raw(session, keys)
        if ended is None:
            click.echo(f"cloudpipe: detached from job {job_id}; it keeps running (cloudpipe kill {job_id})", err=True)
            return DETACHED
        if job_code:
            return exit_code(job.refresh())
        return 0 if ended.status is JobStatus.DONE else 1
    interrupts = _Interrupts(job_id)
    interrupts.install()
    with job.attach() as session:
        pump = _StdinPump(session, interactive=snapshot.spec.interactive)
        interrupts.attached(session)
        try:
            pump.start()
            for event in session:
                if isinstance(event, Output):
                    write_output(event, as_json=as_json)
                elif isinstance(event, Exit):
                    interrupts.finish()  # nothing left to send a Ctrl-C to
                    if as_json:
                        emit_line({"exit": outcome_dict(job.refresh())})
                    if job_code:
                        return exit_code(job.refresh())
                    return 0 if event.status is JobStatus.DONE else 1
        finally:
            interrupts.finish()
    if pump.refused:
        click.echo(
            f"cloudpipe: job {job_id} was not submitted interactive, so it takes no input; "
            "submit it with --interactive to type into it (it keeps running)",
            err=True,
        )
        return ENDED
    click.echo(f"cloudpipe: detached from job {job_id}; it keeps running (cloudpipe kill {job_id})", err=True)
    return DETACHED

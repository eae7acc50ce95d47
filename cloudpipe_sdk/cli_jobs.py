"""`cloudpipe ls | show | logs | kill | kill-all | rm | wait | result` (`submit` is in
cli_submit.py, `attach` in cli_live.py).

Registered on the main group by `register(main)` in cli.py; errors and exit codes are
the main group's (see cli.py).
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._compat import UTC
from cloudpipe_sdk._errors import Timeout
from cloudpipe_sdk._progress import progress_bar, wanted
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._types import Attempt, Exit, JobSnapshot, Output
from cloudpipe_sdk._waiting import as_completed
from cloudpipe_sdk.cli_live import attach, report_outcome, write_output
from cloudpipe_sdk.cli_output import emit, emit_line, json_option, outcome_dict, when
from cloudpipe_sdk.cli_submit import CommandError, submit

_AGO = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_COLOURS = {"done": "green", "error": "red", "killed": "yellow", "stalled": "magenta", "processing": "cyan"}


def _job_dict(job: JobSnapshot) -> dict[str, Any]:
    created = job.created_at or datetime.fromtimestamp(0, UTC)
    return {
        "id": job.id,
        "name": job.spec.name,
        "status": job.status.value,
        "cmd": job.spec.cmd,
        "function": job.spec.tags.get("function", ""),
        "image": job.spec.image,
        "created_at": created.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z",
        "runtime_seconds": job.runtime.total_seconds() if job.runtime is not None else None,
        "return_code": job.return_code,
        "reason": job.reason,
    }


# -- reading ---------------------------------------------------------------------------------


def _since(text: str) -> datetime:
    match = _AGO.fullmatch(text)
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since: expected like 30m, 2h, 1d or an ISO date, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("ls")
@click.option("--status", "statuses", multiple=True, type=click.Choice([s.value for s in JobStatus]), help="repeatable")
@click.option("--name", "names", multiple=True, help="only jobs with this name (repeatable)")
@click.option("--since", help="only jobs created since: 30m, 2h, 1d or an ISO date")
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_obj
def list_jobs(
    client: Client, statuses: tuple[str, ...], names: tuple[str, ...], since: str | None, limit: int, as_json: bool
) -> None:
    """List your jobs, newest first.

    \b
    cloudpipe ls --status error --since 1h
    cloudpipe ls --name nightly --limit 5 --json
    """
    created_after = _since(since) if since else None
    jobs = client.list(statuses=statuses, names=names, created_after=created_after, limit=limit)
    rows = [_job_dict(job.snapshot) for job in jobs]
    if as_json:
        emit(rows)
        return
    table = Table("ID", "NAME", "STATUS", "CREATED", "RUNTIME", "COMMAND")
    for row in rows:
        status = row["status"]
        runtime = f"{row['runtime_seconds']:.1f}s" if row["runtime_seconds"] is not None else ""
        what = row["function"] + "()" if row["function"] else row["cmd"]
        table.add_row(
            str(row["id"]),
            row["name"],
            f"[{_COLOURS.get(status, 'white')}]{status}[/]",
            row["created_at"][:19].replace("T", " "),
            runtime,
            what[:60],
        )
    Console().print(table)


@click.command()
@click.argument("job_id", type=int)
@json_option
@click.pass_obj
def show(client: Client, job_id: int, as_json: bool) -> None:
    """Show one job with its output, and its attempts when it ran more than once (a
    lost runner's restartable job runs again), and its inputs, outputs and storage
    secret when it has them. With --json: attempt_history always.

    \b
    cloudpipe show 42
    cloudpipe show --json 42
    """
    snapshot = client.get(job_id).snapshot
    row = _job_dict(snapshot)
    row["attempts"] = snapshot.attempts
    history = [_attempt_dict(attempt) for attempt in snapshot.attempt_history]
    if as_json:
        row["attempt_history"] = history
    spec = snapshot.spec
    transfers = {"inputs": dict(spec.inputs), "outputs": dict(spec.outputs), "storage_secret": spec.storage_secret}
    row.update({key: value for key, value in transfers.items() if value})
    row["stdout"] = snapshot.stdout.decode("utf-8", "replace")
    row["stderr"] = snapshot.stderr.decode("utf-8", "replace")
    if as_json:
        emit(row)
        return
    for key, value in row.items():
        if key in ("inputs", "outputs"):
            arrow = "<-" if key == "inputs" else "->"
            click.echo(f"{key}:")
            for path, url in sorted(value.items()):
                click.echo(f"  {path} {arrow} {url}")
            continue
        click.echo(f"{key}: {value}")
        if key == "attempts" and len(history) > 1:
            for attempt in snapshot.attempt_history:
                click.echo(f"  {_attempt_line(attempt)}")


def _attempt_dict(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "status": attempt.status.value,
        "started_at": _iso(attempt.started_at),
        "ended_at": _iso(attempt.ended_at),
        "return_code": attempt.return_code,
        "reason": attempt.reason,
        "owner": attempt.owner,
    }


def _attempt_line(attempt: Attempt) -> str:
    """One attempt in a line: "#1 queued 2026-01-01 12:00:00Z -> 12:00:30Z on srv-a: why"."""
    status = "requeued" if attempt.status is JobStatus.QUEUED else attempt.status.value
    ended = when(attempt.ended_at)
    if attempt.started_at is not None and when(attempt.started_at)[:10] == ended[:10]:
        ended = ended[11:]  # the same day: the time alone
    line = f"#{attempt.number} {status} {when(attempt.started_at)} -> {ended}"
    if attempt.return_code is not None:
        line += f" exit {attempt.return_code}"
    if attempt.owner:
        line += f" on {attempt.owner}"
    return line + (f": {attempt.reason}" if attempt.reason else "")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z" if moment is not None else None


@click.command()
@click.argument("job_id", type=int)
@click.option("-f", "--follow", is_flag=True, help="keep printing output until the job ends")
@json_option
@click.pass_obj
def logs(client: Client, job_id: int, follow: bool, as_json: bool) -> None:
    """Print a job's output (stdout to stdout, stderr to stderr). With -f, exit 1 when
    the job does not end done. With --json: {"stdout", "stderr"}, or with -f JSON
    lines ({"stream", "text"}, then {"exit": ...}).

    \b
    cloudpipe logs 42
    cloudpipe logs -f 42
    cloudpipe logs --json 42
    """
    job = client.get(job_id)
    if not follow:
        snapshot = job.snapshot
        if as_json:
            emit({"id": job_id, "stdout": snapshot.stdout, "stderr": snapshot.stderr})
            return
        sys.stdout.buffer.write(snapshot.stdout)
        sys.stderr.buffer.write(snapshot.stderr)
        return
    for event in job.stream():
        if isinstance(event, Output):
            write_output(event, as_json=as_json)
        elif isinstance(event, Exit):
            if as_json:
                emit_line({"exit": {"status": event.status.value, "return_code": event.return_code}})
            if event.status is not JobStatus.DONE:
                if not as_json:
                    click.echo(f"cloudpipe: job {job_id} ended {event.status.value}: {event.reason}", err=True)
                sys.exit(1)


# -- changing ------------------------------------------------------------------------------------


@click.command()
@click.argument("job_ids", type=int, nargs=-1, required=True)
@click.option(
    "--timeout", type=float, default=30.0, show_default=True, help="seconds to wait for each job to end after the kill"
)
@json_option
@click.pass_obj
def kill(client: Client, job_ids: tuple[int, ...], timeout: float, as_json: bool) -> None:
    """Kill jobs and print the status each ended with (a finished job stays as it
    is). Waits up to --timeout seconds for each to end; one still ending then is
    reported as `kill requested`.

    \b
    cloudpipe kill 42
    cloudpipe kill --timeout 5 42 43
    """
    rows = []
    for job_id in job_ids:
        before = client.get(job_id).snapshot.status
        job = client.kill(job_id)
        if before.finished:
            status, note = before, f"already ended {before.value}, left as it is"
        else:
            try:
                status = job.wait(timeout=timeout)
                note = status.value
            except Timeout:
                status = job.refresh().status
                note = f"kill requested (still {status.value} after {timeout:g} s)"
        rows.append({"id": job_id, "status": status.value, "killed": not before.finished})
        if not as_json:
            click.echo(f"job {job_id}: {note}")
    if as_json:
        emit(rows)


@click.command("kill-all")
@click.option("--yes", is_flag=True, help="do not ask (asked only when stdin is a terminal)")
@json_option
@click.pass_obj
def kill_all(client: Client, yes: bool, as_json: bool) -> None:
    """Kill every unfinished job of your account.

    \b
    cloudpipe kill-all
    cloudpipe kill-all --yes --json
    """
    if not yes and sys.stdin.isatty():
        click.confirm("Kill every unfinished job of your account?", abort=True)
    ids = client.kill_all()
    if as_json:
        emit({"killed": ids})
        return
    click.echo(f"killed {len(ids)} job(s)" + (f": {' '.join(map(str, ids))}" if ids else ""))


@click.command("rm")
@click.argument("job_ids", type=int, nargs=-1, required=True)
@json_option
@click.pass_obj
def rm(client: Client, job_ids: tuple[int, ...], as_json: bool) -> None:
    """Delete finished jobs with their output (all or none; kill running ones first).

    \b
    cloudpipe rm 42 43
    cloudpipe rm --json 42
    """
    deleted = client.delete(*job_ids)
    if as_json:
        emit({"deleted": deleted})
        return
    click.echo(f"deleted {len(deleted)} job(s): {' '.join(map(str, deleted))}")


# -- waiting ---------------------------------------------------------------------------------------


@click.command()
@click.argument("job_ids", type=int, nargs=-1, required=True)
@click.option("--timeout", type=float, help="give up after this many seconds (exit 6)")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: when stdout is a terminal)")
@json_option
@click.pass_obj
def wait(client: Client, job_ids: tuple[int, ...], timeout: float | None, progress: bool | None, as_json: bool) -> None:
    """Wait for jobs to finish. Prints one line per job as it ends; exit 0 when all
    ended done, 1 when one did not, 6 on timeout. With --json: one JSON line per job
    ({"id", "status", "reason"}) as it ends.

    \b
    cloudpipe wait 42 43
    cloudpipe wait --timeout 60 --json 42
    """
    jobs = [client.job(job_id) for job_id in dict.fromkeys(job_ids)]
    failed = 0
    if as_json:
        for job in as_completed(jobs, timeout=timeout):
            failed += job.status is not JobStatus.DONE
            emit_line({"id": job.id, "status": job.status.value, "reason": job.reason})
        if failed:
            sys.exit(1)
        return
    show_bar = wanted(progress, sys.stdout)
    with progress_bar(len(jobs), enabled=show_bar, description="waiting", stream=sys.stdout) as tracker:
        for job in as_completed(jobs, timeout=timeout):
            status = job.status
            bad = status is not JobStatus.DONE
            failed += bad
            tracker.advance(failed=int(bad))
            line = f"job {job.id}: {status.value}" + (f" ({job.reason})" if job.reason and bad else "")
            tracker.print(line, style=_COLOURS.get(status.value))
    if failed:
        sys.exit(1)


@click.command()
@click.argument("job_id", type=int)
@click.option("--timeout", type=float, help="give up after this many seconds (exit 6)")
@json_option
@click.pass_obj
def result(client: Client, job_id: int, timeout: float | None, as_json: bool) -> None:
    """Wait for a job and print its result: a shell job's bytes as they are, a function's
    str value as text, any other value repr'd. A failed job exits 1 with its error.
    With --json: {"id", "status", "return_code", "reason", "result" or "error"}.

    \b
    cloudpipe result 42
    cloudpipe result --timeout 60 --json 42
    """
    job = client.get(job_id)
    job.wait(timeout)
    if as_json:
        ended = outcome_dict(job.snapshot)
        emit(ended)
        if "error" in ended:
            sys.exit(1)
        return
    code = report_outcome(job.snapshot)
    if code:
        sys.exit(code)


def register(main: click.Group) -> None:
    """Add the commands of this module to the `cloudpipe` group."""
    for command in (submit, list_jobs, show, logs, attach, kill, kill_all, rm, wait, result):
        main.add_command(command)

"""`cloudpipe submit | ls | show | logs | attach | kill | kill-all | rm | wait | result`.

Registered on the main group by `register(main)` in cli.py; errors and exit codes are
the main group's (see cli.py).
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
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
from cloudpipe_sdk._types import Exit, JobSnapshot, Output
from cloudpipe_sdk._waiting import as_completed
from cloudpipe_sdk.cli_live import attach, attach_to, report_outcome, run_to_end, write_output
from cloudpipe_sdk.cli_output import emit, emit_line, json_option, outcome_dict

_FUNCTION = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_AGO = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_COLOURS = {"done": "green", "error": "red", "killed": "yellow", "stalled": "magenta", "processing": "cyan"}


class CommandError(click.ClickException):
    """Bad usage found after parsing: exit code 2, like click's usage errors."""

    exit_code = 2


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"{what}: expected KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


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


# -- submit ----------------------------------------------------------------------------------


def _argument(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _load_function(target: str) -> Any:
    """`module:function` imported from the current directory."""
    module_name, _, attribute = target.partition(":")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"cannot import {module_name}: {exc}") from None
    fn: Any = module
    for part in attribute.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise CommandError(f"{target}: not a function")
    return fn  # its module and the project modules it uses travel by value (_shipping)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("command")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--image", help="Docker image (default: the server's)")
@click.option("--cpus", type=float, help="CPU cores (fractions allowed)")
@click.option("--memory", help="memory limit, bytes or like 512M, 2G")
@click.option("--timeout", type=float, help="longest run time in seconds")
@click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE", help="environment variable (repeatable)")
@click.option("--tag", "tag_pairs", multiple=True, metavar="KEY=VALUE", help="tag (repeatable)")
@click.option("--name", help="a name to find the job by")
@click.option("--network", is_flag=True, help="give the job a network")
@click.option(
    "--retries", type=click.IntRange(min=0), help="module:function only: call it again up to N times when it raises"
)
@click.option("--restartable", is_flag=True, default=None, help="requeue the job if its runner is lost")
@click.option(
    "--fresh-container",
    is_flag=True,
    default=None,
    help="never run in a warm container (long jobs; re-adopted on restart)",
)
@click.option(
    "--interactive",
    is_flag=True,
    help="keep the job's stdin open for `cloudpipe attach` (with --wait: attach now)",
)
@click.option(
    "--result-file",
    metavar="PATH",
    help="the result is this file in the container, not stdout (shell commands)",
)
@click.option("--idempotency-key", help="a retried submit with the same key makes no second job")
@click.option("--depends-on", "depends_on", multiple=True, type=int, help="run after this job ended done (repeatable)")
@click.option("--stdin", "stdin_file", type=click.File("rb"), help="file fed to the job's stdin ('-' for ours)")
@click.option("--serializer", type=click.Choice(["cloudpickle", "dill"]), help="for module:function calls")
@click.option(
    "--shell",
    "force_shell",
    is_flag=True,
    help="treat COMMAND as a shell command even if it looks like module:function",
)
@click.option(
    "--wait",
    is_flag=True,
    help="print the job's stdout and stderr as it runs, then its result; exit with the job's exit code",
)
@json_option
@click.pass_obj
def submit(
    client: Client,
    /,
    command: str,
    args: tuple[str, ...],
    env_pairs: tuple[str, ...],
    tag_pairs: tuple[str, ...],
    depends_on: tuple[int, ...],
    stdin_file: Any,
    force_shell: bool,
    wait: bool,
    interactive: bool,
    result_file: str | None,
    idempotency_key: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Submit COMMAND (a shell command; extra ARGS are appended, quoted) or a Python
    call `module:function ARGS...` (ARGS as Python literals, else strings;
    `key=value` ones are keyword arguments). Prints the job id.

    With --wait, the job's stdout and stderr are printed live (to ours) while it runs,
    then a function's result; the exit code is the job's: 0 when it ended done, a shell
    command's own non-zero exit code, else 1 (a function that raised, a killed job).
    With --json: {"id": ...}, or with --wait JSON lines ({"stream", "text"} for
    output, then {"exit": {"status", "return_code", "result" or "error"...}}).

    \b
    cloudpipe submit 'echo hello'
    cloudpipe submit --cpus 2 --memory 1G -- make -j2 test
    cloudpipe submit --wait math:factorial 20
    cloudpipe submit --wait --retries 2 mytasks:flaky
    cloudpipe submit --interactive --wait 'python3 -i'
    cloudpipe submit --wait --result-file /tmp/out.txt 'date > /tmp/out.txt'
    cloudpipe submit --json --wait 'echo hi'
    """
    job_options = {key: value for key, value in options.items() if value is not None}
    job_options.update(env=_pairs(env_pairs, "--env"), tags=_pairs(tag_pairs, "--tag"))
    if _FUNCTION.fullmatch(command) and not force_shell:
        shell_only = {
            "--stdin": stdin_file is not None,
            "--depends-on": bool(depends_on),
            "--interactive": interactive,
            "--result-file": result_file is not None,
            "--idempotency-key": idempotency_key is not None,
        }
        used = [flag for flag, given in shell_only.items() if given]
        if used:
            raise CommandError(f"{', '.join(used)}: for shell commands, not module:function calls")
        fn = _load_function(command)
        positional = [_argument(a) for a in args if not re.match(r"^[A-Za-z_]\w*=", a)]
        keywords = {k: _argument(v) for k, _, v in (a.partition("=") for a in args if re.match(r"^[A-Za-z_]\w*=", a))}
        job = client.with_options(**job_options).submit(fn, *positional, **keywords)
    else:
        if job_options.pop("serializer", None):
            raise CommandError("--serializer: for module:function calls, not shell commands")
        if job_options.get("retries"):
            raise CommandError(
                "--retries: only module:function calls are retried (the function is called again when it "
                "raises); a shell command that fails is not run again. Use --restartable to requeue it "
                "when its runner is lost, or retry inside the command"
            )
        cmd = " ".join([command, *(shlex.quote(a) for a in args)])
        stdin = stdin_file.read() if stdin_file is not None else None
        job = client.shell(
            cmd,
            stdin=stdin,
            depends_on=depends_on,
            interactive=interactive,
            result_source=f"file:{result_file}" if result_file else "stdout",
            idempotency_key=idempotency_key,
            **job_options,
        )
    if not wait:
        if as_json:
            emit({"id": job.id})
        else:
            click.echo(job.id)
        return
    if interactive:
        sys.exit(attach_to(job, job_code=True, as_json=as_json))
    sys.exit(run_to_end(job, as_json=as_json))


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
    """Show one job with its output.

    \b
    cloudpipe show 42
    cloudpipe show --json 42
    """
    snapshot = client.get(job_id).snapshot
    row = _job_dict(snapshot)
    row["attempts"] = snapshot.attempts
    row["stdout"] = snapshot.stdout.decode("utf-8", "replace")
    row["stderr"] = snapshot.stderr.decode("utf-8", "replace")
    if as_json:
        emit(row)
        return
    for key, value in row.items():
        click.echo(f"{key}: {value}")


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

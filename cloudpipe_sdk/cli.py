"""`cloudpipe`: the command line for Cloudpipe.

Exit codes: 0 success; 1 the job failed, was killed or stalled; 2 bad usage;
3 not found; 4 authentication failed; 5 server unavailable; 6 timed out.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk._client import Client
from cloudpipe_sdk._errors import AuthError, CloudpipeError, JobFailed, NotFound, Timeout, Unavailable
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._status import status_from_pb
from cloudpipe_sdk._stream import Exit, Output
from cloudpipe_sdk.cli_schedules import register as register_schedule_commands

EXIT_CODES: dict[type[CloudpipeError], int] = {
    JobFailed: 1,
    NotFound: 3,
    AuthError: 4,
    Unavailable: 5,
    Timeout: 6,
}


def _exit_code(exc: CloudpipeError) -> int:
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 2


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CloudpipeError as exc:
            click.echo(f"cloudpipe: {exc}", err=True)
            ctx.exit(_exit_code(exc))


@click.group(cls=_Group)
@click.option("--address", envvar="CLOUDPIPE_ADDRESS", default="localhost:50051", show_default=True)
@click.option("--api-key", envvar="CLOUDPIPE_API_KEY", default="", help="or CLOUDPIPE_API_KEY")
@click.pass_context
def main(ctx: click.Context, address: str, api_key: str) -> None:
    """Run shell commands and Python functions in containers."""
    ctx.obj = ctx.with_resource(Client(address, api_key=api_key))


def _job_dict(job: pb.Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.spec.name,
        "status": status_from_pb(job.status).value,
        "cmd": job.spec.cmd,
        "image": job.spec.image,
        "created_at": job.created_at.ToDatetime().isoformat() + "Z",
        "return_code": job.return_code if job.HasField("return_code") else None,
        "reason": job.reason,
    }


@main.command()
@click.argument("cmd")
@click.option("--image", help="Docker image (default: the server's)")
@click.option("--stdin", "stdin_file", type=click.File("rb"), help="file fed to the job's stdin ('-' for ours)")
@click.option("--name", help="a name to find the job by")
@click.option("--timeout", type=float, help="max run time in seconds")
@click.option("--wait/--no-wait", default=False, help="wait and print the result")
@click.pass_obj
def submit(
    client: Client, cmd: str, image: str | None, stdin_file: Any, name: str | None, timeout: float | None, wait: bool
) -> None:
    """Submit a shell command; print its job id (or its result with --wait)."""
    job = client.shell(cmd, image=image, stdin=stdin_file.read() if stdin_file else None, name=name, timeout=timeout)
    if not wait:
        click.echo(job.id)
        return
    sys.stdout.buffer.write(job.result())
    sys.stdout.flush()


@main.command("ls")
@click.option("--status", "statuses", multiple=True, help="only jobs in this status (repeatable)")
@click.option("--name", "names", multiple=True, help="only jobs with this name (repeatable)")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def list_jobs(client: Client, statuses: tuple[str, ...], names: tuple[str, ...], limit: int, as_json: bool) -> None:
    """List your jobs, newest first."""
    rows = [_job_dict(job.snapshot) for job in client.list(statuses=statuses, names=names, limit=limit)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("ID", "NAME", "STATUS", "CREATED", "CMD")
    for row in rows:
        table.add_row(str(row["id"]), row["name"], row["status"], row["created_at"][:19], row["cmd"][:60])
    Console().print(table)


@main.command()
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(client: Client, job_id: int, as_json: bool) -> None:
    """Show one job with its output."""
    snapshot = client.get(job_id).refresh()
    row = _job_dict(snapshot)
    row["stdout"] = snapshot.stdout.decode("utf-8", "replace")
    row["stderr"] = snapshot.stderr.decode("utf-8", "replace")
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    for key, value in row.items():
        click.echo(f"{key}: {value}")


@main.command()
@click.argument("job_id", type=int)
@click.pass_obj
def kill(client: Client, job_id: int) -> None:
    """Kill a job."""
    job = client.kill(job_id)
    click.echo(f"job {job.id}: {job.status.value}")


@main.command()
@click.argument("job_id", type=int)
@click.option("--timeout", type=float)
@click.pass_obj
def wait(client: Client, job_id: int, timeout: float | None) -> None:
    """Wait for a job; exit 1 unless it ends done."""
    status = Job(client, job_id).wait(timeout)
    click.echo(f"job {job_id}: {status.value}")
    if status.value != "done":
        sys.exit(1)


@main.command()
@click.argument("job_id", type=int)
@click.option("--timeout", type=float)
@click.pass_obj
def result(client: Client, job_id: int, timeout: float | None) -> None:
    """Print a shell job's result bytes (or a function job's value, repr'd)."""
    value = client.get(job_id).result(timeout)
    if isinstance(value, bytes):
        sys.stdout.buffer.write(value)
    else:
        click.echo(repr(value))


@main.command()
@click.argument("job_id", type=int)
@click.option("-f", "--follow", is_flag=True, help="keep printing output until the job ends")
@click.pass_obj
def logs(client: Client, job_id: int, follow: bool) -> None:
    """Print a job's output (stdout to stdout, stderr to stderr)."""
    job = client.get(job_id)
    if not follow:
        snapshot = job.refresh()
        sys.stdout.buffer.write(snapshot.stdout)
        sys.stderr.buffer.write(snapshot.stderr)
        return
    for event in job.stream():
        if isinstance(event, Output):
            target = sys.stdout if event.stream == "stdout" else sys.stderr
            target.buffer.write(event.data)
            target.flush()
        elif isinstance(event, Exit) and event.status.value != "done":
            click.echo(f"cloudpipe: job {job_id} ended {event.status.value}: {event.reason}", err=True)
            sys.exit(1)


@main.command()
@click.argument("job_id", type=int)
@click.pass_obj
def attach(client: Client, job_id: int) -> None:
    """Attach our stdin and stdout/stderr to a running interactive job."""
    job = client.get(job_id)
    with job.attach() as session:

        def pump_stdin() -> None:
            for line in iter(sys.stdin.buffer.readline, b""):
                session.write(line)
            session.close_stdin()

        threading.Thread(target=pump_stdin, daemon=True).start()
        for event in session:
            if isinstance(event, Output):
                target = sys.stdout if event.stream == "stdout" else sys.stderr
                target.buffer.write(event.data)
                target.flush()
            elif isinstance(event, Exit):
                sys.exit(0 if event.status.value == "done" else 1)


@main.group()
def pki() -> None:
    """Certificates for TLS and the auth service's mutual TLS."""


@pki.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--host", "hosts", multiple=True, help="extra DNS name or IP for the server certificates (repeatable)")
@click.option("--force", is_flag=True, help="replace existing files, starting a new CA")
def pki_init(directory: str, hosts: tuple[str, ...], force: bool) -> None:
    """Create an internal CA and the server/client certificates in DIRECTORY."""
    from cloudpipe_server.auth import pki as pki_module  # server-side code, only needed here

    try:
        result = pki_module.init(directory, hosts=hosts, force=force)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(pki_module.describe(result))


register_schedule_commands(main)

if __name__ == "__main__":
    main()

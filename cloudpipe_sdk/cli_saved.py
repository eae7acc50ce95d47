"""`cloudpipe saved ...`: named, versioned job templates.

Registered on the main group by `register(main)` in cli.py; errors and exit codes are
the main group's.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._types import SavedJob
from cloudpipe_sdk.cli_output import emit, json_option, key_values, outcome_dict, when


def _saved_dict(saved: SavedJob) -> dict[str, Any]:
    spec = saved.spec
    return {
        "name": saved.name,
        "version": saved.version,
        "kind": f"python {spec.client_python} function" if saved.is_function else "shell",
        "cmd": spec.cmd,
        "image": spec.image,
        "env": dict(spec.env),
        "description": saved.description,
        "created_at": when(saved.created_at),
    }


@click.group("saved")
def saved_group() -> None:
    """Saved jobs: named, versioned job templates.

    \b
    cloudpipe saved save report 'python3 /app/report.py'
    cloudpipe saved run --wait report
    """


@saved_group.command("ls")
@json_option
@click.pass_obj
def saved_ls(client: Client, as_json: bool) -> None:
    """List saved jobs (latest versions).

    \b
    cloudpipe saved ls
    cloudpipe saved ls --json
    """
    rows = [_saved_dict(s) for s in client.saved_jobs.list()]
    if as_json:
        emit(rows)
        return
    table = Table("NAME", "VERSION", "KIND", "CMD", "UPDATED")
    for row in rows:
        table.add_row(row["name"], str(row["version"]), row["kind"], row["cmd"][:50], row["created_at"])
    Console().print(table)


@saved_group.command("show")
@click.argument("name")
@click.option("--version", type=int, default=0, help="a given version (default: the latest)")
@json_option
@click.pass_obj
def saved_show(client: Client, name: str, version: int, as_json: bool) -> None:
    """Show one saved job (as JSON, with or without --json).

    \b
    cloudpipe saved show report
    cloudpipe saved show report --version 2
    """
    emit(_saved_dict(client.saved_jobs.get(name, version=version)))


@saved_group.command("save")
@click.argument("name")
@click.argument("cmd")
@click.option("--image")
@click.option("--env", "env", multiple=True, help="NAME=VALUE (repeatable)")
@click.option("--timeout", type=float, help="max run time in seconds")
@click.option("--description", default="")
@json_option
@click.pass_obj
def saved_save(
    client: Client,
    name: str,
    cmd: str,
    image: str | None,
    env: tuple[str, ...],
    timeout: float | None,
    description: str,
    as_json: bool,
) -> None:
    """Save a shell command as NAME (a new version when it changed).

    \b
    cloudpipe saved save report 'python3 /app/report.py' --image python:3.12 --env LEVEL=full
    """
    saved = client.saved_jobs.save_shell(
        name, cmd, image=image, env=key_values(env), timeout=timeout, description=description
    )
    if as_json:
        emit(_saved_dict(saved))
        return
    click.echo(f"saved job {saved.name} v{saved.version}")


@saved_group.command("run")
@click.argument("name")
@click.argument("args", nargs=-1)
@click.option("--version", type=int, default=0)
@click.option("--env", "env", multiple=True, help="NAME=VALUE (repeatable), merged over the saved env")
@click.option("--image")
@click.option("--wait/--no-wait", default=False, help="wait and print the result")
@json_option
@click.pass_obj
def saved_run(
    client: Client,
    name: str,
    args: tuple[str, ...],
    version: int,
    env: tuple[str, ...],
    image: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Run a saved job; ARGS are appended to a shell command. Prints the job id, or
    with --wait its result.

    \b
    cloudpipe saved run report --day 2026-01-01
    cloudpipe saved run --wait --env LEVEL=short report
    """
    job = client.saved_jobs.run(name, version=version, args=args, env=key_values(env), image=image)
    if as_json:
        if wait:
            job.wait()
        emit(outcome_dict(job.snapshot) if wait else {"id": job.id})
        return
    if not wait:
        click.echo(job.id)
        return
    value = job.result()
    if isinstance(value, bytes):
        sys.stdout.buffer.write(value)
    else:
        click.echo(repr(value))


@saved_group.command("rm")
@click.argument("name")
@json_option
@click.pass_obj
def saved_rm(client: Client, name: str, as_json: bool) -> None:
    """Delete a saved job (every version).

    \b
    cloudpipe saved rm report
    """
    client.saved_jobs.delete(name)
    if as_json:
        emit({"deleted": name})
        return
    click.echo(f"deleted saved job {name}")


def register(main: click.Group) -> None:
    """Add `saved` to the `cloudpipe` group."""
    main.add_command(saved_group)

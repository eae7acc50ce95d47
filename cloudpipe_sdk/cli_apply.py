"""`cloudpipe apply FILE`: the saved jobs and schedules of a TOML file, checked whole by
the server's rules, then applied (the rules and the guarantee: cloudpipe_sdk._apply).

Registered on the main group by `register(main)` in cli.py; errors and exit codes are
the main group's.
"""

from __future__ import annotations

from pathlib import Path

import click

from cloudpipe_sdk._apply import load, plan, run
from cloudpipe_sdk._client import Client
from cloudpipe_sdk.cli_output import emit, json_option

_STYLE = {"create": ("+", "green"), "update": ("~", "yellow"), "unchanged": ("=", None)}


@click.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="validate everything and show what would change; change nothing")
@json_option
@click.pass_obj
def apply_command(client: Client, file: str, dry_run: bool, as_json: bool) -> None:
    """Create or update the saved jobs and schedules declared in a TOML FILE.

    The whole file is checked first, by the server's rules (cron, time zones, image
    names, limits, the saved jobs schedules name); any problem is reported, all at
    once, and nothing changes (exit 2). Then the differences are printed (only what
    the file gives and what changes) and applied. Applying the same file twice
    changes nothing.

    \b
    cloudpipe apply cloudpipe.toml --dry-run
    cloudpipe apply cloudpipe.toml
    """
    changes = plan(client.transport, load(file), Path(file).parent)
    counts = {action: sum(c.action == action for c in changes) for action in _STYLE}
    if as_json:
        rows = [{"kind": c.kind, "name": c.name, "action": c.action, "changes": c.details} for c in changes]
        if not dry_run:
            run(client.transport, changes)
        emit({"dry_run": dry_run, "changes": rows, "counts": counts})
        return
    for change in changes:
        mark, colour = _STYLE[change.action]
        click.secho(f"{mark} {change.kind} {change.name}: {change.action}", fg=colour)
        for detail in change.details:
            click.echo(f"    {detail}")
    click.echo(f"{counts['create']} to create, {counts['update']} to update, {counts['unchanged']} unchanged")
    if dry_run:
        click.echo("dry run: the file is valid; nothing changed")
        return
    run(client.transport, changes)
    click.echo("applied")


def register(main: click.Group) -> None:
    """Add `apply` to the `cloudpipe` group."""
    main.add_command(apply_command)

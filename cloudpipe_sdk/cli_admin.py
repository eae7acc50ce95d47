"""`cloudpipe config ...`: commands that need no connection.

Registered on the main group by `register(main)` in cli.py.
"""

from __future__ import annotations

import os
from typing import Any

import click

from cloudpipe_sdk._config import SETTINGS, config_path, resolve_config, set_config_value
from cloudpipe_sdk.cli_output import emit, json_option


def _connection(ctx: click.Context) -> dict[str, Any]:
    return dict(ctx.meta.get("cloudpipe.connection", {}))


@click.group("config", invoke_without_command=True)
@click.pass_context
def config_group(ctx: click.Context) -> None:
    """Show the settings the other commands use (same as `config show`), or change
    them in ~/.config/cloudpipe/config.toml.

    \b
    cloudpipe config
    cloudpipe config set address localhost:50051
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(config_show)


@config_group.command("show")
@json_option
@click.pass_context
def config_show(ctx: click.Context, as_json: bool = False) -> None:
    """Each setting, its value (the API key shortened) and where it comes from.

    \b
    cloudpipe config show
    cloudpipe --profile prod config show --json
    """
    connection = _connection(ctx)
    profile = connection.pop("profile", None)
    config = resolve_config(profile=profile, **connection)
    values = config.redacted()
    if as_json:
        sources = {name: config.source.get(name, "default") for name in SETTINGS}
        emit({"profile": config.profile, "file": str(config_path()), "settings": values, "sources": sources})
        return
    click.echo(f"file: {config_path()}")
    click.echo(f"profile: {config.profile}")
    for name in SETTINGS:
        click.echo(f"{name}: {values[name]}  ({config.source.get(name, 'default')})")


# A VALUE may begin with "-" (an API key can): unknown options are taken as the value.
@config_group.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("name", type=click.Choice(list(SETTINGS)))
@click.argument("value")
@click.option("--profile", default=None, help="profile to change (default: CLOUDPIPE_PROFILE or 'default')")
@json_option
@click.pass_context
def config_set(ctx: click.Context, name: str, value: str, profile: str | None, as_json: bool) -> None:
    """Set NAME to VALUE in a profile (an empty VALUE removes it). The file is created
    readable by you only, since it may hold an API key.

    \b
    cloudpipe config set address cloudpipe.example.com:443 --profile prod
    cloudpipe config set api_key "$KEY" --profile prod
    cloudpipe config set serializer '' --profile prod      # remove it
    """
    chosen = profile or _connection(ctx).get("profile") or os.environ.get("CLOUDPIPE_PROFILE") or "default"
    path = set_config_value(name, value, profile=chosen)
    if as_json:  # never the value: it may be the API key
        emit({"setting": name, "profile": chosen, "file": str(path), "removed": value == ""})
        return
    click.echo(f"{name} {'removed from' if value == '' else 'set in'} profile {chosen} of {path}")


@config_group.command("path")
@json_option
def config_path_command(as_json: bool) -> None:
    """Print the config file's path (it need not exist).

    \b
    cloudpipe config path
    """
    if as_json:
        emit({"file": str(config_path()), "exists": config_path().exists()})
        return
    click.echo(config_path())


def register(main: click.Group) -> None:
    """Add the commands of this module to the `cloudpipe` group."""
    main.add_command(config_group)

"""`cloudpipe`: the command line for Cloudpipe (reference: docs/cli.md).

Exit codes, stable for scripts:

    0  success
    1  a job failed, was killed or stalled (or the function raised)
    2  bad usage, or the server refused the request (invalid, incompatible)
    3  not found
    4  authentication failed
    5  server unavailable
    6  timed out
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._errors import AuthError, CloudpipeError, JobFailed, NotFound, Timeout, Unavailable
from cloudpipe_sdk.cli_admin import register as register_admin_commands
from cloudpipe_sdk.cli_jobs import register as register_job_commands
from cloudpipe_sdk.cli_schedules import register as register_schedule_commands

EXIT_CODES: dict[type[CloudpipeError], int] = {
    JobFailed: 1,
    NotFound: 3,
    AuthError: 4,
    Unavailable: 5,
    Timeout: 6,
}
# Commands that need no connection (and must work while the config is broken).
_OFFLINE = {"config", "server", "pki"}
# Commands of other installed packages: `server` (cloudpipe_server) and `pki`
# (cloudpipe_auth) register here, so the SDK never imports them and they exist only
# where the server or the auth service is installed.
PLUGIN_GROUP = "cloudpipe.commands"


def _plugins() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=PLUGIN_GROUP)}


def _exit_code(exc: CloudpipeError) -> int:
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 2


class _Group(click.Group):
    """The main group: our commands, the plugins' (loaded only when listed or run),
    and Cloudpipe errors turned into exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        entry = _plugins().get(cmd_name) if command is None else None
        if entry is not None:
            loaded = entry.load()
            if isinstance(loaded, click.Command):
                return loaded
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CloudpipeError as exc:
            click.echo(f"cloudpipe: {exc}", err=True)
            ctx.exit(_exit_code(exc))


@click.group(cls=_Group)
@click.option("--address", help="host:port of the server (or CLOUDPIPE_ADDRESS, or the profile's)")
@click.option("--api-key", help="or CLOUDPIPE_API_KEY, or the profile's")
@click.option("--profile", help="profile of ~/.config/cloudpipe/config.toml (or CLOUDPIPE_PROFILE)")
@click.version_option(package_name="cloudpipe", prog_name="cloudpipe")
@click.pass_context
def main(ctx: click.Context, address: str | None, api_key: str | None, profile: str | None) -> None:
    """Run shell commands and Python functions in containers."""
    ctx.meta["cloudpipe.connection"] = {"address": address, "api_key": api_key, "profile": profile}
    if ctx.invoked_subcommand in _OFFLINE:
        return
    try:
        ctx.obj = ctx.with_resource(Client(address, api_key=api_key, profile=profile))
    except CloudpipeError as exc:
        click.echo(f"cloudpipe: {exc}", err=True)
        ctx.exit(_exit_code(exc))


register_job_commands(main)
register_admin_commands(main)
register_schedule_commands(main)

if __name__ == "__main__":
    sys.exit(main())

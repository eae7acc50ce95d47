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
from typing import Any

import click

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._errors import AuthError, CloudpipeError, JobFailed, NotFound, Timeout, Unavailable
from cloudpipe_sdk.cli_admin import register as register_admin_commands
from cloudpipe_sdk.cli_jobs import CommandError
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
        raise CommandError(str(exc)) from None
    click.echo(pki_module.describe(result))


register_job_commands(main)
register_admin_commands(main)
register_schedule_commands(main)

if __name__ == "__main__":
    sys.exit(main())

"""`cloudpipe`: the command line for Cloudpipe (reference: docs/cli.md).

Exit codes, stable for scripts:

    0  success
    1  a job failed, was killed or stalled (or the function raised)
    2  bad usage, or the server refused the request (invalid, incompatible)
    3  not found
    4  authentication failed
    5  server unavailable
    6  timed out

except `submit --wait`, which exits with the job's own code (a shell command's exit
code; see cli_live.exit_code).
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._config import ClientConfig
from cloudpipe_sdk._errors import AuthError, CloudpipeError, ImageBuildFailed, JobFailed, NotFound, Timeout, Unavailable
from cloudpipe_sdk.cli_admin import register as register_admin_commands
from cloudpipe_sdk.cli_apply import register as register_apply_command
from cloudpipe_sdk.cli_images import register as register_image_commands
from cloudpipe_sdk.cli_jobs import register as register_job_commands
from cloudpipe_sdk.cli_quotas import register as register_quota_commands
from cloudpipe_sdk.cli_saved import register as register_saved_commands
from cloudpipe_sdk.cli_schedules import register as register_schedule_commands
from cloudpipe_sdk.cli_secrets import register as register_secret_commands
from cloudpipe_sdk.cli_volumes import register as register_volume_commands

EXIT_CODES: dict[type[CloudpipeError], int] = {
    JobFailed: 1,
    ImageBuildFailed: 1,
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


_KEY_SOURCES = {"argument": "given with --api-key", "env CLOUDPIPE_API_KEY": "from CLOUDPIPE_API_KEY"}


def explain(exc: CloudpipeError, config: ClientConfig | None) -> str:
    """What to print for an error: the SDK's message, except for credentials the server
    refused, which are said plainly with where the key came from and what to do."""
    if not isinstance(exc, AuthError) or exc.code != "UNAUTHENTICATED" or config is None:
        return str(exc)
    if not config.api_key:
        return (
            f"no API key: the server at {config.address} needs one. Pass --api-key, set "
            "CLOUDPIPE_API_KEY, or save it with `cloudpipe config set api_key KEY`"
        )
    where = config.source.get("api_key", "")
    came_from = _KEY_SOURCES.get(where, f"from the {where}" if where.startswith("profile") else where)
    account = f" for account {config.account!r}" if config.account else ""
    return (
        f"wrong API key: the server at {config.address} did not accept the key {came_from}{account}. "
        "Check it (`cloudpipe config` shows each setting and where it comes from)"
    )


def _show_sdk_notices() -> None:
    """The SDK's notices (e.g. "cannot reach HOST:PORT, retrying...") on stderr."""
    sdk = logging.getLogger("cloudpipe_sdk")
    if not any(getattr(h, "cloudpipe_cli", False) for h in sdk.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("cloudpipe: %(message)s"))
        handler.cloudpipe_cli = True  # type: ignore[attr-defined]
        sdk.addHandler(handler)
        sdk.setLevel(logging.WARNING)


def _fail(ctx: click.Context, exc: CloudpipeError) -> None:
    config = ctx.obj.config if isinstance(ctx.obj, Client) else None
    click.echo(f"cloudpipe: {explain(exc, config)}", err=True)
    ctx.exit(_exit_code(exc))


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
            _fail(ctx, exc)


@click.group(cls=_Group)
@click.option("--address", help="host:port of the server (or CLOUDPIPE_ADDRESS, or the profile's)")
@click.option("--api-key", help="or CLOUDPIPE_API_KEY, or the profile's")
@click.option("--profile", help="profile of ~/.config/cloudpipe/config.toml (or CLOUDPIPE_PROFILE)")
@click.version_option(package_name="cloudpipe", prog_name="cloudpipe")
@click.pass_context
def main(ctx: click.Context, address: str | None, api_key: str | None, profile: str | None) -> None:
    """Run shell commands and Python functions in containers. Every command of the
    SDK takes --json (machine-readable output) and --help (options and examples).

    \b
    cloudpipe submit --wait 'echo hello'
    cloudpipe ls --status error --since 1h
    cloudpipe --profile prod schedules ls

    \b
    Shell completion (bash; zsh and fish alike with zsh_source, fish_source):
    eval "$(_CLOUDPIPE_COMPLETE=bash_source cloudpipe)"
    """
    ctx.meta["cloudpipe.connection"] = {"address": address, "api_key": api_key, "profile": profile}
    if ctx.invoked_subcommand in _OFFLINE:
        return
    _show_sdk_notices()
    try:
        ctx.obj = ctx.with_resource(Client(address, api_key=api_key, profile=profile))
    except CloudpipeError as exc:
        _fail(ctx, exc)


register_job_commands(main)
register_admin_commands(main)
register_saved_commands(main)
register_schedule_commands(main)
register_apply_command(main)
register_image_commands(main)
register_volume_commands(main)
register_secret_commands(main)
register_quota_commands(main)

if __name__ == "__main__":
    sys.exit(main(prog_name="cloudpipe"))

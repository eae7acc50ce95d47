"""`cloudpipe pki ...`: the auth package's commands of the `cloudpipe` CLI.

The SDK imports nothing of this package: it finds `pki` through the `cloudpipe.commands`
entry-point group (pyproject.toml), so the command exists only where this package is
installed. `python -m cloudpipe_auth.pki init DIR` does the same without click.
"""

from __future__ import annotations

import click


class _UsageError(click.ClickException):
    """Bad input found after parsing: exit code 2, like the rest of the CLI."""

    exit_code = 2


@click.group("pki")
def pki() -> None:
    """Certificates for TLS and the auth service's mutual TLS."""


@pki.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--host", "hosts", multiple=True, help="extra DNS name or IP for the server certificates (repeatable)")
@click.option("--force", is_flag=True, help="replace existing files, starting a new CA")
def pki_init(directory: str, hosts: tuple[str, ...], force: bool) -> None:
    """Create an internal CA and the server/client certificates in DIRECTORY."""
    from cloudpipe_auth import pki as pki_module  # cryptography is slow to import: only when used

    try:
        result = pki_module.init(directory, hosts=hosts, force=force)
    except (OSError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    click.echo(pki_module.describe(result))

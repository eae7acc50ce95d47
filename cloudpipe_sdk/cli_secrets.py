"""`cloudpipe secret set|ls|rm`: your account's secrets (jobs get them with `cloudpipe
submit --secret NAME` or `--secret NAME:/path`).

A value is read from stdin, from `--from-file`, or typed at a hidden prompt on a
terminal, never from an argument: every user of the machine can read a process's
arguments (`ps`), and shells keep them in their history. Nothing here prints a value,
not even in an error: a mistyped name is not echoed either, since it may be the value.

Registered on the main group by `register(main)` in cli.py; errors and exit codes are
the main group's (a missing secret exits 3).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._secret_calls import NAME
from cloudpipe_sdk._types import Secret
from cloudpipe_sdk.cli_output import emit, json_option, when
from cloudpipe_sdk.cli_submit import CommandError

_NEVER_AN_ARGUMENT = (
    "the value is read from stdin, from --from-file or from a hidden prompt, never from the command line "
    "(other users can see a command's arguments in `ps`, and your shell keeps them in its history)"
)


def _secret_dict(secret: Secret) -> dict[str, Any]:
    return {
        "name": secret.name,
        "created_at": secret.created_at.isoformat() if secret.created_at else None,
        "updated_at": secret.updated_at.isoformat() if secret.updated_at else None,
    }


def _read_value(name: str, from_file: Path | None) -> bytes:
    """The value, from the file, the hidden prompt (stdin a terminal) or stdin, as bytes."""
    if from_file is not None:
        try:
            value = from_file.read_bytes()
        except OSError as exc:
            raise CommandError(f"--from-file: cannot read {str(from_file)!r}: {exc.strerror or exc}") from None
        where = f"the file {str(from_file)!r}"
    elif sys.stdin.isatty():
        typed: str = click.prompt(f"Value of {name} (not shown)", hide_input=True, err=True)
        return typed.encode()
    else:
        value = sys.stdin.buffer.read()
        where = "stdin"
        if value.endswith(b"\n"):
            click.echo(
                "cloudpipe: note: the value ends with a newline, which is kept (printf %s or echo -n leave it out)",
                err=True,
            )
    if not value:
        raise CommandError(f"{where} is empty: a secret needs a value ({_NEVER_AN_ARGUMENT})")
    return value


@click.group("secret")
def secret_group() -> None:
    """Secrets: named values of your account that jobs get as environment variables or
    files; only names and times ever come back (docs/cli.md, "Secrets").

    \b
    cloudpipe secret set API_TOKEN < token.txt
    cloudpipe submit --secret API_TOKEN --wait 'curl -H "Authorization: Bearer $API_TOKEN" ...'
    cloudpipe secret ls
    """


@secret_group.command("set", context_settings={"allow_extra_args": True})
@click.argument("name")
@click.option(
    "--from-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="PATH",
    help="read the value from this file (its bytes as they are)",
)
@json_option
@click.pass_context
def secret_set(ctx: click.Context, name: str, from_file: Path | None, as_json: bool) -> None:
    """Create the secret NAME or replace its value. The value is read from stdin (its
    bytes as they are, a final newline included), from --from-file PATH, or, when stdin
    is a terminal, typed at a prompt that does not show it. Never give the value as an
    argument: other users of the machine can read a command's arguments (`ps`), and
    your shell keeps them in its history. NAME: letters, digits and '_', not starting
    with a digit, at most 128 (a job's environment variable is named like its secret);
    values are at most 64 KiB.

    \b
    cloudpipe secret set API_TOKEN
    cloudpipe secret set API_TOKEN < token.txt
    cloudpipe secret set TLS_KEY --from-file server.key
    echo -n "$TOKEN" | cloudpipe secret set API_TOKEN --json
    """
    if ctx.args:  # not echoed: it is probably the value
        raise CommandError(f"secret set takes NAME only: {_NEVER_AN_ARGUMENT}. Nothing was set")
    if not NAME.fullmatch(name):  # not echoed either: it may be the value
        raise CommandError(
            "NAME is not a secret name (letters, digits and '_', not starting with a digit; at most 128). "
            f"It is the name only: {_NEVER_AN_ARGUMENT}"
        )
    client: Client = ctx.obj
    secret = client.secrets.set(name, _read_value(name, from_file))
    if as_json:
        emit(_secret_dict(secret))
    else:
        click.echo(f"set secret {secret.name}")


@secret_group.command("ls")
@json_option
@click.pass_obj
def secret_ls(client: Client, as_json: bool) -> None:
    """List your secrets: names, when each was made and last set (never values).

    \b
    cloudpipe secret ls
    cloudpipe secret ls --json
    """
    secrets = client.secrets.list()
    if as_json:
        emit([_secret_dict(secret) for secret in secrets])
        return
    table = Table("NAME", "CREATED", "UPDATED")
    for secret in secrets:
        table.add_row(secret.name, when(secret.created_at), when(secret.updated_at))
    Console(width=200).print(table)


@secret_group.command("rm")
@click.argument("name")
@json_option
@click.pass_obj
def secret_rm(client: Client, name: str, as_json: bool) -> None:
    """Delete the secret NAME (exit 3 if you have none of that name). A job submitted
    with it that has not started yet fails when it would start.

    \b
    cloudpipe secret rm API_TOKEN
    cloudpipe secret rm API_TOKEN --json
    """
    client.secrets.delete(name)
    if as_json:
        emit({"deleted": name})
    else:
        click.echo(f"deleted secret {name}")


def register(main: click.Group) -> None:
    main.add_command(secret_group)

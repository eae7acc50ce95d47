"""`cloudpipe image build|ls|rm`: your account's images.

Registered on the main group by `register(main)` in cli.py; errors and exit codes are
the main group's (a failed build exits 1).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._image import Image
from cloudpipe_sdk._image_file import load_image
from cloudpipe_sdk._types import BuildLog, BuiltImage
from cloudpipe_sdk.cli_output import emit, json_option


def _pair(value: str, option: str) -> tuple[str, str]:
    local, sep, remote = value.rpartition(":")
    if not sep or not local or not remote:
        raise click.BadParameter(f"{value!r}: use LOCAL:REMOTE", param_hint=option)
    return local, remote


def _image_dict(image: BuiltImage) -> dict[str, Any]:
    return {
        "reference": image.reference,
        "summary": image.summary,
        "size_bytes": image.size_bytes,
        "created_at": image.created_at.isoformat() if image.created_at else None,
        "cached": image.cached,
    }


@click.group("image")
def image_group() -> None:
    """Images built by the server from a spec (docs/sdk.md, "Images")."""


@image_group.command("build")
@click.argument("spec_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--from", "base", help="start from this image instead of the Python 3 runner")
@click.option("--apt", multiple=True, help="a Debian package (repeatable)")
@click.option("--pip", multiple=True, help="a Python requirement, e.g. six==1.17.0 (repeatable)")
@click.option("--env", multiple=True, help="NAME=VALUE (repeatable)")
@click.option("--run", multiple=True, help="a shell command run during the build (repeatable)")
@click.option("--file", "files", multiple=True, help="LOCAL:REMOTE, a local file copied in (repeatable)")
@click.option("--dir", "dirs", multiple=True, help="LOCAL:REMOTE, a local directory copied in (repeatable)")
@click.option("--python-source", multiple=True, help="a local module or package made importable (repeatable)")
@click.option("--quiet", "-q", is_flag=True, help="print only the reference")
@json_option
@click.pass_obj
def image_build(
    client: Client,
    spec_file: Path | None,
    base: str | None,
    apt: tuple[str, ...],
    pip: tuple[str, ...],
    env: tuple[str, ...],
    run: tuple[str, ...],
    files: tuple[str, ...],
    dirs: tuple[str, ...],
    python_source: tuple[str, ...],
    quiet: bool,
    as_json: bool,
) -> None:
    """Build an image from SPEC_FILE (TOML: base and steps) and/or the options (applied
    after the file's steps, in the order listed here); print its reference.

    \b
    cloudpipe image build --apt figlet --pip six==1.17.0
    cloudpipe image build image.toml --python-source mypkg -q
    """
    image = load_image(spec_file) if spec_file else Image.runner()
    if base:
        image = Image(base, image.steps)
    if apt:
        image = image.apt_install(*apt)
    if pip:
        image = image.pip_install(*pip)
    if env:
        pairs = [item.partition("=") for item in env]
        if any(not sep for _, sep, _ in pairs):
            raise click.BadParameter("use NAME=VALUE", param_hint="--env")
        image = image.env({name: value for name, _, value in pairs})
    if run:
        image = image.run_commands(*run)
    for value in files:
        image = image.add_local_file(*_pair(value, "--file"))
    for value in dirs:
        image = image.add_local_dir(*_pair(value, "--dir"))
    if python_source:
        sys.path.insert(0, ".")  # the modules of the folder the command runs in
        image = image.add_local_python_source(*python_source)

    def show(line: BuildLog) -> None:
        if not quiet:
            click.echo(f"[{line.step}/{line.steps}] {line.line}", err=True)

    built = client.images.build(image, on_log=show)
    if as_json:
        emit(_image_dict(built))
    else:
        if not quiet:
            click.echo("cached: built before" if built.cached else "built", err=True)
        click.echo(built.reference)


@image_group.command("ls")
@json_option
@click.pass_obj
def image_ls(client: Client, as_json: bool) -> None:
    """List your images, newest first.

    \b
    cloudpipe image ls
    cloudpipe image ls --json
    """
    rows = [_image_dict(image) for image in client.images.list()]
    if as_json:
        emit(rows)
        return
    table = Table("REFERENCE", "SIZE", "CREATED", "SPEC")
    for row in rows:
        table.add_row(row["reference"], f"{row['size_bytes'] >> 20} MiB", row["created_at"] or "-", row["summary"][:60])
    Console(width=200).print(table)


@image_group.command("rm")
@click.argument("references", nargs=-1, required=True)
@json_option
@click.pass_obj
def image_rm(client: Client, references: tuple[str, ...], as_json: bool) -> None:
    """Remove images of yours (jobs running on them are not affected).

    \b
    cloudpipe image rm cloudpipe/image:3f2a...
    """
    for reference in references:
        client.images.delete(reference)
        if not as_json:
            click.echo(reference)
    if as_json:
        emit({"deleted": list(references)})


def register(main: click.Group) -> None:
    main.add_command(image_group)

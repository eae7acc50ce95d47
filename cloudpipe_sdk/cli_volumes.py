"""`cloudpipe volume create|show|ls|put|get|rm|delete`: your account's volumes and the
files in them (jobs mount them with `cloudpipe submit --volume NAME:/path[:ro]`).

Registered on the main group by `register(main)` in cli.py; errors and exit codes are
the main group's (a missing volume or file exits 3). Transfers draw a progress bar on
stderr when it is a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._progress import wanted
from cloudpipe_sdk._types import Volume, VolumeFile
from cloudpipe_sdk._volume_calls import Progress
from cloudpipe_sdk._volumes import open_download
from cloudpipe_sdk.cli_output import emit, json_option, when


def _volume_dict(volume: Volume) -> dict[str, Any]:
    return {
        "name": volume.name,
        "created_at": volume.created_at.isoformat() if volume.created_at else None,
        "size_bytes": volume.size_bytes,
        "mount_path": volume.mount_path,
        "description": volume.description,
    }


def _file_dict(entry: VolumeFile) -> dict[str, Any]:
    return {
        "path": entry.path,
        "directory": entry.directory,
        "size_bytes": entry.size_bytes,
        "mode": oct(entry.mode & 0o7777),
        "modified_at": entry.modified_at.isoformat() if entry.modified_at else None,
    }


def _size(value: int) -> str:
    """Bytes for people: 812 B, 3.4 MiB."""
    if value < 1024:
        return f"{value} B"
    scaled = float(value)
    for unit in ("KiB", "MiB", "GiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GiB":
            break
    return f"{scaled:.1f} {unit}"


@contextmanager
def _transfer(description: str) -> Iterator[Progress | None]:
    """A progress callback drawing a bar on stderr when it is a terminal, else None."""
    if not wanted(None, sys.stderr):
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


@click.group("volume")
def volume_group() -> None:
    """Volumes: named storage of your account that jobs mount (docs/cli.md, "Volumes").

    \b
    cloudpipe volume create mydata
    cloudpipe volume put mydata input.csv
    cloudpipe submit --volume mydata:/data --wait 'wc -l /data/input.csv'
    """


@volume_group.command("create")
@click.argument("name")
@click.option("--mount-path", default="", help="where multyvac jobs naming the volume mount it (absolute)")
@click.option("--description", default="", help="free text, at most 1 KiB")
@json_option
@click.pass_obj
def volume_create(client: Client, name: str, mount_path: str, description: str, as_json: bool) -> None:
    """Make an empty volume NAME (lower-case letters, digits, '_', '.', '-'; at most 63,
    starting with a letter or digit).

    \b
    cloudpipe volume create mydata
    cloudpipe volume create deps --mount-path /pymodules --description "my modules"
    cloudpipe volume create mydata --json
    """
    volume = client.volumes.create(name, mount_path=mount_path, description=description)
    if as_json:
        emit(_volume_dict(volume))
    else:
        click.echo(volume.name)


@volume_group.command("show")
@click.argument("name")
@json_option
@click.pass_obj
def volume_show(client: Client, name: str, as_json: bool) -> None:
    """Show volume NAME with the bytes it holds (counted now).

    \b
    cloudpipe volume show mydata
    cloudpipe volume show mydata --json
    """
    volume = client.volumes.get(name)
    if as_json:
        emit(_volume_dict(volume))
        return
    click.echo(f"name:     {volume.name}\ncreated:  {when(volume.created_at)}\nsize:     {_size(volume.size_bytes)}")
    if volume.mount_path:
        click.echo(f"mounts:   {volume.mount_path} (for multyvac jobs naming it)")
    if volume.description:
        click.echo(f"about:    {volume.description}")


@volume_group.command("ls")
@click.argument("name", required=False)
@click.argument("path", required=False, default="")
@json_option
@click.pass_obj
def volume_ls(client: Client, name: str | None, path: str, as_json: bool) -> None:
    """List your volumes; with NAME, the files at the top of that volume, or in its
    directory PATH.

    \b
    cloudpipe volume ls
    cloudpipe volume ls mydata
    cloudpipe volume ls mydata results/2024 --json
    """
    if name is None:
        volumes = client.volumes.list()
        if as_json:
            emit([_volume_dict(volume) for volume in volumes])
            return
        table = Table("NAME", "CREATED")
        for volume in volumes:
            table.add_row(volume.name, when(volume.created_at))
        Console(width=200).print(table)
        return
    entries = client.volumes.ls(name, path)
    if as_json:
        emit([_file_dict(entry) for entry in entries])
        return
    table = Table("MODE", "SIZE", "MODIFIED", "PATH")
    for entry in entries:
        size = "-" if entry.directory else _size(entry.size_bytes)
        shown = entry.path + ("/" if entry.directory else "")
        table.add_row(f"{entry.mode & 0o7777:04o}", size, when(entry.modified_at), shown)
    Console(width=200).print(table)


@volume_group.command("put")
@click.argument("name")
@click.argument("local", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("remote", required=False)
@json_option
@click.pass_obj
def volume_put(client: Client, name: str, local: Path, remote: str | None, as_json: bool) -> None:
    """Upload the file LOCAL into volume NAME, as REMOTE (default: its name, at the
    top; parent directories are made, a file there is replaced), with its permission
    bits. It appears whole or not at all.

    \b
    cloudpipe volume put mydata input.csv
    cloudpipe volume put mydata ./model.bin models/v1.bin --json
    """
    with _transfer(f"{local.name} -> {name}") as progress:
        entry = client.volumes.put(name, local, remote, progress=progress)
    if as_json:
        emit(_file_dict(entry))
    else:
        click.echo(f"{name}:{entry.path} ({_size(entry.size_bytes)})")


@volume_group.command("get")
@click.argument("name")
@click.argument("remote")
@click.argument("local", required=False, default=".")
@json_option
@click.pass_obj
def volume_get(client: Client, name: str, remote: str, local: str, as_json: bool) -> None:
    """Download REMOTE from volume NAME to LOCAL (default: the current directory, under
    the file's name; '-': to stdout). A download cut short leaves no half file.

    \b
    cloudpipe volume get mydata results/out.csv
    cloudpipe volume get mydata results/out.csv - | head
    cloudpipe volume get mydata results/out.csv /tmp/out.csv --json
    """
    if local == "-":
        if as_json:
            raise click.UsageError("--json describes a downloaded file; with LOCAL '-' the file's bytes are the output")
        _to_stdout(client, name, remote)
        return
    with _transfer(f"{name}:{remote}") as progress:
        written = client.volumes.get_file(name, remote, local, progress=progress)
    if as_json:
        emit({"volume": name, "path": remote, "local": str(written), "size_bytes": written.stat().st_size})
    else:
        click.echo(str(written))


def _to_stdout(client: Client, name: str, remote: str) -> None:
    _, chunks = open_download(client.transport, name, remote)
    out = sys.stdout.buffer
    try:
        with closing(chunks):
            for chunk in chunks:
                out.write(chunk)
            out.flush()
    except BrokenPipeError:  # the reader stopped (`| head`): the download is cancelled
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


@volume_group.command("mkdir")
@click.argument("name")
@click.argument("path")
@json_option
@click.pass_obj
def volume_mkdir(client: Client, name: str, path: str, as_json: bool) -> None:
    """Make the directory PATH in volume NAME, with any missing parents.

    \b
    cloudpipe volume mkdir mydata results/2026
    cloudpipe volume mkdir mydata results --json
    """
    entry = client.volumes.mkdir(name, path)
    if as_json:
        emit(_file_dict(entry))
    else:
        click.echo(f"made {name}:{entry.path}/")


@volume_group.command("rm")
@click.argument("name")
@click.argument("path")
@json_option
@click.pass_obj
def volume_rm(client: Client, name: str, path: str, as_json: bool) -> None:
    """Remove the file PATH from volume NAME, or the directory PATH with everything
    under it.

    \b
    cloudpipe volume rm mydata results/old.csv
    cloudpipe volume rm mydata results --json
    """
    client.volumes.rm(name, path)
    if as_json:
        emit({"volume": name, "removed": path})
    else:
        click.echo(f"removed {name}:{path}")


@volume_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="do not ask (asked only when stdin is a terminal)")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0,
    metavar="SECONDS",
    help="keep trying this long while a job uses the volume",
)
@json_option
@click.pass_obj
def volume_delete(client: Client, name: str, yes: bool, wait: float, as_json: bool) -> None:
    """Delete volume NAME with everything in it. Refused (exit 2) while a job uses it,
    also for a moment after the job ended; --wait keeps trying.

    \b
    cloudpipe volume delete mydata
    cloudpipe volume delete mydata --yes --wait 60 --json
    """
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete volume {name} and every file in it?", abort=True)
    client.volumes.delete(name, wait=wait)
    if as_json:
        emit({"deleted": name})
    else:
        click.echo(f"deleted volume {name}")


def register(main: click.Group) -> None:
    main.add_command(volume_group)

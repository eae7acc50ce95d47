"""`cloudpipe server`: the server's command of the `cloudpipe` CLI.

The SDK imports nothing of the server: it finds this command through the
`cloudpipe.commands` entry-point group (pyproject.toml), so `cloudpipe server` exists
only where the server is installed. It is the same program as `cloudpipe-server`.
"""

from __future__ import annotations

import sys

import click


@click.command(
    "server",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def server(args: tuple[str, ...]) -> None:
    """Run the Cloudpipe server (same as `cloudpipe-server`; `cloudpipe server --help`
    lists its options)."""
    from cloudpipe_server.__main__ import main as server_main  # the whole server: only when run

    sys.exit(server_main(list(args)))

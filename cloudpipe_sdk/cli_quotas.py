"""`cloudpipe admin quota [ACCOUNT] [--max-queued N] [--max-running N] [--clear]` and
`cloudpipe admin quotas`: per-account quotas (client.quotas). Reading one's own needs no
admin; setting, clearing, listing and reading another account's are the admin
account's (others exit 4, as for any refused credential).

Registered on the main group by `register(main)` in cli.py; errors and exit codes are
the main group's (an unknown account exits 3).
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._quotas import AccountQuotas, QuotaLimits
from cloudpipe_sdk.cli_output import emit, json_option, when
from cloudpipe_sdk.cli_submit import CommandError

DEFAULT = "default"


class _Limit(click.ParamType):  # type: ignore[type-arg]
    """N (0: no limit) or `default` (the server's default again)."""

    name = "N|default"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == DEFAULT:
            return value
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a whole number or {DEFAULT!r}", param, ctx)
        if number < 0:
            self.fail(f"{number} is negative (0 is no limit; {DEFAULT!r} the server's default)", param, ctx)
        return number


def _shown(limit: int | None) -> str:
    return DEFAULT if limit is None else "no limit" if limit == 0 else str(limit)


def _in_force(limit: int) -> str:
    return "no limit" if limit == 0 else str(limit)


def _limits_dict(limits: QuotaLimits) -> dict[str, Any]:
    return {"max_queued": limits.max_queued, "max_running": limits.max_running}


def _quotas_dict(quotas: AccountQuotas) -> dict[str, Any]:
    return {
        "account": quotas.account,
        "override": _limits_dict(quotas.override),
        "max_queued": quotas.max_queued,
        "max_running": quotas.max_running,
        "updated_at": quotas.updated_at.isoformat() if quotas.updated_at else None,
    }


@click.group("admin")
def admin_group() -> None:
    """The admin account's commands: per-account quotas (docs/cli.md, "Quotas").

    \b
    cloudpipe admin quota alice@example.com --max-queued 50 --max-running 4
    cloudpipe admin quotas
    """


@admin_group.command("quota")
@click.argument("account", required=False, default="")
@click.option("--max-queued", type=_Limit(), default=None, help="waiting + queued jobs: N, 0 (no limit) or default")
@click.option("--max-running", type=_Limit(), default=None, help="running jobs: N, 0 (no limit) or default")
@click.option("--clear", is_flag=True, help="remove the account's overrides: the server's defaults again")
@json_option
@click.pass_obj
def quota(client: Client, account: str, max_queued: Any, max_running: Any, clear: bool, as_json: bool) -> None:
    """Show ACCOUNT's quotas (default: yours), or change them (the admin only). A limit
    not given keeps the account's current override; `default` makes it follow the
    server's default (CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT, _RUNNING_PER_ACCOUNT) again; 0 is
    no limit. A submit past the queued limit is refused (ResourceExhausted); jobs past
    the running limit wait in the queue.

    \b
    cloudpipe admin quota
    cloudpipe admin quota alice@example.com --max-queued 50 --max-running 4
    cloudpipe admin quota alice@example.com --max-running default
    cloudpipe admin quota alice@example.com --clear --json
    """
    changing = max_queued is not None or max_running is not None
    if clear and changing:
        raise CommandError("--clear removes both overrides: give it alone, or --max-queued/--max-running alone")
    if (clear or changing) and not account:
        raise CommandError("name the ACCOUNT whose quotas to change")
    if clear:
        shown = client.quotas.clear(account)
    elif changing:
        options: dict[str, int | None] = {}
        if max_queued is not None:
            options["max_queued"] = None if max_queued == DEFAULT else max_queued
        if max_running is not None:
            options["max_running"] = None if max_running == DEFAULT else max_running
        shown = client.quotas.set(account, **options)
    else:
        shown = client.quotas.get(account)
    if as_json:
        emit(_quotas_dict(shown))
        return
    click.echo(f"account: {shown.account}")
    click.echo(f"max queued: {_in_force(shown.max_queued)}  (override: {_shown(shown.override.max_queued)})")
    click.echo(f"max running: {_in_force(shown.max_running)}  (override: {_shown(shown.override.max_running)})")
    if shown.updated_at:
        click.echo(f"set: {when(shown.updated_at)}")


@admin_group.command("quotas")
@json_option
@click.pass_obj
def quotas(client: Client, as_json: bool) -> None:
    """The server's default quotas and every account with an override (the admin only).

    \b
    cloudpipe admin quotas
    cloudpipe admin quotas --json
    """
    defaults, accounts = client.quotas.list()
    if as_json:
        emit({"defaults": _limits_dict(defaults), "accounts": [_quotas_dict(q) for q in accounts]})
        return
    queued, running = _in_force(defaults.max_queued or 0), _in_force(defaults.max_running or 0)
    click.echo(f"defaults: max queued {queued}, max running {running}")
    table = Table("ACCOUNT", "MAX QUEUED", "MAX RUNNING", "SET")
    for row in accounts:
        table.add_row(
            row.account,
            f"{_in_force(row.max_queued)} ({_shown(row.override.max_queued)})",
            f"{_in_force(row.max_running)} ({_shown(row.override.max_running)})",
            when(row.updated_at),
        )
    Console(width=200).print(table)


def register(main: click.Group) -> None:
    main.add_command(admin_group)

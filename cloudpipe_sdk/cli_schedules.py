"""`cloudpipe schedules ...` (`saved ...` is in cli_saved.py, `apply FILE` in
cli_apply.py).

Registered on the main group by `register(main)` in cli.py; errors and exit codes are
the main group's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cloudpipe_sdk._client import Client
from cloudpipe_sdk._compat import UTC
from cloudpipe_sdk._types import CATCHUPS, OVERLAPS, Fire, Schedule
from cloudpipe_sdk.cli_output import emit, json_option, key_values, outcome_dict, when


def _fire_text(fire: Fire | None) -> str:
    if fire is None:
        return "-"
    text = fire.outcome + (f" ({fire.job_status})" if fire.job_status else "")
    return text + (f" job {fire.job_id}" if fire.job_id else "")


def _target(schedule: Schedule) -> str:
    spec = schedule.spec
    if spec.saved_job is not None:
        return spec.saved_job + (f"@v{spec.saved_job_version}" if spec.saved_job_version else "")
    return f"$ {spec.job.cmd[:40] if spec.job is not None else ''}"


# -- schedules ------------------------------------------------------------------------------


@click.group("schedules")
def schedules_group() -> None:
    """Schedules: saved jobs or commands run on cron times.

    \b
    cloudpipe schedules create tick '*/5 * * * *' --cmd 'date'
    cloudpipe schedules ls
    """


@schedules_group.command("ls")
@json_option
@click.pass_obj
def schedules_ls(client: Client, as_json: bool) -> None:
    """List schedules with their next fire and last outcome.

    \b
    cloudpipe schedules ls
    cloudpipe schedules ls --json
    """
    rows: list[dict[str, Any]] = [
        {
            "name": s.name,
            "cron": s.spec.cron,
            "timezone": s.spec.timezone,
            "runs": _target(s),
            "paused": s.paused,
            "next_fire": when(s.next_fire_at),
            "last_fire": when(s.last_fire.scheduled_at) if s.last_fire else "-",
            "last_outcome": _fire_text(s.last_fire),
        }
        for s in client.schedules.list()
    ]
    if as_json:
        emit(rows)
        return
    table = Table("NAME", "CRON", "TZ", "RUNS", "NEXT FIRE", "LAST OUTCOME")
    for row in rows:
        next_fire = "paused" if row["paused"] else row["next_fire"]
        table.add_row(row["name"], row["cron"], row["timezone"], row["runs"], next_fire, row["last_outcome"])
    Console().print(table)


def _schedule_dict(s: Schedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "id": s.id,
        "cron": s.spec.cron,
        "timezone": s.spec.timezone,
        "runs": _target(s),
        "overlap": s.spec.overlap,
        "catchup": s.spec.catchup,
        "paused": s.paused,
        "next_fire": when(s.next_fire_at),
        "last_fire": _fire_text(s.last_fire),
        "description": s.spec.description,
    }


def _moment(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: expected an ISO date-time like 2026-01-01T00:00:00Z", param_hint=flag
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@schedules_group.command("create")
@click.argument("name")
@click.argument("cron")
@click.option("--saved-job", help="run this saved job at each fire")
@click.option("--version", type=int, default=0, help="of the saved job (default: its latest at each fire)")
@click.option("--cmd", help="or run this shell command (an inline job, with the job options below)")
@click.option("--timezone", default="UTC", show_default=True, help="an IANA zone the cron times are read in")
@click.option("--jitter", type=float, default=0.0, help="fire up to this many seconds late, at random")
@click.option("--overlap", type=click.Choice(OVERLAPS), default="skip", show_default=True)
@click.option("--catchup", type=click.Choice(CATCHUPS), default="run_once", show_default=True)
@click.option("--catchup-window", type=float, default=3600.0, show_default=True, help="seconds")
@click.option("--start-at", help="no fire before this ISO date-time")
@click.option("--end-at", help="no fire after this ISO date-time")
@click.option("--description", default="")
@click.option("--image", help="inline job: Docker image")
@click.option("--cpus", type=float, help="inline job: CPU cores")
@click.option("--memory", help="inline job: memory limit, like 512M")
@click.option("--timeout", type=float, help="inline job: longest run time in seconds")
@click.option("--env", "env", multiple=True, help="inline job: NAME=VALUE (repeatable)")
@click.option("--network", is_flag=True, default=None, help="inline job: give it a network")
@json_option
@click.pass_obj
def schedules_create(
    client: Client,
    /,
    name: str,
    cron: str,
    saved_job: str | None,
    cmd: str | None,
    env: tuple[str, ...],
    start_at: str | None,
    end_at: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Create a schedule NAME firing on CRON (five fields, or @daily, @hourly...) that
    runs a saved job (--saved-job) or a shell command (--cmd, with job options).

    \b
    cloudpipe schedules create nightly '30 2 * * *' --saved-job report --timezone Europe/Berlin
    cloudpipe schedules create tick '*/5 * * * *' --cmd 'date' --image alpine:3 --timeout 60
    """
    if (saved_job is None) == (cmd is None):
        raise click.UsageError("give one of --saved-job and --cmd")
    given = {key: value for key, value in options.items() if value is not None}
    if env:
        given["env"] = key_values(env)
    schedule = client.schedules.create(
        name,
        cron,
        saved_job=saved_job,
        cmd=cmd,
        start_at=_moment(start_at, "--start-at"),
        end_at=_moment(end_at, "--end-at"),
        **given,
    )
    if as_json:
        emit(_schedule_dict(schedule))
        return
    click.echo(f"schedule {schedule.name}: next fire {when(schedule.next_fire_at)}")


@schedules_group.command("show")
@click.argument("name")
@json_option
@click.pass_obj
def schedules_show(client: Client, name: str, as_json: bool) -> None:
    """Show one schedule.

    \b
    cloudpipe schedules show nightly
    cloudpipe schedules show --json nightly
    """
    s = client.schedules.get(name)
    if as_json:
        emit(_schedule_dict(s))
        return
    overlap = s.spec.overlap
    for key, value in (
        ("name", s.name),
        ("id", s.id),
        ("cron", s.spec.cron),
        ("timezone", s.spec.timezone),
        ("runs", _target(s)),
        ("overlap", overlap),
        ("paused", s.paused),
        ("next fire", when(s.next_fire_at)),
        ("last fire", _fire_text(s.last_fire)),
        ("description", s.spec.description),
    ):
        click.echo(f"{key}: {value}")


@schedules_group.command("pause")
@click.argument("name")
@json_option
@click.pass_obj
def schedules_pause(client: Client, name: str, as_json: bool) -> None:
    """Stop firing until resumed.

    \b
    cloudpipe schedules pause nightly
    """
    schedule = client.schedules.pause(name)
    if as_json:
        emit(_schedule_dict(schedule))
        return
    click.echo(f"schedule {name}: paused")


@schedules_group.command("resume")
@click.argument("name")
@json_option
@click.pass_obj
def schedules_resume(client: Client, name: str, as_json: bool) -> None:
    """Fire again (fires that fell in the pause are not caught up).

    \b
    cloudpipe schedules resume nightly
    """
    schedule = client.schedules.resume(name)
    if as_json:
        emit(_schedule_dict(schedule))
        return
    click.echo(f"schedule {name}: next fire {when(schedule.next_fire_at)}")


@schedules_group.command("trigger")
@click.argument("name")
@click.option("--wait/--no-wait", default=False, help="wait for the job")
@json_option
@click.pass_obj
def schedules_trigger(client: Client, name: str, wait: bool, as_json: bool) -> None:
    """Fire now; print the job id (with --wait, then its status).

    \b
    cloudpipe schedules trigger nightly
    cloudpipe schedules trigger --wait --json nightly
    """
    fire = client.schedules.trigger(name)
    if fire.job_id is None:
        raise click.ClickException(f"schedule {name}: the fire {fire.outcome}: {fire.reason}")
    if as_json:
        job = client.job(fire.job_id)
        if wait:
            job.wait()
        emit(outcome_dict(job.snapshot) if wait else {"job_id": fire.job_id, "outcome": fire.outcome})
        return
    click.echo(fire.job_id)
    if wait:
        status = client.job(fire.job_id).wait()
        click.echo(f"job {fire.job_id}: {status.value}")


@schedules_group.command("preview")
@click.argument("name")
@click.option("-n", "--count", default=10, show_default=True)
@json_option
@click.pass_obj
def schedules_preview(client: Client, name: str, count: int, as_json: bool) -> None:
    """Print the next fire times (UTC, with jitter).

    \b
    cloudpipe schedules preview nightly -n 3
    """
    times = client.schedules.preview(name, count=count)
    if as_json:
        emit([when(moment) for moment in times])
        return
    for moment in times:
        click.echo(when(moment))


@schedules_group.command("history")
@click.argument("name")
@click.option("--limit", default=20, show_default=True)
@json_option
@click.pass_obj
def schedules_history(client: Client, name: str, limit: int, as_json: bool) -> None:
    """Fires, newest first, with their jobs and outcomes.

    \b
    cloudpipe schedules history nightly --limit 5
    """
    fires = client.schedules.history(name, limit=limit)
    rows: list[dict[str, Any]] = [
        {
            "scheduled_at": when(f.scheduled_at),
            "outcome": f.outcome,
            "job_id": f.job_id,
            "job_status": f.job_status,
            "reason": f.reason,
            "manual": f.manual,
        }
        for f in fires
    ]
    if as_json:
        emit(rows)
        return
    table = Table("SCHEDULED", "OUTCOME", "JOB", "STATUS", "REASON")
    for row in rows:
        scheduled = row["scheduled_at"] + (" (manual)" if row["manual"] else "")
        job = str(row["job_id"] or "-")
        table.add_row(scheduled, row["outcome"], job, row["job_status"] or "-", row["reason"])
    Console().print(table)


@schedules_group.command("rm")
@click.argument("name")
@json_option
@click.pass_obj
def schedules_rm(client: Client, name: str, as_json: bool) -> None:
    """Delete a schedule and its history (its jobs stay).

    \b
    cloudpipe schedules rm nightly
    """
    client.schedules.delete(name)
    if as_json:
        emit({"deleted": name})
        return
    click.echo(f"deleted schedule {name}")


def register(main: click.Group) -> None:
    """Add the commands of this module to the `cloudpipe` group."""
    main.add_command(schedules_group)

"""`cloudpipe apply FILE`: declare saved jobs and schedules in TOML, converge the server
to them. Only what the file names is touched; applying the same file again changes
nothing.

    [saved_jobs.report]
    cmd = "python3 /app/report.py"
    image = "python:3.12"
    env = { LEVEL = "full" }
    timeout = 600                     # seconds
    description = "the nightly report"

    [schedules.nightly-report]
    cron = "30 2 * * *"
    timezone = "Europe/Berlin"
    saved_job = "report"              # or cmd = "..." (with image/env/timeout) for an inline job
    jitter = 30                       # seconds
    overlap = "skip"                  # skip | allow | buffer_one | cancel_previous
    catchup = "run_once"              # skip | run_once | run_all (with catchup_window, seconds)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudpipe_sdk import _schedule_calls as calls
from cloudpipe_sdk._compat import UTC, tomllib
from cloudpipe_sdk._errors import InvalidRequest, NotFound
from cloudpipe_sdk._options import JobOptions
from cloudpipe_sdk._types import JobSpec, ScheduleSpec

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import Transport

JOB_KEYS = {"cmd", "image", "env", "timeout", "cpus", "memory", "network", "stdin"}
SAVED_KEYS = JOB_KEYS | {"description"}
SCHEDULE_KEYS = JOB_KEYS | {
    "cron",
    "timezone",
    "saved_job",
    "version",
    "jitter",
    "start_at",
    "end_at",
    "overlap",
    "catchup",
    "catchup_window",
    "description",
}


@dataclass
class Change:
    """What applying does to one object: create, update (with the fields that differ)
    or nothing."""

    kind: str
    name: str
    action: str
    details: list[str] = field(default_factory=list)
    run: Callable[[], object] = lambda: None


def _job_fields(spec: JobSpec) -> dict[str, Any]:
    return {
        "cmd": spec.cmd,
        "image": spec.image,
        "env": dict(spec.env),
        "timeout": spec.timeout,
        "cpus": spec.cpus,
        "memory": spec.memory,
        "network": spec.network,
        "stdin": spec.stdin,
        "function": spec.serializer,
    }


def _schedule_fields(spec: ScheduleSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "cron": spec.cron,
        "timezone": spec.timezone or "UTC",
        "saved_job": spec.saved_job,
        "version": spec.saved_job_version,
        "jitter": spec.jitter,
        "start_at": spec.start_at,
        "end_at": spec.end_at,
        "overlap": spec.overlap,
        "catchup": spec.catchup,
        "catchup_window": spec.catchup_window or 3600.0,
        "description": spec.description,
    }
    if spec.job is not None:
        fields.update({f"job.{k}": v for k, v in _job_fields(spec.job).items()})
    return fields


def _check(table: object, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise InvalidRequest(f"{where}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InvalidRequest(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if not isinstance(table.get("cmd", ""), str) or not isinstance(table.get("env", {}), dict):
        raise InvalidRequest(f"{where}: cmd must be a string and env a table")
    return table


def _job_spec(table: dict[str, Any], where: str) -> JobSpec:
    """The job a table declares, built as `Client.shell` builds its jobs (so `memory =
    "512M"` means the same here as in `JobOptions`)."""
    if not table.get("cmd"):
        raise InvalidRequest(f"{where}.cmd: a command is required")
    try:
        options = JobOptions(
            image=table.get("image"),
            env={str(k): str(v) for k, v in table.get("env", {}).items()},
            timeout=table.get("timeout"),
            cpus=table.get("cpus"),
            memory=table.get("memory"),
            network=bool(table.get("network", False)),
        )
        return options.shell_spec(table["cmd"], stdin=table.get("stdin"))
    except (InvalidRequest, TypeError, ValueError) as exc:
        raise InvalidRequest(f"{where}: {exc}") from None


def _moment(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidRequest(f"{where}: expected a TOML date-time such as 2026-01-01T00:00:00Z")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _schedule_spec(name: str, table: dict[str, Any], where: str) -> ScheduleSpec:
    if not table.get("cron"):
        raise InvalidRequest(f"{where}.cron: a cron expression is required")
    if ("saved_job" in table) == ("cmd" in table):
        raise InvalidRequest(f"{where}: give exactly one of saved_job and cmd")
    try:
        return calls.schedule_spec(
            name,
            table["cron"],
            saved_job=table.get("saved_job"),
            version=int(table.get("version", 0)),
            job=_job_spec(table, where) if "cmd" in table else None,
            timezone=table.get("timezone", "UTC"),
            jitter=float(table.get("jitter", 0)),
            start_at=_moment(table.get("start_at"), f"{where}.start_at"),
            end_at=_moment(table.get("end_at"), f"{where}.end_at"),
            overlap=table.get("overlap", "skip"),
            catchup=table.get("catchup", "run_once"),
            catchup_window=float(table.get("catchup_window", 3600)),
            description=table.get("description", ""),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{where}: {exc}") from None


def _diff(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    return [
        f"{key}: {current.get(key)!r} -> {desired.get(key)!r}"
        for key in sorted(set(current) | set(desired))
        if current.get(key) != desired.get(key)
    ]


def load(path: str | Path) -> dict[str, Any]:
    """The parsed file. Raises InvalidRequest naming what is wrong."""
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"{path}: {exc}") from None
    unknown = sorted(set(document) - {"saved_jobs", "schedules"})
    if unknown:
        raise InvalidRequest(
            f"{path}: unknown section(s) {', '.join(unknown)}; use [saved_jobs.NAME], [schedules.NAME]"
        )
    return document


def plan(transport: Transport, document: dict[str, Any]) -> list[Change]:
    """Compare the file with the server: saved jobs first (schedules may run them)."""
    changes: list[Change] = []
    for name, raw in document.get("saved_jobs", {}).items():
        where = f"saved_jobs.{name}"
        table = _check(raw, where, SAVED_KEYS)
        spec, description = _job_spec(table, where), str(table.get("description", ""))
        desired = {**_job_fields(spec), "description": description}
        try:
            current = transport.call(calls.get_saved_job(name))
        except NotFound:
            create = partial(transport.call, calls.create_saved_job(name, spec, description))
            changes.append(Change("saved job", name, "create", _diff({}, desired), create))
            continue
        diff = _diff({**_job_fields(current.spec), "description": current.description}, desired)
        update = partial(transport.call, calls.update_saved_job(name, spec, description))
        changes.append(Change("saved job", name, "update" if diff else "unchanged", diff, update if diff else _noop))
    for name, raw in document.get("schedules", {}).items():
        where = f"schedules.{name}"
        wanted = _schedule_spec(name, _check(raw, where, SCHEDULE_KEYS), where)
        desired = _schedule_fields(wanted)
        try:
            existing = transport.call(calls.get_schedule(name))
        except NotFound:
            make = partial(transport.call, calls.create_schedule(wanted))
            changes.append(Change("schedule", name, "create", _diff({}, desired), make))
            continue
        diff = _diff(_schedule_fields(existing.spec), desired)
        change = partial(transport.call, calls.update_schedule(name, wanted))
        changes.append(Change("schedule", name, "update" if diff else "unchanged", diff, change if diff else _noop))
    return changes


def _noop() -> None:
    return None

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

    [images.report-tools]             # an Image (docs/sdk.md, "Images"): base and steps
    steps = [{ apt_install = ["figlet"] }, { pip_install = ["six==1.17.0"] }]

A job's `image` naming an `[images.NAME]` table of the file runs in that image, which
is built (or found built) when the file is planned, also in a dry run: its reference
depends on the build. Local paths of its steps are relative to the file.

Nothing is written until the whole file has been checked, by the server's own rules:
every saved job and schedule is sent to the server's validation (ScheduleService.Preview
with the definition: cron, time zone, image names, limits, the saved job a schedule
names, at the version it names), a schedule of a saved job declared in the same file
is checked against that declaration, and every problem is reported at once. A file
with any error changes nothing (`InvalidRequest` listing them). The write that follows
is one call (ScheduleService.Apply) and one transaction on the server: every changed
entry is stored, or none. Each entry carries what the plan read (a saved job's latest
version, a schedule's `updated_at`, or that it did not exist); when another client
created, changed or deleted one of them between the plan and the write, or the server
fails, nothing is written (`ApplyFailed`, naming the entry) and applying the file again
plans anew against what is there now.

About 400 lines, a tenth of them this description: one file's whole path (read, check
by the server, plan, write) reads in one place; `[images.NAME]` tables are parsed by
_image_file and the command's output is cli_apply's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudpipe_sdk import _schedule_calls as calls
from cloudpipe_sdk._compat import UTC, tomllib
from cloudpipe_sdk._errors import CloudpipeError, InvalidRequest, NotFound
from cloudpipe_sdk._options import JobOptions
from cloudpipe_sdk._types import JobSpec, ScheduleSpec

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import Transport

JOB_KEYS = {
    "cmd",
    "image",
    "env",
    "timeout",
    "cpus",
    "memory",
    "network",
    "stdin",
    "inputs",
    "outputs",
    "storage_secret",
}
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


_CODE_SUFFIX = re.compile(r"\s*\([A-Z_]+\)$")


@dataclass
class Change:
    """What applying does to one object: create (with what the file says), update (with
    the fields that change) or nothing."""

    kind: str
    name: str
    action: str
    details: list[str] = field(default_factory=list)
    # what the write sends (None: unchanged): the entry with what the plan read
    entry: calls.SavedJobEntry | calls.ScheduleEntry | None = None


class ApplyFailed(CloudpipeError):
    """The write of a validated file failed and wrote nothing: an entry changed on the
    server since the plan read it (`error.code` FAILED_PRECONDITION; applying again
    plans anew), or the server failed. `error` is the server's error."""

    def __init__(self, error: CloudpipeError) -> None:
        cause = _CODE_SUFFIX.sub("", str(error))
        if not cause.endswith("nothing was written"):
            cause += "; nothing was applied"
        if getattr(error, "code", "") == "FAILED_PRECONDITION":
            advice = "Run apply again: it compares the file with the server anew"
        else:
            advice = "Fix the cause and apply again"
        super().__init__(f"{cause}. {advice}")
        self.error = error
        self.code = getattr(error, "code", "")


# What a key of the file is when the file does not give it (shown as "(default)").
_DEFAULTS: dict[str, Any] = {
    "image": "",
    "env": {},
    "timeout": None,
    "cpus": 0.0,
    "memory": 0,
    "network": False,
    "stdin": b"",
    "kind": "shell",
    "description": "",
    "timezone": "UTC",
    "saved_job": None,
    "cmd": None,
    "version": 0,
    "jitter": 0.0,
    "start_at": None,
    "end_at": None,
    "overlap": "skip",
    "catchup": "run_once",
    "catchup_window": 3600.0,
}


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
        "inputs": dict(spec.inputs),
        "outputs": dict(spec.outputs),
        "storage_secret": spec.storage_secret,
        "kind": f"python function ({spec.serializer})" if spec.serializer else "shell",
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
        fields.update(_job_fields(spec.job))
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
            inputs=_strings(table.get("inputs", {}), f"{where}.inputs"),
            outputs=_strings(table.get("outputs", {}), f"{where}.outputs"),
            storage_secret=table.get("storage_secret"),
        )
        return options.shell_spec(table["cmd"], stdin=table.get("stdin"))
    except (InvalidRequest, TypeError, ValueError) as exc:
        raise InvalidRequest(f"{where}: {exc}") from None


def _strings(table: object, where: str) -> dict[str, str]:
    """A TOML table of path = "URL" (`inputs`, `outputs`)."""
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise InvalidRequest(f'{where}: expected a table of "/path" = "URL"')
    return {str(k): v for k, v in table.items()}


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
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc}") from None


def _shown(value: Any) -> str:
    return repr(value)


def _created(desired: dict[str, Any], written: set[str]) -> list[str]:
    """A new object: the keys the file gives, with their values (nothing defaulted)."""
    return [f"{key} = {_shown(desired[key])}" for key in sorted(desired) if key in written or key == "cmd"]


def _changed(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    """An existing object: only the keys whose value changes; a default shown as such."""

    def show(key: str, value: Any) -> str:
        return "(default)" if key in _DEFAULTS and value == _DEFAULTS[key] else _shown(value)

    return [
        f"{key}: {show(key, current.get(key, _DEFAULTS.get(key)))} -> {show(key, desired.get(key, _DEFAULTS.get(key)))}"
        for key in sorted(set(current) | set(desired))
        if current.get(key, _DEFAULTS.get(key)) != desired.get(key, _DEFAULTS.get(key))
    ]


def _server_says(where: str, exc: CloudpipeError) -> str:
    """A server validation error named after the file's entry: `spec.job.image: ...`
    of entry `saved_jobs.x` reads `saved_jobs.x.image: ...`."""
    message = _CODE_SUFFIX.sub("", str(exc))
    for prefix in ("spec.job.", "spec."):
        if message.startswith(prefix):
            return f"{where}.{message[len(prefix) :]}"
    return f"{where}: {message}"


def load(path: str | Path) -> dict[str, Any]:
    """The parsed file. Raises InvalidRequest naming what is wrong."""
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"{path}: {exc}") from None
    unknown = sorted(set(document) - {"saved_jobs", "schedules", "images"})
    if unknown:
        raise InvalidRequest(
            f"{path}: unknown section(s) {', '.join(unknown)}; use [saved_jobs.NAME], [schedules.NAME], [images.NAME]"
        )
    for section in ("saved_jobs", "schedules", "images"):
        if not isinstance(document.get(section, {}), dict):
            raise InvalidRequest(f"{path}: {section} must be a table of tables ([{section}.NAME])")
    return document


def _existing(kind: str, name: str, diff: list[str], entry: calls.SavedJobEntry | calls.ScheduleEntry) -> Change:
    return Change(kind, name, "update", diff, entry) if diff else Change(kind, name, "unchanged")


class _Planner:
    """One comparison of a file with the server, collecting every problem."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.problems: list[str] = []
        self.changes: list[Change] = []
        self.saved_versions: dict[str, tuple[JobSpec, int]] = {}  # declared here: spec, version after apply

    def validate(self, where: str, spec: ScheduleSpec) -> None:
        try:
            self._transport.call(calls.validate_schedule(spec))
        except (InvalidRequest, NotFound) as exc:
            self.problems.append(_server_says(where, exc))

    def saved_job(self, name: str, raw: object) -> None:
        where = f"saved_jobs.{name}"
        try:
            table = _check(raw, where, SAVED_KEYS)
            spec, description = _job_spec(table, where), str(table.get("description", ""))
        except InvalidRequest as exc:
            self.problems.append(str(exc))
            return
        # the server's own checks of a job template (name, image, limits...), storing nothing
        self.validate(where, calls.schedule_spec(name, "@yearly", job=spec))
        desired = {**_job_fields(spec), "description": description}
        try:
            current = self._transport.call(calls.get_saved_job(name))
        except NotFound:
            self.saved_versions[name] = (spec, 1)
            create = calls.SavedJobEntry(name, spec, description, 0)
            self.changes.append(Change("saved job", name, "create", _created(desired, set(table)), create))
            return
        diff = _changed({**_job_fields(current.spec), "description": current.description}, desired)
        self.saved_versions[name] = (spec, current.version + (1 if diff else 0))
        update = calls.SavedJobEntry(name, spec, description, current.version)
        self.changes.append(_existing("saved job", name, diff, update))

    def schedule(self, name: str, raw: object) -> None:
        where = f"schedules.{name}"
        try:
            table = _check(raw, where, SCHEDULE_KEYS)
            wanted = _schedule_spec(name, table, where)
        except InvalidRequest as exc:
            self.problems.append(str(exc))
            return
        declared = self.saved_versions.get(wanted.saved_job or "")
        if declared is not None:  # declared in this file: check against that, not the server's copy
            spec, version = declared
            if wanted.saved_job_version > version:
                self.problems.append(
                    f"{where}.version: saved job {wanted.saved_job!r} will be at version {version} after this "
                    f"apply, not {wanted.saved_job_version}"
                )
            self.validate(where, replace(wanted, saved_job=None, saved_job_version=0, job=spec))
        else:
            self.validate(where, wanted)
        desired = _schedule_fields(wanted)
        try:
            existing = self._transport.call(calls.get_schedule(name))
        except NotFound:
            make = calls.ScheduleEntry(wanted, None)
            self.changes.append(Change("schedule", name, "create", _created(desired, set(table)), make))
            return
        diff = _changed(_schedule_fields(existing.spec), desired)
        change = calls.ScheduleEntry(wanted, existing.updated_at)
        self.changes.append(_existing("schedule", name, diff, change))


def _images(transport: Transport, document: dict[str, Any], folder: Path) -> dict[str, str]:
    """The references of the file's [images.NAME] tables, built (or found built)."""
    from cloudpipe_sdk._image_file import image_from_table
    from cloudpipe_sdk._images import Images

    references = {}
    for name, table in document.get("images", {}).items():
        if not isinstance(table, dict):
            raise InvalidRequest(f"images.{name}: expected a table")
        image = image_from_table(table, folder, f"images.{name}")
        references[name] = Images(transport).build(image).reference
    return references


def _named_image(table: Any, images: dict[str, str]) -> Any:
    """The table with an `image` naming one of the file's images replaced by its reference."""
    if isinstance(table, dict) and isinstance(table.get("image"), str) and table["image"] in images:
        return {**table, "image": images[table["image"]]}
    return table


def plan(transport: Transport, document: dict[str, Any], folder: Path = Path()) -> list[Change]:
    """Compare the file with the server and validate all of it there: saved jobs first
    (schedules may run them). Raises InvalidRequest listing every problem when there is
    any; nothing is written here. `folder`: where the file is (local paths of its images
    are relative to it); the file's images are built first, their references named."""
    images = _images(transport, document, folder)
    document = {
        **document,
        "saved_jobs": {k: _named_image(v, images) for k, v in document.get("saved_jobs", {}).items()},
        "schedules": {k: _named_image(v, images) for k, v in document.get("schedules", {}).items()},
    }
    planner = _Planner(transport)
    for name, raw in document.get("saved_jobs", {}).items():
        planner.saved_job(name, raw)
    for name, raw in document.get("schedules", {}).items():
        planner.schedule(name, raw)
    if planner.problems:
        count = len(planner.problems)
        listed = "\n".join(f"  {problem}" for problem in planner.problems)
        raise InvalidRequest(f"{count} problem{'s' if count > 1 else ''} in the file; nothing was changed:\n{listed}")
    return planner.changes


def run(transport: Transport, changes: list[Change]) -> list[Change]:
    """Make the changes in one call, one transaction on the server (saved jobs before the
    schedules that run them); the ones made. ApplyFailed when the write fails: then
    none is made."""
    made = [change for change in changes if change.entry is not None]
    if not made:
        return []
    saved = [c.entry for c in made if isinstance(c.entry, calls.SavedJobEntry)]
    schedules = [c.entry for c in made if isinstance(c.entry, calls.ScheduleEntry)]
    try:
        transport.call(calls.apply(saved, schedules))
    except CloudpipeError as exc:
        raise ApplyFailed(exc) from None
    return made

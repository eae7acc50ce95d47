"""`cloudpipe apply`: the whole file is checked by the server's rules before anything is
written (a dry run finds every error a real apply would meet, and exits non-zero), a
file with one bad entry changes nothing, and diffs show only what the file gives and
what changes. Against a real server (the fake executor: no job runs here)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from cloudpipe_sdk import Client, NotFound
from cloudpipe_sdk._apply import ApplyFailed, plan, run
from tests.cli.support import cloudpipe
from tests.support import ServerProcess


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_a_dry_run_reports_every_error_the_server_would(server: ServerProcess, client: Client, tmp_path: Path) -> None:
    good, names = unique("good"), [unique(p) for p in ("cron", "zone", "ref", "image", "env")]
    path = tmp_path / "bad.toml"
    path.write_text(
        f"""
[saved_jobs.{good}]
cmd = "echo fine"

[saved_jobs.{names[3]}]
cmd = "true"
image = "Not A Valid Image"

[schedules.{names[0]}]
cron = "61 * * * *"
cmd = "true"

[schedules.{names[1]}]
cron = "@daily"
timezone = "Mars/Olympus_Mons"
cmd = "true"

[schedules.{names[2]}]
cron = "@daily"
saved_job = "no-such-saved-job"

[schedules.{names[4]}]
cron = "@daily"
cmd = "true"
env = {{ "1BAD" = "x" }}
"""
    )
    for args in (("--dry-run",), ()):
        result = cloudpipe(server, "apply", str(path), *args)
        assert result.exit_code == 2, result.stdout + result.stderr
        assert "5 problems in the file; nothing was changed" in result.stderr
        assert f"schedules.{names[0]}.cron: '61 * * * *' is not a valid cron expression" in result.stderr
        assert f"schedules.{names[1]}.timezone: unknown time zone 'Mars/Olympus_Mons'" in result.stderr
        assert f"schedules.{names[2]}" in result.stderr and "no-such-saved-job" in result.stderr
        assert f"saved_jobs.{names[3]}.image: 'Not A Valid Image' is not a valid Docker image" in result.stderr
        assert f"schedules.{names[4]}.env: '1BAD'" in result.stderr
        assert "Traceback" not in result.stderr
    with pytest.raises(NotFound):  # all or nothing: the good entry was not applied either
        client.saved_jobs.get(good)
    assert not {s.name for s in client.schedules.list()} & set(names)


def test_a_schedule_may_run_a_saved_job_the_same_file_declares(
    server: ServerProcess, client: Client, tmp_path: Path
) -> None:
    report, nightly = unique("report"), unique("nightly")
    path = tmp_path / "ok.toml"
    path.write_text(
        f'[saved_jobs.{report}]\ncmd = "echo report"\n\n'
        f'[schedules.{nightly}]\ncron = "30 2 * * *"\ntimezone = "Europe/Berlin"\nsaved_job = "{report}"\n'
    )
    dry = cloudpipe(server, "apply", "--dry-run", str(path))
    assert dry.exit_code == 0, dry.stderr
    assert "dry run: the file is valid; nothing changed" in dry.stdout
    with pytest.raises(NotFound):
        client.saved_jobs.get(report)
    assert cloudpipe(server, "apply", str(path)).exit_code == 0
    assert client.schedules.get(nightly).spec.saved_job == report
    path.write_text(path.read_text().replace(f'saved_job = "{report}"', f'saved_job = "{report}"\nversion = 3'))
    too_new = cloudpipe(server, "apply", "--dry-run", str(path))
    assert too_new.exit_code == 2 and "will be at version 1 after this apply, not 3" in too_new.stderr


def test_diffs_show_what_the_file_gives_and_what_changes(server: ServerProcess, client: Client, tmp_path: Path) -> None:
    name = unique("diffed")
    path = tmp_path / "diff.toml"
    path.write_text(f'[saved_jobs.{name}]\ncmd = "echo one"\nimage = "alpine:3"\n')
    created = cloudpipe(server, "apply", str(path))
    assert created.exit_code == 0, created.stderr
    details = [line.strip() for line in created.stdout.splitlines() if line.startswith("    ")]
    assert details == ["cmd = 'echo one'", "image = 'alpine:3'"]  # no defaults: env, cpus, network...
    path.write_text(f'[saved_jobs.{name}]\ncmd = "echo two"\n')
    changed = cloudpipe(server, "apply", "--dry-run", str(path))
    details = [line.strip() for line in changed.stdout.splitlines() if line.startswith("    ")]
    assert details == ["cmd: 'echo one' -> 'echo two'", "image: 'alpine:3' -> (default)"]
    as_json = json.loads(cloudpipe(server, "apply", "--dry-run", "--json", str(path)).stdout)
    assert as_json["counts"] == {"create": 0, "update": 1, "unchanged": 0}
    assert client.saved_jobs.get(name).spec.cmd == "echo one"  # dry runs changed nothing


def test_an_entry_changed_between_plan_and_write_writes_nothing_and_says_so(
    server: ServerProcess, client: Client
) -> None:
    first, raced, nightly = unique("first"), unique("raced"), unique("nightly")
    document = {
        "saved_jobs": {first: {"cmd": "true"}, raced: {"cmd": "true"}},
        "schedules": {nightly: {"cron": "@daily", "saved_job": first}},
    }
    changes = plan(client.transport, document)
    client.saved_jobs.save_shell(raced, "echo someone else")  # another client, between plan and write
    with pytest.raises(ApplyFailed, match=f"saved_jobs.{raced}: changed since it was read") as failed:
        run(client.transport, changes)
    assert failed.value.code == "FAILED_PRECONDITION" and str(failed.value).endswith(
        "nothing was written. Run apply again: it compares the file with the server anew"
    )
    with pytest.raises(NotFound):  # nothing written: not the entry before it, nor the schedule after it
        client.saved_jobs.get(first)
    with pytest.raises(NotFound):
        client.schedules.get(nightly)
    assert client.saved_jobs.get(raced).spec.cmd == "echo someone else"
    again = plan(client.transport, document)  # apply again: planned anew, it converges
    assert [c.action for c in again] == ["create", "update", "create"]
    assert [c.name for c in run(client.transport, again)] == [first, raced, nightly]
    assert client.saved_jobs.get(raced).version == 2


def test_a_schedule_changed_between_plan_and_write_writes_nothing(
    server: ServerProcess, client: Client, tmp_path: Path
) -> None:
    job, nightly = unique("job"), unique("nightly")
    path = tmp_path / "file.toml"
    path.write_text(f'[schedules.{nightly}]\ncron = "@daily"\ncmd = "echo one"\n')
    assert cloudpipe(server, "apply", str(path)).exit_code == 0
    document = {
        "saved_jobs": {job: {"cmd": "true"}},
        "schedules": {nightly: {"cron": "@hourly", "cmd": "echo one"}},
    }
    changes = plan(client.transport, document)
    client.schedules.pause(nightly)  # another client changes the schedule between plan and write
    with pytest.raises(ApplyFailed, match=f"schedules.{nightly}: changed since it was read"):
        run(client.transport, changes)
    assert client.schedules.get(nightly).spec.cron == "@daily"
    with pytest.raises(NotFound):
        client.saved_jobs.get(job)


def test_an_apply_and_a_re_apply_through_the_command(server: ServerProcess, client: Client, tmp_path: Path) -> None:
    report, nightly = unique("report"), unique("nightly")
    path = tmp_path / "file.toml"
    path.write_text(
        f'[saved_jobs.{report}]\ncmd = "echo report"\n\n'
        f'[schedules.{nightly}]\ncron = "30 2 * * *"\nsaved_job = "{report}"\n'
    )
    first = cloudpipe(server, "apply", str(path))
    assert first.exit_code == 0, first.stderr
    assert "2 to create, 0 to update, 0 unchanged" in first.stdout and first.stdout.endswith("applied\n")
    again = cloudpipe(server, "apply", str(path))
    assert again.exit_code == 0, again.stderr
    assert "0 to create, 0 to update, 2 unchanged" in again.stdout
    path.write_text(path.read_text().replace("echo report", "echo report v2"))
    changed = cloudpipe(server, "apply", str(path))
    assert changed.exit_code == 0 and "0 to create, 1 to update, 1 unchanged" in changed.stdout
    assert client.saved_jobs.get(report).version == 2
    assert client.schedules.get(nightly).spec.saved_job == report

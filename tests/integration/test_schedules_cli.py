"""`cloudpipe apply`, `cloudpipe saved` and `cloudpipe schedules` against a real server,
each run as the command a user types (a process of its own)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cloudpipe_sdk import Client
from tests.support import ROOT, ServerProcess


@dataclass
class Result:
    exit_code: int
    output: str  # stdout and stderr


def cloudpipe(server: ServerProcess, *args: str) -> Result:
    command = [sys.executable, "-m", "cloudpipe_sdk.cli", "--address", server.address, "--api-key", server.api_key]
    done = subprocess.run([*command, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)
    return Result(done.returncode, done.stdout + done.stderr)


def declare(path: Path, report: str, nightly: str, *, cron: str = "30 2 * * *", cmd: str = "echo report") -> Path:
    path.write_text(
        f"""
[saved_jobs.{report}]
cmd = "{cmd}"
env = {{ LEVEL = "full" }}
timeout = 600
description = "the nightly report"

[schedules.{nightly}]
cron = "{cron}"
timezone = "Europe/Berlin"
saved_job = "{report}"
jitter = 30
catchup = "run_all"
catchup_window = 7200
start_at = 2026-01-01T00:00:00Z
"""
    )
    return path


def test_apply_shows_the_diff_first_and_is_idempotent(server: ServerProcess, client: Client, tmp_path: Path) -> None:
    report, nightly = f"report-{secrets.token_hex(3)}", f"nightly-{secrets.token_hex(3)}"
    path = declare(tmp_path / "cloudpipe.toml", report, nightly)
    dry = cloudpipe(server, "apply", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"+ saved job {report}: create" in dry.output and f"+ schedule {nightly}: create" in dry.output
    assert "cron = '30 2 * * *'" in dry.output and "dry run: the file is valid; nothing changed" in dry.output
    assert report not in [s.name for s in client.saved_jobs.list()]

    applied = cloudpipe(server, "apply", str(path))
    assert applied.exit_code == 0 and "2 to create, 0 to update, 0 unchanged" in applied.output, applied.output
    schedule = client.schedules.get(nightly)
    assert schedule.spec.timezone == "Europe/Berlin" and schedule.spec.saved_job == report
    assert client.saved_jobs.get(report).spec.env["LEVEL"] == "full"

    again = cloudpipe(server, "apply", str(path))
    assert "0 to create, 0 to update, 2 unchanged" in again.output, again.output
    assert client.saved_jobs.get(report).version == 1

    declare(path, report, nightly, cron="45 3 * * *", cmd="echo report v2")
    changed = cloudpipe(server, "apply", str(path))
    assert f"~ schedule {nightly}: update" in changed.output and "cron: '30 2 * * *' -> '45 3 * * *'" in changed.output
    assert f"~ saved job {report}: update" in changed.output
    assert client.saved_jobs.get(report).version == 2 and client.schedules.get(nightly).spec.cron == "45 3 * * *"


def test_apply_refuses_a_bad_file_before_changing_anything(server: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[schedules.x]\ncron = "@daily"\nsaved_job = "a"\ncmd = "b"\n')
    result = cloudpipe(server, "apply", str(path))
    assert result.exit_code == 2 and "schedules.x: give exactly one of saved_job and cmd" in result.output
    path.write_text('[schedules.y]\ncron = "@daily"\ncmd = "b"\ncolour = "red"\n')
    result = cloudpipe(server, "apply", str(path))
    assert result.exit_code == 2 and "schedules.y: unknown key(s) colour" in result.output


def test_schedules_ls_shows_next_fire_and_last_outcome(server: ServerProcess, client: Client) -> None:
    name = f"cli-{secrets.token_hex(3)}"
    saved = cloudpipe(server, "saved", "save", name, "echo hi", "--env", "A=1")
    assert saved.exit_code == 0 and f"saved job {name} v1" in saved.output
    client.schedules.create(name, "@daily", saved_job=name, timezone="America/New_York")
    listed = cloudpipe(server, "schedules", "ls", "--json")
    [row] = [r for r in json.loads(listed.output) if r["name"] == name]
    assert row["next_fire"].endswith(("04:00:00Z", "05:00:00Z")) and row["last_outcome"] == "-"

    triggered = cloudpipe(server, "schedules", "trigger", name)
    assert triggered.exit_code == 0 and triggered.output.strip().isdigit()
    [row] = [r for r in json.loads(cloudpipe(server, "schedules", "ls", "--json").output) if r["name"] == name]
    assert row["last_outcome"].startswith(("running", "finished")), row
    assert row["last_outcome"].endswith(f"job {triggered.output.strip()}"), row

    preview = cloudpipe(server, "schedules", "preview", name, "-n", "3")
    assert len(preview.output.splitlines()) == 3
    history = cloudpipe(server, "schedules", "history", name, "--json")
    assert json.loads(history.output)[0]["manual"] is True
    assert "paused" in cloudpipe(server, "schedules", "pause", name).output
    assert cloudpipe(server, "schedules", "show", name).output.count("paused: True") == 1
    missing = cloudpipe(server, "schedules", "show", "no-such-schedule")
    assert missing.exit_code == 3 and "no schedule named 'no-such-schedule'" in missing.output
    assert cloudpipe(server, "schedules", "rm", name).exit_code == 0
    assert cloudpipe(server, "saved", "rm", name).exit_code == 0


def test_apply_reads_job_options_as_job_options_do(server: ServerProcess, client: Client, tmp_path: Path) -> None:
    name = f"sized-{secrets.token_hex(3)}"
    path = tmp_path / "sized.toml"
    path.write_text(f'[saved_jobs.{name}]\ncmd = "true"\nmemory = "512M"\ncpus = 1\n')
    applied = cloudpipe(server, "apply", str(path))
    assert applied.exit_code == 0, applied.output
    assert client.saved_jobs.get(name).spec == client.options.merged(memory="512M", cpus=1).shell_spec("true")
    assert "0 to create, 0 to update, 1 unchanged" in cloudpipe(server, "apply", str(path)).output

"""`cloudpipe schedules create` (a saved job or an inline command, cron, time zone) and
the SDK's inline-command schedules built from job options, against a real server."""

from __future__ import annotations

import json
import secrets

import pytest

from cloudpipe_sdk import Client, InvalidRequest
from tests.cli.support import cloudpipe
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_create_a_schedule_of_an_inline_command_and_fire_it(server: ServerProcess, client: Client) -> None:
    name = unique("tick")
    created = cloudpipe(
        server,
        "schedules",
        "create",
        name,
        "*/5 * * * *",
        "--cmd",
        "echo tick $WHO",
        "--env",
        "WHO=cli",
        "--timeout",
        "60",
        "--memory",
        "64M",
        "--timezone",
        "Europe/Berlin",
    )
    assert created.exit_code == 0, created.stderr
    assert created.stdout.startswith(f"schedule {name}: next fire 20")
    schedule = client.schedules.get(name)
    assert schedule.spec.timezone == "Europe/Berlin" and schedule.spec.saved_job is None
    assert schedule.spec.job is not None and schedule.spec.job.memory == 64 << 20 and schedule.spec.job.timeout == 60
    fired = cloudpipe(server, "schedules", "trigger", name)
    assert fired.exit_code == 0, fired.stderr
    assert client.job(int(fired.stdout)).result(timeout=60) == b"tick cli\n"
    client.schedules.delete(name)


def test_create_a_schedule_of_a_saved_job(server: ServerProcess, client: Client) -> None:
    saved, name = unique("report"), unique("nightly")
    client.saved_jobs.save_shell(saved, "echo report")
    created = cloudpipe(server, "schedules", "create", name, "@daily", "--saved-job", saved, "--jitter", "30", "--json")
    assert created.exit_code == 0, created.stderr
    shown = json.loads(created.stdout)
    assert shown["name"] == name and shown["runs"] == saved and shown["cron"] == "@daily"
    assert client.schedules.get(name).spec.jitter == 30
    client.schedules.delete(name)
    client.saved_jobs.delete(saved)


def test_create_refuses_what_the_server_would_not_run(server: ServerProcess) -> None:
    neither = cloudpipe(server, "schedules", "create", unique("x"), "@daily")
    assert neither.exit_code == 2 and "give one of --saved-job and --cmd" in neither.stderr
    bad_cron = cloudpipe(server, "schedules", "create", unique("x"), "61 * * * *", "--cmd", "true")
    assert bad_cron.exit_code == 2 and "cron" in bad_cron.stderr.lower(), bad_cron.stderr
    zone = ("--timezone", "Mars/Base")
    bad_zone = cloudpipe(server, "schedules", "create", unique("x"), "@daily", "--cmd", "true", *zone)
    assert bad_zone.exit_code == 2 and "Mars/Base" in bad_zone.stderr, bad_zone.stderr
    missing = cloudpipe(server, "schedules", "create", unique("x"), "@daily", "--saved-job", "no-such-saved-job")
    assert missing.exit_code in (2, 3) and "no-such-saved-job" in missing.stderr, missing.stderr
    for result in (bad_cron, bad_zone, missing):
        assert "Traceback" not in result.stderr


def test_the_sdk_builds_an_inline_schedule_from_job_options(server: ServerProcess, client: Client) -> None:
    name = unique("sdk-inline")
    schedule = client.with_options(env={"FROM": "client"}).schedules.create(
        name, "0 * * * *", cmd="echo $FROM $LEVEL", env={"FROM": "client", "LEVEL": "full"}, timeout=30
    )
    job = schedule.spec.job
    assert job is not None and job.cmd == "echo $FROM $LEVEL" and dict(job.env) == {"FROM": "client", "LEVEL": "full"}
    fire = client.schedules.trigger(name)
    assert fire.job_id is not None and client.job(fire.job_id).result(timeout=60) == b"client full\n"
    updated = client.schedules.update(name, "30 * * * *", cmd="echo v2")
    assert updated.spec.job is not None and updated.spec.job.cmd == "echo v2" and updated.spec.cron == "30 * * * *"
    with pytest.raises(InvalidRequest, match="options of an inline job"):
        client.schedules.create(unique("x"), "@daily", saved_job="report", image="alpine:3")
    with pytest.raises(InvalidRequest, match="give one of"):
        client.schedules.create(unique("x"), "@daily", saved_job="report", cmd="true")
    client.schedules.delete(name)

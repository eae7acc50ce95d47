"""Schedules end to end, in real time: real server processes, a real Docker engine.

Sub-minute schedules use the six-field form with a leading seconds field."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import docker
import pytest

from cloudpipe_sdk import Client, Fire, JobStatus
from tests.support import ServerProcess, start_server

pytestmark = pytest.mark.docker

EVERY_SECOND = "* * * * * *"
EVERY_TWO_SECONDS = "*/2 * * * * *"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def oldest_first(fires: list[Fire]) -> list[Fire]:
    return sorted(fires, key=lambda f: f.scheduled_at)


def assert_no_gaps(fires: list[Fire], step: timedelta) -> None:
    """Every cron time from the first fire to the last has a fire: none was lost."""
    times = [f.scheduled_at for f in fires if not f.manual]
    assert all(b - a == step for a, b in pairwise(times)), times


def test_a_schedule_every_two_seconds_runs_jobs_from_the_saved_job(client: Client) -> None:
    name = unique("tick")
    client.saved_jobs.save_shell(name, "echo tick-$((6*7))")
    client.schedules.create(name, EVERY_TWO_SECONDS, saved_job=name, overlap="allow")
    try:
        wait_for(lambda: sum(f.job_id is not None for f in client.schedules.history(name)) >= 3, 20, "three fires")
    finally:
        client.schedules.pause(name)
    fires = oldest_first(client.schedules.history(name, limit=100))
    assert_no_gaps(fires, timedelta(seconds=2))
    jobs = [client.get(f.job_id) for f in fires if f.job_id is not None]
    for job in jobs:
        assert job.result(timeout=60) == b"tick-42\n"
        spec = job.snapshot.spec
        assert (spec.saved_job, spec.saved_job_version, spec.name) == (name, 1, name)
    assert len({job.id for job in jobs}) == len(jobs)
    [listed] = [s for s in client.schedules.list() if s.name == name]
    assert listed.paused and listed.last_fire is not None
    client.schedules.delete(name)
    client.saved_jobs.delete(name)


def test_trigger_runs_now_and_saved_job_runs_take_overrides(client: Client) -> None:
    name = unique("manual")
    client.saved_jobs.save_shell(name, "echo", env={"GREETING": "hello"})
    client.saved_jobs.save_shell(name, 'echo "$GREETING"', env={"GREETING": "hello"})  # version 2
    client.schedules.create(name, "@yearly", saved_job=name)
    fire = client.schedules.trigger(name)
    assert fire.manual and fire.job_id is not None
    assert client.get(fire.job_id).result(timeout=60) == b"hello\n"
    old = client.saved_jobs.run(name, version=1, args=["a b", "c"])
    assert old.result(timeout=60) == b"a b c\n"
    assert old.snapshot.spec.saved_job_version == 1
    new = client.saved_jobs.run(name, env={"GREETING": "bonjour"})
    assert new.result(timeout=60) == b"bonjour\n"
    client.schedules.delete(name)


def test_a_saved_python_function_runs_with_new_arguments(client: Client) -> None:
    name = unique("fn")
    saved = client.saved_jobs.save_function(name, pow, args=(2, 10))
    assert saved.is_function and saved.spec.client_python
    assert client.saved_jobs.run(name).result(timeout=60) == 1024
    assert client.saved_jobs.run(name, args=(3, 4)).result(timeout=60) == 81
    client.saved_jobs.delete(name)


@pytest.fixture
def shared_servers(tmp_path: Path, docker_engine: docker.DockerClient) -> Iterator[list[ServerProcess]]:
    """Two servers on one SQLite file, each with its own identity and data directory."""
    key = secrets.token_urlsafe(16)
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {"CLOUDPIPE_ADMIN_KEY": key, "CLOUDPIPE_STORE_URL": store, "CLOUDPIPE_SCHEDULER_INTERVAL": "0.5"}
    servers = [start_server(tmp_path / f"server{n}", env=env) for n in range(2)]
    yield servers
    for server in servers:
        assert server.stop() == 0, server.log


def test_two_servers_sharing_one_store_start_each_fire_exactly_once(shared_servers: list[ServerProcess]) -> None:
    first, second = shared_servers
    name = unique("shared")
    with first.client() as client, second.client() as other:
        client.saved_jobs.save_shell(name, "true")
        client.schedules.create(name, EVERY_SECOND, saved_job=name, overlap="allow")
        time.sleep(8)  # a bounded run: about eight fires, both servers' loops racing for each
        other.schedules.pause(name)
        fires = oldest_first(client.schedules.history(name, limit=1000))
        jobs = client.list(names=[name], limit=1000)
    assert len(fires) >= 6
    assert_no_gaps(fires, timedelta(seconds=1))
    assert all(f.job_id is not None for f in fires), [f for f in fires if f.job_id is None]
    assert sorted(f.job_id or 0 for f in fires) == sorted(job.id for job in jobs)  # one job per fire time, no more
    keys = [job.snapshot.spec.idempotency_key for job in jobs]
    assert len(set(keys)) == len(keys) == len(fires)
    fired_by = {server.address for server in shared_servers if "submitted job" in server.log}
    assert fired_by, "no server logged a fire"


def test_kill_9_during_a_window_then_each_catch_up_policy_applies_exactly(
    tmp_path: Path, docker_engine: docker.DockerClient
) -> None:
    env = {"CLOUDPIPE_SCHEDULER_MISFIRE_GRACE": "1", "CLOUDPIPE_SCHEDULER_INTERVAL": "0.5"}
    server = start_server(tmp_path / "server", env=env)
    window = 4.0
    names = {policy: unique(policy.replace("_", "-")) for policy in ("skip", "run_once", "run_all")}
    with server.client() as client:
        client.saved_jobs.save_shell("noop", "true")
        for policy, name in names.items():
            client.schedules.create(
                name, EVERY_TWO_SECONDS, saved_job="noop", overlap="allow", catchup=policy, catchup_window=window
            )
        wait_for(lambda: all(client.schedules.history(n) for n in names.values()), 10, "a first fire")
    server.stop(signal.SIGKILL)
    time.sleep(9)  # about four fires of each schedule fall into the outage
    restarted = start_server(tmp_path / "server", env=env, port=int(server.address.rsplit(":", 1)[1]))
    try:
        with restarted.client() as client:

            def settled(name: str) -> bool:
                fires = client.schedules.history(name)
                return len(fires) >= 6 and all(f.outcome != "pending" for f in fires)

            wait_for(lambda: all(settled(n) for n in names.values()), 30, "the catch-up")
            for name in names.values():
                client.schedules.pause(name)
            histories = {policy: oldest_first(client.schedules.history(n, limit=100)) for policy, n in names.items()}
    finally:
        assert restarted.stop() == 0, restarted.log
    grace = timedelta(seconds=1)
    for policy, fires in histories.items():
        assert_no_gaps(fires, timedelta(seconds=2))
        # The first pass after the restart decided every fire of the outage at one instant.
        catch_up_at = min(f.recorded_at for f in fires if f.recorded_at - f.due_at > grace)
        missed = [f for f in fires if f.recorded_at == catch_up_at and f.due_at < catch_up_at - grace]
        assert len(missed) >= 3, (policy, fires)
        ran = [f for f in missed if f.job_id is not None]
        skipped = [f for f in missed if f.outcome == "skipped"]
        assert len(ran) + len(skipped) == len(missed)
        if policy == "skip":
            assert ran == []
        elif policy == "run_once":
            assert ran == [missed[-1]]
        else:
            assert ran == [f for f in missed if f.scheduled_at >= catch_up_at - timedelta(seconds=window)]
            assert ran and skipped
        others = [f for f in fires if f not in missed]
        assert all(f.job_id is not None for f in others), (policy, others)  # on time: ran


def test_jobs_of_fires_finish_and_history_shows_their_status(client: Client) -> None:
    name = unique("status")
    client.saved_jobs.save_shell(name, "exit 3")
    client.schedules.create(name, EVERY_TWO_SECONDS, saved_job=name, overlap="skip")
    try:
        wait_for(lambda: any(f.job_status == "error" for f in client.schedules.history(name)), 30, "a finished job")
    finally:
        client.schedules.delete(name)
    assert client.list(names=[name], statuses=[JobStatus.ERROR])


def test_the_decorator_saves_and_schedules_a_function(client: Client) -> None:
    name = unique("deco")

    @client.schedules.function("@yearly", name=name, timezone="Europe/Berlin")
    def answer() -> int:
        return 6 * 7

    assert answer() == 42  # the function itself is left as it was
    schedule = client.schedules.get(name)
    assert schedule.spec.saved_job == name and schedule.spec.timezone == "Europe/Berlin"
    fire = client.schedules.trigger(name)
    assert fire.job_id is not None and client.get(fire.job_id).result(timeout=60) == 42

    @client.schedules.function("@monthly", name=name)
    def answer_again() -> int:
        return 43

    assert client.schedules.get(name).spec.cron == "@monthly" and client.saved_jobs.get(name).version == 2
    client.schedules.delete(name)
    client.saved_jobs.delete(name)

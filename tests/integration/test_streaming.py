"""Live output, input and signals through Attach, against real containers."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from cloudpipe_sdk import Client, Exit, JobStatus, Output, StatusChange
from tests.support import start_server

pytestmark = pytest.mark.docker


def wait_for_status(job: object, status: JobStatus, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while job.status is not status:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"job never reached {status}"
        time.sleep(0.05)


def test_live_output_arrives_before_the_job_ends(client: Client) -> None:
    job = client.shell("echo first; sleep 3; echo second >&2")
    seen: list[tuple[str, bytes, JobStatus]] = []
    for event in job.stream():
        if isinstance(event, Output):
            seen.append((event.stream, event.data, client.get(job.id).status))
        if isinstance(event, Exit):
            assert event.status is JobStatus.DONE and event.return_code == 0
    assert seen[0] == ("stdout", b"first\n", JobStatus.PROCESSING)
    assert seen[-1][:2] == ("stderr", b"second\n")


def test_get_of_a_running_job_shows_output_so_far(client: Client) -> None:
    job = client.shell("echo early; sleep 30")
    deadline = time.monotonic() + 30
    while "early" not in client.get(job.id).stdout:
        assert time.monotonic() < deadline, "output never became visible while running"
        time.sleep(0.1)
    assert client.get(job.id).status is JobStatus.PROCESSING
    job.kill()
    assert job.wait(30) is JobStatus.KILLED
    assert job.stdout == "early\n", "a killed job keeps its output"


def test_stdin_typed_into_cat_comes_back(client: Client) -> None:
    job = client.shell("cat", interactive=True)
    with job.attach() as session:
        session.write(b"hello\n")
        echoed = b""
        for event in session:
            if isinstance(event, Output):
                echoed += event.data
                if echoed == b"hello\n":
                    session.write("again\n")
                if echoed == b"hello\nagain\n":
                    session.close_stdin()
            if isinstance(event, Exit):
                break
    assert echoed == b"hello\nagain\n"
    assert job.result(timeout=30) == b"hello\nagain\n"


def test_resume_from_offsets_sends_only_the_rest(client: Client) -> None:
    job = client.shell("printf abcdef; printf XYZ >&2")
    job.result(timeout=60)
    events = list(job.stream(stdout_offset=3, stderr_offset=1))
    outputs = [(e.stream, e.offset, e.data) for e in events if isinstance(e, Output)]
    assert outputs == [("stdout", 3, b"def"), ("stderr", 1, b"YZ")]
    assert isinstance(events[-1], Exit) and events[-1].status is JobStatus.DONE


def test_two_watchers_see_the_same_output(client: Client) -> None:
    job = client.shell("for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done")
    results: list[bytes] = []

    def watch() -> None:
        with Client(client.address, api_key=client_key(client)) as own:
            data = b"".join(e.data for e in own.get(job.id).stream() if isinstance(e, Output))
            results.append(data)

    threads = [threading.Thread(target=watch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    expected = b"".join(b"line %d\n" % i for i in range(1, 6))
    assert results == [expected, expected]


def client_key(client: Client) -> str:
    return dict(client.transport.metadata)["authorization"].removeprefix("Bearer ")


def test_signals_reach_the_job(client: Client) -> None:
    job = client.shell(
        "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done", interactive=True
    )
    with job.attach() as session:
        for event in session:
            if isinstance(event, Output) and b"ready" in event.data:
                session.signal("TERM")
            if isinstance(event, Exit):
                assert event.status is JobStatus.DONE
                break
    assert job.stdout == "ready\ngot-term\n"


def test_kill_through_attach_ends_the_job_killed(client: Client) -> None:
    job = client.shell("echo up; sleep 60")
    statuses = []
    with job.attach() as session:
        for event in session:
            if isinstance(event, Output):
                session.signal("KILL")
            if isinstance(event, StatusChange):
                statuses.append(event.status)
            if isinstance(event, Exit):
                assert event.status is JobStatus.KILLED
                break
    assert statuses[-1] is JobStatus.KILLED


def test_stdin_to_a_finished_or_non_interactive_job_is_refused(client: Client) -> None:
    from cloudpipe_sdk import InvalidRequest

    job = client.shell("sleep 30")
    wait_for_status(job, JobStatus.PROCESSING)
    with job.attach() as session, pytest.raises(InvalidRequest, match="not submitted as interactive"):
        session.write(b"x")
        for _ in session:
            pass
    job.kill()


def test_collected_metrics_come_from_the_container(client: Client) -> None:
    # the engine samples about once a second: keep the peak alive long enough to be seen
    job = client.shell(
        "python3 -c 'import time; x = bytearray(50 << 20); s = 0\nfor i in range(3_000_000): s += i\ntime.sleep(2.5)'"
    )
    job.result(timeout=120)
    collected = job.refresh().collected
    assert collected.cputime_user_ns > 0
    assert collected.memory_max_usage_bytes >= 50 << 20


def test_a_restarted_server_readopts_its_running_job(tmp_path: Path, docker_engine: object) -> None:
    # Re-adoption is for fresh containers: a warm job's output channel dies with the
    # server (docs/warm-containers.md), so this server keeps no warm pool.
    fresh = {"CLOUDPIPE_WARM_POOL": "false"}
    server = start_server(tmp_path, env=fresh)
    port = int(server.address.rsplit(":", 1)[1])
    with server.client() as client:
        job = client.shell("echo before; sleep 4; echo after")
        deadline = time.monotonic() + 30
        while "before" not in client.get(job.id).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    server.stop(signal.SIGKILL)
    restarted = start_server(tmp_path, env={**fresh, "CLOUDPIPE_ADMIN_KEY": server.api_key}, port=port)
    try:
        with restarted.client() as client:
            again = client.get(job.id)
            assert again.result(timeout=60) == b"before\nafter\n"
            assert again.snapshot.attempts == 1, "re-adopted, not rerun"
            assert "re-adopting" in restarted.log
    finally:
        restarted.stop()

"""map, starmap, as_completed and wait against a real server and Docker."""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, FIRST_EXCEPTION

import pytest

from cloudpipe_sdk import Client, InvalidRequest, JobFailed, JobStatus, Timeout, as_completed, wait

pytestmark = pytest.mark.docker


def test_map_returns_results_in_order_from_one_submit(client: Client) -> None:
    before = {job.id for job in client.list(limit=1000)}
    assert list(client.map(pow, [2, 3, 4], [5, 2, 0], name="map-order")) == [32, 9, 1]
    made = [job for job in client.list(names=["map-order"], limit=1000) if job.id not in before]
    assert len(made) == 3 and all(job.snapshot.spec.serializer == "cloudpickle" for job in made)
    assert list(client.map(abs, [])) == []


def test_starmap_and_chunks_run_several_calls_per_job(client: Client) -> None:
    assert list(client.starmap(divmod, [(7, 2), (9, 4), (1, 1)], chunksize=2, name="map-chunks")) == [
        (3, 1),
        (2, 1),
        (1, 0),
    ]
    assert len(client.list(names=["map-chunks"])) == 2


def test_map_raises_the_first_failure_in_order_or_returns_exceptions(client: Client) -> None:
    def invert(x: int) -> float:
        return 1 / x

    results = client.map(invert, [1, 0, 2])
    assert next(results) == 1.0
    with pytest.raises(ZeroDivisionError):
        next(results)
    mixed = list(client.map(invert, [4, 0], return_exceptions=True))
    assert mixed[0] == 0.25 and isinstance(mixed[1], ZeroDivisionError)


def test_map_timeout_raises_and_kills_what_is_left(client: Client) -> None:
    results = client.map(time.sleep, [30, 30], timeout=1, name="map-timeout")
    with pytest.raises(Timeout):
        next(results)
    for job in client.list(names=["map-timeout"]):
        assert job.wait(timeout=30) is JobStatus.KILLED


def test_as_completed_yields_in_finishing_order_with_results_fetched(client: Client) -> None:
    slow = client.shell("sleep 2; echo slow")
    fast = client.shell("echo fast")
    order = list(as_completed([slow, fast], timeout=60))
    assert order == [fast, slow]
    assert fast._snapshot is not None and fast.result() == b"fast\n"


def test_as_completed_times_out(client: Client) -> None:
    job = client.shell("sleep 30")
    with pytest.raises(Timeout):
        list(as_completed([job], timeout=0.5))
    job.kill()


def test_wait_return_when(client: Client) -> None:
    slow, fast, bad = client.shell("sleep 30"), client.shell("true"), client.shell("exit 1")
    done, not_done = wait([slow, fast], return_when=FIRST_COMPLETED, timeout=60)
    assert done == {fast} and not_done == {slow}
    done, not_done = wait([slow, bad], return_when=FIRST_EXCEPTION, timeout=60)
    assert done == {bad} and not_done == {slow}
    done, not_done = wait([slow, fast], timeout=0.5)
    assert done == {fast} and not_done == {slow}
    slow.kill()
    assert wait([slow, fast, bad]).not_done == set()
    with pytest.raises(InvalidRequest):
        wait([fast], return_when="SOMETIME")


def test_failed_job_carries_output_tails(client: Client) -> None:
    with pytest.raises(JobFailed) as failure:
        client.shell("echo out; echo err >&2; exit 4").result(timeout=60)
    assert failure.value.return_code == 4
    assert failure.value.stdout_tail == "out" and failure.value.stderr_tail == "err"

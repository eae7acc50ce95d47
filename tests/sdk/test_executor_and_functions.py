"""client.executor() as a concurrent.futures.Executor, @client.function, serializers
and retries, against a real server and Docker."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

from cloudpipe_sdk import Client, InvalidRequest, JobFuture, JobKilled, JobStatus, RemoteFunction

pytestmark = pytest.mark.docker


def cube(x: int) -> int:  # module level: shipped by value through @client.function
    return x**3


def test_executor_is_a_drop_in_for_a_process_pool(client: Client) -> None:
    with client.executor() as pool:
        assert isinstance(pool, concurrent.futures.Executor)
        futures = [pool.submit(pow, 2, n) for n in range(4)]
        assert [f.result(timeout=60) for f in futures] == [1, 2, 4, 8]
        assert list(pool.map(abs, [-5, 6])) == [5, 6]
        assert [f.result() for f in concurrent.futures.as_completed(futures)]


def test_future_callbacks_exceptions_and_cancel(client: Client) -> None:
    called = threading.Event()
    with client.executor() as pool:
        failing = pool.submit(divmod, 1, 0)
        failing.add_done_callback(lambda f: called.set())
        assert isinstance(failing.exception(timeout=60), ZeroDivisionError)
        assert called.wait(5)
        slow = pool.submit(__import__("time").sleep, 60)
        assert isinstance(slow, JobFuture) and slow.cancel()
        assert slow.cancelled()
        assert slow.job.wait(timeout=30) is JobStatus.KILLED
        assert not failing.cancel()


def test_shutdown_can_cancel_what_is_left(client: Client) -> None:
    pool = client.executor()
    slow = pool.submit(__import__("time").sleep, 60)
    pool.shutdown(wait=True, cancel_futures=True)
    assert slow.cancelled()
    with pytest.raises(RuntimeError):
        pool.submit(abs, 1)
    with pytest.raises(JobKilled):
        slow.job.result(timeout=30)


def test_decorated_function_runs_here_remote_and_mapped(client: Client) -> None:
    remote_cube = client.function(cube)
    assert isinstance(remote_cube, RemoteFunction)
    assert remote_cube(3) == 27
    job = remote_cube.remote(4)
    assert job.result(timeout=60) == 64
    assert job.snapshot.spec.tags["function"].endswith(".cube")
    assert job.snapshot.spec.image == ""  # none named: the snapshot says where it ran
    assert job.snapshot.image.startswith("cloudpipe/runner-python3")
    assert list(remote_cube.map([1, 2])) == [1, 8]
    assert list(remote_cube.starmap([(5,)])) == [125]

    @client.function(cpus=0.5, memory="256M", timeout=60, name="decorated")
    def where() -> str:
        return open("/proc/self/cgroup").read()

    spec = where.remote().snapshot.spec
    assert spec.name == "decorated" and spec.memory == 256 << 20
    assert spec.timeout == 60


def test_retries_call_the_function_again_in_the_same_job(client: Client) -> None:
    @client.function(retries=2)
    def flaky() -> str:
        import os

        marker = "/tmp/attempts"
        count = int(open(marker).read()) if os.path.exists(marker) else 0  # noqa: SIM115
        with open(marker, "w") as handle:
            handle.write(str(count + 1))
        if count < 2:
            raise OSError(f"attempt {count + 1} failed")
        return f"succeeded on attempt {count + 1}"

    job = flaky.remote()
    assert job.result(timeout=60) == "succeeded on attempt 3"
    assert "attempt 1 of 3 raised builtins.OSError" in job.stderr
    assert job.snapshot.spec.restartable


def test_dill_serializes_what_cloudpickle_cannot(client: Client) -> None:
    lock = threading.Lock()  # cloudpickle cannot pickle locks; dill can
    with pytest.raises(InvalidRequest, match="try serializer='dill'"):
        client.submit(lambda held: held.locked(), lock)
    job = client.with_options(serializer="dill").submit(lambda held: held.locked(), lock)
    assert job.result(timeout=60) is False
    assert job.snapshot.spec.serializer == "dill"
    assert list(client.map(lambda held: not held.locked(), [lock], serializer="dill")) == [True]


def test_a_client_can_default_to_dill(client: Client) -> None:
    with Client(client.address, api_key=client.config.api_key, serializer="dill") as dilled:
        job = dilled.submit(lambda: "via dill")
        assert job.result(timeout=60) == "via dill"
        assert job.snapshot.spec.serializer == "dill"


def test_unknown_serializer_and_options_are_refused_before_submitting(client: Client) -> None:
    with pytest.raises(InvalidRequest, match="serializer"):
        client.with_options(serializer="marshal")
    with pytest.raises(InvalidRequest, match="unknown job option"):
        client.with_options(gpus=1)
    with pytest.raises(InvalidRequest, match="memory"):
        client.with_options(memory="lots")


def test_saved_functions_use_the_chosen_serializer_and_retries(client: Client) -> None:
    name = f"saved-pow-{time.monotonic_ns()}"
    saved = client.with_options(serializer="dill", retries=2).saved_jobs.save_function(name, pow, args=(2, 5))
    assert saved.spec.serializer == "dill" and saved.spec.env["CLOUDPIPE_RETRIES"] == "2" and saved.spec.restartable
    assert client.saved_jobs.run(name).result(timeout=60) == 32
    assert client.saved_jobs.run(name, args=(3, 2)).result(timeout=60) == 9  # re-pickled with dill
    client.saved_jobs.delete(name)

"""Jobs end to end: SDK -> gRPC -> real server -> real Docker containers."""

from __future__ import annotations

import io
import pickle
import sys
import tarfile
import time

import click
import docker
import pytest

from cloudpipe_sdk import (
    Client,
    InvalidRequest,
    JobFailed,
    JobKilled,
    JobStatus,
    MissingModule,
    RemoteTraceback,
    Timeout,
)

pytestmark = pytest.mark.docker


def test_shell_job_returns_stdout(client: Client) -> None:
    job = client.shell("echo hello")
    assert job.result(timeout=60) == b"hello\n"
    assert job.status is JobStatus.DONE
    assert job.return_code == 0
    assert job.stdout == "hello\n"


def test_stdin_reaches_the_command(client: Client) -> None:
    payload = bytes(range(256)) * 2000  # 512 KB, binary
    assert client.shell("cat", stdin=payload).result(timeout=60) == payload


def test_result_can_come_from_a_file(client: Client) -> None:
    job = client.shell("echo success > /tmp/out; echo noise", result_source="file:/tmp/out")
    assert job.result(timeout=60) == b"success\n"
    assert job.stdout == "noise\n"


def test_missing_result_file_is_an_error_with_a_reason(client: Client) -> None:
    job = client.shell("true", result_source="file:/tmp/nothing-here")
    with pytest.raises(JobFailed) as failure:
        job.result(timeout=60)
    assert "/tmp/nothing-here" in failure.value.reason


def test_failing_command_is_an_error_with_stderr_and_return_code(client: Client) -> None:
    job = client.shell("echo oops >&2; exit 3")
    with pytest.raises(JobFailed) as failure:
        job.result(timeout=60)
    assert failure.value.return_code == 3
    assert "oops" in failure.value.stderr_tail
    assert job.status is JobStatus.ERROR and job.stderr == "oops\n"


def test_function_job_returns_the_value(client: Client) -> None:
    job = client.submit(lambda x, *, times: x * times, 21, times=2)
    assert job.result(timeout=60) == 42
    assert job.status is JobStatus.DONE


def test_function_job_output_is_captured(client: Client) -> None:
    def chatty() -> str:
        print("to stdout")
        print("to stderr", file=sys.stderr)
        return "value"

    job = client.submit(chatty)
    assert job.result(timeout=60) == "value"
    assert "to stdout" in job.stdout and "to stderr" in job.stderr


def test_function_exception_is_reraised_with_the_remote_traceback(client: Client) -> None:
    class Boom(Exception):  # defined here, so cloudpickle ships the class by value
        pass

    def explode(n: int) -> None:
        raise Boom(f"bad {n}")

    job = client.submit(explode, 7)
    with pytest.raises(Boom, match="bad 7") as raised:
        job.result(timeout=60)
    cause = raised.value.__cause__
    assert isinstance(cause, RemoteTraceback) and "explode" in cause.text
    assert job.status is JobStatus.ERROR
    assert isinstance(job.exception(timeout=5), Boom)


def test_function_from_a_module_the_runner_lacks_explains_the_failure(client: Client) -> None:
    # an installed package is pickled by reference (the user's own modules, such as
    # tests.support, travel by value since the SDK ships them), and the runner lacks it
    job = client.submit(click.style, "x")
    with pytest.raises(MissingModule, match="'click' is not installed in the image") as raised:
        job.result(timeout=60)
    assert "cannot unpickle the job payload" in raised.value.remote_traceback
    assert "No module named 'click'" in raised.value.stderr_tail


def test_unpicklable_exception_still_reports_its_type_and_traceback(client: Client) -> None:
    def explode() -> None:
        class Local(Exception):
            def __reduce__(self) -> object:
                raise TypeError("no pickling")

        raise Local("local failure")

    with pytest.raises(JobFailed) as failure:
        client.submit(explode).result(timeout=60)
    assert "local failure" in failure.value.reason
    assert "explode" in failure.value.remote_traceback


def test_jobs_run_as_non_root_without_network_and_with_limits(client: Client) -> None:
    out = client.shell(
        "id -u; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max;"
        " (getent hosts example.com >/dev/null && echo net) || echo no-net; ls /var/run/docker.sock 2>&1 || true"
    ).result(timeout=60)
    uid, pids, network, sock = out.decode().splitlines()
    assert uid != "0"
    assert pids.isdigit() and int(pids) > 0
    assert network == "no-net"
    assert "No such file" in sock


def test_memory_limit_kills_with_a_clear_reason(client: Client) -> None:
    job = client.shell(
        "python3 -c 'x = bytearray(256 << 20); print(len(x))'",
        memory=64 << 20,
    )
    with pytest.raises(JobFailed) as failure:
        job.result(timeout=60)
    assert "out of memory" in failure.value.reason


def test_max_runtime_stops_the_job(client: Client) -> None:
    started = time.monotonic()
    job = client.shell("sleep 60", timeout=1)
    with pytest.raises(JobFailed) as failure:
        job.result(timeout=60)
    assert "max_runtime exceeded" in failure.value.reason
    assert time.monotonic() - started < 30


def test_unknown_image_is_a_job_error_not_a_crash(client: Client) -> None:
    job = client.shell("echo hi", image="cloudpipe-test/does-not-exist:nope")
    with pytest.raises(JobFailed) as failure:
        job.result(timeout=60)
    assert "cloudpipe-test/does-not-exist:nope" in failure.value.reason
    assert "not found" in failure.value.reason
    assert client.shell("echo still-alive").result(timeout=60) == b"still-alive\n"


def test_image_without_bash_is_a_job_error(client: Client, docker_engine: docker.DockerClient) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    docker_engine.api.import_image_from_data(buffer.getvalue(), repository="cloudpipe-test/nobash", tag="latest")
    try:
        job = client.shell("echo hi", image="cloudpipe-test/nobash:latest")
        with pytest.raises(JobFailed) as failure:
            job.result(timeout=60)
        assert "has no /bin/bash" in failure.value.reason
    finally:
        docker_engine.images.remove("cloudpipe-test/nobash:latest", force=True)


def test_get_list_and_kill(client: Client) -> None:
    sleeper = client.shell("sleep 60", name="sleeper")
    deadline = time.monotonic() + 30
    while sleeper.status is not JobStatus.PROCESSING and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sleeper.status is JobStatus.PROCESSING
    assert [j.id for j in client.list(names=["sleeper"], statuses=["processing"])] == [sleeper.id]
    started = time.monotonic()
    sleeper.kill()
    assert sleeper.wait(timeout=30) is JobStatus.KILLED
    assert time.monotonic() - started < 15
    with pytest.raises(JobKilled):
        sleeper.result()
    assert client.get(sleeper.id).status is JobStatus.KILLED


def test_kill_of_a_finished_job_changes_nothing(client: Client) -> None:
    job = client.shell("echo done")
    job.result(timeout=60)
    assert client.kill(job.id).status is JobStatus.DONE


def test_wait_times_out_on_a_running_job(client: Client) -> None:
    job = client.shell("sleep 30")
    with pytest.raises(Timeout):
        job.result(timeout=0.5)
    job.kill()
    assert job.wait(timeout=30) is JobStatus.KILLED


def test_env_reaches_the_job(client: Client) -> None:
    assert client.shell("echo $GREETING", env={"GREETING": "hej"}).result(timeout=60) == b"hej\n"


def test_bad_requests_are_rejected_with_the_field_named(client: Client) -> None:
    with pytest.raises(InvalidRequest, match="cmd"):
        client.shell("   ")
    with pytest.raises(InvalidRequest, match="result_source"):
        client.shell("echo", result_source="magic")
    with pytest.raises(InvalidRequest, match="result_source"):
        client.shell("echo", result_source="file:relative/path")
    with pytest.raises(InvalidRequest, match="env"):
        client.shell("echo", env={"BAD NAME": "x"})


def test_unpicklable_arguments_are_refused_before_submitting(client: Client) -> None:
    with pytest.raises(InvalidRequest, match="cannot serialize"):
        client.submit(print, client)


def test_result_of_pickled_value_is_a_real_pickle(client: Client) -> None:
    job = client.submit(dict, a=1)
    assert job.result(timeout=60) == {"a": 1}
    raw = job.refresh().result
    assert pickle.loads(raw)["ok"] is True


def test_an_image_user_named_otherwise_but_uid_0_does_not_run_as_root(
    client: Client, docker_engine: docker.DockerClient
) -> None:
    dockerfile = (
        b"FROM cloudpipe/runner-python3:latest\nUSER 0\n"
        b"RUN echo 'toor:x:0:0::/root:/bin/bash' >> /etc/passwd\nUSER toor\n"
    )
    docker_engine.images.build(fileobj=io.BytesIO(dockerfile), tag="cloudpipe-test/toor:latest", rm=True)
    try:
        warm = client.shell("id -u", image="cloudpipe-test/toor:latest").result(timeout=60)
        fresh = client.with_options(fresh_container=True).shell("id -u", image="cloudpipe-test/toor:latest")
        assert warm == fresh.result(timeout=60) == b"65534\n"
    finally:
        docker_engine.images.remove("cloudpipe-test/toor:latest", force=True)

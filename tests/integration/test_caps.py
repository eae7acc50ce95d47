"""Issue 16 items 4 and 6 and the agent's result-path rules, end to end: a real
server process over gRPC on the real engine, fresh and warm containers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest

from cloudpipe_sdk import JobFailed
from tests.integration.test_warm_pool import as_account, server_id, start_warm_server
from tests.support import JOB_LABEL, OWNER_LABEL, ServerProcess

pytestmark = pytest.mark.docker

CAP = 1 << 20


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient) -> Iterator[ServerProcess]:
    server = start_warm_server(tmp_path_factory.mktemp("caps"), result_cap_bytes=str(CAP))
    yield server
    assert server.stop() == 0, server.log


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "warm"])
def test_a_result_over_the_cap_ends_error_naming_the_cap(capped: ServerProcess, fresh: bool) -> None:
    with as_account(capped, "capper") as c:
        job = c.shell("head -c 2000000 /dev/zero > /tmp/big", result_source="file:/tmp/big", fresh_container=fresh)
        with pytest.raises(JobFailed) as failure:
            job.result(timeout=60)
        assert f"over the cap of {CAP} bytes" in failure.value.reason
        assert c.get(job.id).status is not None and any(j.id == job.id for j in c.list())
        small = c.shell(
            "head -c 500000 /dev/urandom > /tmp/s; cat /tmp/s | md5sum >&2",
            result_source="file:/tmp/s",
            fresh_container=fresh,
        )
        data = small.result(timeout=60)
        assert len(data) == 500000


def test_a_fresh_container_has_a_bounded_json_file_log(
    capped: ServerProcess, docker_engine: docker.DockerClient
) -> None:
    with as_account(capped, "logger") as c:
        job = c.shell("sleep 8", fresh_container=True)
        deadline = time.monotonic() + 20
        found: list[docker.models.containers.Container] = []
        while not found and time.monotonic() < deadline:
            listed = docker_engine.containers.list(filters={"label": f"{OWNER_LABEL}={server_id(capped)}"})
            found = [x for x in listed if x.labels.get(JOB_LABEL) == str(job.id)]
            time.sleep(0.3)
        assert found, "the fresh container was not seen running"
        log = found[0].attrs["HostConfig"]["LogConfig"]
        job.kill()
    assert log["Type"] == "json-file"
    assert log["Config"].get("max-size") and log["Config"].get("max-file") == "3"


def test_a_stale_result_is_not_returned_to_the_next_warm_job(capped: ServerProcess) -> None:
    with as_account(capped, "stale") as c:
        c.shell("echo earlier > /tmp/r").result(timeout=60)
        job = c.shell("true", result_source="file:/tmp/r")
        with pytest.raises(JobFailed) as failure:
            job.result(timeout=60)
    assert "/tmp/r" in failure.value.reason


def test_a_symlink_at_the_result_path_is_refused(capped: ServerProcess) -> None:
    with as_account(capped, "linker") as c:
        job = c.shell("ln -s /etc/passwd /tmp/l", result_source="file:/tmp/l")
        with pytest.raises(JobFailed) as failure:
            job.result(timeout=60)
    assert "/tmp/l" in failure.value.reason and "root:" not in failure.value.reason

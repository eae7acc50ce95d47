"""Shared fixtures: a real Cloudpipe server process on a loopback port, a real Docker
engine, and a check that no job container outlives the test session."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest

from cloudpipe_sdk import Client
from tests.support import JOB_LABEL, OWNER_LABEL, RUNNER_IMAGES, SESSION_PREFIX, ServerProcess, start_server


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.DockerClient]:
    """The real Docker engine; the test command starts dockerd and builds the images."""
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        pytest.fail(f"these tests need a running Docker engine (run scripts/test.sh): {exc}")
    for image in RUNNER_IMAGES:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"runner image {image} missing: run python runner_images/build.py")
    yield client
    client.close()


@pytest.fixture(scope="session", autouse=True)
def no_leftover_containers() -> Iterator[None]:
    """After the session, no container made for a job by this session's servers may remain."""
    yield
    try:
        client = docker.from_env()
    except docker.errors.DockerException:  # no engine: nothing could have been left
        return

    def ours() -> list[docker.models.containers.Container]:
        found = client.containers.list(all=True, filters={"label": JOB_LABEL})
        return [c for c in found if c.labels.get(OWNER_LABEL, "").startswith(SESSION_PREFIX)]

    deadline = time.monotonic() + 20
    while (left := ours()) and time.monotonic() < deadline:
        time.sleep(0.5)
    for container in left:
        container.remove(force=True)
    assert not left, f"job containers left behind: {[c.name for c in left]}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient) -> Iterator[ServerProcess]:
    """One server for the session (SQLite store, local Docker)."""
    process = start_server(tmp_path_factory.mktemp("server"))
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with server.client() as c:
        yield c

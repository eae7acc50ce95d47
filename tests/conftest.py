"""Shared fixtures: a real Cloudpipe server process on a loopback port (on the real
Docker engine for `docker`-marked tests, with the fake executor for the others), the
Docker engine, and a check that no job container outlives the test session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker
import pytest

from cloudpipe_sdk import Client
from tests.support import (
    JOB_LABEL,
    OWNER_LABEL,
    RUNNER_IMAGES,
    SESSION_PREFIX,
    PerExecutor,
    ServerProcess,
    start_server,
)
from tests.wheels import Venv, new_venv, sdk_wheel


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

    def ours() -> list[dict[str, Any]]:
        # The summaries of one list call: the high-level list inspects each container
        # afterwards and fails on one that another program removed in between.
        found: list[dict[str, Any]] = client.api.containers(all=True, filters={"label": JOB_LABEL})
        return [c for c in found if (c.get("Labels") or {}).get(OWNER_LABEL, "").startswith(SESSION_PREFIX)]

    deadline = time.monotonic() + 20
    while (left := ours()) and time.monotonic() < deadline:
        time.sleep(0.5)
    for container in left:
        try:
            client.api.remove_container(container["Id"], force=True)
        except docker.errors.NotFound:
            pass
    assert not left, f"job containers left behind: {[c.get('Names') for c in left]}"


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[PerExecutor[ServerProcess]]:
    """The session's servers (SQLite store): one with the fake executor, one on the
    local Docker engine, each started when a test first needs it."""

    @contextmanager
    def make(fake: bool) -> Iterator[ServerProcess]:
        if not fake:
            request.getfixturevalue("docker_engine")
        process = start_server(tmp_path_factory.mktemp("fake-server" if fake else "server"), fake=fake)
        yield process
        assert process.stop() == 0, process.log

    pool = PerExecutor(make)
    yield pool
    pool.close()


@pytest.fixture
def server(servers: PerExecutor[ServerProcess], request: pytest.FixtureRequest) -> ServerProcess:
    """The session's server for this test: on the Docker engine when the test is marked
    `docker`, otherwise with the fake executor (no container runs)."""
    return servers.get(request)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="session")
def sdk_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A new virtual environment with only the SDK wheel (built from sdk/) installed."""
    where = tmp_path_factory.mktemp("sdk-venv")
    return new_venv(where / "venv", sdk_wheel(where / "dist"))

"""Image fixtures: one server on the Docker engine that lets callers name their account
(anonymous mode: each test account is its own tenant), and per-test accounts so every
test's images are new; every image a test account built is removed afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from cloudpipe_sdk import Client
from tests.support import ServerProcess, start_server


@pytest.fixture(scope="session")
def image_server(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient
) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("image-server"), env={"CLOUDPIPE_ALLOW_ANONYMOUS": "true"})
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture
def account_client(image_server: ServerProcess) -> Iterator[Client]:
    """A client of a fresh account whose images are removed after the test."""
    with tenant(image_server, "alice") as client:
        yield client


@pytest.fixture
def other_client(image_server: ServerProcess) -> Iterator[Client]:
    with tenant(image_server, "bob") as client:
        yield client


class tenant:  # noqa: N801: used like a function
    def __init__(self, server: ServerProcess, prefix: str) -> None:
        self.client = Client(server.address, account=f"{prefix}-{uuid.uuid4().hex[:10]}")

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *exc_info: object) -> None:
        for image in self.client.images.list():
            self.client.images.delete(image.reference)
        self.client.close()


@pytest.fixture
def local_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package of this machine, importable here, not installed anywhere."""
    name = f"imgpkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("from .words import GREETING\n")
    (tmp_path / name / "words.py").write_text("GREETING = 'hello from a local package'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name

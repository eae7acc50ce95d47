"""Secret fixtures: one server on the Docker engine whose callers name their account
(anonymous mode: each test account is its own tenant)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2_grpc as jpb_grpc
from cloudpipe_proto.v1 import secrets_pb2_grpc as pb_grpc
from tests.support import ServerProcess, start_server


@pytest.fixture(scope="session")
def secret_server(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient
) -> Iterator[ServerProcess]:
    env = {"CLOUDPIPE_ALLOW_ANONYMOUS": "true", "CLOUDPIPE_SECRET_MAX_PER_ACCOUNT": "3"}
    process = start_server(tmp_path_factory.mktemp("secret-server"), env=env)
    yield process
    assert process.stop() == 0, process.log


class Tenant:
    """gRPC stubs acting as one fresh account."""

    def __init__(self, server: ServerProcess, prefix: str) -> None:
        self.account = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.metadata = (("x-cloudpipe-account", self.account),)
        self.channel = grpc.insecure_channel(server.address)
        self.secrets = pb_grpc.SecretServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.jobs = jpb_grpc.JobServiceStub(self.channel)  # type: ignore[no-untyped-call]


@pytest.fixture
def alice(secret_server: ServerProcess) -> Iterator[Tenant]:
    tenant = Tenant(secret_server, "alice")
    yield tenant
    tenant.channel.close()


@pytest.fixture
def bob(secret_server: ServerProcess) -> Iterator[Tenant]:
    tenant = Tenant(secret_server, "bob")
    yield tenant
    tenant.channel.close()

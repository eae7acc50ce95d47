"""Volume fixtures: one server on the Docker engine that lets callers name their
account (anonymous mode: each test account is its own tenant); every volume a test
account made is deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import grpc
import pytest

from cloudpipe_proto.v1 import volumes_pb2 as pb
from cloudpipe_proto.v1 import volumes_pb2_grpc as pb_grpc
from tests.support import ServerProcess, start_server


@pytest.fixture(scope="session")
def volume_server(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient
) -> Iterator[ServerProcess]:
    env = {"CLOUDPIPE_ALLOW_ANONYMOUS": "true", "CLOUDPIPE_VOLUME_MAX_PER_ACCOUNT": "3"}
    env["CLOUDPIPE_VOLUME_MAX_BYTES"] = str(8 << 20)
    process = start_server(tmp_path_factory.mktemp("volume-server"), env=env)
    yield process
    assert process.stop() == 0, process.log


class Tenant:
    """gRPC stubs acting as one fresh account; its volumes are deleted on close."""

    def __init__(self, server: ServerProcess, prefix: str) -> None:
        self.account = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.metadata = (("x-cloudpipe-account", self.account),)
        self.channel = grpc.insecure_channel(server.address)
        self.volumes = pb_grpc.VolumeServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        for volume in self.volumes.List(pb.ListVolumesRequest(), metadata=self.metadata, timeout=30).volumes:
            self.volumes.Delete(pb.DeleteVolumeRequest(name=volume.name), metadata=self.metadata, timeout=60)
        self.channel.close()


@pytest.fixture
def alice(volume_server: ServerProcess) -> Iterator[Tenant]:
    tenant = Tenant(volume_server, "alice")
    yield tenant
    tenant.close()


@pytest.fixture
def bob(volume_server: ServerProcess) -> Iterator[Tenant]:
    tenant = Tenant(volume_server, "bob")
    yield tenant
    tenant.close()

"""The volume engine on the real Docker engine: a helper container left by a server that
crashed mid-operation does not keep its volume from being deleted for ever, and a
download a client walks away from does not keep the server from stopping."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import docker
import pytest
from docker.types import Mount

from cloudpipe_proto.v1 import volumes_pb2 as pb
from cloudpipe_server.errors import FailedPrecondition
from cloudpipe_server.images.engine import Engine
from cloudpipe_server.volumes import engine as volume_engine
from cloudpipe_server.volumes.engine import LABEL_HELPER, VolumeEngine
from cloudpipe_server.volumes.naming import engine_name
from tests.support import start_server
from tests.volumes.conftest import Tenant
from tests.volumes.test_volume_api import upload

pytestmark = pytest.mark.docker

IMAGE = "cloudpipe/runner-python3:latest"


async def test_a_helper_left_by_a_crash_is_removed_when_its_volume_is_deleted(
    docker_engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, account = f"test-{uuid.uuid4().hex[:8]}", "alice"
    engine = Engine()
    volumes = VolumeEngine(engine, cluster, IMAGE)
    await volumes.create(account, "data")
    name = engine_name(cluster, account, "data")
    leftover = docker_engine.api.create_container(
        IMAGE,
        ["true"],
        labels={LABEL_HELPER: name},
        host_config=docker_engine.api.create_host_config(mounts=[Mount("/v", name, type="volume")]),
    )["Id"]
    try:
        with pytest.raises(FailedPrecondition):  # a fresh helper may be working: kept
            await volumes.remove(account, "data")
        monkeypatch.setattr(volume_engine, "STALE_HELPER_SECONDS", -1)  # now it is old
        await volumes.remove(account, "data")
        assert await volumes.inspect(account, "data") is None
        assert not docker_engine.api.containers(all=True, filters={"id": leftover})
    finally:
        for container in docker_engine.api.containers(all=True, filters={"label": f"{LABEL_HELPER}={name}"}):
            docker_engine.api.remove_container(container["Id"], force=True)
        for volume in docker_engine.api.volumes(filters={"name": name}).get("Volumes") or []:
            docker_engine.api.remove_volume(volume["Name"], force=True)
        engine.close()


def test_a_download_the_client_walks_away_from_does_not_hold_up_a_shutdown(
    docker_engine: docker.DockerClient, tmp_path: Path
) -> None:
    """A cancelled download left a worker thread blocked on its queue, and the server's
    shutdown waited for it for ever (seen as a server killed -9 after 30 s)."""
    server = start_server(tmp_path, env={"CLOUDPIPE_ALLOW_ANONYMOUS": "true"})
    try:
        tenant = Tenant(server, "walker")
        tenant.volumes.Create(pb.CreateVolumeRequest(name="big"), metadata=tenant.metadata, timeout=60)
        upload(tenant, "big", "blob", os.urandom(24 << 20))
        call = tenant.volumes.Download(pb.DownloadRequest(volume="big", path="blob"), metadata=tenant.metadata)
        assert next(call).WhichOneof("part") == "entry"
        call.cancel()
        time.sleep(1)
        tenant.close()
    finally:
        assert server.stop(timeout=30) == 0, server.log[-3000:]

"""Warm containers end to end: real server processes, the real engine, the runner
image's agent. Which container ran a job is told by the job itself (`/etc/hostname` is
the container's short id) and by the engine's labels."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_sdk import Client, JobStatus
from cloudpipe_server.executors.docker import DockerConfig, DockerExecutor
from tests.support import JOB_LABEL, OWNER_LABEL, SESSION_PREFIX, ServerProcess, start_server

pytestmark = pytest.mark.docker

POOL_LABEL = "org.cloudpipe.pool"
CLUSTER_LABEL = "org.cloudpipe.cluster"
ACCOUNT_LABEL = "org.cloudpipe.account"
HOSTNAME = "cat /etc/hostname"


def start_warm_server(data_dir: Path, **settings: str) -> ServerProcess:
    env = {"CLOUDPIPE_ALLOW_ANONYMOUS": "true", "CLOUDPIPE_MAX_CONCURRENT_JOBS": "4"}
    env.update({f"CLOUDPIPE_{name.upper()}": value for name, value in settings.items()})
    return start_server(data_dir, env=env)


def as_account(server: ServerProcess, account: str) -> Client:
    return Client(server.address, api_key="", account=account)


def server_id(server: ServerProcess) -> str:
    return f"{SESSION_PREFIX}{server.address.rsplit(':', 1)[1]}"


class Listed:
    """A container as the engine lists it (no second call that could race its removal)."""

    def __init__(self, item: dict[str, Any]) -> None:
        self.id: str = item["Id"]
        self.labels: dict[str, str] = item.get("Labels") or {}
        self.status: str = item.get("State", "")
        self.network_mode: str = (item.get("HostConfig") or {}).get("NetworkMode", "")


def pool_containers(engine: docker.DockerClient, server: ServerProcess) -> list[Listed]:
    filters = {"label": [POOL_LABEL, f"{OWNER_LABEL}={server_id(server)}"]}
    return [Listed(item) for item in engine.api.containers(all=True, filters=filters)]


def host_of(client: Client, cmd: str = HOSTNAME, **options: object) -> tuple[str, str]:
    """(container short id, rest of stdout) of a shell job that prints its hostname first."""
    out = client.shell(cmd, **options).result(timeout=60).decode()  # type: ignore[arg-type]
    host, _, rest = out.partition("\n")
    return host.strip(), rest


def submit_raw(server: ServerProcess, specs: list[pb.JobSpec], account: str = "") -> list[int]:
    """Submit specs as they are (fields the SDK may not offer, many jobs in one call)."""
    metadata = [("x-cloudpipe-account", account)] if account else [("authorization", f"Bearer {server.api_key}")]
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        return list(stub.Submit(pb.SubmitRequest(jobs=specs), metadata=metadata, timeout=60).ids)


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient) -> Iterator[ServerProcess]:
    server = start_warm_server(tmp_path_factory.mktemp("warm"))
    yield server
    assert server.stop() == 0, server.log
    assert not pool_containers(docker_engine, server), "a stopped server removes its warm containers"


def test_jobs_of_one_account_share_a_warm_container(warm: ServerProcess, docker_engine: docker.DockerClient) -> None:
    with as_account(warm, "alice") as alice:
        first, _ = host_of(alice, f"{HOSTNAME}; echo left-by-first > /tmp/marker")
        second, marker = host_of(alice, f"{HOSTNAME}; cat /tmp/marker")
    assert second == first and marker == "left-by-first\n"
    (container,) = [c for c in pool_containers(docker_engine, warm) if c.id.startswith(first)]
    assert container.labels[ACCOUNT_LABEL] == "alice" and container.labels[JOB_LABEL] == "0"
    assert container.network_mode == "none"


def test_function_jobs_run_in_the_warm_container_too(warm: ServerProcess, docker_engine: docker.DockerClient) -> None:
    def boom() -> None:
        raise ValueError("from a forked process")

    with as_account(warm, "alice") as alice:
        hosts = {alice.submit(socket.gethostname).result(timeout=60) for _ in range(3)}
        shell_host, _ = host_of(alice)
        with pytest.raises(ValueError, match="from a forked process"):
            alice.submit(boom).result(timeout=60)
        job = alice.submit(print, "printed")
        job.result(timeout=60)
        assert job.stdout == "printed\n"
    alices = {c.id[:12] for c in pool_containers(docker_engine, warm) if c.labels[ACCOUNT_LABEL] == "alice"}
    assert hosts | {shell_host} <= alices


def test_another_account_never_gets_that_container(warm: ServerProcess, docker_engine: docker.DockerClient) -> None:
    with as_account(warm, "alice") as alice:
        alices, _ = host_of(alice, f"{HOSTNAME}; echo secret > /tmp/marker")
    with as_account(warm, "bob") as bob:
        seen = [host_of(bob, f"{HOSTNAME}; cat /tmp/marker 2>/dev/null || echo nothing") for _ in range(3)]
    assert all(host != alices and rest == "nothing\n" for host, rest in seen)
    accounts = {c.id[:12]: c.labels[ACCOUNT_LABEL] for c in pool_containers(docker_engine, warm)}
    assert accounts[alices] == "alice" and {accounts[host] for host, _ in seen} == {"bob"}


def test_fresh_container_opts_out_of_the_pool(warm: ServerProcess, docker_engine: docker.DockerClient) -> None:
    with as_account(warm, "alice") as alice:
        host_of(alice, f"{HOSTNAME}; echo warm > /tmp/marker")
        spec = pb.JobSpec(cmd=f"{HOSTNAME}; cat /tmp/marker 2>/dev/null || echo nothing", fresh_container=True)
        (job_id,) = submit_raw(warm, [spec], account="alice")
        out = alice.get(job_id).result(timeout=60).decode()
    host, _, rest = out.partition("\n")
    assert rest == "nothing\n"
    assert host.strip() not in {c.id[:12] for c in pool_containers(docker_engine, warm)}


def test_killing_a_warm_job_kills_its_processes_and_keeps_the_container(warm: ServerProcess) -> None:
    with as_account(warm, "erin") as erin:
        before, _ = host_of(erin)
        job = erin.shell("echo started; sleep 60")
        deadline = time.monotonic() + 30
        while "started" not in job.refresh().stdout.decode() and time.monotonic() < deadline:
            time.sleep(0.05)
        began = time.monotonic()
        job.kill()
        assert job.wait(timeout=30) is JobStatus.KILLED
        assert time.monotonic() - began < 10 and job.reason == "killed on request"
        after, _ = host_of(erin)
    assert after == before  # the container survived and took the next job


def test_max_runtime_and_out_of_memory_end_a_warm_job_with_a_reason(warm: ServerProcess) -> None:
    with as_account(warm, "carol") as carol:
        slow = carol.shell("sleep 30", timeout=1)
        assert slow.wait(timeout=30) is JobStatus.ERROR
        assert "max_runtime exceeded (1 s)" in slow.reason
        greedy = carol.shell("python3 -c 'x = b\"a\" * (400 << 20)'", memory=128 << 20)
        assert greedy.wait(timeout=60) is JobStatus.ERROR
        assert "out of memory" in greedy.reason
        assert carol.shell("echo fine", memory=128 << 20).result(timeout=60) == b"fine\n"


def test_a_warm_container_that_dies_under_a_job_is_replaced(
    warm: ServerProcess, docker_engine: docker.DockerClient
) -> None:
    with as_account(warm, "dave") as dave:
        victim, _ = host_of(dave)
        job = dave.shell("echo started; sleep 30")
        deadline = time.monotonic() + 30
        while "started" not in job.refresh().stdout.decode() and time.monotonic() < deadline:
            time.sleep(0.05)
        docker_engine.containers.get(victim).kill()  # the agent is PID 1: only the engine can kill it
        assert job.wait(timeout=60) is JobStatus.ERROR
        assert "the warm container ended while running the job" in job.reason
        survivor, _ = host_of(dave)
    assert survivor != victim
    deadline = time.monotonic() + 20
    while any(c.id.startswith(victim) for c in pool_containers(docker_engine, warm)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(c.id.startswith(victim) for c in pool_containers(docker_engine, warm))


def test_idle_containers_go_and_a_full_pool_evicts_another_accounts(
    tmp_path: Path, docker_engine: docker.DockerClient
) -> None:
    server = start_warm_server(tmp_path, warm_pool_max_containers="1", warm_pool_idle_seconds="2")
    try:
        with as_account(server, "alice") as alice, as_account(server, "bob") as bob:
            alices, _ = host_of(alice)
            bobs, _ = host_of(bob)
            assert bobs != alices
            containers = pool_containers(docker_engine, server)
            assert [c.labels[ACCOUNT_LABEL] for c in containers] == ["bob"]  # alice's was evicted
        deadline = time.monotonic() + 15
        while pool_containers(docker_engine, server) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pool_containers(docker_engine, server)
    finally:
        assert server.stop() == 0, server.log


def test_warm_pool_can_be_turned_off(tmp_path: Path, docker_engine: docker.DockerClient) -> None:
    server = start_warm_server(tmp_path, warm_pool="false")
    try:
        with as_account(server, "alice") as alice:
            first, _ = host_of(alice)
            second, _ = host_of(alice)
        assert first != second and not pool_containers(docker_engine, server)
    finally:
        server.stop()


def test_the_sdk_fresh_container_option_never_reuses_a_container(client: Client) -> None:
    fresh = client.with_options(fresh_container=True)
    first, second = host_of(fresh)[0], host_of(fresh)[0]
    assert first != second
    job = fresh.shell("true")
    job.result(timeout=60)
    assert job.snapshot.spec.fresh_container


FAKE_EXIT = (
    "python3 -c 'import json, os, struct, sys; "
    'p = json.dumps({"job": int(os.environ["CLOUDPIPE_JOB_ID"]), "code": 0}).encode(); '
    'sys.stdout.buffer.write(struct.pack("!BI", 21, len(p)) + p)\' >/proc/1/fd/1 2>/dev/null'
)


def test_a_warm_job_cannot_fake_or_read_the_agents_messages(warm: ServerProcess) -> None:
    with as_account(warm, "mallory") as mallory:
        host, _ = host_of(mallory)
        job = mallory.shell(f"{FAKE_EXIT}; (cat /proc/1/fd/0 >/dev/null 2>&1 &); sleep 3; echo real; exit 3")
        assert job.wait(timeout=60) is JobStatus.ERROR  # its real end, not the faked "code 0"
        assert job.return_code == 3 and job.stdout == "real\n"
        after, rest = host_of(mallory, f"{HOSTNAME}; ls /proc/1/fd >/dev/null 2>&1 || echo denied", stdin=b"secret")
    assert after == host and rest == "denied\n"  # same container, and its start message was not stolen


def test_the_agent_reaps_what_a_warm_job_left_behind(warm: ServerProcess) -> None:
    zombies = "sleep 0.5; for s in /proc/[0-9]*/stat; do read -r _ _ state _ < $s && echo $state; done | grep -c Z"
    with as_account(warm, "olga") as olga:
        host, _ = host_of(olga, f"{HOSTNAME}; (sleep 100 &); (sleep 0 &)")  # orphans, as PID 1's children
        after, count = host_of(olga, f"{HOSTNAME}; {zombies} || true")
    assert after == host and count == "0\n"


async def test_a_server_without_the_pool_leaves_warm_containers_to_their_owners(
    docker_engine: docker.DockerClient,
) -> None:
    cluster = f"{SESSION_PREFIX}pool-off"
    job_labels = {CLUSTER_LABEL: cluster, OWNER_LABEL: f"{SESSION_PREFIX}other", JOB_LABEL: "5"}
    image = "cloudpipe/runner-python3:latest"
    created = [
        docker_engine.api.create_container(image, "true", labels=labels)["Id"]
        for labels in (job_labels, {**job_labels, JOB_LABEL: "0", POOL_LABEL: "k"})  # a job's, a live warm one
    ]
    executor = DockerExecutor(DockerConfig(owner=f"{SESSION_PREFIX}me", cluster=cluster), lambda: datetime.now(UTC))
    try:
        assert [(c.container_id, c.job_id) for c in await executor.list_managed()] == [(created[0], 5)]
    finally:
        await executor.close()
        for container_id in created:
            docker_engine.api.remove_container(container_id, force=True)

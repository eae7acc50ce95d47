"""Account A cannot see, kill or wait on account B's jobs, through any gRPC method or
any gateway endpoint: another account's job answers exactly like a missing one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.auth.support import AuthProcess, new_account
from tests.gateway.support import GatewayProcess, assert_api_error, get_job, job_payload, submit
from tests.support import PerExecutor, ServerProcess

pytestmark = pytest.mark.docker
MISSING_ID = 1 << 40
FORM = {"content-type": "application/x-www-form-urlencoded"}


@dataclass
class Tenant:
    name: str
    key: str
    channel: grpc.Channel
    stub: pb_grpc.JobServiceStub

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"), ("x-cloudpipe-account", self.name))

    def call(self, method: str, request: object) -> object:
        return getattr(self.stub, method)(request, metadata=self.metadata, timeout=20)

    def error(self, method: str, request: object) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            result = self.call(method, request)
            if method in ("Wait", "WatchMany"):
                list(result)  # type: ignore[call-overload]
        return caught.value


@dataclass
class Jobs:
    done: int
    running: int
    waiting: int


def tenant(service: AuthProcess, server: ServerProcess, prefix: str) -> Tenant:
    name, _, key = new_account(service, prefix)
    channel = grpc.insecure_channel(server.address)
    return Tenant(name, key, channel, pb_grpc.JobServiceStub(channel))  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def tenants(
    auth_service: AuthProcess, auth_servers: PerExecutor[ServerProcess], docker_engine: object
) -> Iterator[tuple[Tenant, Tenant]]:
    auth_server = auth_servers.kind(fake=False)  # every test here is marked docker
    a, b = tenant(auth_service, auth_server, "alice"), tenant(auth_service, auth_server, "bob")
    yield a, b
    for t in (a, b):
        t.call("KillAll", pb.KillAllRequest())
        t.channel.close()


@pytest.fixture(scope="module")
def alice_jobs(tenants: tuple[Tenant, Tenant]) -> Jobs:
    """Alice's jobs: one done, one running, one waiting for the running one."""
    alice = tenants[0]
    done = alice.call("Submit", pb.SubmitRequest(jobs=[pb.JobSpec(cmd="echo alice-output")])).ids[0]  # type: ignore[attr-defined]
    for _ in alice.stub.Wait(pb.WaitJobRequest(id=done), metadata=alice.metadata, timeout=60):
        pass
    running = alice.call("Submit", pb.SubmitRequest(jobs=[pb.JobSpec(cmd="sleep 120")])).ids[0]  # type: ignore[attr-defined]
    waiting_spec = pb.JobSpec(cmd="true", depends_on=[running])
    waiting = alice.call("Submit", pb.SubmitRequest(jobs=[waiting_spec])).ids[0]  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while alice.call("Get", pb.GetJobRequest(id=running)).status != pb.JOB_STATUS_PROCESSING:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "alice's job never started"
        time.sleep(0.1)
    return Jobs(done, running, waiting)


def status(who: Tenant, job_id: int) -> int:
    return who.call("Get", pb.GetJobRequest(id=job_id)).status  # type: ignore[attr-defined, no-any-return]


def same_as_missing(error: grpc.RpcError, missing: grpc.RpcError, job_id: int) -> bool:
    details = (error.details() or "").replace(str(job_id), "N")
    return error.code() == missing.code() and details == (missing.details() or "").replace(str(MISSING_ID), "N")


@pytest.mark.parametrize(
    ("method", "request_for"),
    [
        ("Get", lambda i: pb.GetJobRequest(id=i)),
        ("Kill", lambda i: pb.KillJobRequest(id=i)),
        ("Wait", lambda i: pb.WaitJobRequest(id=i)),
        ("WatchMany", lambda i: pb.WatchManyRequest(ids=[i])),
    ],
)
def test_grpc_another_accounts_job_is_not_found(
    tenants: tuple[Tenant, Tenant], alice_jobs: Jobs, method: str, request_for: object
) -> None:
    alice, bob = tenants
    missing = bob.error(method, request_for(MISSING_ID))  # type: ignore[operator]
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    for job_id in (alice_jobs.done, alice_jobs.running, alice_jobs.waiting):
        assert same_as_missing(bob.error(method, request_for(job_id)), missing, job_id)  # type: ignore[operator]
    assert status(alice, alice_jobs.running) == pb.JOB_STATUS_PROCESSING
    assert status(alice, alice_jobs.waiting) == pb.JOB_STATUS_WAITING


def test_grpc_list_and_queue_stats_show_only_ones_own(tenants: tuple[Tenant, Tenant], alice_jobs: Jobs) -> None:
    alice, bob = tenants
    ids = [alice_jobs.done, alice_jobs.running, alice_jobs.waiting]
    assert list(bob.call("List", pb.ListJobsRequest(ids=ids)).jobs) == []  # type: ignore[attr-defined]
    assert all(job.id not in ids for job in bob.call("List", pb.ListJobsRequest()).jobs)  # type: ignore[attr-defined]
    assert {job.id for job in alice.call("List", pb.ListJobsRequest(ids=ids)).jobs} == set(ids)  # type: ignore[attr-defined]
    assert sum(bob.call("QueueStats", pb.QueueStatsRequest()).counts.values()) == 0  # type: ignore[attr-defined]
    alice_counts = alice.call("QueueStats", pb.QueueStatsRequest()).counts  # type: ignore[attr-defined]
    assert alice_counts["processing"] >= 1 and alice_counts["waiting"] >= 1


def test_grpc_kill_all_kills_only_ones_own(tenants: tuple[Tenant, Tenant], alice_jobs: Jobs) -> None:
    alice, bob = tenants
    assert list(bob.call("KillAll", pb.KillAllRequest()).ids) == []  # type: ignore[attr-defined]
    assert status(alice, alice_jobs.running) == pb.JOB_STATUS_PROCESSING
    assert status(alice, alice_jobs.waiting) == pb.JOB_STATUS_WAITING


def test_grpc_submit_cannot_depend_on_another_accounts_job(tenants: tuple[Tenant, Tenant], alice_jobs: Jobs) -> None:
    _, bob = tenants
    for dep in (alice_jobs.running, MISSING_ID):
        error = bob.error("Submit", pb.SubmitRequest(jobs=[pb.JobSpec(cmd="true", depends_on=[dep])]))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == f"depends_on: job {dep} not found"


def test_gateway_endpoints_see_only_ones_own(
    tenants: tuple[Tenant, Tenant], alice_jobs: Jobs, auth_gateway: GatewayProcess
) -> None:
    alice, bob = tenants
    with (
        httpx.Client(base_url=auth_gateway.url, auth=(bob.name, bob.key), timeout=30) as as_bob,
        httpx.Client(base_url=auth_gateway.url, auth=(alice.name, alice.key), timeout=30) as as_alice,
    ):
        for jid in (alice_jobs.done, alice_jobs.running, alice_jobs.waiting):
            assert as_bob.get("/v1/job", params={"jid": jid}).json() == {"jobs": []}
            killed = as_bob.post("/v1/job/kill", content=f"jid={jid}".encode(), headers=FORM)
            missing = as_bob.post("/v1/job/kill", content=f"jid={MISSING_ID}".encode(), headers=FORM)
            assert_api_error(killed, 404, "JNF", f"Unable to find a job with ID [{jid}].")
            assert_api_error(missing, 404, "JNF", f"Unable to find a job with ID [{MISSING_ID}].")
        assert all(job["jid"] not in vars(alice_jobs).values() for job in as_bob.get("/v1/job").json()["jobs"])
        assert as_bob.post("/v1/job/kill_all").status_code == 200
        assert sum(as_bob.get("/v1/job/queue_stats").json()["stats"].values()) == 0
        alice_stats = as_alice.get("/v1/job/queue_stats").json()["stats"]
        assert alice_stats["processing"] >= 1 and alice_stats["waiting"] >= 1
        assert get_job(as_alice, alice_jobs.running)["status"] == "processing"
        assert get_job(as_alice, alice_jobs.waiting)["status"] == "waiting"
        assert get_job(as_alice, alice_jobs.done)["stdout"] == "alice-output\n"
        bobs = submit(as_bob, job_payload("echo bob"))[0]
        assert as_alice.get("/v1/job", params={"jid": bobs}).json() == {"jobs": []}
        assert get_job(as_bob, bobs)["jid"] == bobs

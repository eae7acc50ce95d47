"""QuotaService over a real server whose accounts live in a real auth service: the
admin sets one account's quotas (the others keep the server's defaults), Submit and the
claim hold that account to them, Usage reports them to the account, anyone else is
PERMISSION_DENIED, bad input INVALID_ARGUMENT or NOT_FOUND, and a deleted account's
overrides go with it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_proto.v1 import quotas_pb2 as qpb
from cloudpipe_proto.v1 import quotas_pb2_grpc as qpb_grpc
from tests.auth.conftest import ADMIN_TOKEN
from tests.auth.support import AuthProcess, new_account
from tests.rpc.test_grpc_api import grpcurl
from tests.support import ServerProcess, start_server

Metadata = tuple[tuple[str, str], ...]
DEFAULT_QUEUED = 5


def key_of(key: str) -> Metadata:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture(scope="module")
def server(auth_service: AuthProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a default queued limit, its accounts checked by `auth_service`; the
    fake executor runs nothing (jobs claimed stay PROCESSING until killed)."""
    env = auth_service.server_env(
        CLOUDPIPE_AUTH_CACHE_TTL="0",
        CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT=str(DEFAULT_QUEUED),
        CLOUDPIPE_DELETED_ACCOUNT_SWEEP_INTERVAL="0.5",
    )
    process = start_server(tmp_path_factory.mktemp("quota-rpc"), env=env, fake=True)
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as opened:
        yield opened


def quotas_stub(channel: grpc.Channel) -> qpb_grpc.QuotaServiceStub:
    return qpb_grpc.QuotaServiceStub(channel)  # type: ignore[no-untyped-call]


def jobs_stub(channel: grpc.Channel) -> pb_grpc.JobServiceStub:
    return pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]


def refused(call: object, *args: object, **kwargs: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def limits(max_queued: int | None = None, max_running: int | None = None) -> qpb.QuotaLimits:
    message = qpb.QuotaLimits()
    if max_queued is not None:
        message.max_queued = max_queued
    if max_running is not None:
        message.max_running = max_running
    return message


def submit(jobs: pb_grpc.JobServiceStub, key: str, n: int) -> list[int]:
    request = pb.SubmitRequest(jobs=[pb.JobSpec(cmd="sleep 60")] * n)
    return list(jobs.Submit(request, metadata=key_of(key), timeout=20).ids)


def test_the_admin_sets_an_accounts_queued_limit_and_only_that_account_is_held_to_it(
    channel: grpc.Channel, server: ServerProcess, auth_service: AuthProcess
) -> None:
    quotas, jobs = quotas_stub(channel), jobs_stub(channel)
    admin = key_of(server.api_key)
    alice, _, alice_key = new_account(auth_service, "alice")
    _bob, _, bob_key = new_account(auth_service, "bob")
    mine = quotas.Get(qpb.GetQuotasRequest(), metadata=key_of(alice_key), timeout=20)
    assert mine.account == alice and not mine.HasField("updated_at")
    assert not mine.override.HasField("max_queued") and mine.effective.max_queued == DEFAULT_QUEUED

    made = quotas.Set(qpb.SetQuotasRequest(account=alice, override=limits(max_queued=1)), metadata=admin, timeout=20)
    assert made.override.max_queued == 1 and not made.override.HasField("max_running")
    assert made.effective.max_queued == 1 and made.effective.max_running == 0 and made.HasField("updated_at")
    listed = quotas.List(qpb.ListQuotasRequest(), metadata=admin, timeout=20)
    assert [q.account for q in listed.accounts if q.account == alice] == [alice]
    assert listed.defaults.max_queued == DEFAULT_QUEUED

    usage = jobs.Usage(pb.UsageRequest(), metadata=key_of(alice_key), timeout=20)
    assert usage.max_queued_per_account == 1  # the overview shows the account's own limit
    failure = refused(submit, jobs, alice_key, 2)
    assert failure.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "its limit is 1" in (failure.details() or "")  # type: ignore[attr-defined]
    assert len(submit(jobs, bob_key, 2)) == 2  # bob keeps the default

    cleared = quotas.Set(qpb.SetQuotasRequest(account=alice), metadata=admin, timeout=20)
    assert cleared.effective.max_queued == DEFAULT_QUEUED and not cleared.HasField("updated_at")
    assert len(submit(jobs, alice_key, 2)) == 2
    for key in (alice_key, bob_key):
        jobs.KillAll(pb.KillAllRequest(), metadata=key_of(key), timeout=20)


def test_an_accounts_running_limit_keeps_its_other_jobs_queued(
    channel: grpc.Channel, server: ServerProcess, auth_service: AuthProcess
) -> None:
    quotas, jobs = quotas_stub(channel), jobs_stub(channel)
    carol, _, carol_key = new_account(auth_service, "carol")
    quotas.Set(qpb.SetQuotasRequest(account=carol, override=limits(max_running=1)), metadata=key_of(server.api_key))
    first, second = submit(jobs, carol_key, 2)
    deadline = time.monotonic() + 3  # several claim rounds (poll 0.2 s) with free slots
    while time.monotonic() < deadline:
        listed = jobs.List(pb.ListJobsRequest(ids=[first, second]), metadata=key_of(carol_key), timeout=20)
        states = {job.id: job.status for job in listed.jobs}
        assert list(states.values()).count(pb.JOB_STATUS_PROCESSING) <= 1, "carol runs more than her limit"
        time.sleep(0.1)
    assert states == {first: pb.JOB_STATUS_PROCESSING, second: pb.JOB_STATUS_QUEUED}
    jobs.KillAll(pb.KillAllRequest(), metadata=key_of(carol_key), timeout=20)


def test_only_the_admin_sets_lists_or_reads_anothers_quotas(
    channel: grpc.Channel, server: ServerProcess, auth_service: AuthProcess
) -> None:
    quotas = quotas_stub(channel)
    dave, _, dave_key = new_account(auth_service, "dave")
    erin, _, _ = new_account(auth_service, "erin")
    for call, request in (
        (quotas.Set, qpb.SetQuotasRequest(account=dave, override=limits(max_queued=100))),
        (quotas.List, qpb.ListQuotasRequest()),
        (quotas.Get, qpb.GetQuotasRequest(account=erin)),
    ):
        failure = refused(call, request, metadata=key_of(dave_key), timeout=20)
        assert failure.code() is grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert quotas.Get(qpb.GetQuotasRequest(account=dave), metadata=key_of(dave_key)).account == dave


def test_bad_limits_and_unknown_accounts_are_refused(
    channel: grpc.Channel, server: ServerProcess, auth_service: AuthProcess
) -> None:
    quotas, admin = quotas_stub(channel), key_of(server.api_key)
    frank, _, _ = new_account(auth_service, "frank")
    for override, word in (
        (limits(max_queued=-1), "max_queued"),
        (limits(max_running=-5), "max_running"),
        (limits(max_queued=10**9), "at most"),
        (limits(max_running=10**6), "at most"),
    ):
        failure = refused(quotas.Set, qpb.SetQuotasRequest(account=frank, override=override), metadata=admin)
        assert failure.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert word in (failure.details() or "")  # type: ignore[attr-defined]
    failure = refused(quotas.Set, qpb.SetQuotasRequest(override=limits(max_queued=1)), metadata=admin)
    assert failure.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    for call, request in (
        (quotas.Set, qpb.SetQuotasRequest(account="nobody@example.com", override=limits(max_queued=1))),
        (quotas.Get, qpb.GetQuotasRequest(account="nobody@example.com")),
    ):
        failure = refused(call, request, metadata=admin)
        assert failure.code() is grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert quotas.Get(qpb.GetQuotasRequest(account=frank), metadata=admin).effective.max_queued == DEFAULT_QUEUED


def test_a_deleted_accounts_overrides_are_removed(
    channel: grpc.Channel, server: ServerProcess, auth_service: AuthProcess
) -> None:
    quotas, admin = quotas_stub(channel), key_of(server.api_key)
    gone, _, _ = new_account(auth_service, "gone")
    quotas.Set(qpb.SetQuotasRequest(account=gone, override=limits(max_queued=3)), metadata=admin)
    with auth_service.external_client() as client:
        deleted = client.delete(f"/v2/admin/accounts/{gone}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert deleted.status_code in (200, 204), deleted.text
    deadline = time.monotonic() + 20
    while gone in [q.account for q in quotas.List(qpb.ListQuotasRequest(), metadata=admin).accounts]:
        assert time.monotonic() < deadline, "the deleted account's overrides were never removed"
        time.sleep(0.2)
    assert "its quota overrides were removed" in server.log


def test_reflection_lists_the_quota_service(server: ServerProcess) -> None:
    listed = grpcurl(server.address, "list")
    assert listed.returncode == 0, listed.stderr
    assert "cloudpipe.v1.QuotaService" in listed.stdout.split()
    described = grpcurl(server.address, "describe", "cloudpipe.v1.QuotaService")
    assert "rpc Set" in described.stdout and "rpc List" in described.stdout


@pytest.mark.docker
def test_on_docker_an_accounts_own_running_limit_holds_while_other_accounts_run_more(
    auth_service: AuthProcess, tmp_path_factory: pytest.TempPathFactory, docker_engine: object
) -> None:
    """Real containers: the server has no running limit and four slots; the admin holds
    one account to one running job, while another account runs two."""
    env = auth_service.server_env(CLOUDPIPE_AUTH_CACHE_TTL="0", CLOUDPIPE_MAX_CONCURRENT_JOBS="4")
    server = start_server(tmp_path_factory.mktemp("quota-docker"), env=env)
    try:
        with grpc.insecure_channel(server.address) as channel:
            quotas, jobs = quotas_stub(channel), jobs_stub(channel)
            held, _, held_key = new_account(auth_service, "held")
            _free, _, free_key = new_account(auth_service, "free")
            quotas.Set(
                qpb.SetQuotasRequest(account=held, override=limits(max_running=1)), metadata=key_of(server.api_key)
            )
            mine = submit(jobs, held_key, 2)
            others = submit(jobs, free_key, 2)

            def states(key: str, ids: list[int]) -> list[int]:
                listed = jobs.List(pb.ListJobsRequest(ids=ids), metadata=key_of(key), timeout=20)
                return [job.status for job in sorted(listed.jobs, key=lambda job: job.id)]

            deadline = time.monotonic() + 90
            while states(free_key, others).count(pb.JOB_STATUS_PROCESSING) < 2:  # the other account runs both
                assert time.monotonic() < deadline, "the other account's jobs never ran"
                time.sleep(0.2)
            settle = time.monotonic() + 2  # several claim rounds (poll 0.2 s) with a free slot
            while time.monotonic() < settle:
                assert states(held_key, mine).count(pb.JOB_STATUS_PROCESSING) <= 1, "held runs past its limit"
                time.sleep(0.1)
            assert states(held_key, mine) == [pb.JOB_STATUS_PROCESSING, pb.JOB_STATUS_QUEUED]
            jobs.Kill(pb.KillJobRequest(id=mine[0]), metadata=key_of(held_key), timeout=20)
            while states(held_key, mine)[1] != pb.JOB_STATUS_PROCESSING:  # its next job runs once one ends
                assert time.monotonic() < deadline, "held's second job never ran"
                time.sleep(0.2)
            for key in (held_key, free_key):
                jobs.KillAll(pb.KillAllRequest(), metadata=key_of(key), timeout=20)
    finally:
        assert server.stop() == 0, server.log

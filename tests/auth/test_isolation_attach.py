"""Attach to another account's job answers exactly like a missing job: nothing is
streamed, no stdin or signal reaches it."""

from __future__ import annotations

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from tests.auth.test_isolation import MISSING_ID, Jobs, Tenant, alice_jobs, same_as_missing, status, tenants

pytestmark = pytest.mark.docker
__all__ = ["alice_jobs", "tenants"]  # fixtures shared with test_isolation


def attach_error(who: Tenant, job_id: int, *actions: pb.AttachRequest) -> grpc.RpcError:
    requests = [pb.AttachRequest(start=pb.AttachStart(id=job_id)), *actions]
    with pytest.raises(grpc.RpcError) as caught:
        list(who.stub.Attach(iter(requests), metadata=who.metadata, timeout=20))
    return caught.value


def test_grpc_attach_to_another_accounts_job_is_not_found(tenants: tuple[Tenant, Tenant], alice_jobs: Jobs) -> None:
    alice, bob = tenants
    missing = attach_error(bob, MISSING_ID)
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    for job_id in (alice_jobs.done, alice_jobs.running, alice_jobs.waiting):
        assert same_as_missing(attach_error(bob, job_id), missing, job_id)
    kill = pb.AttachRequest(signal=pb.SIGNAL_KILL)
    assert same_as_missing(attach_error(bob, alice_jobs.running, kill), missing, alice_jobs.running)
    assert status(alice, alice_jobs.running) == pb.JOB_STATUS_PROCESSING

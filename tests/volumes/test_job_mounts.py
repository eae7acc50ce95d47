"""Jobs mount their account's volumes (JobSpec.volumes "NAME:/path[:ro]") on the real
engine: what one job writes the next reads, a read-only mount refuses writes, a job
naming a missing or another account's volume is refused at submit, bad mount entries
are INVALID_ARGUMENT, and a volume in use cannot be deleted."""

from __future__ import annotations

import time

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as jpb
from cloudpipe_proto.v1 import jobs_pb2_grpc as jpb_grpc
from cloudpipe_proto.v1 import volumes_pb2 as pb
from tests.volumes.conftest import Tenant
from tests.volumes.test_volume_api import download, upload

pytestmark = pytest.mark.docker


def jobs_of(tenant: Tenant) -> jpb_grpc.JobServiceStub:
    return jpb_grpc.JobServiceStub(tenant.channel)  # type: ignore[no-untyped-call]


def run(tenant: Tenant, cmd: str, *volumes: str) -> jpb.Job:
    jobs = jobs_of(tenant)
    request = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd=cmd, volumes=list(volumes))])
    [job_id] = jobs.Submit(request, metadata=tenant.metadata, timeout=30).ids
    deadline = time.monotonic() + 120
    while True:
        job = jobs.Get(jpb.GetJobRequest(id=job_id), metadata=tenant.metadata, timeout=30)
        if job.status in (jpb.JOB_STATUS_DONE, jpb.JOB_STATUS_ERROR, jpb.JOB_STATUS_KILLED, jpb.JOB_STATUS_STALLED):
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"job {job_id} never ended"
        time.sleep(0.1)


def test_jobs_read_and_write_their_volumes(alice: Tenant) -> None:
    alice.volumes.Create(pb.CreateVolumeRequest(name="work"), metadata=alice.metadata, timeout=60)
    upload(alice, "work", "in/words.txt", b"one two three\n")
    first = run(alice, "id -u; wc -w < /data/in/words.txt > /data/count.txt", "work:/data")
    assert first.status == jpb.JOB_STATUS_DONE, first.stderr
    assert download(alice, "work", "count.txt")[1] == b"3\n"
    second = run(alice, "cat /mnt/w/count.txt", "work:/mnt/w:ro")
    assert (second.status, second.stdout) == (jpb.JOB_STATUS_DONE, b"3\n")
    refused = run(alice, "echo x > /mnt/w/new.txt", "work:/mnt/w:ro")
    assert refused.status == jpb.JOB_STATUS_ERROR and b"Read-only file system" in refused.stderr


def test_a_job_naming_a_missing_or_anothers_volume_is_refused_at_submit(alice: Tenant, bob: Tenant) -> None:
    alice.volumes.Create(pb.CreateVolumeRequest(name="mine"), metadata=alice.metadata, timeout=60)
    for tenant, entry in ((alice, "absent:/data"), (bob, "mine:/data")):
        request = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd="true", volumes=[entry])])
        with pytest.raises(grpc.RpcError) as raised:
            jobs_of(tenant).Submit(request, metadata=tenant.metadata, timeout=30)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND and "not found" in (raised.value.details() or "")


@pytest.mark.parametrize(
    "entry", ["mine:relative", "mine:/", "mine:/proc/x", "mine:/a/../etc", "mine:/data:rx", "Bad:/data"]
)
def test_bad_mount_entries_are_invalid_arguments(alice: Tenant, entry: str) -> None:
    request = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd="true", volumes=[entry])])
    with pytest.raises(grpc.RpcError) as raised:
        jobs_of(alice).Submit(request, metadata=alice.metadata, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_two_mounts_at_one_path_are_refused(alice: Tenant) -> None:
    request = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd="true", volumes=["a:/data", "b:/data/"])])
    with pytest.raises(grpc.RpcError) as raised:
        jobs_of(alice).Submit(request, metadata=alice.metadata, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_volume_in_use_is_not_deleted(alice: Tenant) -> None:
    alice.volumes.Create(pb.CreateVolumeRequest(name="busy"), metadata=alice.metadata, timeout=60)
    jobs = jobs_of(alice)
    request = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd="touch /v/started; sleep 60", volumes=["busy:/v"])])
    [job_id] = jobs.Submit(request, metadata=alice.metadata, timeout=30).ids
    try:
        deadline = time.monotonic() + 60
        files = pb.ListFilesRequest(volume="busy")
        while not alice.volumes.ListFiles(files, metadata=alice.metadata, timeout=30).entries:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.2)
        with pytest.raises(grpc.RpcError) as raised:
            alice.volumes.Delete(pb.DeleteVolumeRequest(name="busy"), metadata=alice.metadata, timeout=30)
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        jobs.Kill(jpb.KillJobRequest(id=job_id), metadata=alice.metadata, timeout=30)
    deadline = time.monotonic() + 60
    while jobs.Get(jpb.GetJobRequest(id=job_id), metadata=alice.metadata, timeout=30).status != jpb.JOB_STATUS_KILLED:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # at once: the delete waits the moment it takes to remove the ended job's container
    alice.volumes.Delete(pb.DeleteVolumeRequest(name="busy"), metadata=alice.metadata, timeout=30)


def test_a_volume_is_deleted_right_after_its_job_ends(alice: Tenant) -> None:
    for round_ in range(3):
        name = f"brief{round_}"
        alice.volumes.Create(pb.CreateVolumeRequest(name=name), metadata=alice.metadata, timeout=60)
        assert run(alice, "echo hi > /v/x", f"{name}:/v").status == jpb.JOB_STATUS_DONE
        alice.volumes.Delete(pb.DeleteVolumeRequest(name=name), metadata=alice.metadata, timeout=30)

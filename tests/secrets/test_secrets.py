"""Secrets on a real server and the real engine: set, listed by name only, given to
jobs as environment variables or files (readable by the job's user alone), never in
any answer, log or the store in clear; another account's look missing; a secret
deleted before its job starts fails the job with a true reason."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as jpb
from cloudpipe_proto.v1 import secrets_pb2 as pb
from tests.secrets.conftest import Tenant
from tests.support import ServerProcess, code_of

pytestmark = pytest.mark.docker

VALUE = "s3cr3t-" + "v" * 20
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest().encode() + b"\n"  # what jobs print: never the value


def run(tenant: Tenant, cmd: str, *secrets: str, **spec: object) -> jpb.Job:
    request = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd=cmd, secrets=list(secrets), **spec)])  # type: ignore[arg-type]
    [job_id] = tenant.jobs.Submit(request, metadata=tenant.metadata, timeout=30).ids
    return wait(tenant, job_id)


def wait(tenant: Tenant, job_id: int) -> jpb.Job:
    deadline = time.monotonic() + 120
    while True:
        job = tenant.jobs.Get(jpb.GetJobRequest(id=job_id), metadata=tenant.metadata, timeout=30)
        if job.status in (jpb.JOB_STATUS_DONE, jpb.JOB_STATUS_ERROR, jpb.JOB_STATUS_KILLED, jpb.JOB_STATUS_STALLED):
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"job {job_id} never ended"
        time.sleep(0.1)


def test_a_secret_reaches_its_job_and_no_answer(alice: Tenant, secret_server: ServerProcess) -> None:
    md = alice.metadata
    made = alice.secrets.Set(pb.SetSecretRequest(name="API_TOKEN", value=VALUE.encode()), metadata=md, timeout=30)
    assert made.name == "API_TOKEN" and made.created_at.seconds > 0
    assert VALUE.encode() not in made.SerializeToString()
    # as an environment variable, in a warm container and in a fresh one
    for fresh in (False, True):
        job = run(alice, 'printf %s "$API_TOKEN" | sha256sum | cut -c1-64', "API_TOKEN", fresh_container=fresh)
        assert (job.status, job.stdout) == (jpb.JOB_STATUS_DONE, DIGEST), job.stderr
        assert VALUE.encode() not in job.SerializeToString()  # the spec holds the name only
        assert list(job.spec.secrets) == ["API_TOKEN"] and "API_TOKEN" not in job.spec.env
    # as a file, readable by the job's user alone
    job = run(alice, "stat -c '%a %u' /run/cp/token; sha256sum < /run/cp/token | cut -c1-64", "API_TOKEN:/run/cp/token")
    assert (job.status, job.stdout) == (jpb.JOB_STATUS_DONE, b"400 1000\n" + DIGEST), job.stderr
    listed = alice.jobs.List(jpb.ListJobsRequest(), metadata=md, timeout=30)
    assert VALUE.encode() not in listed.SerializeToString()
    names = alice.secrets.List(pb.ListSecretsRequest(), metadata=md, timeout=30)
    assert [s.name for s in names.secrets] == ["API_TOKEN"]
    assert VALUE.encode() not in names.SerializeToString()
    # replaced: the next job sees the new value; created_at is kept
    again = alice.secrets.Set(pb.SetSecretRequest(name="API_TOKEN", value=b"second"), metadata=md, timeout=30)
    assert again.created_at == made.created_at and again.updated_at.ToDatetime() >= made.updated_at.ToDatetime()
    assert run(alice, 'printf %s "$API_TOKEN"', "API_TOKEN").stdout == b"second"
    # nowhere in clear on the server's side: not its log, not its store
    assert VALUE not in secret_server.log
    for path in secret_server.data_dir.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path
    key_file = secret_server.data_dir / "secrets.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_another_accounts_secret_looks_missing(alice: Tenant, bob: Tenant) -> None:
    alice.secrets.Set(pb.SetSecretRequest(name="MINE", value=b"alice"), metadata=alice.metadata, timeout=30)
    request = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd="env", secrets=["MINE"])])
    with pytest.raises(grpc.RpcError) as raised:
        bob.jobs.Submit(request, metadata=bob.metadata, timeout=30)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND and "MINE" in (raised.value.details() or "")
    delete = pb.DeleteSecretRequest(name="MINE")
    assert code_of(lambda: bob.secrets.Delete(delete, metadata=bob.metadata, timeout=30)) == grpc.StatusCode.NOT_FOUND
    assert not bob.secrets.List(pb.ListSecretsRequest(), metadata=bob.metadata, timeout=30).secrets


def test_a_secret_deleted_before_its_job_starts_fails_the_job(alice: Tenant) -> None:
    md = alice.metadata
    alice.secrets.Set(pb.SetSecretRequest(name="SHORT_LIVED", value=b"x"), metadata=md, timeout=30)
    blocker = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd="sleep 2")])
    [first] = alice.jobs.Submit(blocker, metadata=md, timeout=30).ids
    request = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd="echo ran", secrets=["SHORT_LIVED"], depends_on=[first])])
    [job_id] = alice.jobs.Submit(request, metadata=md, timeout=30).ids
    alice.secrets.Delete(pb.DeleteSecretRequest(name="SHORT_LIVED"), metadata=md, timeout=30)
    job = wait(alice, job_id)
    assert job.status == jpb.JOB_STATUS_ERROR and job.stdout == b""
    assert "SHORT_LIVED" in job.reason and "no longer exists" in job.reason


@pytest.mark.parametrize(
    ("secrets", "env"),
    [
        (["1BAD"], {}),
        (["has-dash"], {}),
        (["TOKEN", "TOKEN"], {}),
        (["TOKEN"], {"TOKEN": "also here"}),
        (["CLOUDPIPE_JOB_ID"], {}),
        (["TOKEN:relative"], {}),
        (["TOKEN:/"], {}),
        (["TOKEN:/proc/self/x"], {}),
        (["TOKEN:/a/../b"], {}),
    ],
)
def test_bad_secret_entries_are_invalid_arguments(alice: Tenant, secrets: list[str], env: dict[str, str]) -> None:
    request = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd="true", secrets=secrets, env=env)])
    assert code_of(lambda: alice.jobs.Submit(request, metadata=alice.metadata, timeout=30)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_bad_sets_and_the_count_quota(alice: Tenant) -> None:
    md = alice.metadata
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    for name in ("", "9x", "a-b", "x" * 129):
        assert code_of(lambda: alice.secrets.Set(pb.SetSecretRequest(name=name), metadata=md, timeout=30)) == invalid  # noqa: B023
    huge = pb.SetSecretRequest(name="HUGE", value=b"x" * ((64 << 10) + 1))
    assert code_of(lambda: alice.secrets.Set(huge, metadata=md, timeout=30)) == invalid
    for name in ("A", "B", "C"):  # the server allows 3
        alice.secrets.Set(pb.SetSecretRequest(name=name, value=b"v"), metadata=md, timeout=30)
    fourth = pb.SetSecretRequest(name="D", value=b"v")
    assert code_of(lambda: alice.secrets.Set(fourth, metadata=md, timeout=30)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    alice.secrets.Set(pb.SetSecretRequest(name="A", value=b"replaced"), metadata=md, timeout=30)  # not a new one
    missing = pb.DeleteSecretRequest(name="NONE")
    assert code_of(lambda: alice.secrets.Delete(missing, metadata=md, timeout=30)) == grpc.StatusCode.NOT_FOUND


def test_a_key_rotation_rewrites_every_secret_and_the_running_server_follows(
    alice: Tenant, secret_server: ServerProcess
) -> None:
    alice.secrets.Set(pb.SetSecretRequest(name="ROTATED", value=VALUE.encode()), metadata=alice.metadata, timeout=30)
    key_file = secret_server.data_dir / "secrets.key"
    before = key_file.read_text()
    env = {**os.environ, "CLOUDPIPE_DATA_DIR": str(secret_server.data_dir), "CLOUDPIPE_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", "cloudpipe_server", "--rotate-secrets-key"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "secrets key rotated" in done.stdout and VALUE not in done.stdout + done.stderr
    after = key_file.read_text()
    assert after != before and len(after.split()) == 1 and key_file.stat().st_mode & 0o777 == 0o600
    job = run(alice, 'printf %s "$ROTATED" | sha256sum | cut -c1-64', "ROTATED")
    assert (job.status, job.stdout) == (jpb.JOB_STATUS_DONE, DIGEST), job.reason

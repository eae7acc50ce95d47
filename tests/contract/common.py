"""What the JobStore contract tests share: the clock, the lease, and small builders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloudpipe_server.models import JobSpec, OutputChunk, Stream
from cloudpipe_server.store import JobStore

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def spec(cmd: str = "echo hi", **kw: object) -> JobSpec:
    return JobSpec(cmd=cmd, **kw)  # type: ignore[arg-type]


def out(offset: int, data: bytes) -> OutputChunk:
    return OutputChunk(Stream.STDOUT, offset, data)


def err(offset: int, data: bytes) -> OutputChunk:
    return OutputChunk(Stream.STDERR, offset, data)


async def claimed_job(store: JobStore, owner: str = "d1", **kw: object) -> int:
    """A new job of alice's, claimed by `owner`: PROCESSING, attempt 1."""
    [job_id] = await store.submit("alice", [spec(**kw)], T0)
    [job] = await store.claim(owner, T0, LEASE, 1)
    assert job.id == job_id
    return job_id


async def claim_until_empty(backend: JobStore, owner: str) -> list[int]:
    got: list[int] = []
    while batch := await backend.claim(owner, T0, LEASE, 3):
        got += [j.id for j in batch]
    return got

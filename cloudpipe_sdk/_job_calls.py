"""The JobService calls, as `Rpc`s and `Plan`s both clients run: requests built and
answers read in one place."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_sdk._convert import STATUS_TO_PB, snapshot_from_pb, spec_to_pb
from cloudpipe_sdk._errors import InvalidRequest, ProtocolError
from cloudpipe_sdk._rpc import Plan, Rpc
from cloudpipe_sdk._status import JobStatus
from cloudpipe_sdk._types import JobSnapshot, JobSpec

if TYPE_CHECKING:
    from typing import Unpack  # 3.11+: annotations only, so the SDK imports on 3.10

SUBMIT_BATCH = 250  # jobs per Submit RPC
SUBMIT_BATCH_BYTES = 32 << 20  # and at most about this many bytes of stdin
FETCH_BATCH = 50  # finished jobs fetched per List call (their output and results)
WATCH_LIMIT = 10_000  # ids per WatchMany call (the server's limit)


def get_job(job_id: int) -> Rpc[JobSnapshot]:
    return Rpc("jobs", "Get", pb.GetJobRequest(id=job_id), snapshot_from_pb)


def kill_job(job_id: int, *, retry: bool = True) -> Rpc[JobSnapshot]:
    return Rpc("jobs", "Kill", pb.KillJobRequest(id=job_id), snapshot_from_pb, retry=retry)


def kill_all() -> Rpc[list[int]]:
    return Rpc("jobs", "KillAll", pb.KillAllRequest(), lambda response: list(response.ids))


def delete_jobs(job_ids: Sequence[int]) -> Rpc[list[int]]:
    request = pb.DeleteJobsRequest(ids=job_ids)
    return Rpc("jobs", "Delete", request, lambda response: list(response.ids), retry=False)


def queue_stats() -> Rpc[dict[str, int]]:
    return Rpc("jobs", "QueueStats", pb.QueueStatsRequest(), lambda response: dict(response.counts))


class ListFilters(TypedDict, total=False):
    """The filters of `Client.list` / `AsyncClient.list`; every one given must match.
    `limit` defaults to 100, `newest_first` to True."""

    ids: Sequence[int]
    names: Sequence[str]
    statuses: Sequence[JobStatus | str]
    created_after: datetime | None
    created_before: datetime | None
    limit: int
    newest_first: bool


def list_jobs(**filters: Unpack[ListFilters]) -> Rpc[list[JobSnapshot]]:
    """Jobs matching every filter, newest first by default."""
    try:
        wanted = [STATUS_TO_PB[JobStatus(s)] for s in filters.get("statuses", ())]
    except ValueError as exc:
        raise InvalidRequest(f"statuses: {exc}; statuses: {', '.join(s.value for s in JobStatus)}") from None
    request = pb.ListJobsRequest(
        ids=list(filters.get("ids", ())),
        names=list(filters.get("names", ())),
        statuses=wanted,
        limit=filters.get("limit", 100),
        newest_first=filters.get("newest_first", True),
    )
    if (after := filters.get("created_after")) is not None:
        request.created_after.FromDatetime(after)
    if (before := filters.get("created_before")) is not None:
        request.created_before.FromDatetime(before)
    return Rpc("jobs", "List", request, lambda response: [snapshot_from_pb(job) for job in response.jobs])


def submit(specs: Sequence[JobSpec], idempotency_key: str | None = None) -> Plan[list[int]]:
    """Submit in batches of SUBMIT_BATCH jobs per RPC; the ids in order. Each spec gets
    an idempotency key made from one per call, so a Submit retried after UNAVAILABLE
    (the server may have stored the jobs before the answer was lost) returns the same
    jobs."""
    base = idempotency_key or uuid.uuid4().hex
    keyed = [
        spec if spec.idempotency_key else replace(spec, idempotency_key=base if len(specs) == 1 else f"{base}-{index}")
        for index, spec in enumerate(specs)
    ]
    ids: list[int] = []
    for batch in _batches([spec_to_pb(spec) for spec in keyed]):
        ids.extend((yield Rpc("jobs", "Submit", pb.SubmitRequest(jobs=batch), _ids_for(len(batch)))))
    return ids


def _ids_for(count: int) -> Callable[[pb.SubmitResponse], list[int]]:
    def ids(response: pb.SubmitResponse) -> list[int]:
        if len(response.ids) != count:
            raise ProtocolError(f"the server returned {len(response.ids)} ids for {count} jobs")
        return list(response.ids)

    return ids


def _batches(specs: Sequence[pb.JobSpec]) -> Iterator[list[pb.JobSpec]]:
    batch: list[pb.JobSpec] = []
    size = 0
    for spec in specs:
        spec_size = spec.ByteSize()
        if batch and (len(batch) >= SUBMIT_BATCH or size + spec_size > SUBMIT_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(spec)
        size += spec_size
    if batch:
        yield batch


def fetch(ids: Sequence[int]) -> Plan[list[JobSnapshot]]:
    """The snapshots of these jobs, FETCH_BATCH per List call."""
    unique = list(dict.fromkeys(ids))
    snapshots: list[JobSnapshot] = []
    for start in range(0, len(unique), FETCH_BATCH):
        snapshots += yield list_jobs(ids=unique[start : start + FETCH_BATCH], limit=FETCH_BATCH)
    return snapshots


def wait_request(job_id: int) -> pb.WaitJobRequest:
    return pb.WaitJobRequest(id=job_id)


def watch_request(ids: Sequence[int]) -> pb.WatchManyRequest:
    return pb.WatchManyRequest(ids=sorted(ids))

"""A bounded gRPC fuzzer against a real server process (the fake executor's: no
container runs) (issue 16): malformed and
out-of-range requests get a clear status, never INTERNAL or UNKNOWN (an unhandled
exception on the server). Hypothesis is derandomized (the same examples every run)
and bounded by `max_examples`; every accepted job depends on a parent that is killed
at the end, so no fuzzed command ever runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.support import ServerProcess

BUGS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT64 = st.integers(0, 2**64 - 1)
UINT32 = st.integers(0, 2**32 - 1)
EDGY_INT64 = st.one_of(st.sampled_from([0, 1, -1, 2**62, 2**63 - 1, -(2**63), 6 << 20]), INT64)
TEXT = st.text(max_size=40) | st.sampled_from(["", "stdout", "file:/r", "file:", "a\n", "\x00", "admin\n"])
DOUBLES = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e308, -1.0, 1e-300])


@st.composite
def durations(draw: Any) -> dict[str, int]:
    return {"seconds": draw(EDGY_INT64), "nanos": draw(INT32 | st.sampled_from([0, -1, 999_999_999, 10**9]))}


@st.composite
def job_specs(draw: Any) -> pb.JobSpec:
    spec = pb.JobSpec(
        cmd=draw(TEXT | st.just("true")),
        name=draw(TEXT),
        image=draw(TEXT),
        stdin=draw(st.binary(max_size=64)),
        env=draw(st.dictionaries(TEXT, TEXT, max_size=3)),
        tags=draw(st.dictionaries(TEXT, TEXT, max_size=3)),
        result_source=draw(TEXT),
        result_type=draw(INT32 | st.sampled_from([0, 1, 2, 3])),
        restartable=draw(st.booleans()),
        depends_on=draw(st.lists(UINT64 | st.sampled_from([0, 1, 2**63]), max_size=3)),
        resources=pb.Resources(cpus=draw(DOUBLES), memory_bytes=draw(EDGY_INT64), pids=draw(EDGY_INT64)),
        multicore=draw(INT32),
        volumes=draw(st.lists(TEXT, max_size=2)),
        serializer=draw(TEXT),
        client_python=draw(TEXT),
        interactive=draw(st.booleans()),
        idempotency_key=draw(TEXT),
        fresh_container=draw(st.booleans()),
    )
    if draw(st.booleans()):
        span = draw(durations())
        spec.max_runtime.seconds, spec.max_runtime.nanos = span["seconds"], span["nanos"]
    return spec


@pytest.fixture
def api(server: ServerProcess) -> Iterator[tuple[pb_grpc.JobServiceStub, tuple[tuple[str, str], ...], int]]:
    """A stub, the credentials, and a parent job every fuzzed job depends on."""
    metadata = (("authorization", f"Bearer {server.api_key}"),)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        [parent] = stub.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="sleep 600")]), timeout=10, metadata=metadata).ids
        yield stub, metadata, parent
        stub.Kill(pb.KillJobRequest(id=parent), timeout=10, metadata=metadata)


def no_bug(call: Any) -> None:
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "DESCRIPTOR"):
            list(result)
    except grpc.RpcError as error:
        code = error.code()  # type: ignore[attr-defined]
        assert code not in BUGS, f"{code}: {error.details()}"  # type: ignore[attr-defined]


@FUZZ
@given(specs=st.lists(job_specs(), min_size=0, max_size=3))
def test_fuzzed_submits_never_fail_internally(api: Any, specs: list[pb.JobSpec]) -> None:
    stub, metadata, parent = api
    for spec in specs:
        spec.depends_on.append(parent)  # accepted jobs wait, then fail with their parent
    no_bug(lambda: stub.Submit(pb.SubmitRequest(jobs=specs), timeout=10, metadata=metadata))


@FUZZ
@given(
    ids=st.lists(UINT64, max_size=4),
    names=st.lists(TEXT, max_size=3),
    statuses=st.lists(INT32 | st.integers(0, 8), max_size=3),
    after=UINT64,
    before=UINT64,
    created_after=st.none() | durations(),
    created_before=st.none() | durations(),
    limit=UINT32,
    newest_first=st.booleans(),
)
def test_fuzzed_lists_never_fail_internally(
    api: Any,
    ids: list[int],
    names: list[str],
    statuses: list[int],
    after: int,
    before: int,
    created_after: dict[str, int] | None,
    created_before: dict[str, int] | None,
    limit: int,
    newest_first: bool,
) -> None:
    stub, metadata, _ = api
    request = pb.ListJobsRequest(
        ids=ids, names=names, statuses=statuses, after_id=after, before_id=before, limit=min(limit, 50)
    )
    request.newest_first = newest_first
    for field, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None:
            getattr(request, field).seconds = value["seconds"]
            getattr(request, field).nanos = value["nanos"]
    no_bug(lambda: stub.List(request, timeout=10, metadata=metadata))


@FUZZ
@given(job_id=UINT64 | st.sampled_from([0, 1, 2**63 - 1, 2**63]), offsets=st.tuples(UINT64, UINT64))
def test_fuzzed_ids_and_offsets_never_fail_internally(api: Any, job_id: int, offsets: tuple[int, int]) -> None:
    stub, metadata, parent = api
    no_bug(lambda: stub.Get(pb.GetJobRequest(id=job_id), timeout=10, metadata=metadata))
    no_bug(lambda: stub.WatchMany(pb.WatchManyRequest(ids=[job_id]), timeout=0.2, metadata=metadata))
    start = pb.AttachStart(id=parent, stdout_offset=offsets[0], stderr_offset=offsets[1])
    no_bug(lambda: stub.Attach(iter([pb.AttachRequest(start=start)]), timeout=0.2, metadata=metadata))

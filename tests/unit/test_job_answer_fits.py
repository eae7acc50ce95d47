"""A job's whole answer (Get with its stdin, stdout, stderr and result) fits in one gRPC
message under the server's caps. With 64 MiB for each of the four, the largest job
answer was over the 256 MiB message limit, so its Get, and the UI's download of it,
failed RESOURCE_EXHAUSTED for good; a cap set higher than that is refused at start."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cloudpipe_common.limits import MAX_MESSAGE_BYTES, MAX_STDIN_BYTES
from cloudpipe_server.config import Settings
from cloudpipe_server.convert import job_to_pb
from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.executors.docker_io import CappedOutput
from cloudpipe_server.limits import MAX_EXEC_BYTES, MAX_TAGS_BYTES, MAX_TEXT_BYTES, MAX_VOLUMES
from cloudpipe_server.models import Attempt, Job, JobSpec, JobStatus, Stream

NOW = datetime(2026, 12, 8, tzinfo=UTC)


def capped(cap: int, stream: Stream) -> bytes:
    """A stream that went over the cap: the cap's bytes and the truncation note."""
    output = CappedOutput(cap)
    output.add(stream, b"o" * (cap + 10))
    return output.final(stream)


def largest_job(settings: Settings) -> tuple[Job, list[Attempt]]:
    """A job with every bounded field at (or near) its bound."""
    spec = JobSpec(
        cmd="c" * (MAX_EXEC_BYTES // 2),
        stdin=b"i" * MAX_STDIN_BYTES,
        env={f"V{n}": "e" * 1000 for n in range(MAX_EXEC_BYTES // 2 // 1004)},
        tags={f"t{n}": "g" * 1000 for n in range(MAX_TAGS_BYTES // 1004)},
        name="n" * MAX_TEXT_BYTES,
        image="m" * MAX_TEXT_BYTES,
        volumes=tuple(f"v{n}:/" + "p" * (MAX_TEXT_BYTES - 8) for n in range(MAX_VOLUMES)),
        depends_on=tuple(range(2**62, 2**62 + 10_000)),
    )
    job = Job(
        id=2**62,
        account="a" * 64,
        spec=spec,
        status=JobStatus.ERROR,
        created_at=NOW,
        stdout=capped(settings.output_cap_bytes, Stream.STDOUT),
        stderr=capped(settings.output_cap_bytes, Stream.STDERR),
        result=b"r" * settings.result_cap_bytes,
        reason="x" * 1024,
    )
    attempts = [Attempt(job.id, n, JobStatus.QUEUED, NOW, reason="y" * 1024, owner="o" * 256) for n in range(50)]
    return job, attempts


def test_the_largest_job_answer_fits_in_one_message_under_the_default_caps() -> None:
    job, attempts = largest_job(Settings.from_env({"HOME": "/home/u"}))
    size = job_to_pb(job, attempts=attempts).ByteSize()
    assert size <= MAX_MESSAGE_BYTES, f"{size} bytes vs. the {MAX_MESSAGE_BYTES}-byte message limit"


def test_caps_that_would_make_an_answer_too_large_are_refused_at_start() -> None:
    with pytest.raises(InvalidArgument, match=r"CLOUDPIPE_RESULT_CAP_BYTES .* over the 268435456-byte message limit"):
        Settings.from_env({"HOME": "/home/u", "CLOUDPIPE_RESULT_CAP_BYTES": str(200 << 20)})
    with pytest.raises(InvalidArgument, match="CLOUDPIPE_OUTPUT_CAP_BYTES"):
        Settings.from_env({"HOME": "/home/u", "CLOUDPIPE_OUTPUT_CAP_BYTES": str(64 << 20)})
    # the default result is the stdout, up to the output cap, and it is sent twice
    with pytest.raises(InvalidArgument, match="CLOUDPIPE_OUTPUT_CAP_BYTES"):
        Settings.from_env(
            {"HOME": "/home/u", "CLOUDPIPE_OUTPUT_CAP_BYTES": str(70 << 20), "CLOUDPIPE_RESULT_CAP_BYTES": "1024"}
        )
    raised = Settings.from_env({"HOME": "/home/u", "CLOUDPIPE_RESULT_CAP_BYTES": str(120 << 20)})
    job, attempts = largest_job(raised)
    assert job_to_pb(job, attempts=attempts).ByteSize() <= MAX_MESSAGE_BYTES

"""The failure wording both executors share (issue 16 item 14): what the exec failures
of runc, tini and the warm agent print is told as the execve size limit, not as a
missing /bin/bash or a bare exit code; a warm container lost with its engine is not
blamed on memory. Pure functions: the stderr lines are the ones those programs print."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from cloudpipe_server.executors.agent_protocol import AgentExit
from cloudpipe_server.executors.base import Limits
from cloudpipe_server.executors.docker_io import CappedOutput
from cloudpipe_server.executors.reasons import final_status, warm_death_reason
from cloudpipe_server.executors.warm_container import WarmRun
from cloudpipe_server.executors.warm_outcome import warm_outcome
from cloudpipe_server.models import Job, JobSpec, JobStatus

_FACTS = {"killed": False, "oom_killed": False, "memory_bytes": 1 << 30}


@pytest.mark.parametrize(
    ("exit_code", "stderr"),
    [
        (127, b"exec /sbin/docker-init: argument list too long\n"),  # runc, fresh container
        (1, b"[FATAL tini (7)] exec /bin/bash failed: Argument list too long\n"),  # tini, fresh
        (126, b"cloudpipe: exec /bin/bash failed: [Errno 7] Argument list too long\n"),  # the warm agent
    ],
)
def test_an_exec_over_the_size_limit_is_named_on_both_paths(exit_code: int, stderr: bytes) -> None:
    status, reason = final_status(JobStatus.ERROR, "", exit_code=exit_code, stderr=stderr, **_FACTS)
    assert status is JobStatus.ERROR
    assert "Argument list too long" in reason and "stdin" in reason
    assert "/bin/bash" not in reason


def test_a_missing_bash_and_a_plain_failure_keep_their_own_words() -> None:
    _, no_bash = final_status(
        JobStatus.ERROR, "", exit_code=127, stderr=b"[FATAL tini (7)] exec /bin/bash failed: No such file\n", **_FACTS
    )
    assert no_bash == "the image has no /bin/bash (jobs run as /bin/bash -c CMD)"
    _, plain = final_status(JobStatus.ERROR, "", exit_code=3, stderr=b"boom\n", **_FACTS)
    assert plain == "exited with code 3"


def test_kill_and_oom_win_over_the_exit_code() -> None:
    assert final_status(JobStatus.ERROR, "", exit_code=137, stderr=b"", **{**_FACTS, "killed": True}) == (
        JobStatus.KILLED,
        "killed on request",
    )
    _, oom = final_status(JobStatus.ERROR, "", exit_code=137, stderr=b"", **{**_FACTS, "oom_killed": True})
    assert "out of memory" in oom and str(1 << 30) in oom


def test_a_warm_container_gone_with_its_engine_is_not_blamed_on_memory() -> None:
    gone = warm_death_reason(None, protocol_error="", job_ooms=0, memory_bytes=1 << 30)
    assert "engine" in gone and "memory" not in gone
    # the OOMKilled flag left over from the job's own OOM is not the container's death
    leftover = warm_death_reason({"OOMKilled": True, "ExitCode": 137}, protocol_error="", job_ooms=1, memory_bytes=1)
    assert "memory" not in leftover and "137" in leftover
    oom = warm_death_reason({"OOMKilled": True, "ExitCode": 137}, protocol_error="", job_ooms=0, memory_bytes=1)
    assert "out of memory" in oom


def _warm_run() -> WarmRun:
    loop = asyncio.new_event_loop()
    try:
        return WarmRun(7, loop.create_future(), CappedOutput(1 << 10), lambda chunk: None)
    finally:
        loop.close()


LIMITS = Limits(cpus=1.0, memory_bytes=1 << 28, pids=64, max_runtime=5.0, network=False)
JOB = Job(7, "alice", JobSpec(cmd="sleep 60"), JobStatus.PROCESSING, datetime(2026, 1, 1, tzinfo=UTC))
AT = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
NO_ANSWER = "the warm container ended while running the job: the agent stopped answering"


def test_max_runtime_and_an_agent_that_stopped_answering_are_told_apart() -> None:
    timed_out = warm_outcome(JOB, _warm_run(), None, False, True, NO_ANSWER, LIMITS, AT)
    assert timed_out.status is JobStatus.ERROR
    assert timed_out.reason.startswith("max_runtime exceeded (5 s)") and "did not answer the kill" in timed_out.reason
    assert "stopped answering" not in timed_out.reason
    died = warm_outcome(JOB, _warm_run(), None, False, False, NO_ANSWER, LIMITS, AT)
    assert died.status is JobStatus.ERROR and died.reason == NO_ANSWER and "max_runtime" not in died.reason
    answered = warm_outcome(JOB, _warm_run(), AgentExit(code=137), False, True, "", LIMITS, AT)
    assert answered.status is JobStatus.ERROR and answered.reason == "max_runtime exceeded (5 s)"
    killed = warm_outcome(JOB, _warm_run(), None, True, True, NO_ANSWER, LIMITS, AT)
    assert killed.status is JobStatus.KILLED and killed.reason == "killed on request"

"""How a warm run ended, as an `Outcome` worded like the fresh path's."""

from __future__ import annotations

import logging
from datetime import datetime

from cloudpipe_server.executors.agent_protocol import AgentExit
from cloudpipe_server.executors.base import Limits
from cloudpipe_server.executors.reasons import final_status, result_over_cap
from cloudpipe_server.executors.warm_container import WarmRun
from cloudpipe_server.models import Collected, Job, JobStatus, Outcome, Stream

log = logging.getLogger(__name__)


def warm_outcome(
    job: Job,
    run: WarmRun,
    ended: AgentExit | None,
    killed: bool,
    timed_out: bool,
    died_reason: str,
    limits: Limits,
    finished_at: datetime,
) -> Outcome:
    """The outcome of a warm run, worded as the fresh path words it."""
    stdout, stderr = run.output.final(Stream.STDOUT), run.output.final(Stream.STDERR)
    if ended is None:
        status = JobStatus.KILLED if killed else JobStatus.ERROR
        if killed:
            reason = "killed on request"
        elif timed_out:  # the job's own limit, not the agent's failure: said first
            runtime = f" ({limits.max_runtime:g} s)" if limits.max_runtime else ""
            reason = f"max_runtime exceeded{runtime}; the agent did not answer the kill, so its container was removed"
        else:
            reason = died_reason
        return Outcome(status, finished_at, reason=reason, stdout=stdout, stderr=stderr)
    code = ended.code
    status = JobStatus.DONE if code == 0 and not timed_out else JobStatus.ERROR
    reason = f"max_runtime exceeded ({limits.max_runtime:g} s)" if timed_out and limits.max_runtime else ""
    result = b""
    if job.spec.result_path is None:
        result = stdout if status is JobStatus.DONE else b""
    elif ended.error:
        if status is JobStatus.DONE:
            status, reason = JobStatus.ERROR, ended.error
    elif max(run.result_size, ended.result_size) > run.result_cap:
        if status is JobStatus.DONE:
            size = max(run.result_size, ended.result_size)
            status, reason = JobStatus.ERROR, result_over_cap(size, run.result_cap)
    else:
        result = bytes(run.result)
    status, reason = final_status(
        status,
        reason,
        exit_code=code,
        stderr=stderr,
        killed=killed,
        oom_killed=ended.oom,
        memory_bytes=limits.memory_bytes,
        agent_error=ended.error,
    )
    log.info("job %d: warm run exited with code %d (%s)", job.id, code, status.value)
    return Outcome(
        status=status,
        finished_at=finished_at,
        reason=reason,
        return_code=code,
        stdout=stdout,
        stderr=stderr,
        result=result,
        collected=Collected(
            cputime_user_ns=int(ended.utime * 1e9),
            cputime_system_ns=int(ended.stime * 1e9),
            memory_max_usage_bytes=ended.maxrss_kib * 1024,
            oom_killed=ended.oom,
        ),
    )

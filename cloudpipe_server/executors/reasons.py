"""How a job's failure is worded, the same for fresh and warm containers.

Both executors end a run with the same facts (exit code, stderr, the kernel's OOM
flag, a kill, a stop for max_runtime, a result over the cap) and hand them to
`final_status`; what a user reads is decided here once, so the two paths cannot drift
apart (a command over the execve limit once read "the image has no /bin/bash" when run
warm and "exited with code 1" when run fresh).
"""

from __future__ import annotations

from typing import Any

from cloudpipe_server.models import Job, JobStatus

# The kernel's MAX_ARG_STRLEN (32 pages of 4 KiB): no single argument or environment
# entry ("NAME=value") of an execve may be longer, NUL included.
MAX_ARG_STRLEN = 32 * 4096
_NO_BASH = b"exec /bin/bash failed"  # docker-init (tini) on fresh containers, the agent on warm ones
# How a failed exec starts the container's stderr: runc ("exec /sbin/docker-init: argument
# list too long"), tini ("[FATAL tini (7)] exec /bin/bash failed: ..."), the agent.
_EXEC_FAILURES = (b"exec /", b"[FATAL tini", b"cloudpipe: exec /bin/bash failed")
_E2BIG = b"argument list too long"
_EXEC_HINT = "pass large data through stdin or a file (a `file:` result, a volume) instead"


def result_over_cap(size: int, cap: int) -> str:
    return f"result is {size} bytes, over the cap of {cap} bytes; return less, or write large data to a volume"


def exec_too_big(job: Job) -> str:
    """Why the job's command line or environment cannot be exec'd (the kernel's
    per-argument limit), or "" when it can. Checked before a container is made; the
    total-size limit depends on the container's stack limit and is told after the
    fact, from the exec failure (`final_status`)."""
    cmd = len(job.spec.cmd.encode()) + 1
    if cmd > MAX_ARG_STRLEN:
        return (
            f"the command is {cmd - 1} bytes, over the kernel's limit of {MAX_ARG_STRLEN - 1} bytes"
            f" for one argument (execve: Argument list too long); {_EXEC_HINT}"
        )
    for name, value in job.spec.env.items():
        size = len(name.encode()) + len(value.encode()) + 2
        if size > MAX_ARG_STRLEN:
            return (
                f"environment variable {name[:100]} is {size - 1} bytes, over the kernel's limit of"
                f" {MAX_ARG_STRLEN - 1} bytes for one entry (execve: Argument list too long); {_EXEC_HINT}"
            )
    return ""


def final_status(
    status: JobStatus,
    reason: str,
    *,
    exit_code: int,
    stderr: bytes,
    killed: bool,
    oom_killed: bool,
    memory_bytes: int,
    agent_error: str = "",
) -> tuple[JobStatus, str]:
    """The status and reason a run ends with. `status`/`reason` are what the run found
    so far (DONE or ERROR; "" or why it was stopped or its result refused); the rest are
    the facts both executors have."""
    if killed:
        return JobStatus.KILLED, "killed on request"
    if oom_killed:
        return status, f"killed by the kernel: out of memory (limit {memory_bytes} bytes)"
    head = stderr[:4096]
    if exit_code in (1, 126, 127) and head.startswith(_EXEC_FAILURES) and _E2BIG in head.lower():
        return JobStatus.ERROR, (
            "the command and its environment are over the kernel's size limit for starting a"
            f" program (execve: Argument list too long); {_EXEC_HINT}"
        )
    if exit_code == 126 and agent_error and not reason:
        return status, agent_error
    if exit_code == 127 and _NO_BASH in head:
        return status, "the image has no /bin/bash (jobs run as /bin/bash -c CMD)"
    if status is JobStatus.ERROR and not reason:
        return status, f"exited with code {exit_code}"
    return status, reason


def warm_death_reason(state: dict[str, Any] | None, *, protocol_error: str, job_ooms: int, memory_bytes: int) -> str:
    """Why a warm container ended under its job. `state` is the engine's State of the
    container, None when the engine no longer has it (it was removed: auto-remove after
    the agent ended, or the engine restarted) or did not answer. Out of memory is
    blamed only when the engine says so."""
    why = "the warm container ended while running the job"
    if protocol_error:
        return f"{why}: {protocol_error}"
    if state is None:
        return f"{why}; the engine no longer has it (the Docker engine restarted, or the container was removed)"
    if state.get("OOMKilled") and not job_ooms:  # the flag stays set after a job's own OOM
        return f"{why}: out of memory (limit {memory_bytes} bytes)"
    if state.get("Running"):
        return f"{why}: the agent stopped answering"
    return f"{why} (exit code {state.get('ExitCode')})"

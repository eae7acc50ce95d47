"""Business rules of jobs, shared by the gRPC servicer and the HTTP gateway."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime

from cloudpipe_common.limits import MAX_JOBS_PER_SUBMIT
from cloudpipe_common.logs import job_fields, log_context
from cloudpipe_server.auth.base import Principal
from cloudpipe_server.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from cloudpipe_server.executors.base import Delivery, Signal
from cloudpipe_server.images.access import ImageAccess
from cloudpipe_server.jobs.attach import AttachEvent, Watch
from cloudpipe_server.jobs.compat import RunnerCheck
from cloudpipe_server.jobs.events import JobEvents
from cloudpipe_server.jobs.runner import JobRunner
from cloudpipe_server.limits import check_spec_bounds
from cloudpipe_server.models import (
    TERMINAL_STATUSES,
    Attempt,
    Job,
    JobQuery,
    JobSpec,
    JobStatus,
    ResultType,
    Stream,
)
from cloudpipe_server.store.base import JobStore
from cloudpipe_server.volumes.naming import mounts_any

log = logging.getLogger(__name__)

DEFAULT_LIST_LIMIT = 1000
MAX_LIST_LIMIT = 9999
MAX_JOBS_PER_WATCH = 10_000
_WATCH_BATCH = 200  # ids per store query while watching many jobs (bounds memory)
_TERMINAL = tuple(TERMINAL_STATUSES)  # the statuses a watch of many jobs reads
_WATCH_COALESCE = 0.02  # after a wake-up, let jobs finishing together share one query
MAX_JOB_ID = (1 << 63) - 1  # ids are signed 64-bit in every store; larger ones cannot exist
MAX_TERMINAL_CELLS = 10_000  # rows or columns of a tty job's terminal
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMAGE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.:/@-]*")
# refuses, at submit, jobs naming a volume (VolumeService) or a secret (SecretService)
# their account does not have
AccountCheck = Callable[[str, Sequence[JobSpec]], Awaitable[None]]


def validate_spec(spec: JobSpec, where: str = "job") -> JobSpec:
    """Return the spec if it can run, else raise InvalidArgument naming the field."""
    check_spec_bounds(spec, where)  # sizes first: the checks below scan the strings
    if not spec.cmd.strip():
        raise InvalidArgument(f"{where}.cmd: every job needs a command to execute")
    if "\x00" in spec.cmd:
        raise InvalidArgument(f"{where}.cmd: must not contain NUL bytes")
    if spec.result_source != "stdout" and not spec.result_source.startswith("file:"):
        raise InvalidArgument(
            f'{where}.result_source: invalid result source [{spec.result_source}]; use "stdout" or "file:/path"'
        )
    path = spec.result_path
    if path is not None and not path.startswith("/"):
        raise InvalidArgument(f"{where}.result_source: the file path must be absolute, got {path!r}")
    if spec.image and not _IMAGE.fullmatch(spec.image):
        raise InvalidArgument(f"{where}.image: {spec.image!r} is not a valid Docker image reference")
    for name in spec.env:
        if not _ENV_NAME.fullmatch(name):
            raise InvalidArgument(f"{where}.env: {name!r} is not a valid environment variable name")
    for dep in spec.depends_on:
        if dep > MAX_JOB_ID:
            raise InvalidArgument(f"{where}.depends_on: job {dep} not found")
    if spec.tty:
        if spec.serializer or spec.result_type is ResultType.PICKLE:
            raise InvalidArgument(
                f"{where}.tty: a function job cannot have a terminal (its stdin is the pickled call, "
                "which a terminal would echo and mangle); use tty for shell commands"
            )
        if not spec.interactive:  # a terminal nobody can type into is no use: tty implies it
            spec = replace(spec, interactive=True)
    return spec


def check_terminal_size(rows: int, columns: int) -> None:
    """Raise InvalidArgument unless both are from 1 to MAX_TERMINAL_CELLS."""
    for name, value in (("rows", rows), ("columns", columns)):
        if not 1 <= value <= MAX_TERMINAL_CELLS:
            raise InvalidArgument(f"resize.{name}: must be from 1 to {MAX_TERMINAL_CELLS}, got {value}")


class JobService:
    """What a caller can do with jobs. Every call is scoped to the caller's account."""

    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        events: JobEvents,
        clock: Callable[[], datetime],
        poll_interval: float = 0.5,
        *,
        watch: Watch,
        max_queued_per_account: int = 0,
        queue_limit: Callable[[str], Awaitable[int]] | None = None,
        runner_check: RunnerCheck | None = None,
        image_access: ImageAccess | None = None,
        default_image: str = "",
        mount_check: AccountCheck | None = None,
        secret_check: AccountCheck | None = None,
    ) -> None:
        self._store = store
        self.default_image = default_image  # what jobs without an image run in
        self._runner_check = runner_check
        self._image_access = image_access
        self._mount_check = mount_check
        self._secret_check = secret_check
        self._watch = watch
        self._max_queued = max_queued_per_account
        self._queue_limit = queue_limit  # an account's own limit (its override, else the default)
        self._runner = runner
        self._events = events
        self._clock = clock
        self._poll_interval = poll_interval

    async def submit(self, caller: Principal, specs: Sequence[JobSpec]) -> list[int]:
        if len(specs) > MAX_JOBS_PER_SUBMIT:
            raise ResourceExhausted(f"jobs: at most {MAX_JOBS_PER_SUBMIT} jobs per submit, got {len(specs)}")
        checked = [validate_spec(spec, f"jobs[{i}]") for i, spec in enumerate(specs)]
        if self._image_access is not None:
            await self._image_access.check(caller.account, checked)
        if self._mount_check is not None and any(mounts_any(spec.volumes) for spec in checked):
            await self._mount_check(caller.account, checked)
        if self._secret_check is not None and any(spec.secrets or spec.storage_secret for spec in checked):
            await self._secret_check(caller.account, checked)
        if self._runner_check is not None:
            checked = await self._runner_check.resolve(checked)
        await self._check_queue_quota(caller, len(checked))
        ids = await self._store.submit(caller.account, checked, self._clock())
        for job_id, spec in zip(ids, checked, strict=True):
            log.info(
                "job %d: queued for account %s (%s)",
                job_id,
                caller.account,
                spec.image or "default image",
                extra=job_fields(job_id, caller.account),
            )
        if ids:
            self._runner.wake()
        return ids

    async def _check_queue_quota(self, caller: Principal, adding: int) -> None:
        """At most the account's queued limit of WAITING + QUEUED jobs: `queue_limit(account)`
        (its override, else the default) when given, else `max_queued_per_account`; 0:
        none. Checked before the insert, not in it: concurrent submits may overshoot a
        little."""
        if not adding:
            return
        limit = self._max_queued if self._queue_limit is None else await self._queue_limit(caller.account)
        if not limit:
            return
        counts = await self._store.counts(caller.account)
        pending = counts[JobStatus.WAITING] + counts[JobStatus.QUEUED]
        if pending + adding > limit:
            raise ResourceExhausted(
                f"account {caller.account} has {pending} queued job(s) and its limit is {limit}"
                f" (its quota, else CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT): {adding} more cannot be queued;"
                " wait for some to finish"
            )

    async def get(self, caller: Principal, job_id: int, *, with_output: bool = True) -> Job:
        """The caller's job; with `with_output=False`, without its output, result and
        stdin (as a summary of `list_jobs`). NotFound when missing or another's."""
        job = await self._store.get(_existing_id(job_id), caller.account, with_output=with_output)
        return job if with_output else _summary(job)

    async def attempts(self, caller: Principal, job_id: int) -> list[Attempt]:
        """The job's ended attempts, oldest first (`JobStore.attempts`); NotFound like `get`."""
        return await self._store.attempts(_existing_id(job_id), caller.account)

    async def list_jobs(self, caller: Principal, query: JobQuery) -> list[Job]:
        if query.limit < 0:
            raise InvalidArgument(f"limit: must be positive, got {query.limit}")
        limit = min(query.limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        ids = tuple(i for i in query.ids if i <= MAX_JOB_ID)
        if query.ids and not ids:
            return []
        bounded = replace(
            query,
            limit=limit,
            ids=ids,
            after_id=min(query.after_id, MAX_JOB_ID),
            before_id=min(query.before_id, MAX_JOB_ID),
        )
        jobs = await self._store.list_jobs(caller.account, bounded)
        if not query.with_output:
            return jobs  # the store left the outputs out (a projection on every backend)
        # Running jobs show their output so far, as Get does (and as the original API did).
        for job in jobs:
            if job.status is JobStatus.PROCESSING:
                job.stdout = await self._store.read_output(job.id, Stream.STDOUT, 0)
                job.stderr = await self._store.read_output(job.id, Stream.STDERR, 0)
        return jobs

    async def statuses(self, caller: Principal, job_ids: Sequence[int]) -> dict[int, JobStatus]:
        """The status of each of these jobs of the caller's account that exists (missing
        and foreign ids are left out), without reading any output."""
        wanted = sorted({job_id for job_id in job_ids if 0 < job_id <= MAX_JOB_ID})
        found: dict[int, JobStatus] = {}
        for start in range(0, len(wanted), MAX_LIST_LIMIT):
            batch = tuple(wanted[start : start + MAX_LIST_LIMIT])
            for job in await self._store.list_jobs(caller.account, JobQuery(ids=batch, limit=len(batch))):
                found[job.id] = job.status
        return found

    async def kill(self, caller: Principal, job_id: int) -> Job:
        with log_context(job_id=job_id, account=caller.account):  # the executor's lines too
            job = await self._store.request_kill(_existing_id(job_id), caller.account, self._clock())
            if job.status is JobStatus.PROCESSING:
                await self._runner.kill(job_id)
            log.info("job %d: kill requested by %s (now %s)", job_id, caller.account, job.status.value)
        self._events.publish(job_id)
        return job

    async def kill_all(self, caller: Principal) -> list[int]:
        ids = await self._store.kill_all(caller.account, self._clock())
        running = self._runner.running_job_ids
        await asyncio.gather(*(self._runner.kill(job_id) for job_id in ids if job_id in running))
        for job_id in ids:
            self._events.publish(job_id)
        log.info("kill-all by %s: %d job(s)", caller.account, len(ids))
        return ids

    async def delete(self, caller: Principal, job_ids: Sequence[int]) -> list[int]:
        """Delete finished jobs of the caller with their output, all or none (`rm`).
        NotFound for a missing or foreign id, FailedPrecondition for an unfinished job."""
        if not job_ids:
            raise InvalidArgument("ids: name at least one job")
        if len(job_ids) > MAX_JOBS_PER_WATCH:
            raise InvalidArgument(f"ids: at most {MAX_JOBS_PER_WATCH} jobs per call, got {len(job_ids)}")
        deleted = await self._store.delete_finished(caller.account, [_existing_id(i) for i in job_ids])
        log.info("%d job(s) deleted by %s: %s", len(deleted), caller.account, " ".join(map(str, deleted)))
        return deleted

    async def watch(self, caller: Principal, job_id: int) -> AsyncIterator[Job]:
        """Yield the job now and after each status change, ending after a terminal one."""
        job = await self._store.get(_existing_id(job_id), caller.account, with_output=False)
        yield job
        last = job.status
        while not last.terminal:
            await self._events.wait(job_id, self._poll_interval)
            job = await self._store.get(job_id, caller.account, with_output=False)
            if job.status is not last:
                last = job.status
                yield job

    async def watch_many(self, caller: Principal, job_ids: Sequence[int]) -> AsyncIterator[Job]:
        """Yield each distinct job once, when it is terminal: the finished ones at once,
        the others as they finish, without their output (a status event needs none, and
        reading a few 10 MB outputs held the store up for seconds). Raises NotFound,
        before yielding anything, when an id is not one of the caller's jobs."""
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            raise InvalidArgument("ids: name at least one job")
        if len(ids) > MAX_JOBS_PER_WATCH:
            raise InvalidArgument(f"ids: at most {MAX_JOBS_PER_WATCH} jobs per watch, got {len(ids)}")
        if 0 in ids:
            raise InvalidArgument("ids: a job id is required, got 0")
        with self._events.subscribe(ids) as subscription:  # before the first read: no change slips between
            known = await self._find(caller, ids, ())
            missing = [i for i in ids if i not in known]
            if missing:
                shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
                raise NotFound(f"job(s) {shown} not found")
            pending = set(ids)
            finished = [job for job in known.values() if job.status.terminal]
            swept = time.monotonic()
            while True:
                for job in finished:
                    pending.discard(job.id)
                    yield job
                self._events.unsubscribe(subscription, [job.id for job in finished])
                if not pending:
                    return
                changed = await subscription.changed(self._poll_interval)
                await asyncio.sleep(_WATCH_COALESCE)
                changed |= subscription.take()
                if time.monotonic() - swept >= self._poll_interval:
                    # every poll interval all of them: another replica's changes wake no one here
                    changed, swept = set(pending), time.monotonic()
                finished = list((await self._find(caller, sorted(changed & pending), _TERMINAL)).values())

    async def _find(self, caller: Principal, ids: Sequence[int], statuses: tuple[JobStatus, ...]) -> dict[int, Job]:
        """The caller's jobs among `ids` (in these statuses, when given), queried in batches."""
        found: dict[int, Job] = {}
        for start in range(0, len(ids), _WATCH_BATCH):
            batch = tuple(i for i in ids[start : start + _WATCH_BATCH] if i <= MAX_JOB_ID)
            if batch:
                query = JobQuery(ids=batch, statuses=statuses, limit=len(batch), with_output=False)
                found.update((job.id, job) for job in await self._store.list_jobs(caller.account, query))
        return found

    async def attach(self, caller: Principal, job_id: int, offsets: dict[Stream, int]) -> AsyncIterator[AttachEvent]:
        """Output from `offsets`, status changes and the end of the job (see attach.py)."""
        if any(offset < 0 for offset in offsets.values()):
            raise InvalidArgument("offsets: must not be negative")
        offsets = {stream: min(offset, MAX_JOB_ID) for stream, offset in offsets.items()}  # past any end
        job = await self._store.get(_existing_id(job_id), caller.account)
        async for event in self._watch.follow(job, offsets):
            yield event

    async def write_stdin(self, caller: Principal, job_id: int, data: bytes) -> None:
        """Deliver stdin in order; input sent before the job's container runs waits for it."""
        await self._deliver(caller, job_id, "send stdin to", lambda: self._runner.write_stdin(job_id, data))

    async def close_stdin(self, caller: Principal, job_id: int) -> None:
        await self._deliver(caller, job_id, "close stdin of", lambda: self._runner.close_stdin(job_id))

    async def resize(self, caller: Principal, job_id: int, rows: int, columns: int) -> None:
        """Set a tty job's terminal size. Refused (FailedPrecondition) for a job without a
        terminal; waits, as stdin does, until the job's container runs; ignored once the
        job ended (a size sent as it ends is no error: nothing is left to resize)."""
        check_terminal_size(rows, columns)
        job = await self._store.get(_existing_id(job_id), caller.account, with_output=False)
        if not job.spec.tty:
            raise FailedPrecondition(f"cannot resize job {job_id}: it has no terminal (it was not submitted with tty)")
        try:
            await self._deliver(caller, job_id, "resize", lambda: self._runner.resize(job_id, rows, columns))
        except FailedPrecondition:
            job = await self._store.get(job_id, caller.account, with_output=False)
            if not job.status.terminal:
                raise  # it runs on another server
            log.debug("job %d: resize ignored, the job ended", job_id, extra=job_fields(job_id))

    async def _deliver(
        self, caller: Principal, job_id: int, action: str, attempt: Callable[[], Awaitable[Delivery]]
    ) -> None:
        while True:
            job = await self._store.get(_existing_id(job_id), caller.account, with_output=False)
            if job.status.terminal:
                raise FailedPrecondition(f"cannot {action} job {job_id}: it ended {job.status.value}")
            if not job.spec.interactive:
                raise FailedPrecondition(f"job {job_id} was not submitted as interactive: its stdin is closed")
            if job.status is JobStatus.PROCESSING:
                if not self._runner.runs_here(job_id):
                    raise FailedPrecondition(f"cannot {action} job {job_id}: it runs on another server; attach there")
                delivery = await attempt()
                if delivery == "written":
                    return
                if delivery == "closed":
                    raise FailedPrecondition(f"cannot {action} job {job_id}: its stdin is closed")
            await self._events.wait(job_id, 0.05 if job.status is JobStatus.PROCESSING else self._poll_interval)

    async def signal(self, caller: Principal, job_id: int, signal: Signal | None) -> None:
        """Deliver TERM or INT; None means kill (TERM, grace, KILL; the job ends KILLED)."""
        if signal is None:
            await self.kill(caller, job_id)
            return
        await self._running_here(caller, job_id, "signal")
        await self._runner.signal(job_id, signal)

    async def _running_here(self, caller: Principal, job_id: int, action: str) -> Job:
        job = await self._store.get(_existing_id(job_id), caller.account, with_output=False)
        if job.status.terminal:
            raise FailedPrecondition(f"cannot {action} job {job_id}: it ended {job.status.value}")
        if job.status is not JobStatus.PROCESSING or not self._runner.runs_here(job_id):
            raise FailedPrecondition(
                f"cannot {action} job {job_id} now: it is {job.status.value}"
                + ("" if job.status is not JobStatus.PROCESSING else " on another server; attach there")
            )
        return job

    async def counts(self, caller: Principal) -> dict[JobStatus, int]:
        return await self._store.counts(caller.account)


def _summary(job: Job) -> Job:
    """The job without its output, result and stdin."""
    return replace(job, stdout=b"", stderr=b"", result=b"", spec=replace(job.spec, stdin=b""))


def _existing_id(job_id: int) -> int:
    if job_id > MAX_JOB_ID:
        raise NotFound(f"job {job_id} not found")
    return job_id

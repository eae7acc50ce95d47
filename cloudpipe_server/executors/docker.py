"""Run jobs in containers of the local Docker engine, through the `docker` SDK.

One run: make sure the image exists (pull it when allowed), create the container
(non-root, no capabilities, CPU/memory/pids limits, no network unless asked, an init
process, labelled with the job id and the server's identity), attach once for stdin,
stdout and stderr, start, feed stdin, wait (bounded by max_runtime) while output is
handed to the observer as it arrives, copy a `file:` result out with `get_archive`,
then remove the container.

A server that restarts with the same identity re-adopts its containers (`adopt`): it
waits for them and reads their output from the engine's log (text-safe only: the
json-file log driver replaces invalid UTF-8). Blocking calls run in daemon threads, so
a stopping server leaves its containers running instead of waiting for them.

The engine is first contacted by `reachable()` or a run, never by the constructor: a
server starts (and serves reads) while its engine is down. A run that cannot reach the
engine before its container started raises `ExecutorUnavailable` (nothing ran; the
dispatcher gives the job back). When the engine stops answering after the start, the
container is left where it is and `EngineLost` is raised: the dispatcher re-adopts the
job once the engine answers (the output streamed so far is stored meanwhile). Any
other engine error after the start ends the job ERROR with the output read so far.

(Well over 400 lines, on purpose: one run's whole life on the engine (create, attach,
start, wait, outcome, copy-out, adopt) and the calls that act on a running container
(kill, signal, stdin) share the table of runs in progress and read best in one place;
stream I/O is in docker_io, container settings in container_config, inputs and outputs
in docker_transfers, and the warm pool builds on this in warm*.py.)
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import docker
import docker.errors
import docker.utils
import requests.exceptions
from docker.types import Mount

from cloudpipe_common.limits import DEFAULT_OUTPUT_CAP_BYTES, DEFAULT_RESULT_CAP_BYTES
from cloudpipe_common.logs import job_fields
from cloudpipe_common.waiting import within
from cloudpipe_server.executors.base import (
    Delivery,
    EngineLost,
    Executor,
    ExecutorUnavailable,
    Limits,
    ManagedContainer,
    NeverStarted,
    RunObserver,
    Signal,
)
from cloudpipe_server.executors.container_config import (
    bounded_log_config,
    confined_host_config,
    job_environment,
    job_user,
    secret_files_archive,
    user_ids,
)
from cloudpipe_server.executors.docker_io import (
    AttachedStreams,
    CappedOutput,
    ResultTooLarge,
    StatsSampler,
    concatenated_files,
    in_daemon_thread,
)
from cloudpipe_server.executors.docker_transfers import put_transfers, upload_outputs
from cloudpipe_server.executors.reasons import exec_too_big, final_status, result_over_cap
from cloudpipe_server.models import Collected, Job, JobStatus, Outcome, Stream
from cloudpipe_server.transfers.base import TransferFailed
from cloudpipe_server.transfers.service import Transfers
from cloudpipe_server.volumes.naming import LABEL_ACCOUNT as LABEL_VOLUME_ACCOUNT
from cloudpipe_server.volumes.naming import engine_name, parse_mounts

log = logging.getLogger(__name__)

LABEL_JOB = "org.cloudpipe.job"
LABEL_OWNER = "org.cloudpipe.owner"
LABEL_CLUSTER = "org.cloudpipe.cluster"
LABEL_POOL = "org.cloudpipe.pool"  # warm containers (job label 0): the pooled executor's to sweep
_NAME_OK = re.compile(r"[^a-zA-Z0-9_.-]+")
_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)
PING_TIMEOUT = 5.0


class _EngineDown(docker.errors.DockerException):  # type: ignore[misc]
    """The engine could not be reached (no client could be made, or none yet)."""


# the engine did not answer at all (as opposed to answering with an error)
_UNREACHABLE = (_EngineDown, requests.exceptions.ConnectionError, requests.exceptions.Timeout)
# ... or stopped answering in the middle of a response (a long wait, a log stream)
_CUT = (*_UNREACHABLE, requests.exceptions.ChunkedEncodingError)
_GO_MODE_DIR = 1 << 31  # os.ModeDir in the engine's path stat


@dataclass(frozen=True)
class DockerConfig:
    """How containers are made."""

    owner: str
    # Servers sharing one store form a cluster; a server only sweeps its cluster's
    # containers, so installations sharing a Docker engine leave each other alone.
    cluster: str
    base_url: str = ""  # empty: from the environment (DOCKER_HOST) or the local socket
    job_user: str = "65534:65534"
    pull_missing_images: bool = True
    output_cap_bytes: int = DEFAULT_OUTPUT_CAP_BYTES
    result_cap_bytes: int = DEFAULT_RESULT_CAP_BYTES
    kill_grace_seconds: int = 3


def _client_for(base_url: str) -> docker.DockerClient:
    """The engine's client: DOCKER_HOST's (and its TLS) when `base_url` is empty; for a
    tcp:// engine, the mutual TLS of DOCKER_CERT_PATH / DOCKER_TLS_VERIFY, as the docker
    CLI uses them (the server refuses tcp:// nodes without them: nodes.spec)."""
    if not base_url:
        return docker.from_env()
    tls = docker.utils.kwargs_from_env().get("tls", False) if base_url.startswith("tcp://") else False
    return docker.DockerClient(base_url=base_url, tls=tls)


@dataclass
class _Run:
    """What the executor knows about a job it runs now."""

    container_id: str | None = None
    streams: AttachedStreams | None = None
    killed: bool = False
    started: bool = False
    # a tty job's terminal size (rows, columns), the latest asked for; set on the engine
    # from its start on, one call at a time (`_apply_size`), so the last asked wins
    size: tuple[int, int] | None = None
    sizing: threading.Lock = field(default_factory=threading.Lock)
    # a tty job's input waits for its start and its first size, so what was typed (or
    # sized) before the start reaches a terminal of the size asked, in that order
    input_held: bool = False


class DockerExecutor(Executor):
    """`Executor` on one Docker engine."""

    def __init__(self, config: DockerConfig, clock: Callable[[], datetime], transfers: Transfers | None = None) -> None:
        """`transfers` fetches jobs' inputs and uploads their outputs (None: a job with
        either fails with a reason saying this server does not do them)."""
        self._config = config
        self._clock = clock
        self._transfers = transfers
        self._client: docker.DockerClient | None = None  # made on first contact (`_engine`)
        self._connect_lock = threading.Lock()
        self._runs: dict[int, _Run] = {}
        self._lock = threading.Lock()
        self._image_users: dict[str, str] = {}
        self._closing = False

    @property
    def api(self) -> docker.APIClient:
        """The engine's API client: one per engine, shared with the warm pool and closed
        by `close()`. Made on first use (see `_engine`): the first call contacts the
        engine, briefly (a refused or missing socket fails at once); raises (a
        `docker.errors.DockerException`) while the engine does not answer."""
        client = self._client
        return client.api if client is not None else self._engine().api

    def _engine(self) -> docker.DockerClient:
        """The client, made on first use (it asks the engine for its API version, so
        this blocks: worker threads only). Raises `_EngineDown` when the engine does
        not answer."""
        with self._connect_lock:
            if self._client is None:
                base_url = self._config.base_url
                try:
                    self._client = _client_for(base_url)
                except docker.errors.DockerException as exc:
                    raise _EngineDown(str(exc)) from None
            return self._client

    def _ping(self) -> bool:
        try:
            return bool(self._engine().ping())
        except _ENGINE_ERRORS as exc:
            log.debug("the Docker engine does not answer: %s", exc)
            return False

    # -- the Executor interface ---------------------------------------------------------

    def start(self) -> None:
        """Nothing runs in the background: each job's run is its own thread."""

    async def reachable(self) -> bool:
        try:  # a daemon thread: a hung engine leaves no worker of the default pool stuck
            return await within(in_daemon_thread(self._ping), PING_TIMEOUT)
        except TimeoutError:
            return False

    async def run(self, job: Job, image: str, limits: Limits, observer: RunObserver) -> Outcome:
        return await in_daemon_thread(self._run, job, image, limits, observer)

    async def adopt(self, job: Job, limits: Limits) -> Outcome | None:
        filters = {"label": [f"{LABEL_JOB}={job.id}", f"{LABEL_OWNER}={self._config.owner}"]}
        try:
            found = await asyncio.to_thread(lambda: self._engine().api.containers(all=True, filters=filters))
        except _UNREACHABLE as exc:
            raise EngineLost(f"the Docker engine did not answer: {exc}") from None
        if not found:
            return None
        return await in_daemon_thread(self._adopt, job, str(found[0]["Id"]), limits)

    async def kill(self, job_id: int) -> bool:
        with self._lock:
            run = self._runs.get(job_id)
            if run is None:
                return False
            run.killed = True
            container_id = run.container_id
        if container_id is None:  # not created yet: `_run` sees the flag and never starts it
            return True
        log.info("job %d: stopping container %s", job_id, container_id[:12])
        try:
            await asyncio.to_thread(self.api.stop, container_id, timeout=self._config.kill_grace_seconds)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("job %d: stopping container failed: %s", job_id, exc)
        return True

    async def signal(self, job_id: int, signal: Signal) -> bool:
        container_id = self._container_of(job_id)
        if container_id is None:
            return False
        try:
            await asyncio.to_thread(self.api.kill, container_id, signal=signal.value)
        except docker.errors.APIError as exc:
            log.info("job %d: %s not delivered: %s", job_id, signal.value, exc)
            return False
        return True

    async def write_stdin(self, job_id: int, data: bytes) -> Delivery:
        return await self._to_stdin(job_id, lambda streams: streams.write_stdin(data))

    async def close_stdin(self, job_id: int) -> Delivery:
        return await self._to_stdin(job_id, AttachedStreams.close_stdin)

    async def resize(self, job_id: int, rows: int, columns: int) -> Delivery:
        with self._lock:
            run = self._runs.get(job_id)
            if run is None:  # not ours yet (or just ended)
                return "not-started"
            # before the start it is kept for it (the engine's API 1.41 takes no size at create)
            run.size = (rows, columns)
            started = run.started
        if started:
            await asyncio.to_thread(self._apply_size, job_id, run)
        return "written"

    def _apply_size(self, job_id: int, run: _Run) -> None:
        """Set the run's latest asked terminal size on its started container."""
        with run.sizing:
            with self._lock:
                size, container_id = run.size, run.container_id
            if size is None or container_id is None:
                return
            try:
                self.api.resize(container_id, height=size[0], width=size[1])
            except docker.errors.APIError as exc:  # it exited meanwhile: nothing left to resize
                log.info("job %d: terminal not resized: %s", job_id, exc, extra=job_fields(job_id))

    async def _to_stdin(self, job_id: int, action: Callable[[AttachedStreams], bool]) -> Delivery:
        """Run a blocking stdin action on the job's attached streams, in a thread."""
        with self._lock:
            run = self._runs.get(job_id)
        if run is None:
            # the dispatcher has claimed the job but not handed it over yet (or its run has
            # just ended and the outcome is on its way): the caller tries again, and stops
            # once the job has ended or does not run here
            return "not-started"
        streams = run.streams
        if streams is None or run.input_held:
            return "not-started"
        return "written" if await asyncio.to_thread(action, streams) else "closed"

    async def image_labels(self, image: str) -> dict[str, str] | None:
        try:
            # through `_engine`: the first contact may be this one (a warm pool's pre-warm)
            attrs = await asyncio.to_thread(lambda: self._engine().api.inspect_image(image))
        except _ENGINE_ERRORS:
            return None
        return dict((attrs.get("Config") or {}).get("Labels") or {})

    async def list_managed(self) -> list[ManagedContainer]:
        found = await asyncio.to_thread(
            self.api.containers, all=True, filters={"label": [LABEL_JOB, f"{LABEL_CLUSTER}={self._config.cluster}"]}
        )
        managed = []
        for item in found:
            labels = item.get("Labels") or {}
            if LABEL_POOL in labels:
                continue  # another server's warm container may be live: not an orphan job's
            try:
                managed.append(ManagedContainer(item["Id"], int(labels[LABEL_JOB]), labels.get(LABEL_OWNER, "")))
            except (KeyError, ValueError):
                log.warning("container %s has a malformed job label; leaving it alone", item.get("Id", "?")[:12])
        return managed

    async def remove(self, container_id: str) -> None:
        try:
            await asyncio.to_thread(self.api.remove_container, container_id, force=True)
        except docker.errors.NotFound:
            pass

    async def close(self) -> None:
        self._closing = True  # runs still in flight leave their containers to be re-adopted
        if self._client is not None:
            await asyncio.to_thread(self._client.close)

    # -- bookkeeping --------------------------------------------------------------------

    def _container_of(self, job_id: int) -> str | None:
        with self._lock:
            run = self._runs.get(job_id)
            return run.container_id if run else None

    def _forget(self, job_id: int, container_id: str | None) -> None:
        """The run is over. Its container is removed in the background: the outcome is
        known already, and a container left by a crash is the orphan sweep's."""
        with self._lock:
            self._runs.pop(job_id, None)
        if container_id is None or self._closing:
            return
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._remove_quietly, job_id, container_id),
            daemon=True,
            name="cloudpipe-remove",
        ).start()

    def _remove_quietly(self, job_id: int, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except _ENGINE_ERRORS as exc:
            log.warning(
                "job %d: could not remove container %s: %s", job_id, container_id[:12], exc, extra=job_fields(job_id)
            )

    # -- one run, in a worker thread ------------------------------------------------------

    def _run(self, job: Job, image: str, limits: Limits, observer: RunObserver) -> Outcome:
        run = _Run()
        with self._lock:
            self._runs[job.id] = run
        too_big = exec_too_big(job)
        if too_big:
            self._forget(job.id, None)
            return Outcome(JobStatus.ERROR, self._clock(), reason=too_big)
        try:
            self._engine()
            user = self._user_for(image)
            with self._staged_inputs(job, user, run) as staged:
                container_id = self._create(job, image, limits, user, staged)
        except _JobError as exc:
            self._forget(job.id, None)
            if run.killed:  # while its image was pulled or its inputs fetched
                return Outcome(JobStatus.KILLED, self._clock(), reason="killed before it started")
            return Outcome(JobStatus.ERROR, self._clock(), reason=str(exc))
        except _UNREACHABLE as exc:
            self._forget(job.id, None)
            raise ExecutorUnavailable(f"the Docker engine did not answer: {exc}") from None
        except _ENGINE_ERRORS as exc:
            self._forget(job.id, None)
            return Outcome(JobStatus.ERROR, self._clock(), reason=f"Docker engine unavailable: {exc}")
        except BaseException:  # anything else (a bug): the run is over all the same
            self._forget(job.id, None)
            raise
        with self._lock:
            run.container_id = container_id
            killed_early = run.killed
        keep_container = False
        try:
            if killed_early:
                return Outcome(JobStatus.KILLED, self._clock(), reason="killed before it started")
            return self._start_and_wait(job, run, container_id, limits, observer)
        except _ENGINE_ERRORS as exc:
            if not run.started and isinstance(exc, _UNREACHABLE):
                log.warning("job %d: the Docker engine did not answer before the start: %s", job.id, exc)
                raise ExecutorUnavailable(f"the Docker engine did not answer: {exc}") from None
            if isinstance(exc, _CUT):  # the container runs on: re-adopted later
                log.warning("job %d: the Docker engine stopped answering mid-run: %s", job.id, exc)
                keep_container = True
                raise EngineLost(f"the Docker engine stopped answering while the job ran: {exc}") from None
            log.warning("job %d: Docker failed mid-run: %s", job.id, exc)
            # keep what the job wrote so far: the outcome's output replaces the stored chunks
            stdout, stderr = run.streams.collect(timeout=1) if run.streams is not None else (b"", b"")
            return Outcome(
                JobStatus.ERROR,
                self._clock(),
                reason=f"Docker engine error while running: {exc}",
                stdout=stdout,
                stderr=stderr,
            )
        finally:
            self._forget(job.id, None if keep_container else container_id)

    def _start_and_wait(self, job: Job, run: _Run, container_id: str, limits: Limits, observer: RunObserver) -> Outcome:
        # One attach, made before start so no output is missed: stdin in, stdout and
        # stderr out as a multiplexed, binary-safe stream (the engine's log is not); a
        # tty job's is its terminal's raw bytes, one stream, read as stdout.
        keep_stdin = bool(job.spec.stdin) or job.spec.interactive
        attach = self.api.attach_socket(
            container_id, params={"stdin": int(keep_stdin), "stdout": 1, "stderr": 1, "stream": 1}
        )
        streams = AttachedStreams(attach, self._config.output_cap_bytes, job.id, observer.output, tty=job.spec.tty)
        with self._lock:
            run.streams = streams
            run.input_held = job.spec.tty
        with self._lock:
            killed = run.killed
        if killed:  # the kill came after the create: its stop found nothing running
            streams.close()
            return Outcome(JobStatus.KILLED, self._clock(), reason="killed before it started")
        try:
            self.api.start(container_id)
        except docker.errors.APIError as exc:
            streams.close()
            return Outcome(
                JobStatus.ERROR, self._clock(), reason=f"the container did not start: {exc.explanation or exc}"
            )
        with self._lock:
            run.started = True
            killed = run.killed
        if job.spec.tty:  # a size asked for before the start: set as soon as it can be
            self._apply_size(job.id, run)
            run.input_held = False
        if killed:  # the kill came during the start: its stop may have come before it
            log.info("job %d: killed while its container started; stopping it", job.id)
            self.api.stop(container_id, timeout=self._config.kill_grace_seconds)
        observer.started(container_id, self._clock())
        log.info("job %d: container %s started", job.id, container_id[:12])
        streams.start()
        stats = StatsSampler(self.api.stats(container_id, stream=True, decode=True))
        stats.start()
        if keep_stdin:
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(streams.write_stdin, job.spec.stdin),
                kwargs={"then_close": not job.spec.interactive},
                daemon=True,
            ).start()
        exit_code, reason = self._wait(container_id, limits.max_runtime)
        finished_at = self._clock()
        stdout, stderr = streams.collect(timeout=10)
        oom_killed = bool(self.api.inspect_container(container_id).get("State", {}).get("OOMKilled"))
        return self._outcome(
            job, container_id, limits, exit_code, reason, finished_at, stdout, stderr, stats.result(oom_killed), run
        )

    def _adopt(self, job: Job, container_id: str, limits: Limits) -> Outcome:
        run = _Run(container_id=container_id, started=True)
        with self._lock:
            self._runs[job.id] = run
        log.info("job %d: re-adopting container %s", job.id, container_id[:12])
        keep_container = False
        try:
            if self.api.inspect_container(container_id).get("State", {}).get("Status") == "created":
                # waiting on it would answer at once with code 0: a DONE job that never ran
                log.warning("job %d: container %s was never started; removing it", job.id, container_id[:12])
                self.api.remove_container(container_id, force=True)
                keep_container = True  # removed already
                raise NeverStarted("its container was created, but the server stopped before starting it")
            remaining = limits.max_runtime
            if remaining is not None and job.container_started_at is not None:
                remaining = max(remaining - (self._clock() - job.container_started_at).total_seconds(), 0.1)
            exit_code, reason = self._wait(container_id, remaining)
            finished_at = self._clock()
            stdout, stderr = self._logged_output(container_id)
            state = self.api.inspect_container(container_id).get("State", {})
            collected = Collected(oom_killed=bool(state.get("OOMKilled")))
            return self._outcome(
                job, container_id, limits, exit_code, reason, finished_at, stdout, stderr, collected, run
            )
        except _CUT as exc:
            keep_container = True
            log.warning("job %d: the Docker engine stopped answering while re-adopting: %s", job.id, exc)
            raise EngineLost(f"the Docker engine stopped answering while the job ran: {exc}") from None
        except _ENGINE_ERRORS as exc:
            log.warning("job %d: Docker failed while re-adopting: %s", job.id, exc)
            return Outcome(JobStatus.ERROR, self._clock(), reason=f"Docker engine error while running: {exc}")
        finally:
            self._forget(job.id, None if keep_container else container_id)

    def _logged_output(self, container_id: str) -> tuple[bytes, bytes]:
        """The container's stdout and stderr from the engine's log, streamed and kept up
        to the output cap (as the attached path keeps them): never read whole."""
        output = CappedOutput(self._config.output_cap_bytes)
        for stream in (Stream.STDOUT, Stream.STDERR):
            pieces = self.api.logs(
                container_id, stdout=stream is Stream.STDOUT, stderr=stream is Stream.STDERR, stream=True, follow=False
            )
            try:
                for piece in pieces:
                    output.add(stream, piece)  # counted beyond the cap, not kept
            finally:
                pieces.close()
        return output.final(Stream.STDOUT), output.final(Stream.STDERR)

    def _wait(self, container_id: str, max_runtime: float | None) -> tuple[int, str]:
        """Wait for the container to exit: (exit code, "" or why it was stopped)."""
        waited_from = time.monotonic()
        try:
            return int(self.api.wait(container_id, timeout=max_runtime)["StatusCode"]), ""
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError):
            # the SDK reports a read timeout on the unix socket as a ConnectionError
            if max_runtime is None or time.monotonic() - waited_from < max_runtime:
                raise
            self.api.kill(container_id)
            exit_code = int(self.api.wait(container_id, timeout=30)["StatusCode"])
            return exit_code, "max_runtime exceeded"

    def _outcome(
        self,
        job: Job,
        container_id: str,
        limits: Limits,
        exit_code: int,
        reason: str,
        finished_at: datetime,
        stdout: bytes,
        stderr: bytes,
        collected: Collected,
        run: _Run,
    ) -> Outcome:
        if reason == "max_runtime exceeded" and limits.max_runtime is not None:
            reason = f"max_runtime exceeded ({limits.max_runtime:g} s)"
        status = JobStatus.DONE if exit_code == 0 and not reason else JobStatus.ERROR
        result = b""
        path = job.spec.result_path
        if path is None:
            result = stdout if status is JobStatus.DONE else b""
        else:
            try:
                result = self._copy_out(container_id, path)
            except _JobError as exc:
                if status is JobStatus.DONE:
                    status, reason = JobStatus.ERROR, str(exc)
        with self._lock:
            killed = run.killed
        if status is JobStatus.DONE and job.spec.outputs and not killed:
            problem = self._upload_outputs(job, container_id, run)  # only a job that ended DONE uploads
            if problem:
                status, reason = JobStatus.ERROR, problem
            with self._lock:
                killed = run.killed  # a kill stops the upload: the job ends KILLED
        status, reason = final_status(
            status,
            reason,
            exit_code=exit_code,
            stderr=stderr,
            killed=killed,
            oom_killed=collected.oom_killed,
            memory_bytes=limits.memory_bytes,
        )
        log.info("job %d: container exited with code %d (%s)", job.id, exit_code, status.value)
        return Outcome(
            status=status,
            finished_at=finished_at,
            reason=reason,
            return_code=exit_code,
            stdout=stdout,
            stderr=stderr,
            result=result,
            collected=collected,
        )

    # -- containers and images ------------------------------------------------------------

    def _user_for(self, image: str) -> str:
        """The image's own user if it is a numeric non-root uid, else the configured one."""
        if image in self._image_users:
            return self._image_users[image]
        try:
            attrs = self.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            if not self._config.pull_missing_images:
                raise _JobError(f"image {image!r} not found on the Docker host (pulling is disabled)") from None
            try:
                log.info("pulling image %s", image)
                self._engine().images.pull(image)
                attrs = self.api.inspect_image(image)
            except docker.errors.APIError as exc:
                raise _JobError(
                    f"image {image!r} not found on the Docker host and could not be pulled: {exc.explanation or exc}"
                ) from None
        except docker.errors.APIError as exc:
            raise _JobError(f"image {image!r} is unusable: {exc.explanation or exc}") from None
        user = job_user((attrs.get("Config") or {}).get("User") or "", self._config.job_user)
        self._image_users[image] = user
        return user

    def _create(self, job: Job, image: str, limits: Limits, user: str, staged: IO[bytes] | None = None) -> str:
        spec = job.spec
        # Names are global on the engine and job ids are per store: the cluster keeps
        # two installations (or test sessions) sharing an engine from colliding.
        name = f"job_{job.id}_{self._config.cluster[:8]}_{_NAME_OK.sub('-', spec.name)[:40] or 'unnamed'}"
        if job.attempts > 1:
            name += f"_a{job.attempts}"
        host_config = confined_host_config(
            self.api,
            limits,
            init=True,
            log_config=bounded_log_config(self._config.output_cap_bytes),
            mounts=self._volume_mounts(job),
        )
        environment = job_environment(job)
        kwargs: dict[str, Any] = dict(
            image=image,
            command=["/bin/bash", "-c", spec.cmd],
            name=name,
            user=user,
            environment=environment,
            labels={LABEL_JOB: str(job.id), LABEL_OWNER: self._config.owner, LABEL_CLUSTER: self._config.cluster},
            stdin_open=bool(spec.stdin) or spec.interactive,
            tty=spec.tty,  # validate_spec made a tty job interactive: its stdin is open
            host_config=host_config,
            network_disabled=not limits.network,
        )
        try:
            try:
                container_id = str(self.api.create_container(**kwargs)["Id"])
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                self.api.remove_container(name, force=True)  # a leftover of an earlier run of this job
                container_id = str(self.api.create_container(**kwargs)["Id"])
        except docker.errors.APIError as exc:
            raise _JobError(f"could not create the container: {exc.explanation or exc}") from None
        if job.secret_files:
            self._put_secret_files(container_id, job, user)
        if staged is not None or job.spec.outputs:
            self._put_transfers(container_id, job, user, staged)
        return container_id

    # -- inputs and outputs (cloudpipe_server/transfers) -------------------------------------

    def _need_transfers(self) -> Transfers:
        if self._transfers is None:
            raise _JobError("this server does not fetch inputs or upload outputs")
        return self._transfers

    @contextmanager
    def _staged_inputs(self, job: Job, user: str, run: _Run) -> Iterator[IO[bytes] | None]:
        """The job's inputs fetched into a tar (a temporary file) before its container is
        made, so a failed fetch leaves nothing on the engine; None without inputs."""
        if not job.spec.inputs and not job.spec.outputs:
            yield None
            return
        transfers = self._need_transfers()
        if not job.spec.inputs:
            yield None
            return
        try:
            with transfers.staged_inputs(job, user_ids(user), lambda: run.killed) as archive:
                log.info("job %d: %d inputs fetched", job.id, len(job.spec.inputs), extra=job_fields(job.id))
                yield archive
        except TransferFailed as exc:
            raise _JobError(str(exc)) from None

    def _put_transfers(self, container_id: str, job: Job, user: str, staged: IO[bytes] | None) -> None:
        try:
            put_transfers(self.api, container_id, job, user, staged)
        except TransferFailed as exc:
            self.api.remove_container(container_id, force=True)
            raise _JobError(str(exc)) from None

    def _upload_outputs(self, job: Job, container_id: str, run: _Run) -> str:
        """Upload the exited job's outputs; "" or why they could not all be."""
        try:
            return upload_outputs(self.api, self._need_transfers(), job, container_id, lambda: run.killed)
        except _JobError as exc:
            return str(exc)

    def _put_secret_files(self, container_id: str, job: Job, user: str) -> None:
        """The job's file secrets, written into its created container before it starts:
        owned by the job's user, readable by it alone (missing parents are made 0755)."""
        uid, gid = user_ids(user)
        archive = secret_files_archive(job.secret_files, uid, gid)
        try:
            written = bool(self.api.put_archive(container_id, "/", archive))
            problem = "" if written else "the engine refused the archive"
        except docker.errors.APIError as exc:
            problem = str(exc.explanation or exc)
        if problem:
            self.api.remove_container(container_id, force=True)
            raise _JobError(f"could not write the job's secret files: {problem}")

    def _volume_mounts(self, job: Job) -> list[Mount]:
        """The job's volumes, each checked to still be its account's: the engine would
        otherwise make an empty volume of a name that is gone."""
        mounts = []
        for mount in parse_mounts(job.spec.volumes, "job"):
            engine_volume = engine_name(self._config.cluster, job.account, mount.name)
            try:
                labels = self.api.inspect_volume(engine_volume).get("Labels") or {}
            except docker.errors.NotFound:
                labels = {}
            if labels.get(LABEL_VOLUME_ACCOUNT) != job.account:
                raise _JobError(f"volume {mount.name!r} no longer exists (deleted after the job was submitted)")
            mounts.append(Mount(mount.target, engine_volume, type="volume", read_only=mount.read_only))
        return mounts

    def _copy_out(self, container_id: str, path: str) -> bytes:
        """Concatenated contents of every file under `path` in the container, streamed
        out of the engine's archive and refused beyond the result cap."""
        cap = self._config.result_cap_bytes
        try:
            stream, stat = self.api.get_archive(container_id, path)
            size, mode = int((stat or {}).get("size") or 0), int((stat or {}).get("mode") or 0)
            if size > cap and not mode & _GO_MODE_DIR:  # one file: refused before reading it
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
                raise _JobError(result_over_cap(size, cap))
            return concatenated_files(stream, cap)
        except ResultTooLarge as exc:
            raise _JobError(result_over_cap(exc.size, cap)) from None
        except docker.errors.NotFound:
            raise _JobError(f"result file {path} was not found in the container") from None
        except docker.errors.APIError as exc:
            raise _JobError(f"could not copy the result {path}: {exc.explanation or exc}") from None
        except tarfile.TarError as exc:
            raise _JobError(f"could not read the result {path} from the engine's archive: {exc}") from None


class _JobError(Exception):
    """A problem of the job (image, command, result path), told to its owner."""

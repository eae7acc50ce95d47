"""Run jobs in containers of the local Docker engine, through the `docker` SDK.

One run: make sure the image exists (pull it when allowed), create the container
(non-root, no capabilities, CPU/memory/pids limits, no network unless asked, labelled
with the job id), attach stdin, start, feed stdin, wait (bounded by max_runtime), read
stdout/stderr from the engine's log, copy a `file:` result out with `get_archive`,
then remove the container. Blocking SDK calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import socket
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.utils.socket import frames_iter

from cloudpipe_server.executors.base import Executor, Limits, ManagedContainer, OnStarted
from cloudpipe_server.models import Collected, Job, JobStatus, Outcome

log = logging.getLogger(__name__)

LABEL_JOB = "org.cloudpipe.job"
LABEL_OWNER = "org.cloudpipe.owner"
TRUNCATED = b"\n[cloudpipe: output truncated at %d bytes; %d more bytes dropped]\n"
STDOUT, STDERR = 1, 2
_NAME_OK = re.compile(r"[^a-zA-Z0-9_.-]+")


@dataclass(frozen=True)
class DockerConfig:
    """How containers are made."""

    owner: str
    base_url: str = ""  # empty: from the environment (DOCKER_HOST) or the local socket
    job_user: str = "65534:65534"
    pull_missing_images: bool = True
    output_cap_bytes: int = 64 << 20
    kill_grace_seconds: int = 3


class DockerExecutor(Executor):
    """`Executor` on one Docker engine."""

    def __init__(self, config: DockerConfig, clock: Callable[[], datetime]) -> None:
        self._config = config
        self._clock = clock
        self._client = docker.DockerClient(base_url=config.base_url) if config.base_url else docker.from_env()
        self._api = self._client.api
        self._running: dict[int, str | None] = {}
        self._killed: set[int] = set()
        self._lock = threading.Lock()
        self._image_users: dict[str, str] = {}

    async def run(self, job: Job, image: str, limits: Limits, on_started: OnStarted) -> Outcome:
        loop = asyncio.get_running_loop()

        def started(container_id: str, at: datetime) -> None:
            asyncio.run_coroutine_threadsafe(on_started(container_id, at), loop).result()

        return await asyncio.to_thread(self._run, job, image, limits, started)

    async def kill(self, job_id: int) -> bool:
        with self._lock:
            if job_id not in self._running:
                return False
            self._killed.add(job_id)
            container_id = self._running[job_id]
        if container_id is None:  # not created yet: `_run` sees the flag and never starts it
            return True
        log.info("job %d: stopping container %s", job_id, container_id[:12])
        try:
            await asyncio.to_thread(self._api.stop, container_id, timeout=self._config.kill_grace_seconds)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("job %d: stopping container failed: %s", job_id, exc)
        return True

    async def list_managed(self) -> list[ManagedContainer]:
        found = await asyncio.to_thread(self._api.containers, all=True, filters={"label": LABEL_JOB})
        managed = []
        for item in found:
            labels = item.get("Labels") or {}
            try:
                managed.append(ManagedContainer(item["Id"], int(labels[LABEL_JOB]), labels.get(LABEL_OWNER, "")))
            except (KeyError, ValueError):
                log.warning("container %s has a malformed job label; leaving it alone", item.get("Id", "?")[:12])
        return managed

    async def remove(self, container_id: str) -> None:
        try:
            await asyncio.to_thread(self._api.remove_container, container_id, force=True)
        except docker.errors.NotFound:
            pass

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    # -- one run, in a worker thread ------------------------------------------------------

    def _run(self, job: Job, image: str, limits: Limits, on_started: Callable[[str, datetime], None]) -> Outcome:
        with self._lock:
            self._running[job.id] = None
        try:
            user = self._user_for(image)
            container_id = self._create(job, image, limits, user)
        except _JobError as exc:
            self._forget(job.id)
            return Outcome(JobStatus.ERROR, self._clock(), reason=str(exc))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            self._forget(job.id)
            return Outcome(JobStatus.ERROR, self._clock(), reason=f"Docker engine unavailable: {exc}")
        with self._lock:
            self._running[job.id] = container_id
            killed_early = job.id in self._killed
        try:
            if killed_early:
                return Outcome(JobStatus.KILLED, self._clock(), reason="killed before it started")
            return self._start_and_wait(job, container_id, limits, on_started)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("job %d: Docker failed mid-run: %s", job.id, exc)
            return Outcome(JobStatus.ERROR, self._clock(), reason=f"Docker engine error while running: {exc}")
        finally:
            self._forget(job.id)
            try:
                self._api.remove_container(container_id, force=True)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                log.warning("job %d: could not remove container %s: %s", job.id, container_id[:12], exc)

    def _forget(self, job_id: int) -> None:
        with self._lock:
            self._running.pop(job_id, None)
            self._killed.discard(job_id)

    def _user_for(self, image: str) -> str:
        """The image's own user unless that is root; then the configured unprivileged one."""
        if image in self._image_users:
            return self._image_users[image]
        try:
            attrs = self._api.inspect_image(image)
        except docker.errors.ImageNotFound:
            if not self._config.pull_missing_images:
                raise _JobError(f"image {image!r} not found on the Docker host (pulling is disabled)") from None
            try:
                log.info("pulling image %s", image)
                self._client.images.pull(image)
                attrs = self._api.inspect_image(image)
            except docker.errors.APIError as exc:
                raise _JobError(
                    f"image {image!r} not found on the Docker host and could not be pulled: {exc.explanation or exc}"
                ) from None
        except docker.errors.APIError as exc:
            raise _JobError(f"image {image!r} is unusable: {exc.explanation or exc}") from None
        user = (attrs.get("Config") or {}).get("User") or ""
        if user.split(":")[0] in ("", "root", "0"):
            user = self._config.job_user
        self._image_users[image] = user
        return user

    def _create(self, job: Job, image: str, limits: Limits, user: str) -> str:
        spec = job.spec
        name = f"job_{job.id}_{_NAME_OK.sub('-', spec.name)[:40] or 'unnamed'}"
        if job.attempts > 1:
            name += f"_a{job.attempts}"
        host_config = self._api.create_host_config(
            nano_cpus=int(limits.cpus * 1e9),
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            pids_limit=limits.pids,
            network_mode="bridge" if limits.network else "none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=True,
        )
        environment = {**spec.env, "CLOUDPIPE_JOB_ID": str(job.id)}
        if spec.client_python:
            environment["CLOUDPIPE_CLIENT_PYTHON"] = spec.client_python
        kwargs: dict[str, Any] = dict(
            image=image,
            command=["/bin/bash", "-c", spec.cmd],
            name=name,
            user=user,
            environment=environment,
            labels={LABEL_JOB: str(job.id), LABEL_OWNER: self._config.owner},
            stdin_open=bool(spec.stdin),
            host_config=host_config,
            network_disabled=not limits.network,
        )
        try:
            return str(self._api.create_container(**kwargs)["Id"])
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # a leftover of an earlier run of this job
                self._api.remove_container(name, force=True)
                return str(self._api.create_container(**kwargs)["Id"])
            raise _JobError(f"could not create the container: {exc.explanation or exc}") from None

    def _start_and_wait(
        self, job: Job, container_id: str, limits: Limits, on_started: Callable[[str, datetime], None]
    ) -> Outcome:
        # One attach, made before start so no output is missed: stdin in, stdout and
        # stderr out as a multiplexed, binary-safe stream (the engine's log is not).
        attach = self._api.attach_socket(
            container_id, params={"stdin": int(bool(job.spec.stdin)), "stdout": 1, "stderr": 1, "stream": 1}
        )
        output = _OutputReader(attach, self._config.output_cap_bytes, job.id)
        try:
            self._api.start(container_id)
        except docker.errors.APIError as exc:
            output.close()
            reason = f"the container did not start: {exc.explanation or exc}"
            return Outcome(JobStatus.ERROR, self._clock(), reason=reason)
        on_started(container_id, self._clock())
        log.info("job %d: container %s started", job.id, container_id[:12])
        output.start()
        if job.spec.stdin:
            threading.Thread(target=_feed, args=(attach, job.spec.stdin, job.id), daemon=True).start()
        reason = ""
        waited_from = time.monotonic()
        try:
            exit_code = int(self._api.wait(container_id, timeout=limits.max_runtime)["StatusCode"])
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError):
            # the SDK reports a read timeout on the unix socket as a ConnectionError
            if limits.max_runtime is None or time.monotonic() - waited_from < limits.max_runtime:
                raise
            self._api.kill(container_id)
            exit_code = int(self._api.wait(container_id, timeout=30)["StatusCode"])
            reason = f"max_runtime exceeded ({limits.max_runtime:g} s)"
        finished_at = self._clock()
        stdout, stderr = output.collect(timeout=10)
        state = self._api.inspect_container(container_id).get("State", {})
        collected = Collected(oom_killed=bool(state.get("OOMKilled")))
        with self._lock:
            killed = job.id in self._killed
        result = b""
        path = job.spec.result_path
        status = JobStatus.DONE if exit_code == 0 and not reason else JobStatus.ERROR
        if path is None:
            result = stdout if status is JobStatus.DONE else b""
        else:
            try:
                result = self._copy_out(container_id, path)
            except _JobError as exc:
                if status is JobStatus.DONE:
                    status, reason = JobStatus.ERROR, str(exc)
        if killed:
            status, reason = JobStatus.KILLED, "killed on request"
        elif collected.oom_killed:
            reason = f"killed by the kernel: out of memory (limit {limits.memory_bytes} bytes)"
        elif exit_code == 127 and b"exec /bin/bash failed" in stderr:
            reason = "the image has no /bin/bash (jobs run as /bin/bash -c CMD)"
        elif status is JobStatus.ERROR and not reason:
            reason = f"exited with code {exit_code}"
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

    def _copy_out(self, container_id: str, path: str) -> bytes:
        """Concatenated contents of every file under `path` in the container."""
        try:
            stream, _ = self._api.get_archive(container_id, path)
        except docker.errors.NotFound:
            raise _JobError(f"result file {path} was not found in the container") from None
        except docker.errors.APIError as exc:
            raise _JobError(f"could not copy the result {path}: {exc.explanation or exc}") from None
        buffer = io.BytesIO(b"".join(stream))
        parts: list[bytes] = []
        with tarfile.open(fileobj=buffer) as archive:
            for member in archive:
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    parts.append(extracted.read())
        return b"".join(parts)


class _JobError(Exception):
    """A problem of the job (image, command, result path), told to its owner."""


class _OutputReader:
    """Reads the attached stream in a thread, keeping at most `cap` bytes per stream."""

    def __init__(self, attach: Any, cap: int, job_id: int) -> None:
        self._attach = attach
        self._cap = cap
        self._job_id = job_id
        self._streams = {STDOUT: bytearray(), STDERR: bytearray()}
        self._dropped = {STDOUT: 0, STDERR: 0}
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        try:
            for stream, data in frames_iter(self._attach, tty=False):
                buffer = self._streams.get(stream)
                if buffer is None:
                    continue
                room = self._cap - len(buffer)
                buffer += data[:room]
                self._dropped[stream] += max(len(data) - room, 0)
        except OSError as exc:
            log.warning("job %d: output stream broke: %s", self._job_id, exc)

    def collect(self, timeout: float) -> tuple[bytes, bytes]:
        """Wait for the stream to end (the container exited); return (stdout, stderr)."""
        self._thread.join(timeout)
        self.close()
        return self._finish(STDOUT), self._finish(STDERR)

    def _finish(self, stream: int) -> bytes:
        data = bytes(self._streams[stream])
        if self._dropped[stream]:
            data += TRUNCATED % (self._cap, self._dropped[stream])
        return data

    def close(self) -> None:
        try:
            self._attach.close()
        except OSError:
            pass


def _feed(attach: Any, data: bytes, job_id: int) -> None:
    """Write stdin into the attached socket, then close our half so the job sees EOF."""
    raw = getattr(attach, "_sock", attach)
    try:
        raw.sendall(data)
        raw.shutdown(socket.SHUT_WR)
    except OSError as exc:  # the job exited without reading everything
        log.info("job %d: stdin not fully consumed: %s", job_id, exc)

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker
import docker.errors
import requests.exceptions

from cloudpipe_server.executors.base import Executor, Limits, OnStarted
from cloudpipe_server.models import Collected, Job, JobStatus, Outcome

log = logging.getLogger(__name__)

LABEL_JOB = "org.cloudpipe.job"
LABEL_OWNER = "org.cloudpipe.owner"
TRUNCATED = b"\n[cloudpipe: output truncated at %d bytes]\n"
_NAME_OK = re.compile(r"[^a-zA-Z0-9_.-]+")


@dataclass(frozen=True)
class DockerConfig:
    """How containers are made."""

    owner: str
    base_url: str = ""  # empty: from the environment (DOCKER_HOST) or the local socket
    job_user: str = "65534:65534"
    pull_missing_images: bool = True
    output_cap_bytes: int = 64 << 20
    kill_grace_seconds: float = 3.0


class DockerExecutor(Executor):
    """`Executor` on one Docker engine."""

    def __init__(self, config: DockerConfig, clock: Callable[[], datetime]) -> None:
        self._config = config
        self._clock = clock
        self._client = docker.DockerClient(base_url=config.base_url) if config.base_url else docker.from_env()
        self._api = self._client.api
        self._running: dict[int, str] = {}
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
            container_id = self._running.get(job_id)
            if container_id is None:
                return False
            self._killed.add(job_id)
        log.info("job %d: stopping container %s", job_id, container_id[:12])
        try:
            await asyncio.to_thread(self._api.stop, container_id, timeout=self._config.kill_grace_seconds)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("job %d: stopping container failed: %s", job_id, exc)
        return True

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    # -- one run, in a worker thread ------------------------------------------------------

    def _run(self, job: Job, image: str, limits: Limits, on_started: Callable[[str, datetime], None]) -> Outcome:
        try:
            user = self._user_for(image)
            container_id = self._create(job, image, limits, user)
        except _JobError as exc:
            return Outcome(JobStatus.ERROR, self._clock(), reason=str(exc))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            return Outcome(JobStatus.ERROR, self._clock(), reason=f"Docker engine unavailable: {exc}")
        with self._lock:
            self._running[job.id] = container_id
        try:
            return self._start_and_wait(job, container_id, limits, on_started)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("job %d: Docker failed mid-run: %s", job.id, exc)
            return Outcome(JobStatus.ERROR, self._clock(), reason=f"Docker engine error while running: {exc}")
        finally:
            with self._lock:
                self._running.pop(job.id, None)
                self._killed.discard(job.id)
            try:
                self._api.remove_container(container_id, force=True)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                log.warning("job %d: could not remove container %s: %s", job.id, container_id[:12], exc)

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
        stdin_socket = None
        if job.spec.stdin:
            stdin_socket = self._api.attach_socket(container_id, params={"stdin": 1, "stream": 1})
        try:
            self._api.start(container_id)
        except docker.errors.APIError as exc:
            reason = f"the container did not start: {exc.explanation or exc}"
            return Outcome(JobStatus.ERROR, self._clock(), reason=reason)
        on_started(container_id, self._clock())
        log.info("job %d: container %s started", job.id, container_id[:12])
        writer = None
        if stdin_socket is not None:
            writer = threading.Thread(target=_feed, args=(stdin_socket, job.spec.stdin, job.id), daemon=True)
            writer.start()
        reason = ""
        try:
            exit_code = int(self._api.wait(container_id, timeout=limits.max_runtime)["StatusCode"])
        except requests.exceptions.Timeout:
            self._api.kill(container_id)
            exit_code = int(self._api.wait(container_id)["StatusCode"])
            reason = f"max_runtime exceeded ({limits.max_runtime:g} s)"
        finished_at = self._clock()
        if writer is not None:
            writer.join(timeout=5)
        stdout = self._logs(container_id, stdout=True)
        stderr = self._logs(container_id, stdout=False)
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

    def _logs(self, container_id: str, *, stdout: bool) -> bytes:
        data = bytes(self._api.logs(container_id, stdout=stdout, stderr=not stdout))
        cap = self._config.output_cap_bytes
        if len(data) > cap:
            data = data[:cap] + TRUNCATED % cap
        return data

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


def _feed(stdin_socket: Any, data: bytes, job_id: int) -> None:
    """Write stdin into the attached socket, then close our half so the job sees EOF."""
    raw = getattr(stdin_socket, "_sock", stdin_socket)
    try:
        raw.sendall(data)
        raw.shutdown(socket.SHUT_WR)
    except OSError as exc:  # the job exited without reading everything
        log.info("job %d: stdin not fully consumed: %s", job_id, exc)
    finally:
        try:
            stdin_socket.close()
        except OSError:
            pass

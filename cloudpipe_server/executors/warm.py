"""`PooledDockerExecutor`: jobs run in warm containers when they can, otherwise in a
fresh container of the wrapped `DockerExecutor`.

A job runs warm when the pool is on, the job did not ask for `fresh_container`, is not
interactive, has no terminal (`tty`: the agent runs its jobs on pipes, it has no pty),
needs no network, and its image carries the agent (label `org.cloudpipe.agent`); the
container is one of its account's, with its image and
resource shape (see `warm_pool`). Every other job, and any job the pool cannot place,
gets a fresh container exactly as before.

Warm containers carry the same labels as job containers (job label "0": no single
job) plus a pool label, an account label and this process's boot id. A warm job
cannot be re-adopted after a restart (its output channel died with the server): its
lease runs out and the reaper requeues or stalls it, as for a lost runner. What the
orphan sweep may remove: pool containers that are not running, and those of this
server's identity from an earlier boot.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import signal as signals
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig

from cloudpipe_common.waiting import within
from cloudpipe_server.executors.agent_protocol import PROTOCOL
from cloudpipe_server.executors.base import Delivery, Executor, Limits, ManagedContainer, RunObserver, Signal
from cloudpipe_server.executors.container_config import confined_host_config, job_environment, job_user
from cloudpipe_server.executors.docker import (
    LABEL_CLUSTER,
    LABEL_JOB,
    LABEL_OWNER,
    LABEL_POOL,
    DockerConfig,
    DockerExecutor,
)
from cloudpipe_server.executors.reasons import exec_too_big, warm_death_reason
from cloudpipe_server.executors.warm_container import ContainerGone, PoolKey, WarmContainer, WarmRun
from cloudpipe_server.executors.warm_outcome import warm_outcome
from cloudpipe_server.executors.warm_pool import PoolLimits, WarmPool
from cloudpipe_server.models import Job, JobStatus, Outcome
from cloudpipe_server.secrets.naming import gives_files
from cloudpipe_server.volumes.naming import mounts_any

log = logging.getLogger(__name__)

LABEL_ACCOUNT = "org.cloudpipe.account"
LABEL_BOOT = "org.cloudpipe.boot"
LABEL_AGENT = "org.cloudpipe.agent"
AGENT_COMMAND = ["python3", "-m", "cloudpipe_agent"]
IMAGE_TTL_SECONDS = 30.0
STARTING_GRACE_SECONDS = 10.0  # another server's pool container may sit "created" (create..start) this long
_NAME_OK = re.compile(r"[^a-zA-Z0-9_.-]+")
_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)
_SIGNALS = {Signal.TERM: signals.SIGTERM, Signal.INT: signals.SIGINT}


@dataclass(frozen=True)
class WarmConfig:
    """The pool's settings (see `cloudpipe_server.config`)."""

    enabled: bool = True
    max_containers: int = 4
    idle_seconds: float = 300.0
    prewarm: tuple[tuple[str, int], ...] = ()  # (account, containers) with the defaults below
    default_image: str = ""
    default_limits: Limits | None = None
    start_timeout: float = 30.0


def parse_prewarm(text: str) -> tuple[tuple[str, int], ...]:
    """ "alice=2,bob" -> (("alice", 2), ("bob", 1)). Raises ValueError on a bad count."""
    entries = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        account, _, count = item.partition("=")
        entries.append((account.strip(), int(count) if count else 1))
    return tuple(entries)


@dataclass
class _WarmJob:
    key: PoolKey
    container: WarmContainer | None = None
    run: WarmRun | None = None
    killed: bool = False


@dataclass(frozen=True)
class _ImageInfo:
    checked: float
    agent: bool
    user: str


class PooledDockerExecutor(Executor):
    """`DockerExecutor` plus a pool of warm containers."""

    def __init__(
        self,
        fresh: DockerExecutor,
        docker_config: DockerConfig,
        config: WarmConfig,
        clock: Callable[[], datetime],
        *,
        on_acquire: Callable[[bool], None] | None = None,
    ) -> None:
        self._fresh = fresh
        self._docker_config = docker_config
        self._config = config
        self._clock = clock
        self._boot = secrets.token_hex(6)
        limits = PoolLimits(config.max_containers, config.idle_seconds)
        self._pool = WarmPool(limits, self._spawn, self._remove, on_acquire)
        self._runs: dict[int, _WarmJob] = {}
        self._images: dict[str, _ImageInfo] = {}
        self._started = False

    @property
    def pool(self) -> WarmPool:
        return self._pool

    @property
    def _api(self) -> docker.APIClient:
        """One client per engine: the fresh executor's, made on first contact and closed
        by it (raises while the engine has not answered yet)."""
        return self._fresh.api

    async def reachable(self) -> bool:
        return await self._fresh.reachable()

    def start(self) -> None:
        """Start idle eviction and pre-warm the configured accounts."""
        if self._started or not self._config.enabled:
            return
        self._started = True
        limits = self._config.default_limits
        prewarm = []
        if limits is not None and self._config.default_image:
            for account, count in self._config.prewarm:
                prewarm.append((self._key(account, self._config.default_image, limits), count))
        self._pool.start(prewarm)

    # -- running -----------------------------------------------------------------------

    async def run(self, job: Job, image: str, limits: Limits, observer: RunObserver) -> Outcome:
        too_big = exec_too_big(job)
        if too_big:  # worded as the fresh path words it, without making a container
            return Outcome(JobStatus.ERROR, self._clock(), reason=too_big)
        if not self._wants_warm(job, limits) or not await self._has_agent(image):
            return await self._fresh.run(job, image, limits, observer)
        self.start()
        entry = self._runs[job.id] = _WarmJob(self._key(job.account, image, limits))
        try:
            container = await self._pool.acquire(entry.key, give_up=lambda: entry.killed)
            if entry.killed:
                if container is not None:
                    self._pool.release(container)
                return Outcome(JobStatus.KILLED, self._clock(), reason="killed before it started")
            if container is None:
                del self._runs[job.id]
                return await self._fresh.run(job, image, limits, observer)
            entry.container = container
            return await self._run_warm(job, entry, container, limits, observer)
        finally:
            self._runs.pop(job.id, None)

    def _wants_warm(self, job: Job, limits: Limits) -> bool:
        spec = job.spec
        # fresh containers for a job with volumes (a container with exactly its mounts)
        # and for one with secret files, inputs or outputs (written into its container
        # before it starts, read out of it after it exited)
        mounts = mounts_any(spec.volumes) or gives_files(spec.secrets) or bool(spec.inputs or spec.outputs)
        alone = spec.fresh_container or spec.interactive or spec.tty or limits.network or mounts
        return self._config.enabled and not alone

    async def _run_warm(
        self, job: Job, entry: _WarmJob, container: WarmContainer, limits: Limits, observer: RunObserver
    ) -> Outcome:
        spec = job.spec
        try:
            run = await container.start_job(
                job.id, spec.cmd, job_environment(job), spec.result_path, spec.stdin, observer.output
            )
        except ContainerGone:
            self._pool.release(container)
            return Outcome(JobStatus.ERROR, self._clock(), reason="the warm container ended before the job started")
        entry.run = run
        if entry.killed:  # the kill came while the job was being handed over
            container.signal(run, signals.SIGKILL)
        log.info("job %d: running in warm container %s", job.id, container.id[:12])
        started = asyncio.ensure_future(asyncio.to_thread(observer.started, container.id, self._clock()))
        timed_out = False
        try:
            try:
                ended = await within(asyncio.shield(run.done), limits.max_runtime)
            except TimeoutError:
                timed_out = True
                container.signal(run, signals.SIGKILL)
                try:
                    ended = await within(asyncio.shield(run.done), 30)
                except TimeoutError:  # the agent does not answer: the container goes
                    await container.close()
                    ended = None
            await started
        except asyncio.CancelledError:  # the server stops: a warm job cannot be re-adopted
            container.finished(run)
            self._pool.discard_soon(container)
            raise
        finished_at = self._clock()
        container.finished(run)
        if ended is not None and ended.oom:
            container.ooms += 1
        died_reason = "" if ended is not None else await self._death_reason(container, limits)
        self._pool.release(container)
        return warm_outcome(job, run, ended, entry.killed, timed_out, died_reason, limits, finished_at)

    async def _death_reason(self, container: WarmContainer, limits: Limits) -> str:
        state: dict[str, Any] | None = None
        if not container.protocol_error:
            try:
                state = (await asyncio.to_thread(self._api.inspect_container, container.id)).get("State", {})
            except _ENGINE_ERRORS:  # removed (auto-remove, an engine restart) or no answer
                state = None
        return warm_death_reason(
            state, protocol_error=container.protocol_error, job_ooms=container.ooms, memory_bytes=limits.memory_bytes
        )

    # -- controlling running jobs ----------------------------------------------------------

    async def kill(self, job_id: int) -> bool:
        entry = self._runs.get(job_id)
        if entry is None:
            return await self._fresh.kill(job_id)
        entry.killed = True
        self._pool.wake(entry.key)  # ends its wait for a container
        container, run = entry.container, entry.run
        if container is not None and run is not None:
            log.info("job %d: stopping its processes in warm container %s", job_id, container.id[:12])
            container.signal(run, signals.SIGTERM)
            grace = self._docker_config.kill_grace_seconds
            asyncio.get_running_loop().call_later(grace, container.signal, run, signals.SIGKILL)
        return True

    async def signal(self, job_id: int, signal: Signal) -> bool:
        entry = self._runs.get(job_id)
        if entry is None:
            return await self._fresh.signal(job_id, signal)
        if entry.container is None or entry.run is None:
            return False
        entry.container.signal(entry.run, _SIGNALS[signal])
        return True

    async def write_stdin(self, job_id: int, data: bytes) -> Delivery:
        return "closed" if job_id in self._runs else await self._fresh.write_stdin(job_id, data)

    async def close_stdin(self, job_id: int) -> Delivery:
        return "closed" if job_id in self._runs else await self._fresh.close_stdin(job_id)

    async def resize(self, job_id: int, rows: int, columns: int) -> Delivery:
        # a tty job never runs warm (the agent gives its jobs pipes, no terminal)
        return "written" if job_id in self._runs else await self._fresh.resize(job_id, rows, columns)

    async def adopt(self, job: Job, limits: Limits) -> Outcome | None:
        return await self._fresh.adopt(job, limits)

    async def image_labels(self, image: str) -> Mapping[str, str] | None:
        return await self._fresh.image_labels(image)

    # -- containers ----------------------------------------------------------------------

    async def list_managed(self) -> list[ManagedContainer]:
        """Job containers (from the wrapped executor), and the pool containers that are
        orphans: not running, or left by an earlier boot of this server."""
        managed = [c for c in await self._fresh.list_managed() if c.job_id != 0]
        found = await asyncio.to_thread(
            self._api.containers,
            all=True,
            filters={"label": [LABEL_POOL, f"{LABEL_CLUSTER}={self._docker_config.cluster}"]},
        )
        now = time.time()
        for item in found:
            labels = item.get("Labels") or {}
            owner = labels.get(LABEL_OWNER, "")
            mine = owner == self._docker_config.owner and labels.get(LABEL_BOOT) == self._boot
            state = item.get("State", "")
            if mine and (state == "running" or self._pool.knows(item["Id"])):
                continue
            if not mine and owner == self._docker_config.owner:
                pass  # an earlier boot of this server: its pool is gone
            elif state == "running" or (state == "created" and now - item.get("Created", 0) < STARTING_GRACE_SECONDS):
                continue  # another server's live pool
            managed.append(ManagedContainer(item["Id"], 0, owner))
        return managed

    async def remove(self, container_id: str) -> None:
        await self._fresh.remove(container_id)

    async def close(self) -> None:
        await self._pool.close()
        try:  # and pool containers of dead servers, in case no other server sweeps them
            for orphan in await self.list_managed():
                if orphan.job_id == 0:
                    await self.remove(orphan.container_id)
        except _ENGINE_ERRORS as exc:
            log.warning("could not sweep dead servers' warm containers: %s", exc)
        await self._fresh.close()

    # -- the engine side of the pool ---------------------------------------------------------

    def _key(self, account: str, image: str, limits: Limits) -> PoolKey:
        return PoolKey(account, image, limits.cpus, limits.memory_bytes, limits.pids)

    async def _has_agent(self, image: str) -> bool:
        info = self._images.get(image)
        if info is None or time.monotonic() - info.checked > IMAGE_TTL_SECONDS:
            try:
                attrs = await asyncio.to_thread(self._api.inspect_image, image)
            except _ENGINE_ERRORS:  # missing (the fresh path pulls it) or unusable
                return False
            config = attrs.get("Config") or {}
            user = job_user(config.get("User") or "", self._docker_config.job_user)
            agent = (config.get("Labels") or {}).get(LABEL_AGENT) == PROTOCOL
            info = self._images[image] = _ImageInfo(time.monotonic(), agent, user)
        return info.agent

    async def _spawn(self, key: PoolKey) -> WarmContainer:
        if not await self._has_agent(key.image):
            raise ContainerGone(f"image {key.image} has no Cloudpipe agent (label {LABEL_AGENT}={PROTOCOL})")
        user = self._images[key.image].user
        container_id, sock = await asyncio.to_thread(self._create_and_attach, key, user)
        config = self._docker_config
        container = WarmContainer(container_id, key, sock, config.output_cap_bytes, config.result_cap_bytes)
        try:
            await container.connect(self._config.start_timeout)
        except BaseException:
            await self._remove(container)
            raise
        log.info("warm container %s started for %s (%s)", container_id[:12], key.account, key.image)
        return container

    def _create_and_attach(self, key: PoolKey, user: str) -> tuple[str, socket.socket]:
        host_config = confined_host_config(
            self._api,
            Limits(key.cpus, key.memory_bytes, key.pids, max_runtime=None, network=False),
            init=False,  # the agent is PID 1: no docker-init holding the protocol where jobs reach it
            log_config=LogConfig(type="none"),  # stdout is the protocol: nothing to log
            auto_remove=True,  # a container whose server died ends (stdin closes) and goes
        )
        labels = {
            LABEL_JOB: "0",
            LABEL_OWNER: self._docker_config.owner,
            LABEL_CLUSTER: self._docker_config.cluster,
            LABEL_POOL: key.label,
            LABEL_ACCOUNT: key.account,
            LABEL_BOOT: self._boot,
        }
        name = f"warm_{_NAME_OK.sub('-', key.account)[:30]}_{secrets.token_hex(4)}"
        container_id = str(
            self._api.create_container(
                image=key.image,
                command=AGENT_COMMAND,
                name=name,
                user=user,
                labels=labels,
                stdin_open=True,  # and "once": the agent ends when the server's attach closes
                host_config=host_config,
                network_disabled=True,
            )["Id"]
        )
        try:
            attach = self._api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            raw = getattr(attach, "_sock", attach)
            if not isinstance(raw, socket.socket) or type(raw) is not socket.socket:
                raise ContainerGone("warm containers need a plain unix or TCP connection to the engine")
            sock = raw.dup()  # ours alone: the SDK's objects may close theirs when collected
            attach.close()
            self._api.start(container_id)
        except BaseException:
            self._api.remove_container(container_id, force=True)
            raise
        return container_id, sock

    async def _remove(self, container: WarmContainer) -> None:
        try:
            await asyncio.to_thread(self._api.remove_container, container.id, force=True)
        except docker.errors.NotFound:
            pass

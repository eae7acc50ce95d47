"""One warm container: a runner-image container whose agent (a fork server, see
`agent_protocol`) takes jobs one after another over the container's attached
stdin/stdout.

The attach is made before the container starts and is the only connection to it; the
container has no network and logs nothing (its stdout is the protocol). Its stdin is
"once": when the server's end of the attach closes (the server stopped or died), the
agent sees end of input, kills the job it runs and exits, and the container stops.

Everything here runs on the event loop: the attach socket is read by one task that
splits Docker's stream frames, then the agent's frames, and hands them to the job
being run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudpipe_common.limits import DEFAULT_RESULT_CAP_BYTES
from cloudpipe_common.logs import background_context
from cloudpipe_common.waiting import within
from cloudpipe_server.executors.agent_protocol import (
    EXIT,
    READY,
    RESULT,
    SIGNAL,
    STARTED,
    STDERR,
    STDOUT,
    AgentExit,
    FrameParser,
    json_frame,
    run_frames,
)
from cloudpipe_server.executors.docker_io import CappedOutput
from cloudpipe_server.models import OutputChunk, Stream

log = logging.getLogger(__name__)

_DOCKER_HEADER = struct.Struct(">BxxxL")
_STREAM_OF = {STDOUT: Stream.STDOUT, STDERR: Stream.STDERR}


@dataclass(frozen=True)
class PoolKey:
    """Jobs that may share a warm container: one account, one image, one resource
    shape. Never two accounts."""

    account: str
    image: str
    cpus: float
    memory_bytes: int
    pids: int

    @property
    def label(self) -> str:
        """A stable, opaque value for the container's pool label."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:20]


@dataclass
class WarmRun:
    """One job handed to a warm container. `done` resolves with the agent's EXIT, or
    with None when the container died first."""

    job_id: int
    done: asyncio.Future[AgentExit | None]
    output: CappedOutput
    on_output: Callable[[OutputChunk], None]
    result_cap: int = DEFAULT_RESULT_CAP_BYTES
    result: bytearray = field(default_factory=bytearray)
    result_size: int = 0  # all the agent sent; beyond `result_cap` it is counted, not kept
    pid: int = 0

    def add_result(self, payload: bytes) -> None:
        self.result_size += len(payload)
        if self.result_size > self.result_cap:
            self.result.clear()
        else:
            self.result += payload


class ContainerGone(Exception):
    """The warm container is not there any more (it died, or was closed)."""


class WarmContainer:
    """A started warm container and its attach connection."""

    def __init__(
        self,
        container_id: str,
        key: PoolKey,
        sock: socket.socket,
        output_cap: int,
        result_cap: int = DEFAULT_RESULT_CAP_BYTES,
    ) -> None:
        self.id = container_id
        self.key = key
        self.created = time.monotonic()
        self.last_used = self.created
        self.jobs_run = 0
        self.ooms = 0  # jobs of this container the kernel killed for memory (the agent survived)
        self.busy = False
        self._sock = sock
        self._output_cap = output_cap
        self._result_cap = result_cap
        self._parser = FrameParser()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[dict[str, object]] | None = None
        self._current: WarmRun | None = None
        self.gone = asyncio.Event()
        self.protocol_error = ""  # why the agent's stream was given up, when it broke the protocol
        self.agent: dict[str, object] = {}

    @property
    def alive(self) -> bool:
        return not self.gone.is_set()

    def __repr__(self) -> str:
        return f"<WarmContainer {self.id[:12]} {self.key.account} {self.key.image}>"

    async def connect(self, timeout: float) -> None:
        """Take over the attach socket and wait for the agent's READY."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._sock.setblocking(False)
        if self._sock.family == socket.AF_UNIX:
            reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
        else:
            reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._reader_task = asyncio.create_task(
            self._read(reader), name=f"cloudpipe-warm-{self.id[:12]}", context=background_context(self.key.account)
        )  # it outlives the job that asked for the container
        try:
            self.agent = await within(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            await self.close()
            raise ContainerGone(f"the agent in {self.id[:12]} did not answer within {timeout:g} s") from None
        except ContainerGone:
            await self.close()
            raise

    async def start_job(
        self,
        job_id: int,
        cmd: str,
        env: dict[str, str],
        result_path: str | None,
        stdin: bytes,
        on_output: Callable[[OutputChunk], None],
    ) -> WarmRun:
        """Hand a job to the agent; await `run.done` for its end."""
        if not self.alive or self._writer is None:
            raise ContainerGone(f"warm container {self.id[:12]} is gone")
        if self._current is not None:
            raise RuntimeError(f"warm container {self.id[:12]} already runs job {self._current.job_id}")
        done = asyncio.get_running_loop().create_future()
        run = WarmRun(job_id, done, CappedOutput(self._output_cap), on_output, result_cap=self._result_cap)
        self._current = run
        self.jobs_run += 1
        self._writer.writelines(run_frames(job_id, cmd, env, result_path, stdin, self._result_cap))
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._lost(f"writing to the agent failed: {exc}")
        return run

    def signal(self, run: WarmRun, number: int) -> None:
        """Send a signal to the job's process group, if that job still runs here."""
        if self._current is not run or run.done.done() or self._writer is None or not self.alive:
            return
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            self._writer.write(json_frame(SIGNAL, {"job": run.job_id, "signal": number}))

    def finished(self, run: WarmRun) -> None:
        """The job's outcome was taken; the container may take the next one."""
        if self._current is run:
            self._current = None
        self.last_used = time.monotonic()

    async def close(self) -> None:
        """Drop the connection: the agent ends, and the container stops."""
        self._lost("closed by the server")
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        if self._reader_task is not None and self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task

    # -- reading ------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        why = "the container's output ended"
        try:
            while True:
                header = await reader.readexactly(_DOCKER_HEADER.size)
                number, size = _DOCKER_HEADER.unpack(header)
                data = await reader.readexactly(size)
                if number == 1:
                    for kind, payload in self._parser.feed(data):
                        try:
                            self._dispatch(kind, payload)
                        except Exception as exc:  # the agent is not to be trusted any more
                            self.protocol_error = f"the agent sent a malformed message (kind {kind}): {exc!r}"[:500]
                            log.warning("warm container %s: %s", self.id[:12], self.protocol_error)
                            self._lost(self.protocol_error)
                            return
                elif number == 2:
                    text = data.decode(errors="replace").rstrip()
                    log.debug("warm container %s: agent says: %s", self.id[:12], text)
        except asyncio.IncompleteReadError:
            pass
        except (ConnectionError, OSError, ValueError) as exc:
            why = f"reading from the agent failed: {exc}"
        self._lost(why)

    def _dispatch(self, kind: int, payload: bytes) -> None:
        run = self._current
        if kind == READY:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(json.loads(payload))
            return
        if run is None:
            log.warning("warm container %s: agent frame %d while no job runs; ignored", self.id[:12], kind)
            return
        if kind in _STREAM_OF:
            chunk = run.output.add(_STREAM_OF[kind], payload)
            if chunk is not None:
                run.on_output(chunk)
        elif kind == RESULT:
            run.add_result(payload)
        elif kind in (STARTED, EXIT):
            doc = json.loads(payload)
            if doc.get("job") != run.job_id:
                log.warning(
                    "warm container %s: agent frame %d for job %r, not %d; ignored",
                    self.id[:12],
                    kind,
                    doc.get("job"),
                    run.job_id,
                )
            elif kind == STARTED:
                run.pid = int(doc.get("pid", 0))
            elif not run.done.done():
                run.done.set_result(AgentExit.parse(payload))
        else:
            log.warning("warm container %s: unknown agent frame %d; ignored", self.id[:12], kind)

    def _lost(self, why: str) -> None:
        if self.gone.is_set():
            return
        log.debug("warm container %s: gone (%s)", self.id[:12], why)
        self.gone.set()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(ContainerGone(why))
            self._ready.exception()  # retrieved here: `connect` may no longer be waiting
        run = self._current
        if run is not None and not run.done.done():
            run.done.set_result(None)

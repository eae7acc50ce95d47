"""Worker-thread plumbing of the Docker executor: the attached stdin/stdout/stderr
stream, resource sampling, result archives, and running blocking calls in daemon
threads (so a server that stops never waits for a container it leaves behind)."""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import socket
import tarfile
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from docker.utils.socket import frames_iter

from cloudpipe_common.logs import job_fields
from cloudpipe_server.models import Collected, OutputChunk, Stream

log = logging.getLogger(__name__)

T = TypeVar("T")
TRUNCATED = b"\n[cloudpipe: output truncated at %d bytes; %d more bytes dropped]\n"


def in_daemon_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run `fn(*args)` in a fresh daemon thread; await its result on the loop.
    Unlike `asyncio.to_thread`, interpreter exit does not wait for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()  # the caller's log fields (its job), as to_thread does

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def target() -> None:
        try:
            value = context.run(fn, *args)
        except BaseException as exc:  # handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=target, daemon=True, name=getattr(fn, "__name__", "cloudpipe-io")).start()
    return future


class CappedOutput:
    """A job's stdout and stderr, kept up to `cap` bytes per stream; what is dropped
    beyond that is counted and noted at the end of the stream."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._buffers = {Stream.STDOUT: bytearray(), Stream.STDERR: bytearray()}
        self._dropped = {Stream.STDOUT: 0, Stream.STDERR: 0}

    def add(self, stream: Stream, data: bytes) -> OutputChunk | None:
        """Keep what fits; return it as a chunk at its offset (None if nothing fit)."""
        buffer = self._buffers[stream]
        kept = data[: self._cap - len(buffer)]
        self._dropped[stream] += len(data) - len(kept)
        if not kept:
            return None
        chunk = OutputChunk(stream, len(buffer), bytes(kept))
        buffer += kept
        return chunk

    def final(self, stream: Stream) -> bytes:
        data = bytes(self._buffers[stream])
        if self._dropped[stream]:
            data += TRUNCATED % (self._cap, self._dropped[stream])
        return data


class AttachedStreams:
    """One attach socket: stdin in, stdout and stderr out (Docker's multiplexed frames,
    binary-safe; with `tty`, the terminal's raw bytes, all stdout). Output is kept up to
    `cap` bytes per stream and handed to `on_chunk` as it arrives."""

    def __init__(
        self, attach: Any, cap: int, job_id: int, on_chunk: Callable[[OutputChunk], None], *, tty: bool = False
    ) -> None:
        self._attach = attach
        self._tty = tty
        self._raw = getattr(attach, "_sock", attach)
        self._job_id = job_id
        self._on_chunk = on_chunk
        self._output = CappedOutput(cap)
        # the job's log context (job id, account) goes with it: its lines say whose they are
        self._reader = threading.Thread(
            target=contextvars.copy_context().run, args=(self._read,), daemon=True, name=f"cloudpipe-out-{job_id}"
        )
        self._stdin_lock = threading.Lock()
        self._stdin_open = True
        self._line_open = False  # a tty job's last input byte ended no line (see _close_stdin)

    def start(self) -> None:
        self._reader.start()

    def _read(self) -> None:
        try:
            for number, data in frames_iter(self._attach, tty=self._tty):
                if number not in (Stream.STDOUT, Stream.STDERR) or not data:
                    continue
                chunk = self._output.add(Stream(number), data)
                if chunk is not None:
                    self._on_chunk(chunk)
        except (OSError, ValueError) as exc:  # ValueError: read on a closed socket
            log.debug("job %d: output stream ended: %s", self._job_id, exc, extra=job_fields(self._job_id))

    def write_stdin(self, data: bytes, *, then_close: bool = False) -> bool:
        """Send bytes to the job's stdin. False when stdin is closed or the job is gone."""
        with self._stdin_lock:
            if not self._stdin_open:
                return False
            try:
                if data:
                    self._raw.sendall(data)
                    self._line_open = data[-1:] not in (b"\n", b"\r")
                if then_close:
                    self._close_stdin()
                return True
            except OSError as exc:  # the job exited without reading everything
                log.info("job %d: stdin not fully consumed: %s", self._job_id, exc, extra=job_fields(self._job_id))
                self._stdin_open = False
                return False

    def close_stdin(self) -> bool:
        with self._stdin_lock:
            if not self._stdin_open:
                return False
            try:
                self._close_stdin()
            except OSError:
                return False
            return True

    def _close_stdin(self) -> None:
        self._stdin_open = False
        if self._tty:  # a terminal's end of input is its EOF key: half-closing the socket
            # would make the engine stop copying the output. After a line left open, the
            # first EOF key only hands that line to the reader; the second is the end.
            self._raw.sendall(b"\x04\x04" if self._line_open else b"\x04")
        else:
            self._raw.shutdown(socket.SHUT_WR)

    def collect(self, timeout: float) -> tuple[bytes, bytes]:
        """Wait for the stream to end (the container exited); return (stdout, stderr)."""
        self._reader.join(timeout)
        self.close()
        return self._output.final(Stream.STDOUT), self._output.final(Stream.STDERR)

    def close(self) -> None:
        with self._stdin_lock:
            self._stdin_open = False
        try:
            self._attach.close()
        except OSError:
            pass


class StatsSampler:
    """Keeps the last resource sample the engine streams (about one a second)."""

    def __init__(self, samples: Iterable[dict[str, Any]]) -> None:
        self._samples = samples
        self._collected = Collected()
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._read,), daemon=True, name="cloudpipe-stats"
        )

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        try:
            for sample in self._samples:
                collected = collected_from_stats(sample)
                if collected.memory_max_usage_bytes or collected.cputime_user_ns or collected.cputime_system_ns:
                    self._collected = collected
        except Exception as exc:  # sampling is best effort and never fails a job
            log.debug("stats stream ended: %s", exc)

    def result(self, oom_killed: bool) -> Collected:
        last = self._collected
        return Collected(
            cputime_user_ns=last.cputime_user_ns,
            cputime_system_ns=last.cputime_system_ns,
            memory_max_usage_bytes=last.memory_max_usage_bytes,
            memory_failcnt=last.memory_failcnt,
            oom_killed=oom_killed,
        )


def collected_from_stats(sample: dict[str, Any]) -> Collected:
    """Docker's stats document (cgroup v1 or v2) -> Collected."""
    cpu = (sample.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = sample.get("memory_stats") or {}
    stats = memory.get("stats") or {}
    return Collected(
        cputime_user_ns=int(cpu.get("usage_in_usermode") or 0),
        cputime_system_ns=int(cpu.get("usage_in_kernelmode") or 0),
        memory_max_usage_bytes=int(memory.get("max_usage") or memory.get("usage") or stats.get("anon") or 0),
        memory_failcnt=int(memory.get("failcnt") or 0),
    )


class ResultTooLarge(Exception):
    """A result over the cap; `size` is its whole size (counted, not kept)."""

    def __init__(self, size: int, cap: int) -> None:
        super().__init__(f"result of {size} bytes over the cap of {cap}")
        self.size = size
        self.cap = cap


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (an archive as the engine
    streams it), so `tarfile` reads it piece by piece instead of whole."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def concatenated_files(chunks: Iterable[bytes], cap: int) -> bytes:
    """Contents of every regular file in a tar stream, back to back (as the original
    runner did for a `file:` result that names a directory), read as it streams.
    Raises ResultTooLarge when they come to more than `cap` bytes: what is over is
    counted through the stream, never kept."""
    kept = bytearray()
    total = 0
    with tarfile.open(fileobj=ChunkReader(chunks), mode="r|") as archive:
        for member in archive:
            if not member.isfile():
                continue
            total += member.size
            if total > cap:
                kept.clear()
                continue  # the next member's header is found by reading past this one's data
            extracted = archive.extractfile(member)
            while extracted is not None and (piece := extracted.read(1 << 20)):
                kept += piece
    if total > cap:
        raise ResultTooLarge(total, cap)
    return bytes(kept)

"""`CloudpipeExecutor`: a `concurrent.futures.Executor` whose calls run as jobs.

One background thread watches every pending job with one WatchMany stream (reopened,
a few times a second at most, when jobs are added) and resolves the futures.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

import grpc

from cloudpipe_sdk._errors import CloudpipeError, InvalidRequest, Unavailable, from_rpc_error
from cloudpipe_sdk._job import Job
from cloudpipe_sdk._job_calls import WATCH_LIMIT
from cloudpipe_sdk._outcome import outcome
from cloudpipe_sdk._transport import Transport

R = TypeVar("R")


class Submitter(Protocol):
    """What an executor needs of a client (a `Client` is one)."""

    @property
    def transport(self) -> Transport: ...

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job: ...

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = ...,
        chunksize: int | None = ...,
        progress: bool | None = ...,
    ) -> Iterator[R]: ...


_DEBOUNCE = 0.05  # seconds new submissions are collected before the stream is reopened


class JobFuture(concurrent.futures.Future[Any]):
    """A future of one job: `result()`, `exception()`, `add_done_callback()` as usual;
    `cancel()` kills the job. `job` is the Job behind it. The future stays pending (not
    `running()`) until the job finishes."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def cancel(self) -> bool:
        """Kill the job and cancel the future; False when it had finished already."""
        if self.done():
            return False
        try:
            self.job.kill()
        except CloudpipeError:
            return False
        if not super().cancel():
            return False
        self.set_running_or_notify_cancel()  # no worker will: wake wait() and as_completed()
        return True

    def __repr__(self) -> str:
        return f"<JobFuture job {self.job.id} {super().__repr__()[1:-1]}>"


class CloudpipeExecutor(concurrent.futures.Executor):
    """Runs calls as Cloudpipe jobs. Make one with `client.executor(**options)`.

    Example::

        with client.executor(memory="1G") as pool:
            future = pool.submit(sum, [1, 2, 3])
            future.add_done_callback(lambda f: print(f.result()))
            print(list(pool.map(abs, [-1, -2])))      # [1, 2]
    """

    def __init__(self, client: Submitter) -> None:
        self._client = client
        self._transport = client.transport
        self._pending: dict[int, JobFuture] = {}
        self._lock = threading.Condition()
        self._shutdown = False
        self._call: grpc.Future | None = None
        self._watching: frozenset[int] = frozenset()
        self._outage = self._transport.outage(f"watching jobs at {self._transport.address}")
        self._thread = threading.Thread(target=self._watch_loop, daemon=True, name="cloudpipe-executor")
        self._thread.start()

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> JobFuture:
        """Submit `fn(*args, **kwargs)` as a job; return its future."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
        job = self._client.submit(fn, *args, **kwargs)
        future = JobFuture(job)
        with self._lock:
            self._pending[job.id] = future
            self._lock.notify_all()
        return future

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[R]:
        """Like `Executor.map`, submitted in batches (see `Client.map`); results in order.
        `buffersize` is not supported (every call is submitted at once)."""
        if buffersize is not None:
            raise InvalidRequest("buffersize: not supported; every call is submitted at once")
        return self._client.map(fn, *iterables, timeout=timeout, chunksize=chunksize, progress=False)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more submissions. `cancel_futures` kills the jobs not finished; `wait`
        blocks until every future is resolved."""
        with self._lock:
            self._shutdown = True
            pending = list(self._pending.values())
            self._lock.notify_all()
        if cancel_futures:
            for future in pending:
                future.cancel()
        if wait:
            concurrent.futures.wait(pending)
            self._thread.join()

    # -- the watcher thread --------------------------------------------------------------

    def _watch_loop(self) -> None:
        while True:
            with self._lock:
                self._drop_cancelled()
                while not self._pending and not self._shutdown:
                    self._lock.wait()
                    self._drop_cancelled()
                if not self._pending:
                    return
            self._lock_free_sleep()
            with self._lock:
                self._drop_cancelled()
                ids = sorted(self._pending)[:WATCH_LIMIT]
                if not ids:
                    continue
                self._watching = frozenset(ids)
            self._watch(ids)

    def _lock_free_sleep(self) -> None:
        threading.Event().wait(_DEBOUNCE)

    def _drop_cancelled(self) -> None:
        for job_id in [i for i, f in self._pending.items() if f.cancelled()]:
            del self._pending[job_id]

    def _watch(self, ids: list[int]) -> None:
        try:
            self._outage.opened()
            call = self._transport.watch(ids)
            with self._lock:
                self._call = call
            reopen = threading.Thread(target=self._reopen_when_added, args=(call,), daemon=True)
            reopen.start()
            for event in call:
                self._outage.progress()
                self._resolve(event.id)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return  # reopened with the current pending set
            error: CloudpipeError = from_rpc_error(exc)
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                try:  # the server restarts: reopen after a backoff
                    threading.Event().wait(self._outage.delay())
                    return
                except Unavailable as gone:  # for retry_for seconds: every pending future fails
                    self._outage.progress()
                    error = gone
                    with self._lock:
                        ids = list(self._pending)
            with self._lock:
                failed = [self._pending.pop(i) for i in ids if i in self._pending]
            for future in failed:
                if not future.cancelled() and future.set_running_or_notify_cancel():
                    future.set_exception(error)
        finally:
            with self._lock:
                self._call = None
                self._watching = frozenset()
                self._lock.notify_all()

    def _reopen_when_added(self, call: Any) -> None:
        """Cancel the stream when jobs it does not watch are pending, so it reopens."""
        with self._lock:
            while self._call is call and set(self._pending) <= self._watching and not self._shutdown:
                self._lock.wait()
            stale = self._call is call and not set(self._pending) <= self._watching
        if stale:
            call.cancel()

    def _resolve(self, job_id: int) -> None:
        with self._lock:
            future = self._pending.pop(job_id, None)
            self._lock.notify_all()
        if future is None or future.cancelled() or not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(outcome(future.job.refresh()))
        except BaseException as exc:
            future.set_exception(exc)

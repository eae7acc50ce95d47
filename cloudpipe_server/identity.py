"""One live server per identity (CLOUDPIPE_SERVER_ID) on one store.

The identity is a lease in the store (`JobStore.hold_identity`), taken at start before
the dispatcher adopts the jobs leased to that identity, renewed every third of the
lease, and released at a clean stop. A second server with the identity of a live one
refuses to start (`IdentityInUse`) instead of adopting and reaping the first one's
jobs.

The holder is this process, written so another process can tell whether it is gone:
host name, boot id, pid namespace, pid and the process's start time. A restart right
after a crash (kill -9, OOM) on the same host would otherwise wait out the old lease:
when the recorded holder ran on this host, in this boot and pid namespace, and no
process with its pid and start time exists, it is provably dead and the identity is
taken over at once. A holder on another host (or one this host cannot judge) is
waited out: its lease expires `lease_seconds` after its last renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from cloudpipe_server.errors import CloudpipeError, FailedPrecondition
from cloudpipe_server.store.base import JobStore

log = logging.getLogger(__name__)


class IdentityInUse(FailedPrecondition):
    """Another live server holds this server's identity on the same store."""


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or
    "" when there is no such process."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[-1].split()[19] if stat else ""


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def this_process() -> str:
    """The holder string of this process."""
    pid = os.getpid()
    return json.dumps(
        {
            "host": socket.gethostname(),
            "boot": _read("/proc/sys/kernel/random/boot_id"),
            "pidns": _pid_namespace(),
            "pid": pid,
            "start": _start_time(pid),
            "nonce": secrets.token_hex(4),
        },
        sort_keys=True,
    )


def provably_dead(holder: str) -> bool:
    """Whether the process `holder` names is known to be gone (see the module docstring)."""
    try:
        record = json.loads(holder)
        host, boot, pidns, pid, start = (record[k] for k in ("host", "boot", "pidns", "pid", "start"))
    except (ValueError, KeyError, TypeError):
        return False
    if not boot or not pidns or host != socket.gethostname() or pidns != _pid_namespace():
        return False
    if boot != _read("/proc/sys/kernel/random/boot_id"):
        return True  # this host rebooted since
    return not start or _start_time(int(pid)) != start


def describe(holder: str) -> str:
    try:
        record = json.loads(holder)
        return f"pid {record['pid']} on {record['host']}"
    except (ValueError, KeyError, TypeError):
        return repr(holder)


class IdentityLease:
    """Holds `server_id` in `store` while the server runs."""

    def __init__(self, store: JobStore, server_id: str, lease_seconds: float, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._server_id = server_id
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock
        self._holder = this_process()
        self._task: asyncio.Task[None] | None = None

    async def acquire(self) -> None:
        """Take the identity, or raise IdentityInUse naming the live holder."""
        now = self._clock()
        held_by = await self._store.hold_identity(self._server_id, self._holder, now, now + self._lease)
        if held_by != self._holder and provably_dead(held_by):
            log.info(
                "server identity %s: its last holder (%s) is gone; taking over", self._server_id, describe(held_by)
            )
            held_by = await self._store.hold_identity(
                self._server_id, self._holder, now, now + self._lease, replacing=held_by
            )
        if held_by != self._holder:
            raise IdentityInUse(
                f"CLOUDPIPE_SERVER_ID {self._server_id!r} is held by another live server ({describe(held_by)})"
                " on this store: stop that server, or give this one another CLOUDPIPE_SERVER_ID (or a --listen"
                f" address, from which the default identity is made); a crashed holder's claim expires"
                f" {self._lease.total_seconds():g} s after its last renewal"
            )
        self._task = asyncio.create_task(self._renew(), name=f"identity {self._server_id}")

    async def _renew(self) -> None:
        every = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            now = self._clock()
            try:
                held_by = await self._store.hold_identity(self._server_id, self._holder, now, now + self._lease)
            except CloudpipeError as exc:
                log.warning("server identity %s: could not renew its lease: %s", self._server_id, exc)
                continue
            if held_by != self._holder:
                log.error(
                    "server identity %s: taken over by %s after this server missed its renewals;"
                    " two servers now share it: stop one",
                    self._server_id,
                    describe(held_by),
                )

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self._store.release_identity(self._server_id, self._holder)
        except CloudpipeError as exc:
            log.warning("server identity %s: could not release it (it expires by itself): %s", self._server_id, exc)

"""multyvac's volume sync (`Volume.sync_up` / `sync_down`), served without SSH in any job.

The client submits `python .../multyvacinit/sync.py` with one `vol`, polls the job until
`collected.ports.tcp["22"]` appears, runs `rsync -e "ssh -p PORT -i KEY"` against
`multyvac@ADDRESS:<mount path>`, then kills the job. Cloudpipe runs that job as an
interactive job with the volume mounted at its mount path, in its own container with no
network, as every job. While it runs, the gateway offers an SSH port for it (one
listener per sync job, on the gateway's own host, gone after one session or
`sync_offer_seconds` unused): the client's key is the one `GET /v1/key` derived from the API
key of a caller the server accepted (http_gateway/multyvac_keys.py), the only command
is an rsync server on a path inside the mount, and the session's bytes are the job's
stdin and stdout through the gRPC `Attach` stream. The job's first line of stdin is the
checked rsync argument list; `multyvacinit/sync.py` checks its options (and that its
paths are plain absolute ones) again, then becomes that rsync server. Nothing else is
reachable over this SSH: no shell, no forwarding.

DECISION: an unused offer (the client never connected) kills its job, so a client that
died mid-sync leaves no job waiting for ever. The bytes of a sync count as the job's
stdin and stdout, within the server's caps (32 MiB of output per stream by default): a
`sync_down` of more is cut short; `cloudpipe volume get` streams any size.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import posixpath
import re
import shlex
import warnings
from dataclasses import dataclass, field
from typing import Any

import grpc

from cloudpipe_common.waiting import within
from cloudpipe_proto.v1 import jobs_pb2 as pb
from http_gateway.caller import Caller
from http_gateway.multyvac_keys import ssh_key

log = logging.getLogger(__name__)

SYNC_COMMAND = "python /usr/local/lib/python2.7/dist-packages/multyvacinit/sync.py"
SESSION_SECONDS = 3600.0  # the longest a sync session may take
CHUNK = 1 << 16
DONE_REMEMBERED = 10_000  # sync jobs whose one offer is over (a later GET shows no port)
# An rsync server's short options as its client sends them (`-vlogDtprLze.iLsfxCIvu`: the
# letters, then `e.` and the client's capabilities). Only letters that change what is sent
# or how: never `s` (--protect-args: the server would read a new, unchecked argument list
# from stdin) nor any letter that takes a value.
_FLAGS = re.compile(r"-(?=.)[vqblogDtprzLcunxHAXSWdOJKkmIyRCiEPh]*(?:e\.[A-Za-z]*)?")
_CHMOD = re.compile(r"--chmod=[ugoaDF+=,rwxXst-]+")
_LONG = frozenset({"--sender", "--delete", "--numeric-ids", "--no-implied-dirs", "--partial", "--inplace"})


def is_sync(spec: pb.JobSpec) -> bool:
    """A multyvac volume-sync job (its command and the `system` tag multyvac gives it)."""
    return spec.cmd.strip() == SYNC_COMMAND and spec.tags.get("system") == "true"


def mount_of(spec: pb.JobSpec) -> str:
    """Where a sync job has its volume mounted ("" when it has no mounted volume)."""
    mounted = [entry.split(":")[1] for entry in spec.volumes if ":" in entry]
    return mounted[0] if len(mounted) == 1 else ""


def as_sync_job(spec: pb.JobSpec) -> None:
    """A sync job takes its rsync session on stdin: interactive, in a fresh container."""
    spec.interactive = True


def rsync_argv(command: str | None, mount: str) -> list[str] | None:
    """The rsync server command line the client asked for, if it is one: `rsync --server`,
    allowed options, `.`, then paths inside `mount`. None for anything else."""
    try:
        argv = shlex.split(command or "")
    except ValueError:
        return None
    if len(argv) < 4 or argv[:2] != ["rsync", "--server"] or "." not in argv[2:] or not mount:
        return None
    dot = argv.index(".", 2)
    if not all(_FLAGS.fullmatch(o) or _CHMOD.fullmatch(o) or o in _LONG for o in argv[2:dot]):
        return None
    paths = argv[dot + 1 :]
    for path in paths:
        clean = posixpath.normpath(path)
        if not path.startswith("/") or not (clean == mount or clean.startswith(mount.rstrip("/") + "/")):
            return None
    return argv if paths else None


@dataclass
class _Offer:
    job_id: int
    account: str
    metadata: tuple[tuple[str, str], ...]
    mount: str
    keys: set[str] = field(default_factory=set)
    acceptor: Any = None
    port: int = 0
    used: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    bridged: bool = False  # the job got its rsync command line


def _import_asyncssh() -> Any:
    with warnings.catch_warnings():  # asyncssh imports cryptography's deprecated DSA
        warnings.simplefilter("ignore")
        import asyncssh
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # a line per packet phase at INFO
    return asyncssh


class SyncPorts:
    """The SSH ports of running sync jobs; `offer()` opens or reuses one."""

    def __init__(self, jobs_stub: Any, bind_host: str, offer_seconds: float) -> None:
        self._jobs = jobs_stub
        self._bind = bind_host
        self._offer_seconds = offer_seconds
        self._offers: dict[int, _Offer] = {}
        self._lock = asyncio.Lock()
        self._host_key: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: collections.deque[int] = collections.deque(maxlen=DONE_REMEMBERED)  # offered once: never again

    async def offer(self, job: pb.Job, caller: Caller, api_key: str) -> int:
        """The port of running sync job `job` for this caller (its key accepted there);
        0 when the job cannot be offered (no mounted volume)."""
        mount = mount_of(job.spec)
        if not mount:
            return 0
        public = ssh_key(caller.account, api_key).public_openssh.split()[1]
        async with self._lock:
            if job.id in self._done:
                return 0
            offer = self._offers.get(job.id)
            if offer is None:
                offer = _Offer(job.id, caller.account, caller.metadata, mount)
                try:
                    await self._listen(offer)
                except OSError as exc:  # no port to be had: the job shows none (the client gives up)
                    log.warning("sync job %d: cannot listen for SSH: %s", job.id, exc)
                    return 0
                self._offers[job.id] = offer
                task = asyncio.create_task(self._expire(offer))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            offer.keys.add(public)
            return offer.port

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for offer in list(self._offers.values()):
            self._end(offer)

    # -- one offer --------------------------------------------------------------------

    async def _listen(self, offer: _Offer) -> None:
        asyncssh = _import_asyncssh()
        if self._host_key is None:
            self._host_key = asyncssh.generate_private_key("ssh-ed25519")
        ports = self
        base: Any = asyncssh.SSHServer

        class Server(base):  # type: ignore[misc]
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return False

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: Any) -> bool:
                text = key.export_public_key("openssh").decode().split()
                return username == "multyvac" and len(text) > 1 and text[1] in offer.keys

        async def session(process: Any) -> None:
            await ports._session(offer, process)

        offer.acceptor = await asyncssh.create_server(
            Server,
            self._bind,
            0,
            server_host_keys=[self._host_key],
            process_factory=session,
            encoding=None,
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            login_timeout=30,
        )
        offer.port = int(offer.acceptor.get_port())
        log.info("sync job %d of %s: SSH on port %d", offer.job_id, offer.account, offer.port)

    async def _expire(self, offer: _Offer) -> None:
        """Close the offer when its session ended; kill its job when nobody came or the
        session never reached it (a refused command): no sync job waits for ever."""
        try:
            await within(offer.used.wait(), self._offer_seconds)
            await offer.ended.wait()
        except TimeoutError:
            log.warning("sync job %d: no client within %.0f s", offer.job_id, self._offer_seconds)
        finally:
            self._end(offer)
        if not offer.bridged:
            log.info("sync job %d of %s: no rsync session reached it; killing it", offer.job_id, offer.account)
            try:
                await self._jobs.Kill(pb.KillJobRequest(id=offer.job_id), metadata=offer.metadata, timeout=15)
            except grpc.aio.AioRpcError as exc:
                log.warning("sync job %d: could not kill it: %s %s", offer.job_id, exc.code().name, exc.details())

    def _end(self, offer: _Offer) -> None:
        offer.ended.set()
        self._done.append(offer.job_id)
        if self._offers.get(offer.job_id) is offer:
            del self._offers[offer.job_id]
        if offer.acceptor is not None:
            offer.acceptor.close()

    async def _session(self, offer: _Offer, process: Any) -> None:
        """One rsync session: the command checked, then the bytes to and from the job."""
        if offer.used.is_set():
            process.stderr.write(b"cloudpipe: this sync job already had its session\n")
            process.exit(1)
            return
        offer.used.set()
        try:
            argv = rsync_argv(process.command, offer.mount)
            if argv is None:
                log.info("sync job %d: refused command %r", offer.job_id, (process.command or "")[:200])
                process.stderr.write(f"cloudpipe: only an rsync of {offer.mount} runs here\n".encode())
                process.exit(1)
                return
            process.exit(await self._bridge(offer, process, argv))
        except Exception:
            log.exception("sync job %d: the session failed", offer.job_id)
            process.exit(255)
        finally:
            offer.ended.set()

    async def _bridge(self, offer: _Offer, process: Any, argv: list[str]) -> int:
        call = self._jobs.Attach(metadata=offer.metadata, timeout=SESSION_SECONDS)
        await call.write(pb.AttachRequest(start=pb.AttachStart(id=offer.job_id)))
        await call.write(pb.AttachRequest(stdin=json.dumps(argv).encode() + b"\n"))
        offer.bridged = True

        async def upstream() -> None:
            while data := await process.stdin.read(CHUNK):
                await call.write(pb.AttachRequest(stdin=data))
            await call.write(pb.AttachRequest(close_stdin=True))

        pump = asyncio.create_task(upstream())
        ended: pb.ExitEvent | None = None
        try:
            while (event := await call.read()) is not grpc.aio.EOF:
                kind = event.WhichOneof("event")
                if kind == "output":
                    out = process.stdout if event.output.stream == pb.OUTPUT_STREAM_STDOUT else process.stderr
                    out.write(event.output.data)
                    await out.drain()
                elif kind == "exit":
                    ended = event.exit
                    return int(ended.return_code) if ended.HasField("return_code") else 1
            return 255
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await pump
            call.cancel()
            if ended is None:  # the session broke off (the client went away): the job has nothing left to do
                log.info("sync job %d: the session ended before the job; killing it", offer.job_id)
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self._jobs.Kill(pb.KillJobRequest(id=offer.job_id), metadata=offer.metadata, timeout=15)

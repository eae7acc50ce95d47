"""Cloudpipe warm-container agent: a fork server for the Python 3 runner image.

(About 490 lines, one file on purpose: it runs inside the image as PID 1 and is copied
there as one stdlib-only module beside cloudpipe_runner, which the Dockerfile compiles
and runner_images/build.py probes by name; its framing, forking and reaping only make
sense together, and a second module would be one more file every image must carry.)

Run as ``python3 -m cloudpipe_agent`` as the container's command, with stdin and
stdout attached by the Cloudpipe server. It has imported cloudpickle and the job
bootstrap (``cloudpipe_runner``) once, and runs the jobs it is sent one after
another, each in a freshly forked process, so jobs share no process state.

Protocol (version 1), both directions on the container's stdin/stdout: frames of a
5-byte header ``struct.pack("!BI", kind, length)`` followed by ``length`` bytes.

server -> agent
  RUN (1)        JSON {"job": id, "cmd": str, "env": {...}, "result_path": str|null,
                 "result_cap": n (optional: a result over n bytes is not sent, only its size)}
  STDIN (2)      bytes for the job's stdin
  STDIN_END (3)  close the job's stdin
  SIGNAL (4)     JSON {"job": id, "signal": n}: sent to that job's process group
agent -> server
  READY (16)     JSON {"protocol": 1, "python": "3.11.2", "pid": n}
  STARTED (17)   JSON {"job": id, "pid": n}
  STDOUT (18), STDERR (19)  the job's output, as it is written
  RESULT (20)    a piece of the job's result (the ``file:`` result source)
  EXIT (21)      JSON {"job", "code", "signal", "oom", "utime", "stime", "maxrss", "error", "result_size"}

End of stdin (the server closed the attach, e.g. because it died) kills the running
job and ends the agent, and with it the container.

The agent is the container's PID 1 (no docker-init): it alone holds the container's
stdin and stdout, and it is not dumpable, so its /proc/1 files (fd, mem, environ) are
root's and closed to the jobs, which run as the same user: a job can neither write a
fake frame into the protocol nor read the next job's start message. As init it reaps
the orphans a job leaves behind, and signals a job sends it are ignored.

A job is ``/bin/bash -c cmd`` with the job's environment, in a new session whose
processes prefer the OOM killer to the agent. The runner's own command
(``python3 -m cloudpipe_runner``) is not exec'd: the forked process calls the
preloaded bootstrap directly and hands the result envelope over a pipe. When a job's
main process exits, every other process it left behind is killed (as the end of a
container would), and a ``file:`` result is read and then removed (and whatever is at
the result path is removed before a job starts), so that a later job never returns an
earlier job's result. A result path that is a symbolic link, a FIFO or a device is
refused: the agent never follows a job's link nor blocks on a job's FIFO.
"""

from __future__ import annotations

import atexit
import errno
import io
import json
import os
import platform
import selectors
import shutil
import signal
import stat
import struct
import sys
import time
import traceback
from typing import Any

import cloudpickle  # noqa: F401  (preloaded for the forked jobs)
import cloudpipe_runner

try:  # the optional second serializer, when the image has it
    import dill  # noqa: F401
except ImportError:
    pass

PROTOCOL = 1
HEADER = struct.Struct("!BI")
RUN, STDIN, STDIN_END, SIGNAL = 1, 2, 3, 4
READY, STARTED, STDOUT, STDERR, RESULT, EXIT = 16, 17, 18, 19, 20, 21
RUNNER_COMMAND = "python3 -m cloudpipe_runner"
CHUNK = 1 << 16
RESULT_FD = 3
OOM_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
PR_SET_DUMPABLE = 4


def set_dumpable(value: int) -> bool:
    """Non-dumpable: jobs (same user) cannot open the agent's /proc files, fds or memory."""
    try:
        import ctypes

        return int(ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, value, 0, 0, 0)) == 0
    except Exception:
        return False


def oom_kills() -> int:
    """The container's OOM-kill counter (cgroup v2 or v1), or -1 when unreadable."""
    for path in OOM_FILES:
        try:
            with open(path) as handle:
                for line in handle:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return -1


def remove_result(path: str) -> None:
    """Remove what is at a result path (an earlier job's file, directory, FIFO or
    link), so a job that writes no result never returns another's."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        sys.stderr.write(f"cloudpipe agent: could not remove {path}: {exc}\n")


def regular_file(path: str) -> int:
    """An open descriptor on `path` if it is a regular file, never following a
    symbolic link and never blocking on a FIFO. Raises OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd


def result_files(path: str) -> list[str]:
    """The files a ``file:`` result is read from: the path itself, or every regular
    file under a directory (sorted, links and FIFOs skipped), as the fresh path does.
    Raises FileNotFoundError, or OSError for a link, FIFO or device at the path."""
    top = os.lstat(path)
    if stat.S_ISLNK(top.st_mode) or not (stat.S_ISDIR(top.st_mode) or stat.S_ISREG(top.st_mode)):
        raise OSError(errno.EINVAL, "not a regular file or directory (links, FIFOs and devices are refused)")
    if stat.S_ISREG(top.st_mode):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found += [os.path.join(root, name) for name in sorted(files) if os.path.isfile(os.path.join(root, name))]
    return found


class Job:
    """The one job running now."""

    def __init__(self, job_id: int, pid: int, fast: bool, result_path: str | None) -> None:
        self.id = job_id
        self.pid = pid
        self.fast = fast
        self.result_path = result_path
        self.readers: dict[int, int] = {}  # fd -> frame kind (RESULT for the result pipe)
        self.stdin_fd: int | None = None
        self.stdin_pending: list[bytes] = []
        self.stdin_end = False
        self.pidfd: int | None = None
        self.status: int | None = None
        self.rusage: Any = None
        self.result = bytearray()
        self.result_size = 0  # what the job produced; beyond result_cap it is counted, not kept
        self.result_cap = 0  # 0: none told by the server
        self.oom_before = oom_kills()


class Agent:
    def __init__(self, proto_in: int, proto_out: int) -> None:
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.inbox = bytearray()
        self.selector = selectors.DefaultSelector()
        self.selector.register(proto_in, selectors.EVENT_READ)
        self.job: Job | None = None
        self.leftovers = False  # processes a job left behind may still await reaping
        self.cwd = os.getcwd()
        self.base_env = dict(os.environ)
        self.streams = {
            fd: (getattr(stream, "encoding", None) or "utf-8", getattr(stream, "errors", None) or "strict")
            for fd, stream in ((0, sys.stdin), (1, sys.stdout), (2, sys.stderr))
        }

    # -- frames -------------------------------------------------------------------------

    def send(self, kind: int, payload: bytes = b"") -> None:
        data = HEADER.pack(kind, len(payload)) + payload
        view = memoryview(data)
        while view:
            written = os.write(self.proto_out, view)
            view = view[written:]

    def send_json(self, kind: int, value: dict[str, Any]) -> None:
        self.send(kind, json.dumps(value).encode())

    def frames(self) -> list[tuple[int, bytes]]:
        out = []
        while len(self.inbox) >= HEADER.size:
            kind, length = HEADER.unpack_from(self.inbox)
            if len(self.inbox) < HEADER.size + length:
                break
            out.append((kind, bytes(self.inbox[HEADER.size : HEADER.size + length])))
            del self.inbox[: HEADER.size + length]
        return out

    # -- the loop ---------------------------------------------------------------------

    def serve(self) -> None:
        self.send_json(READY, {"protocol": PROTOCOL, "python": platform.python_version(), "pid": os.getpid()})
        while True:
            timeout = None
            job = self.job
            if job is not None and job.pidfd is None and job.status is None:
                timeout = 0.01  # no pidfd on this kernel/Python: poll for the exit
            elif job is None and self.leftovers:
                timeout = 0.1  # killed leftovers not yet reaped
            for key, _ in self.selector.select(timeout):
                fd = key.fd
                if fd == self.proto_in:
                    if not self.read_commands():
                        self.shutdown()
                        return
                elif job is not None and fd == job.pidfd:
                    self.reap(job)
                elif job is not None and fd == job.stdin_fd:
                    self.feed_stdin(job)
                elif job is not None and fd in job.readers:
                    self.pump(job, fd)
            job = self.job
            if job is None and self.leftovers:
                self.leftovers = reap_leftovers()
            if job is not None and job.status is None and job.pidfd is None:
                self.reap(job, block=False)
            if job is not None and job.status is not None and not job.readers:
                self.finish(job)

    def read_commands(self) -> bool:
        data = os.read(self.proto_in, 1 << 20)
        if not data:
            return False
        self.inbox += data
        for kind, payload in self.frames():
            job = self.job
            if kind == RUN:
                self.start(json.loads(payload))
            elif job is None:
                continue  # stdin or a signal for a job that already ended
            elif kind == STDIN:
                if job.stdin_fd is not None:
                    job.stdin_pending.append(payload)
                    self.watch_stdin(job)
            elif kind == STDIN_END:
                job.stdin_end = True
                self.watch_stdin(job)
            elif kind == SIGNAL:
                request = json.loads(payload)
                if int(request.get("job", job.id)) != job.id or job.status is not None:
                    continue  # meant for a job that already ended
                try:
                    os.killpg(job.pid, int(request["signal"]))
                except (ProcessLookupError, PermissionError):
                    pass
        return True

    def shutdown(self) -> None:
        """The server is gone: end the job and everything else, then the agent."""
        if self.job is not None:
            kill_others()

    # -- one job ----------------------------------------------------------------------

    def start(self, request: dict[str, Any]) -> None:
        job_id = int(request["job"])
        if self.job is not None:
            self.send_json(EXIT, {"job": job_id, "code": 126, "error": "the agent is busy with another job"})
            return
        self.leftovers = reap_leftovers()  # the last job's, killed when it ended
        cmd = str(request["cmd"])
        env = {**self.base_env, **{str(k): str(v) for k, v in dict(request.get("env") or {}).items()}}
        result_path = request.get("result_path")
        runner_result = os.path.abspath(env.get("CLOUDPIPE_RESULT_PATH") or cloudpipe_runner.DEFAULT_RESULT_PATH)
        fast = cmd.strip() == RUNNER_COMMAND and result_path == runner_result
        stdin_r, stdin_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe() if fast else (-1, -1)
        if result_path and not fast:
            remove_result(str(result_path))
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (stdin_r, stdin_w, out_r, out_w, err_r, err_w, res_r, res_w):
                if fd >= 0:
                    os.close(fd)
            self.send_json(EXIT, {"job": job_id, "code": 126, "error": f"cannot start the job: {exc}"})
            return
        if pid == 0:  # the job's process; never returns
            self.child(cmd, env, fast, stdin_r, out_w, err_w, res_w)
        for fd in (stdin_r, out_w, err_w, res_w):
            if fd >= 0:
                os.close(fd)
        job = self.job = Job(job_id, pid, fast, result_path)
        job.result_cap = int(request.get("result_cap") or 0)
        os.set_blocking(stdin_w, False)
        job.stdin_fd = stdin_w
        job.readers = {out_r: STDOUT, err_r: STDERR}
        if fast:
            job.readers[res_r] = RESULT
        for fd in job.readers:
            self.selector.register(fd, selectors.EVENT_READ)
        try:
            job.pidfd = os.pidfd_open(pid)
            self.selector.register(job.pidfd, selectors.EVENT_READ)
        except (AttributeError, OSError):
            job.pidfd = None
        self.send_json(STARTED, {"job": job_id, "pid": pid})

    def child(self, cmd: str, env: dict[str, str], fast: bool, stdin: int, out: int, err: int, res: int) -> None:
        code = 127
        try:
            os.setsid()
            try:
                with open("/proc/self/oom_score_adj", "w") as handle:
                    handle.write("1000")  # the OOM killer takes the job, not the agent
            except OSError:
                pass
            os.dup2(stdin, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            if fast:
                os.dup2(res, RESULT_FD)
            os.closerange(RESULT_FD + 1 if fast else RESULT_FD, os.sysconf("SC_OPEN_MAX"))
            set_dumpable(1)  # only now: it no longer holds the agent's protocol fds
            signal.signal(signal.SIGINT, signal.SIG_DFL if not fast else signal.default_int_handler)
            os.chdir(self.cwd)
            if not fast:
                for number in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores them; bash must not
                    signal.signal(number, signal.SIG_DFL)
                os.execve("/bin/bash", ["/bin/bash", "-c", cmd], env)
            os.environ.clear()
            os.environ.update(env)
            self.fresh_std_streams()
            sys.argv = [cloudpipe_runner.__file__]
            cloudpipe_runner.write_atomically = write_result_fd  # this process only
            code = cloudpipe_runner.main()
            atexit._run_exitfuncs()
            cloudpipe_runner.flush_std_streams()
        except BaseException:
            try:
                if not fast:
                    os.write(2, b"cloudpipe: exec /bin/bash failed\n")
                os.write(2, traceback.format_exc().encode(errors="replace"))
            except BaseException:
                pass
        finally:
            os._exit(code)

    def fresh_std_streams(self) -> None:
        """sys.stdin/stdout/stderr on the job's pipes, configured as a fresh interpreter's."""
        streams = []
        for fd, mode in ((0, "r"), (1, "w"), (2, "w")):
            encoding, errors = self.streams[fd]
            if fd == 2:
                errors = "backslashreplace"
            raw = io.FileIO(fd, mode, closefd=False)
            buffered: Any = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
            streams.append(io.TextIOWrapper(buffered, encoding=encoding, errors=errors, line_buffering=fd == 2))
        sys.stdin, sys.stdout, sys.stderr = streams
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams  # type: ignore[misc]

    def watch_stdin(self, job: Job) -> None:
        if job.stdin_fd is None:
            return
        try:
            self.selector.modify(job.stdin_fd, selectors.EVENT_WRITE)
        except KeyError:
            self.selector.register(job.stdin_fd, selectors.EVENT_WRITE)

    def feed_stdin(self, job: Job) -> None:
        assert job.stdin_fd is not None
        try:
            while job.stdin_pending:
                piece = job.stdin_pending[0]
                written = os.write(job.stdin_fd, piece[:CHUNK])
                if written < len(piece):
                    job.stdin_pending[0] = piece[written:]
                else:
                    job.stdin_pending.pop(0)
        except BlockingIOError:
            return
        except OSError:  # the job closed its stdin or exited: drop the rest, like a pipe
            job.stdin_pending.clear()
            job.stdin_end = True
        if job.stdin_end:
            self.close_stdin(job)
        else:
            self.selector.unregister(job.stdin_fd)

    def close_stdin(self, job: Job) -> None:
        if job.stdin_fd is None:
            return
        try:
            self.selector.unregister(job.stdin_fd)
        except KeyError:
            pass
        os.close(job.stdin_fd)
        job.stdin_fd = None

    def pump(self, job: Job, fd: int) -> None:
        try:
            data = os.read(fd, CHUNK)
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(fd)
            os.close(fd)
            del job.readers[fd]
            return
        if job.readers[fd] == RESULT:
            job.result_size += len(data)
            if job.result_cap and job.result_size > job.result_cap:
                job.result.clear()
            else:
                job.result += data
        else:
            self.send(job.readers[fd], data)

    def reap(self, job: Job, block: bool = True) -> None:
        pid, status, rusage = os.wait4(job.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return
        job.status, job.rusage = status, rusage
        if job.pidfd is not None:
            self.selector.unregister(job.pidfd)
            os.close(job.pidfd)
        self.close_stdin(job)
        kill_others()  # what it left behind ends with it, as at the end of a container
        self.leftovers = reap_leftovers()

    def finish(self, job: Job) -> None:
        status = job.status
        assert status is not None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        code = 128 + sig if sig else os.WEXITSTATUS(status)
        error = ""
        if job.fast:
            if not job.result_size:
                error = f"result file {job.result_path} was not found in the container"
            for start in range(0, len(job.result), 1 << 20):
                self.send(RESULT, bytes(job.result[start : start + (1 << 20)]))
        elif job.result_path:
            error = self.send_result(job, str(job.result_path))
        after = oom_kills()
        usage = job.rusage
        self.send_json(
            EXIT,
            {
                "job": job.id,
                "code": code,
                "signal": sig,
                "oom": job.oom_before >= 0 and after > job.oom_before,
                "utime": usage.ru_utime,
                "stime": usage.ru_stime,
                "maxrss": usage.ru_maxrss,
                "error": error,
                "result_size": job.result_size,
            },
        )
        self.job = None

    def send_result(self, job: Job, path: str) -> str:
        """Send a ``file:`` result in RESULT frames as it is read (nothing of it when it
        is over the server's cap: only its size, in EXIT), then remove it. The error, or ""."""
        try:
            fds = [regular_file(name) for name in result_files(path)]
        except FileNotFoundError:
            return f"result file {path} was not found in the container"
        except OSError as exc:
            return f"could not copy the result {path}: {exc.strerror or exc}"
        try:
            job.result_size = sum(os.fstat(fd).st_size for fd in fds)
            if not job.result_cap or job.result_size <= job.result_cap:
                for fd in fds:
                    while piece := os.read(fd, 1 << 20):
                        self.send(RESULT, piece)
        except OSError as exc:
            return f"could not copy the result {path}: {exc.strerror or exc}"
        finally:
            for fd in fds:
                os.close(fd)
            remove_result(path)
        return ""


def write_result_fd(path: str, data: bytes) -> None:
    """The bootstrap's result goes to the agent over a pipe, not through the filesystem."""
    view = memoryview(data)
    while view:
        view = view[os.write(RESULT_FD, view) :]
    os.close(RESULT_FD)


def kill_others() -> None:
    """SIGKILL every process of this user in the container but the agent (init)."""
    try:
        os.kill(-1, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap_leftovers() -> bool:
    """Collect the processes that have ended among the agent's children (as PID 1,
    the orphans of every job are); True while some have not ended yet. Only between
    jobs: it would take the running job's exit status too."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def main() -> int:
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # anything printed by accident goes to stderr, never into the protocol
    os.close(null)
    if not set_dumpable(0) or os.getpid() != 1:  # never serve jobs that could reach the protocol
        sys.stderr.write("cloudpipe agent: must run as PID 1 and non-dumpable; exiting\n")
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a job's `kill -INT 1` must not end the agent
    started = time.monotonic()
    agent = Agent(proto_in, proto_out)
    try:
        agent.serve()
    except BrokenPipeError:
        pass  # the server went away while we wrote
    sys.stderr.write(f"cloudpipe agent: exiting after {time.monotonic() - started:.1f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

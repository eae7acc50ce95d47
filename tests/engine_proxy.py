"""An engine outage for one server only: a unix socket that forwards to the real Docker
engine's socket and that a test can take away (`stop`: the socket goes and every
forwarded connection is cut, as when dockerd dies) and bring back (`start`). The
shared dockerd itself keeps running for everyone else."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType

ENGINE_SOCKET = "/var/run/docker.sock"
_CHUNK = 64 << 10


class EngineProxy:
    """`unix://<path>` forwards to `target` while started."""

    def __init__(self, target: str = ENGINE_SOCKET) -> None:
        self._target = target
        self._dir = tempfile.mkdtemp(prefix="cp-engine-")  # short: unix socket paths are limited
        self.path = Path(self._dir) / "docker.sock"
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="engine-proxy").start()

    def stop(self) -> None:
        """The engine goes away: nothing answers at the path, open connections break."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with self._lock:
            connections, self._connections = self._connections, set()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)

    def __enter__(self) -> EngineProxy:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # stopped
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self._target)
            except OSError:
                client.close()
                upstream.close()
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    upstream.close()
                    return
                self._connections |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True, name="engine-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """One direction; an end of input is passed on as a half-close (attached stdin)."""
        try:
            while data := source.recv(_CHUNK):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:  # cut by `stop`, or the other side went
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

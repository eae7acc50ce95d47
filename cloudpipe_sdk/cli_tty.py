"""`cloudpipe attach` on a tty job (submitted with `--tty`) from a real terminal.

When the job has a terminal and our stdin and stdout are terminals, ours is put in raw
mode for the attachment: every key goes to the job as a byte (Ctrl-C, Ctrl-Z and
Ctrl-\\ become signals through the job's own pty, whose line discipline also does the
echo: nothing is echoed here), its output comes back as the terminal's raw bytes,
and our window size is sent at the start and on every SIGWINCH. The detach keys
(Ctrl-P Ctrl-Q unless `--detach-keys`) end the attachment and leave the job running.

Our terminal's settings are restored on every way out: the job ended, we detached, the
server went away, an exception, SIGTERM or SIGHUP (turned into SystemExit, so the
`finally` runs).

Threads, as in cli_live: only the main thread writes, with `os.write` on fd 1 (never
`sys.stdout`, so no buffered object is busy at exit); fd 0 is read with `os.read` in a
daemon thread; the window size is sent by one daemon thread woken by the SIGWINCH
handler (the handler itself only sets an event: the session's lock may be held by the
frame it interrupted).
"""

from __future__ import annotations

import os
import signal
import termios
import threading
import tty
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any

import click

from cloudpipe_sdk._stream import Attachment
from cloudpipe_sdk._types import Exit, Output

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CONTROL_NAMES = "@abcdefghijklmnopqrstuvwxyz[\\]^_"  # ctrl-@ is 0, ctrl-a 1 ... ctrl-_ 31


def parse_detach_keys(text: str) -> bytes:
    """Docker's detach-keys notation -> the bytes typed: comma-separated keys, each
    `ctrl-X` (X a letter or one of @ [ \\ ] ^ _) or one printable ASCII character.
    Raises click.BadParameter for anything else."""
    keys = bytearray()
    for key in text.split(","):
        name = key.strip().lower()
        if name.startswith("ctrl-") and len(name) == 6 and name[5] in _CONTROL_NAMES:
            keys.append(_CONTROL_NAMES.index(name[5]))
        elif len(key) == 1 and key.isascii() and key.isprintable():
            keys.append(ord(key))
        else:
            raise click.BadParameter(
                f"{key!r} is not a key: use ctrl-A to ctrl-Z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_ "
                "or one character, comma-separated (the default is ctrl-p,ctrl-q)",
                param_hint="--detach-keys",
            )
    return bytes(keys)


def terminals() -> bool:
    """Whether our stdin and stdout are both terminals (then a tty job is attached raw)."""
    try:
        return os.isatty(0) and os.isatty(1)
    except OSError:  # pragma: no cover - a closed descriptor
        return False


class DetachMatcher:
    """Finds the detach keys in what is typed: `feed` returns the bytes to send on and
    whether the keys were completed (what follows them is not sent). A partial match is
    held back until the next key shows whether it was the start of the keys."""

    def __init__(self, keys: bytes) -> None:
        self._keys = keys
        self._matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for byte in data:
            if byte == self._keys[self._matched]:
                self._matched += 1
                if self._matched == len(self._keys):
                    self._matched = 0
                    return bytes(out), True
                continue
            if self._matched:
                out += self._keys[: self._matched]
                self._matched = 0
                if byte == self._keys[0]:
                    self._matched = 1
                    continue
            out.append(byte)
        return bytes(out), False


@contextmanager
def raw_terminal() -> Iterator[None]:
    """Our terminal (fd 0) in raw mode inside the block; its settings as they were after
    it, whatever ends the block. SIGTERM and SIGHUP end it as SystemExit."""
    saved = termios.tcgetattr(0)
    previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP)}

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for number in previous:
        signal.signal(number, leave)
    try:
        tty.setraw(0, termios.TCSANOW)
        yield
    finally:
        # after a hangup the terminal is gone (EIO): nothing is left to restore, and the
        # exit code the hangup gave must stand
        with suppress(termios.error, OSError):
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        for number, handler in previous.items():
            signal.signal(number, handler)


class TerminalSession:
    """The keys and window of our terminal into a tty job's attach session."""

    def __init__(self, session: Attachment, detach_keys: bytes) -> None:
        self._session = session
        self._matcher = DetachMatcher(detach_keys)
        self._resized = threading.Event()
        self._previous: signal._HANDLER = signal.SIG_DFL
        self.detached = False

    def start(self) -> None:
        """Send our size now and on every SIGWINCH; start forwarding our keys."""
        self._resized.set()
        self._previous = signal.signal(signal.SIGWINCH, self._on_winch)
        threading.Thread(target=self._send_sizes, name="cloudpipe-winch", daemon=True).start()
        threading.Thread(target=self._forward_keys, name="cloudpipe-keys", daemon=True).start()

    def stop(self) -> None:
        signal.signal(signal.SIGWINCH, self._previous)

    def _on_winch(self, signum: int, frame: FrameType | None) -> None:
        self._resized.set()  # nothing else here: see the module docstring

    def _send_sizes(self) -> None:
        while True:
            self._resized.wait()
            self._resized.clear()
            try:
                size = os.get_terminal_size(1)
            except OSError:  # pragma: no cover - no longer a terminal
                return
            self._session.resize(max(size.lines, 1), max(size.columns, 1))

    def _forward_keys(self) -> None:
        while True:
            try:
                data = os.read(0, 65536)
            except OSError:
                data = b""
            if not data:  # our terminal is gone (hung up): leave the job running
                self._session.close()
                return
            send, detach = self._matcher.feed(data)
            if send:
                self._session.write(send)
            if detach:
                self.detached = True
                self._session.close()
                return


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd` (os.write may take part of it)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def detach_keys_option(fn: Any) -> Any:
    """`--detach-keys`, parsed to the bytes typed."""
    return click.option(
        "--detach-keys",
        default=DEFAULT_DETACH_KEYS,
        show_default=True,
        callback=lambda ctx, param, value: parse_detach_keys(value),
        help="on a --tty job from a terminal: the keys that detach (ctrl-X or a character, comma-separated)",
    )(fn)


def attach_raw(session: Attachment, detach_keys: bytes) -> Exit | None:
    """Our terminal, raw, on the tty job of `session` until it ends (its Exit) or we
    detach (None)."""
    terminal = TerminalSession(session, detach_keys)
    with raw_terminal():
        terminal.start()
        try:
            for event in session:
                if isinstance(event, Output):
                    write_all(1, event.data)
                elif isinstance(event, Exit):
                    return event
        finally:
            terminal.stop()
    return None

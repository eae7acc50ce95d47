"""The detach keys of a raw attachment: docker's notation, and finding them in what is
typed without holding back or losing any other key."""

from __future__ import annotations

import os
import pty
import sys
import time

import click
import pytest

from cloudpipe_sdk.cli_tty import DEFAULT_DETACH_KEYS, DetachMatcher, parse_detach_keys


def test_the_notation_is_dockers() -> None:
    assert parse_detach_keys(DEFAULT_DETACH_KEYS) == b"\x10\x11"
    assert parse_detach_keys("ctrl-x,x") == b"\x18x"
    assert parse_detach_keys("ctrl-@,ctrl-],ctrl-_,Q") == b"\x00\x1d\x1fQ"


@pytest.mark.parametrize("text", ["", "ctrl-1", "ctrl-", "xx", "ctrl-p,,ctrl-q", "é"])
def test_what_is_not_a_key_is_refused_naming_it(text: str) -> None:
    with pytest.raises(click.BadParameter, match="is not a key"):
        parse_detach_keys(text)


def test_the_keys_detach_and_nothing_after_them_is_sent() -> None:
    matcher = DetachMatcher(b"\x10\x11")
    assert matcher.feed(b"ls\r\x10\x11rest") == (b"ls\r", True)


def test_a_start_of_the_keys_is_sent_once_the_next_key_shows_it_is_not_them() -> None:
    matcher = DetachMatcher(b"\x10\x11")
    assert matcher.feed(b"a\x10") == (b"a", False)  # held back: it may be the start
    assert matcher.feed(b"b") == (b"\x10b", False)
    assert matcher.feed(b"\x10\x10") == (b"\x10", False)  # the second may start them again
    assert matcher.feed(b"\x11") == (b"", True)


def test_a_hangup_in_raw_mode_exits_129_without_a_traceback() -> None:
    """The terminal gone (its other end closed: SIGHUP, then EIO on restoring it) leaves
    the hangup's exit code standing."""
    code = (
        "import os, time\n"
        "from cloudpipe_sdk.cli_tty import raw_terminal\n"
        "with raw_terminal():\n"
        "    os.write(1, b'ready')\n"
        "    time.sleep(60)\n"
    )
    pid, master = pty.fork()
    if pid == 0:  # the child: our CLI's raw terminal on a pty of its own
        os.execv(sys.executable, [sys.executable, "-c", code])
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while b"ready" not in seen and time.monotonic() < deadline:
            seen += os.read(master, 1024)
        assert b"ready" in seen, seen
    finally:
        os.close(master)  # hang up
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 129

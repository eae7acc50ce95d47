"""`--json` for every `cloudpipe` command: one option, one way to print; and the two
small formatters the commands share (`when`, `key_values`).

A command that answers once prints one JSON document (`emit`); a command that streams
(`submit --wait`, `logs -f`, `attach`) prints JSON lines as things happen
(`emit_line`): `{"stream": "stdout", "text": "..."}` for output, then one
`{"exit": {...}}` when the job ends (with its `result` or `error` for submit --wait).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from cloudpipe_sdk._compat import UTC
from cloudpipe_sdk._outcome import settle
from cloudpipe_sdk._types import JobSnapshot, Output

F = TypeVar("F", bound=Callable[..., Any])


def json_option(fn: F) -> F:
    """The `--json` flag (parameter `as_json`)."""
    return click.option("--json", "as_json", is_flag=True, help="machine-readable output (JSON)")(fn)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def emit(value: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(value, indent=2, default=_plain))


def emit_line(value: Any) -> None:
    """One JSON line on stdout, flushed (for streams)."""
    sys.stdout.write(json.dumps(value, default=_plain) + "\n")
    sys.stdout.flush()


def output_line(event: Output) -> None:
    emit_line({"stream": event.stream, "text": event.text})


def jsonable(value: Any) -> Any:
    """A result as JSON: bytes decoded (UTF-8, replaced), JSON types as they are,
    anything else repr'd."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def outcome_dict(snapshot: JobSnapshot) -> dict[str, Any]:
    """How a finished job ended, with its `result` or its `error` (type and message)."""
    value, error = settle(snapshot)
    ended: dict[str, Any] = {
        "id": snapshot.id,
        "status": snapshot.status.value,
        "return_code": snapshot.return_code,
        "reason": snapshot.reason,
    }
    if error is None:
        ended["result"] = jsonable(value)
    else:
        ended["error"] = {"type": type(error).__name__, "message": str(error)}
    return ended


def when(moment: datetime | None) -> str:
    """A moment as UTC text ("-" for none)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment is not None else "-"


def key_values(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--env NAME=VALUE` options as a dict."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: use NAME=VALUE", param_hint="--env")
        env[name] = value
    return env

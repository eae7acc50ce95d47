"""How the server, the auth service and the gateway write their logs: one line per record
on stderr, as text (the default) or as JSON objects (`--log-format json` or
`CLOUDPIPE_LOG_FORMAT=json`), for log shippers (Loki, Elasticsearch, journald) that index
fields rather than grep lines.

Records about a job or made while serving an account carry `job_id` and `account`
fields. They come from context variables set where the job or the caller becomes known
(`log_context`, `job_context`): the dispatcher's per-job tasks, the gRPC auth
interceptor, the gateway's caller. `ContextFilter`, on the handler, copies them onto
every record; an `extra={"job_id": ...}` at the call site wins over the context. asyncio
tasks and `asyncio.to_thread` copy the context they start in; a plain thread starts with
none, so job work in threads runs inside `contextvars.copy_context().run`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from cloudpipe_common.errors import InvalidArgument

FORMATS = ("text", "json")
FIELDS = ("job_id", "account")  # the context fields, in the order text lines show them
_TEXT_NAMES = {"job_id": "job", "account": "account"}
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# JSON keys: time, level, logger, message, then job_id and account when known; `exc_info`
# and other `extra=` fields are added by the formatter when a record has them.
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}

_job_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("cloudpipe_log_job_id", default=None)
_account: contextvars.ContextVar[str | None] = contextvars.ContextVar("cloudpipe_log_account", default=None)


def log_format(environ: Mapping[str, str], flag: str | None = None) -> str:
    """The `--log-format` flag when given, else `CLOUDPIPE_LOG_FORMAT` (text or json);
    raises InvalidArgument naming where a value other than those came from."""
    where = "--log-format" if flag is not None else "CLOUDPIPE_LOG_FORMAT"
    raw = flag if flag is not None else environ.get("CLOUDPIPE_LOG_FORMAT", "")
    chosen = raw.strip().lower() or "text"
    if chosen not in FORMATS:
        raise InvalidArgument(f"{where}: {chosen!r} is not one of {', '.join(FORMATS)}")
    return chosen


def current_fields() -> dict[str, Any]:
    """The context's `job_id` and `account`, those that are set."""
    found = {"job_id": _job_id.get(), "account": _account.get()}
    return {name: value for name, value in found.items() if value is not None}


def job_fields(job_id: int, account: str | None = None) -> dict[str, Any]:
    """`extra=` for a line about a job outside its context (a sweep over many jobs)."""
    return {"job_id": job_id} if account is None else {"job_id": job_id, "account": account}


@contextlib.contextmanager
def log_context(*, job_id: int | None = None, account: str | None = None) -> Iterator[None]:
    """Records made inside carry these fields (those given; the others stay as they were)."""
    tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
    if job_id is not None:
        tokens.append((_job_id, _job_id.set(job_id)))
    if account is not None:
        tokens.append((_account, _account.set(account)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            try:
                var.reset(token)
            except ValueError:  # an async generator finalised in another context: nothing to undo
                pass


def bind_log_context(*, job_id: int | None = None, account: str | None = None) -> None:
    """Set the fields for the rest of the current context: for the start of a task (or
    an RPC, which is one task), whose context ends with it."""
    if job_id is not None:
        _job_id.set(job_id)
    if account is not None:
        _account.set(account)


def job_context(job_id: int, account: str | None = None) -> contextvars.Context:
    """A copy of the current context with the job's fields set: pass it as
    `asyncio.create_task(..., context=...)` or call `.run(fn)` in a thread."""
    context = contextvars.copy_context()
    context.run(bind_log_context, job_id=job_id, account=account)
    return context


def background_context(account: str | None = None) -> contextvars.Context:
    """A copy of the current context without a job id (and with `account` when given):
    for background work that outlives the job that started it (a warm container serves
    many jobs of its account)."""
    context = contextvars.copy_context()
    context.run(_job_id.set, None)
    if account is not None:
        context.run(_account.set, account)
    return context


class ContextFilter(logging.Filter):
    """Copies the context's `job_id` and `account` onto each record that does not carry
    them already (from `extra=`). Put it on a handler, so that records propagated from
    every logger get it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_fields().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """The text form, with ` job=12 account=alice` after the message when known."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        pairs = [
            f"{_TEXT_NAMES[name]}={_text_value(getattr(record, name))}"
            for name in FIELDS
            if getattr(record, name, None) is not None
        ]
        return f"{line} {' '.join(pairs)}" if pairs else line


def _text_value(value: object) -> str:
    """A field's value as one word: quoted (JSON string rules) when it has a space, a
    quote, '=' or a control character, so a claimed account name like `x job=1` cannot
    pass for other fields."""
    text = str(value)
    if text and text.isprintable() and not any(c in text for c in ' "=\\'):
        return text
    return json.dumps(text)


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of `fmt` (see `FORMATS`)."""
    if fmt == "json":
        from pythonjsonlogger.core import RESERVED_ATTRS  # only the programs need it, not the SDK
        from pythonjsonlogger.json import JsonFormatter

        # uvicorn's `color_message` is its message again with terminal colour codes
        return JsonFormatter(_JSON_FIELDS, rename_fields=_JSON_NAMES, reserved_attrs=[*RESERVED_ATTRS, "color_message"])
    return TextFormatter()


def configure_logging(level: str, fmt: str = "text") -> None:
    """Send every record at `level` or above to stderr in `fmt` (see `FORMATS`), with
    the context's fields (`ContextFilter`). Other loggers (uvicorn's, run with
    `log_config=None`) propagate to this handler, so they share the format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)

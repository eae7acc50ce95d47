"""How the server, the auth service and the gateway write their logs: one line per record
on stderr, as text (the default) or as JSON objects when `CLOUDPIPE_LOG_FORMAT=json`, for
log shippers (Loki, Elasticsearch, journald) that index fields rather than grep lines."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from cloudpipe_common.errors import InvalidArgument

FORMATS = ("text", "json")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# JSON keys: time, level, logger, message; `exc_info` and `extra=` fields are added by the
# formatter when a record has them.
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


def log_format(environ: Mapping[str, str]) -> str:
    """`CLOUDPIPE_LOG_FORMAT` (text or json); raises InvalidArgument on anything else."""
    chosen = environ.get("CLOUDPIPE_LOG_FORMAT", "").strip().lower() or "text"
    if chosen not in FORMATS:
        raise InvalidArgument(f"CLOUDPIPE_LOG_FORMAT: {chosen!r} is not one of {', '.join(FORMATS)}")
    return chosen


def configure_logging(level: str, fmt: str = "text") -> None:
    """Send every record at `level` or above to stderr in `fmt` (see `FORMATS`)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter  # only the programs need it, not the SDK

        handler.setFormatter(JsonFormatter(_JSON_FIELDS, rename_fields=_JSON_NAMES))
    else:
        handler.setFormatter(logging.Formatter(_TEXT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)

"""Settings from the environment: how one `CLOUDPIPE_*` value is parsed, and where
Cloudpipe keeps its data by default. Shared by the server, the auth service and the
gateway, each of which reads its own variables into its own frozen dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cloudpipe_common.errors import InvalidArgument

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """`$XDG_DATA_HOME/cloudpipe`, or `~/.local/share/cloudpipe`."""
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "/root")) / ".local" / "share")
    return Path(base) / "cloudpipe"


def parse_setting(name: str, raw: str, kind: object) -> object:
    """`raw`, the value of variable `name`, as `kind` (a dataclass field's type or its
    name under `from __future__ import annotations`: bool, int (any base), float, Path;
    anything else stays a string). Raises InvalidArgument naming the variable."""
    try:
        if kind in ("bool", bool):
            lowered = raw.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(raw)
            return lowered in _TRUE
        if kind in ("int", int):
            return int(raw, 0)
        if kind in ("float", float):
            return float(raw)
        if kind in ("Path", Path):
            return Path(raw)
        return raw
    except ValueError:
        raise InvalidArgument(f"{name}: cannot parse {raw!r} as {kind}") from None

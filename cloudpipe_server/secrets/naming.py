"""Secret names and what a job asks for in `JobSpec.secrets`: "NAME" (the environment
variable NAME holds the value) or "NAME:/absolute/path" (a file holding it)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cloudpipe_server.errors import InvalidArgument

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_VALUE_BYTES = 64 << 10
_RESERVED_PREFIX = "CLOUDPIPE_"  # the runner's own variables
_RESERVED_DIRS = ("/proc", "/sys", "/dev")


@dataclass(frozen=True)
class SecretUse:
    name: str
    path: str = ""  # empty: an environment variable named like the secret


def check_name(name: str, what: str = "name") -> str:
    if not NAME.fullmatch(name):
        raise InvalidArgument(
            f"{what}: {name[:80]!r} is not a secret name (letters, digits and '_', not starting with a digit;"
            " at most 128): it is also the environment variable's name"
        )
    return name


def gives_files(entries: Sequence[str]) -> bool:
    """Whether any of a job's `secrets` entries is a file (NAME:/path)."""
    return any(":" in entry for entry in entries)


def parse_uses(entries: Sequence[str], env: Mapping[str, str], where: str) -> list[SecretUse]:
    """A job's secrets entries, checked; refuses one whose variable the job's own `env` sets."""
    uses: list[SecretUse] = []
    seen: set[str] = set()
    for entry in entries:
        name, colon, path = entry.partition(":")
        check_name(name, f"{where}.secrets")
        if not colon:
            if name.startswith(_RESERVED_PREFIX):
                raise InvalidArgument(f"{where}.secrets: {name!r}: CLOUDPIPE_ variables are the runner's own")
            if name in env:
                raise InvalidArgument(f"{where}.secrets: {name!r} is also set in env; give it one way")
        else:
            normal = posixpath.normpath(path) if path.startswith("/") else ""
            if not normal or normal != path or normal == "/" or "\0" in path:
                raise InvalidArgument(f"{where}.secrets: {entry[:80]!r}: give an absolute file path without '..'")
            if any(normal == d or normal.startswith(d + "/") for d in _RESERVED_DIRS):
                raise InvalidArgument(f"{where}.secrets: {entry[:80]!r}: a secret cannot be written under {normal}")
        key = path or name
        if key in seen:
            raise InvalidArgument(f"{where}.secrets: {key!r} is given twice")
        seen.add(key)
        uses.append(SecretUse(name, path))
    return uses

"""What a volume is called where: the names accounts give volumes, the engine's name of
one (per cluster and account, so two accounts' "data" never meet), the paths inside a
volume, and the mounts a job asks for (`NAME:/path` or `NAME:/path:ro` in
`JobSpec.volumes`).

A bare name in `JobSpec.volumes` (no `:`) is multyvac's `vol`: it is kept and shown as
before and mounts nothing here; the multyvac gateway turns the `vol` of its jobs into
mounts at each volume's own `mount_path` (http_gateway/multyvac_volumes.py)."""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cloudpipe_server.errors import InvalidArgument

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
MAX_PATH_BYTES = 4096
LABEL_VOLUME = "org.cloudpipe.volume"
LABEL_ACCOUNT = "org.cloudpipe.volume.account"
LABEL_CLUSTER = "org.cloudpipe.cluster"
LABEL_MOUNT_PATH = "org.cloudpipe.volume.mount-path"
LABEL_DESCRIPTION = "org.cloudpipe.volume.description"
MAX_DESCRIPTION_BYTES = 1024
# where a job may not mount a volume: over its whole file system or the kernel's views
_RESERVED_TARGETS = ("/", "/proc", "/sys", "/dev")


@dataclass(frozen=True)
class VolumeMount:
    name: str
    target: str
    read_only: bool = False


def check_name(name: str, what: str = "name") -> str:
    if not NAME.fullmatch(name):
        raise InvalidArgument(
            f"{what}: {name[:80]!r} is not a volume name (lower-case letters, digits, '_', '.', '-';"
            " at most 63; starting with a letter or digit)"
        )
    return name


def engine_name(cluster: str, account: str, name: str) -> str:
    """The engine's name of an account's volume: unique per (cluster, account, name)."""
    owner = hashlib.sha256(f"{cluster}\0{account}".encode()).hexdigest()[:20]
    return f"cloudpipe-vol-{owner}-{name}"


def clean_path(path: str, what: str = "path", *, top: bool = True) -> str:
    """A relative path inside a volume as given ('/'-separated), checked: no '..', no '.'
    components, no NUL; "" (the top) only when `top`. Returned without a trailing '/'."""
    if len(path.encode()) > MAX_PATH_BYTES:
        raise InvalidArgument(f"{what}: at most {MAX_PATH_BYTES} bytes")
    stripped = path.strip("/") if path not in ("", "/") else ""
    parts = stripped.split("/") if stripped else []
    if path.startswith("/"):
        raise InvalidArgument(f"{what}: {path[:80]!r} must be relative to the volume's top (no leading '/')")
    if any(part in ("", ".", "..") for part in parts) or "\0" in path or not path.isprintable():
        raise InvalidArgument(f"{what}: {path[:80]!r} is not a plain path inside the volume (no '.', '..', '//')")
    if not parts and not top:
        raise InvalidArgument(f"{what}: name a file inside the volume, not its top")
    return "/".join(parts)


def check_target(target: str, what: str) -> str:
    """A path a volume may be mounted at, normalised: absolute, without '..', not over
    the whole file system or the kernel's views. Raises InvalidArgument naming `what`."""
    if len(target.encode()) > MAX_PATH_BYTES:
        raise InvalidArgument(f"{what}: a mount path is at most {MAX_PATH_BYTES} bytes")
    if not target.startswith("/") or posixpath.normpath(target) != target.rstrip("/") or "\0" in target:
        raise InvalidArgument(f"{what}: mount at an absolute path without '..' ")
    target = posixpath.normpath(target)
    if any(target == r or (r != "/" and target.startswith(r + "/")) for r in _RESERVED_TARGETS):
        raise InvalidArgument(f"{what}: a volume cannot be mounted at {target}")
    if not target.isprintable():
        raise InvalidArgument(f"{what}: a mount path has no control characters")
    return target


def mounts_any(entries: Sequence[str]) -> bool:
    """Whether any of a job's `volumes` entries is a mount (a bare name is not)."""
    return any(":" in entry for entry in entries)


def parse_mounts(entries: Sequence[str], where: str) -> list[VolumeMount]:
    """The mounts among a job's `volumes` entries (bare names mount nothing)."""
    mounts: list[VolumeMount] = []
    targets: set[str] = set()
    for entry in entries:
        if ":" not in entry:
            continue
        name, _, rest = entry.partition(":")
        target, _, mode = rest.partition(":")
        check_name(name, f"{where}.volumes")
        if mode not in ("", "ro", "rw"):
            raise InvalidArgument(f"{where}.volumes: {entry[:80]!r}: the mode after the path is ro or rw")
        target = check_target(target, f"{where}.volumes: {entry[:80]!r}")
        if target in targets:
            raise InvalidArgument(f"{where}.volumes: two volumes mounted at {target}")
        targets.add(target)
        mounts.append(VolumeMount(name, target, mode == "ro"))
    return mounts

"""What fresh and warm job containers share: the user they run as and the confinement
of their host config."""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from docker.types import LogConfig

from cloudpipe_server.executors.base import Limits
from cloudpipe_server.models import Job

NOBODY = "65534:65534"
_NUMERIC_USER = re.compile(r"(?P<uid>[0-9]+)(:[0-9]+)?")


def non_root_uid(user: str) -> bool:
    """`user` is a numeric uid (with an optional numeric gid) other than 0. A name is
    never trusted: the image's /etc/passwd may give any name uid 0 (`USER toor`)."""
    match = _NUMERIC_USER.fullmatch(user)
    return match is not None and int(match["uid"]) != 0


def job_user(image_user: str, configured: str) -> str:
    """The user a job's container runs as: the image's own when it is a numeric non-root
    uid, else the configured job user (itself only if numeric and non-root)."""
    if non_root_uid(image_user):
        return image_user
    return configured if non_root_uid(configured) else NOBODY


def confined_host_config(api: Any, limits: Limits, **extra: Any) -> dict[str, Any]:
    """Resource limits, no capabilities, no privilege gain, no network unless asked."""
    config: dict[str, Any] = api.create_host_config(
        nano_cpus=int(limits.cpus * 1e9),
        mem_limit=limits.memory_bytes,
        memswap_limit=limits.memory_bytes,
        pids_limit=limits.pids,
        network_mode="bridge" if limits.network else "none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        **extra,
    )
    return config


def bounded_log_config(output_cap_bytes: int) -> LogConfig:
    """The engine-side log of a fresh job container: json-file, rotated, at most three
    files of about the output cap each, so a job printing without end cannot fill the
    engine's disk. (The server reads output from the attach; the log is read only to
    re-adopt a container after a restart, kept up to the same cap.)"""
    size = max(output_cap_bytes, 1 << 20)
    return LogConfig(type=LogConfig.types.JSON, config={"max-size": str(size), "max-file": "3"})


def job_environment(job: Job) -> dict[str, str]:
    """The environment a job runs with (fresh or warm): its own, plus what the runner
    needs to know."""
    spec = job.spec
    environment = {**spec.env, **job.secret_env, "CLOUDPIPE_JOB_ID": str(job.id)}
    if spec.client_python:
        environment["CLOUDPIPE_CLIENT_PYTHON"] = spec.client_python
    if spec.serializer:
        environment["CLOUDPIPE_SERIALIZER"] = spec.serializer
    return environment


def user_ids(user: str) -> tuple[int, int]:
    """(uid, gid) of a numeric `user` as `job_user` answers it ("1000:1000" or "1000")."""
    uid, _, gid = user.partition(":")
    return int(uid), int(gid or uid)


def output_directories(outputs: Mapping[str, str]) -> list[str]:
    """The directories a job's outputs are written in: each directory output ("/out/"
    -> "/out") and each file output's parent, once each, outermost first."""
    found = {posixpath.dirname(path.rstrip("/")) if not path.endswith("/") else path.rstrip("/") for path in outputs}
    return sorted(found - {"/", ""})


def directories_archive(paths: Sequence[str], uid: int, gid: int) -> bytes:
    """A tar of empty directories to extract at "/", each 0755 and owned by `uid:gid`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, uid, gid, int(time.time())
            tar.addfile(info)
    return buffer.getvalue()


def secret_files_archive(files: Mapping[str, bytes], uid: int, gid: int) -> bytes:
    """A tar of `files` (absolute path -> content) to extract at "/": each file mode
    0400, owned by `uid:gid`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid, info.mtime = len(content), 0o400, uid, gid, int(time.time())
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()

"""`JobOptions`: how a job runs (image, limits, serializer...), and the one builder of
`JobSpec`s from them, for shell commands and Python calls: `Client.shell`/`submit`/
`map`, saved jobs, schedules and `cloudpipe apply` all build their specs here, so an
option (`memory="512M"`, `retries`, the serializer) means the same everywhere."""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudpipe_sdk._errors import InvalidRequest
from cloudpipe_sdk._image import Image
from cloudpipe_sdk._secret_calls import check_name
from cloudpipe_sdk._serialize import (
    RESULT_PATH,
    RUNNER_COMMAND,
    SERIALIZER,
    check_serializer,
    client_python,
    dump_call,
    version_of,
)
from cloudpipe_sdk._transfers import storage_secret_name, transfer_entries
from cloudpipe_sdk._types import BuiltImage, JobSpec

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", re.IGNORECASE)
_VOLUME_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_RESERVED_DIRS = ("/proc", "/sys", "/dev")  # no secret file goes under these


@dataclass(frozen=True)
class JobOptions:
    """How jobs run. None means the server's default (or, for `serializer`, the client's).

    - `image`: Docker image name (function jobs need a Cloudpipe Python runner image),
      an `Image` (built by the server on first use, then reused) or a `BuiltImage`;
    - `cpus`: CPU cores, fractions allowed; `memory`: bytes, or a string like "512M", "2G";
    - `timeout`: the longest the container may run, in seconds;
    - `retries`: a function job calls the function up to this many more times (in the
      same container, with 1, 2, 4... s pauses) when it raises, and the job is requeued
      if its runner is lost. Function jobs only: the server never re-runs a shell
      command that failed, so a shell job with retries is refused (InvalidRequest);
      `restartable=True` is what requeues a shell job whose runner was lost;
    - `serializer`: "cloudpickle" or "dill" for function jobs;
    - `env`, `name`, `tags`, `network` (off by default), `restartable`;
    - `fresh_container`: never run in a warm container of your account (see
      docs/warm-containers.md); use it for long jobs, which a restarted server re-adopts;
    - `volumes`: your account's volumes to mount, mount path -> volume name, the name
      ending in ":ro" for a read-only mount (`client.volumes` makes and fills them). A
      job with volumes always runs in a fresh container;
    - `secrets`: your account's secrets the job gets (`client.secrets` sets them): a
      list of names, each becoming the environment variable of that name, or a mapping
      of name -> absolute file path, each written to that file (mode 0400, the job's
      user's; a job with file secrets runs in a fresh container). A list may also hold
      "NAME:/path" entries, for both kinds in one job. Only names travel in the spec;
    - `inputs`: files the server fetches into the container before the job starts,
      container path -> "s3://bucket/key", "https://..." or "http://..." (owned by the
      job's user); `outputs`: what the server uploads after the job ended DONE,
      container path -> "s3://bucket/key", a path ending in "/" being a directory
      uploaded under a prefix ending in "/"; `storage_secret`: the name of your secret
      holding the object store's credentials (JSON: endpoint_url, access_key_id,
      secret_access_key, region), needed for s3:// URLs. A job with inputs or outputs
      runs in a fresh container (docs/sdk.md, "Inputs and outputs").

    Example::

        JobOptions(image="my/runner:3.11", cpus=2, memory="4G", timeout=600, retries=2)
        JobOptions(volumes={"/data": "mydata", "/ref": "refdata:ro"})
        JobOptions(secrets=["API_TOKEN"])                           # $API_TOKEN
        JobOptions(secrets={"DB_PASSWORD": "/run/secrets/db"})      # a file
        JobOptions(inputs={"/in/data.csv": "s3://bucket/data.csv"},
                   outputs={"/out/": "s3://bucket/runs/1/"}, storage_secret="S3")
    """

    image: str | Image | BuiltImage | None = None
    cpus: float | None = None
    memory: int | str | None = None
    timeout: float | None = None
    retries: int = 0
    serializer: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    network: bool = False
    restartable: bool = False
    fresh_container: bool = False
    volumes: Mapping[str, str] = field(default_factory=dict)
    secrets: Sequence[str] | Mapping[str, str] = ()
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    storage_secret: str | None = None
    # Names an Image (builds it): set by the client these options belong to.
    _resolve: Callable[[Image], str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.image is not None and not isinstance(self.image, str | Image | BuiltImage):
            raise InvalidRequest(f"image: a name, an Image or a BuiltImage, got {type(self.image).__name__}")
        if self.retries < 0:
            raise InvalidRequest(f"retries: must not be negative, got {self.retries}")
        if self.serializer is not None:
            check_serializer(self.serializer)
        memory_bytes(self.memory)
        mount_entries(self.volumes)
        secret_entries(self.secrets, self.env)
        storage_secret_name(
            self.storage_secret, transfer_entries(self.inputs, "inputs"), transfer_entries(self.outputs, "outputs")
        )

    def merged(self, **changes: Any) -> JobOptions:
        """A copy with `changes` applied (None values leave a setting as it is)."""
        known = {f.name for f in dataclasses.fields(self) if not f.name.startswith("_")}
        unknown = set(changes) - known
        if unknown:
            raise InvalidRequest(f"unknown job option(s): {', '.join(sorted(unknown))}; options: {', '.join(known)}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    # -- specs: the one builder, for submit, map, saved jobs, schedules and apply -------

    def shell_spec(
        self,
        cmd: str,
        *,
        stdin: bytes | str | None = None,
        result_source: str = "stdout",
        interactive: bool = False,
        tty: bool = False,
        depends_on: Sequence[int] = (),
        idempotency_key: str = "",
    ) -> JobSpec:
        """The spec of the shell command `cmd` run with these options (`tty`: with a
        terminal, which makes it interactive too). Raises InvalidRequest when `retries`
        is set (it applies to function jobs only)."""
        if self.retries:
            raise InvalidRequest(
                f"retries={self.retries}: only function jobs are retried (the runner calls the function "
                "again when it raises); a shell command that fails is not run again. Use restartable=True "
                "to requeue it when its runner is lost, or retry inside the command"
            )
        return self._spec(
            cmd,
            stdin=stdin.encode() if isinstance(stdin, str) else (stdin or b""),
            result_source=result_source,
            interactive=interactive or tty,
            tty=tty,
            depends_on=tuple(depends_on),
            idempotency_key=idempotency_key,
        )

    def function_spec(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, serializer: str | None = None
    ) -> JobSpec:
        """The spec of the call `fn(*args, **kwargs)`, pickled with these options'
        serializer (else `serializer`, else cloudpickle)."""
        chosen = self.serializer or serializer or SERIALIZER
        env = {**self.env, "CLOUDPIPE_CLIENT_CLOUDPICKLE": version_of(chosen)}
        if self.retries:
            env["CLOUDPIPE_RETRIES"] = str(self.retries)
        return self._spec(
            RUNNER_COMMAND,
            stdin=dump_call(fn, args, kwargs, chosen),
            result_source=f"file:{RESULT_PATH}",
            result_type="pickle",
            serializer=chosen,
            client_python=client_python(),
            env=env,
            tags={"function": qualname(fn), **self.tags},
            restartable=self.restartable or bool(self.retries),
        )

    def image_name(self) -> str:
        """The name of the image jobs run in ("" for the server's default); an Image is
        built (or found built) by the client first."""
        image = self.image
        if image is None or isinstance(image, str):
            return image or ""
        if isinstance(image, BuiltImage):
            return image.reference
        if self._resolve is None:
            raise InvalidRequest("an Image needs a client to build it: pass it to a Client's submit, shell, map...")
        return self._resolve(image)

    def _spec(self, cmd: str, **fields: Any) -> JobSpec:
        base: dict[str, Any] = {
            "name": self.name or "",
            "image": self.image_name(),
            "env": dict(self.env),
            "tags": dict(self.tags),
            "network": self.network,
            "restartable": self.restartable,
            "fresh_container": self.fresh_container,
            "volumes": mount_entries(self.volumes),
            "secrets": secret_entries(self.secrets, self.env),
            "inputs": transfer_entries(self.inputs, "inputs"),
            "outputs": transfer_entries(self.outputs, "outputs"),
            "storage_secret": self.storage_secret or "",
            "cpus": float(self.cpus or 0.0),
            "memory": memory_bytes(self.memory),
            "timeout": None if self.timeout is None else float(self.timeout),
        }
        return JobSpec(cmd, **{**base, **fields})


def memory_bytes(value: int | str | None) -> int:
    """Bytes from an int, or from "512M", "1.5G", "2GiB" (binary units); 0 for None."""
    if value is None:
        return 0
    if isinstance(value, int):
        if value < 0:
            raise InvalidRequest(f"memory: must not be negative, got {value}")
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise InvalidRequest(f"memory: {value!r} is not a size like 512M or 2G")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def mount_entries(volumes: Mapping[str, str]) -> tuple[str, ...]:
    """The wire's mount entries of `volumes` (mount path -> name, or name + ":ro"):
    {"/data": "mydata", "/ref": "refdata:ro"} -> ("mydata:/data", "refdata:/ref:ro").
    Raises InvalidRequest for a path that is not absolute, has '..' or ':', or is '/',
    and for a name that is not a volume name."""
    if not isinstance(volumes, Mapping):
        raise InvalidRequest(
            f"volumes: a mapping of mount path to volume name, like {{'/data': 'mydata'}}, got {type(volumes).__name__}"
        )
    entries = []
    for path, volume in volumes.items():
        if not isinstance(path, str) or not isinstance(volume, str):
            raise InvalidRequest(f"volumes: paths and names are strings, got {path!r}: {volume!r}")
        name, _, mode = volume.partition(":")
        if not _VOLUME_NAME.fullmatch(name) or mode not in ("", "ro", "rw"):
            raise InvalidRequest(
                f"volumes[{path!r}]: {volume!r} is not a volume name (lower-case letters, digits, '_', '.', '-'; "
                "at most 63, starting with a letter or digit), optionally followed by ':ro'"
            )
        parts = path.split("/")
        if not path.startswith("/") or ".." in parts or ":" in path or "\0" in path or not path.strip("/"):
            raise InvalidRequest(
                f"volumes: {path!r} is not a mount path: an absolute path in the container, not '/', "
                "without '..' or ':' (like '/data')"
            )
        entries.append(f"{name}:{path}" + (f":{mode}" if mode else ""))
    return tuple(entries)


def secret_entries(secrets: Sequence[str] | Mapping[str, str], env: Mapping[str, str]) -> tuple[str, ...]:
    """The wire's entries of `secrets`: names (environment variables) as they are, a
    mapping's name -> path as "NAME:/path": ["API_TOKEN"] -> ("API_TOKEN",),
    {"DB_PASSWORD": "/run/secrets/db"} -> ("DB_PASSWORD:/run/secrets/db",). Raises
    InvalidRequest, as the server would, for a bad name, a CLOUDPIPE_ variable, one
    `env` sets too, a path that is not absolute and normal or is under /proc, /sys or
    /dev, and a variable or path given twice."""
    if isinstance(secrets, Mapping):
        items = []
        for name, path in secrets.items():
            if not isinstance(path, str):
                raise InvalidRequest(f"secrets[{name!r}]: the file path is a string, got {type(path).__name__}")
            items.append(f"{name}:{path}")
    elif isinstance(secrets, Sequence) and not isinstance(secrets, str | bytes):
        items = list(secrets)
    else:
        raise InvalidRequest(
            "secrets: a list of names, like ['API_TOKEN'], or a mapping of name to file path, like "
            f"{{'DB_PASSWORD': '/run/secrets/db'}}, got {type(secrets).__name__}"
        )
    seen: set[str] = set()
    for entry in items:
        if not isinstance(entry, str):
            raise InvalidRequest(f"secrets: names are strings, got {type(entry).__name__}")
        name, colon, path = entry.partition(":")
        check_name(name, "secrets")
        if not colon:
            if name.startswith("CLOUDPIPE_"):
                raise InvalidRequest(f"secrets: {name!r}: CLOUDPIPE_ variables are the runner's own")
            if name in env:
                raise InvalidRequest(f"secrets: {name!r} is also set in env; give it one way")
        elif not _file_path(path):
            raise InvalidRequest(
                f"secrets: {entry[:200]!r}: the file is an absolute path without '.' or '..', not '/' "
                "and not under /proc, /sys or /dev (like '/run/secrets/db')"
            )
        key = path or name
        if key in seen:
            raise InvalidRequest(f"secrets: {key!r} is given twice")
        seen.add(key)
    return tuple(items)


def _file_path(path: str) -> bool:
    if not path.startswith("/") or "\0" in path or posixpath.normpath(path) != path or path == "/":
        return False
    return not any(path == d or path.startswith(d + "/") for d in _RESERVED_DIRS)


def qualname(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', type(fn).__name__)}"[:200]

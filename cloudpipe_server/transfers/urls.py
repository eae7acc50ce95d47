"""What a job may ask for in `inputs`, `outputs` and `storage_secret`, checked at submit
before anything is stored (InvalidArgument naming the field)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from minio.helpers import check_bucket_name

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.models import JobSpec
from cloudpipe_server.secrets.naming import check_name, parse_uses
from cloudpipe_server.volumes.naming import parse_mounts

MAX_TRANSFERS = 64  # inputs, and outputs, of one job
MAX_URL_BYTES = 4096
MAX_PATH_BYTES = 1024
MAX_KEY_BYTES = 1024  # S3's own limit on an object key
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's bucket names
_RESERVED_DIRS = ("/proc", "/sys", "/dev")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
INPUT_SCHEMES = ("s3", "http", "https")
OUTPUT_SCHEMES = ("s3",)


@dataclass(frozen=True)
class Location:
    """A parsed URL: an S3 object or key prefix (`bucket`, `key`), or an http(s) file."""

    url: str
    scheme: str
    bucket: str = ""
    key: str = ""

    @property
    def is_s3(self) -> bool:
        return self.scheme == "s3"


def parse_url(url: str, schemes: tuple[str, ...], field: str) -> Location:
    """`url` checked for `field` ("jobs[0].inputs['/in/a']"): a scheme of `schemes`, an
    S3 bucket name, no credentials in it (they would be shown in every answer)."""
    if len(url.encode()) > MAX_URL_BYTES:
        raise InvalidArgument(f"{field}: a URL of at most {MAX_URL_BYTES} bytes, got {len(url.encode())}")
    if _CONTROL.search(url):
        raise InvalidArgument(f"{field}: the URL holds a control character")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidArgument(f"{field}: {url[:200]!r} is not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise InvalidArgument(
            f"{field}: {url[:200]!r}: only {', '.join(s + '://' for s in schemes)} URLs are supported here"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(
            f"{field}: {url[:200]!r}: no credentials in a URL (it is shown in answers); use storage_secret"
        )
    if scheme != "s3":
        if not parts.hostname:
            raise InvalidArgument(f"{field}: {url[:200]!r} names no host")
        try:
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError as exc:
            raise InvalidArgument(f"{field}: {url[:200]!r}: {exc}") from None
        return Location(url, scheme)
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidArgument(
            f"{field}: {url[:200]!r}: {bucket[:80]!r} is not a bucket name (3 to 63 lower-case letters, digits,"
            " '.' and '-')"
        )
    try:
        check_bucket_name(bucket, strict=True)  # the client's own rules: it refuses the rest when used
    except ValueError as exc:
        raise InvalidArgument(f"{field}: {url[:200]!r}: {exc}") from None
    if parts.query or parts.fragment:
        raise InvalidArgument(f"{field}: {url[:200]!r}: an s3:// URL is s3://bucket/key, without '?' or '#'")
    key = unquote(parts.path[1:])
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidArgument(f"{field}: {url[:200]!r}: an object key of at most {MAX_KEY_BYTES} bytes")
    return Location(url, scheme, bucket, key)


def check_transfers(spec: JobSpec, where: str) -> None:
    """Raise InvalidArgument when the job's inputs, outputs or storage secret cannot be
    done as asked: bounded counts and sizes, absolute normalized paths (an input is a
    file; an output ending in "/" a directory, to an s3:// prefix ending in "/"), none
    on a volume mount or a secret file, none inside another of its kind, and a
    storage secret for any s3:// URL."""
    if not spec.inputs and not spec.outputs:
        return
    for kind, entries in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        if len(entries) > MAX_TRANSFERS:
            raise InvalidArgument(f"{where}.{kind}: at most {MAX_TRANSFERS}, got {len(entries)}")
    mounts = [m.target for m in parse_mounts(spec.volumes, where)]
    secret_files = [use.path for use in parse_uses(spec.secrets, spec.env, where) if use.path]
    locations: list[Location] = []
    inputs = sorted(spec.inputs)
    for path in inputs:
        field = f"{where}.inputs[{path[:200]!r}]"
        _check_path(path, field, directory_allowed=False)
        _off_mounts_and_secrets(path, field, mounts, secret_files)
        location = parse_url(spec.inputs[path], INPUT_SCHEMES, field)
        if location.is_s3 and (not location.key or location.key.endswith("/")):
            raise InvalidArgument(f"{field}: {location.url[:200]!r} names no object (s3://bucket/key)")
        locations.append(location)
    _no_nesting(inputs, f"{where}.inputs")
    outputs = sorted(spec.outputs)
    for path in outputs:
        field = f"{where}.outputs[{path[:200]!r}]"
        _check_path(path, field, directory_allowed=True)
        _off_mounts_and_secrets(path, field, mounts, secret_files)
        location = parse_url(spec.outputs[path], OUTPUT_SCHEMES, field)
        if path.endswith("/") and not (location.key == "" or location.key.endswith("/")):
            raise InvalidArgument(
                f"{field}: a directory goes to a key prefix ending in '/', like s3://{location.bucket}/results/"
            )
        if not path.endswith("/") and (not location.key or location.key.endswith("/")):
            raise InvalidArgument(
                f"{field}: a file goes to an object (s3://bucket/key); end the path with '/' to upload a directory"
            )
        if path.endswith("/") and any(s.startswith(path) for s in secret_files):
            raise InvalidArgument(f"{field}: a secret file of the job is in this directory; it would be uploaded")
        locations.append(location)
    _no_nesting(outputs, f"{where}.outputs")
    if spec.storage_secret:
        check_name(spec.storage_secret, f"{where}.storage_secret")
    if any(location.is_s3 for location in locations) and not spec.storage_secret:
        raise InvalidArgument(
            f"{where}.storage_secret: s3:// URLs need the name of a secret holding the object store's credentials"
            ' (a JSON object: {"endpoint_url": ..., "access_key_id": ..., "secret_access_key": ..., "region": ...})'
        )


def _check_path(path: str, field: str, *, directory_allowed: bool) -> None:
    bare = path[:-1] if directory_allowed and path.endswith("/") and len(path) > 1 else path
    if len(path.encode()) > MAX_PATH_BYTES or _CONTROL.search(path):
        raise InvalidArgument(f"{field}: a path of at most {MAX_PATH_BYTES} bytes, without control characters")
    if not directory_allowed and path.endswith("/"):
        raise InvalidArgument(f"{field}: an input is one file, not a directory")
    if path.startswith("//"):
        # normpath keeps a leading "//" (POSIX leaves its meaning to the system), so
        # "//proc/x" would pass every rule below while naming /proc/x in the container.
        raise InvalidArgument(f"{field}: a path starts with one '/', not '//'")
    if not bare.startswith("/") or posixpath.normpath(bare) != bare or bare == "/":
        what = "an absolute file path" + (" (a directory ending in '/')" if directory_allowed else "")
        raise InvalidArgument(f"{field}: give {what} in the container, normalized, without '.' or '..', not '/'")
    if any(bare == d or bare.startswith(d + "/") for d in _RESERVED_DIRS):
        raise InvalidArgument(f"{field}: nothing can be written under {bare}")


def _off_mounts_and_secrets(path: str, field: str, mounts: list[str], secret_files: list[str]) -> None:
    bare = path.rstrip("/")
    for mount in mounts:
        if _within(bare, mount) or _within(mount, bare):
            raise InvalidArgument(f"{field}: overlaps the volume mounted at {mount}; read and write the volume itself")
    if bare in secret_files:
        raise InvalidArgument(f"{field}: the job's secret file is written there")


def _no_nesting(paths: list[str], field: str) -> None:
    bare = [p.rstrip("/") for p in paths]
    for i, outer in enumerate(bare):
        for inner in bare[i + 1 :]:
            if _within(inner, outer):
                raise InvalidArgument(f"{field}: {inner!r} is inside {outer!r}; give each path once")


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")

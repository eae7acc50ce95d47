"""A job's `inputs` and `outputs` as the wire carries them: container path -> URL. The
server checks the paths and URLs (absolute paths, s3:// or http(s)://, no overlap
with volumes or secret files); the client checks only their shape, so a mistake in
Python reads as one."""

from __future__ import annotations

from collections.abc import Mapping

from cloudpipe_sdk._errors import InvalidRequest
from cloudpipe_sdk._secret_calls import check_name

SCHEMES = {"inputs": ("s3://", "http://", "https://"), "outputs": ("s3://",)}


def transfer_entries(entries: Mapping[str, str], kind: str) -> dict[str, str]:
    """`entries` (`kind` is "inputs" or "outputs") checked: a mapping of absolute
    container path to a URL of a scheme the server takes. Raises InvalidRequest."""
    if not isinstance(entries, Mapping):
        example = "{'/in/data.csv': 's3://bucket/data.csv'}" if kind == "inputs" else "{'/out/': 's3://bucket/run/'}"
        raise InvalidRequest(
            f"{kind}: a mapping of container path to URL, like {example}, got {type(entries).__name__}"
        )
    checked: dict[str, str] = {}
    for path, url in entries.items():
        if not isinstance(path, str) or not isinstance(url, str):
            raise InvalidRequest(f"{kind}: paths and URLs are strings, got {path!r}: {url!r}")
        if not path.startswith("/"):
            raise InvalidRequest(f"{kind}[{path!r}]: the path in the container is absolute")
        if not url.lower().startswith(SCHEMES[kind]):
            raise InvalidRequest(f"{kind}[{path!r}]: {url[:200]!r}: {kind} are {' or '.join(SCHEMES[kind])} URLs")
        checked[path] = url
    return checked


def storage_secret_name(name: str | None, inputs: Mapping[str, str], outputs: Mapping[str, str]) -> str:
    """The storage secret's name ("" for none), checked; s3:// URLs need one."""
    if name:
        check_name(name, "storage_secret")
    urls = [*inputs.values(), *outputs.values()]
    if not name and any(url.lower().startswith("s3://") for url in urls):
        raise InvalidRequest(
            "storage_secret: s3:// URLs need the name of your secret holding the object store's credentials"
            ' (JSON: {"endpoint_url": ..., "access_key_id": ..., "secret_access_key": ..., "region": ...})'
        )
    return name or ""

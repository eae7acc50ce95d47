"""The storage secret: the object store's endpoint and credentials, a small JSON object
kept as one of the account's secrets (encrypted at rest, never answered)::

    {"endpoint_url": "https://s3.example.net", "access_key_id": "AK...",
     "secret_access_key": "...", "region": "us-east-1"}

`endpoint_url` defaults to AWS S3 and `region` to the one the store reports for the
bucket; `session_token` is read too, for temporary credentials."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.helpers import BaseURL

from cloudpipe_server.transfers.base import TransferFailed

AWS_ENDPOINT = "https://s3.amazonaws.com"
_KNOWN = {"endpoint_url", "access_key_id", "secret_access_key", "region", "session_token"}


@dataclass(frozen=True)
class StorageCredentials:
    endpoint_url: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    region: str = ""
    session_token: str = field(default="", repr=False)

    def client(self, http: urllib3.PoolManager) -> Minio:
        """A client of the store, on the transfers' checked pool manager."""
        parts = urlsplit(self.endpoint_url)
        return Minio(
            parts.netloc,
            access_key=self.access_key_id,
            secret_key=self.secret_access_key,
            session_token=self.session_token or None,
            secure=parts.scheme == "https",
            region=self.region or None,
            http_client=http,
        )


def parse_credentials(value: bytes, secret: str) -> StorageCredentials:
    """The storage secret `secret`'s value read; TransferFailed saying what is wrong
    with it (never quoting it)."""
    where = f"storage secret {secret!r}"
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise TransferFailed(
            f'{where} is not JSON; set it to {{"endpoint_url": ..., "access_key_id": ..., "secret_access_key": ...}}'
        ) from None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise TransferFailed(f"{where} is not a JSON object of strings")
    unknown = sorted(set(doc) - _KNOWN)
    if unknown:
        known = ", ".join(sorted(_KNOWN))
        raise TransferFailed(f"{where}: unknown field(s) {', '.join(unknown)[:200]}; known: {known}")
    missing = [name for name in ("access_key_id", "secret_access_key") if not doc.get(name)]
    if missing:
        raise TransferFailed(f"{where} has no {' or '.join(missing)}")
    endpoint = doc.get("endpoint_url") or AWS_ENDPOINT
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise TransferFailed(f"{where}: endpoint_url is http(s)://host[:port], without a path")
    region = doc.get("region", "")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number or out of range
        BaseURL(f"{parts.scheme}://{parts.netloc}", region or None)  # what the client checks when made
    except ValueError as exc:
        raise TransferFailed(f"{where}: {str(exc)[:200]}") from None
    return StorageCredentials(
        endpoint_url=endpoint,
        access_key_id=doc["access_key_id"],
        secret_access_key=doc["secret_access_key"],
        region=region,
        session_token=doc.get("session_token", ""),
    )

"""The SecretService calls as `Rpc`s, and the rules for a secret's name and value that
both clients (and `JobOptions(secrets=...)`) check before anything is sent. The I/O is
in `cloudpipe_sdk._secrets`.

A value is only ever in the `SetSecretRequest` of `set_secret`: never in an error
message, a log line or a repr (`Rpc` leaves its request out of its repr)."""

from __future__ import annotations

import re

from cloudpipe_proto.v1 import secrets_pb2 as pb
from cloudpipe_sdk._convert import secret_from_pb
from cloudpipe_sdk._errors import InvalidRequest
from cloudpipe_sdk._rpc import Rpc
from cloudpipe_sdk._types import Secret

# A secret's name is also the job's environment variable name (the server's rule).
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def check_name(name: object, what: str = "secret name") -> str:
    """`name`, or InvalidRequest when it is not a secret name."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        shown = name[:80] if isinstance(name, str) else name
        raise InvalidRequest(
            f"{what}: {shown!r} is not a secret name (letters, digits and '_', not starting with a digit; "
            "at most 128): it is also the environment variable's name"
        )
    return name


def value_bytes(value: str | bytes) -> bytes:
    """The bytes of a value given as text (UTF-8) or bytes. The error names the type,
    never the value."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise InvalidRequest(f"a secret's value is str or bytes, got {type(value).__name__}")


def set_secret(name: str, value: str | bytes) -> Rpc[Secret]:
    # retried while the server is unavailable: a second Set of the same value replaces it
    request = pb.SetSecretRequest(name=check_name(name), value=value_bytes(value))
    return Rpc("secrets", "Set", request, secret_from_pb)


def list_secrets() -> Rpc[list[Secret]]:
    return Rpc("secrets", "List", pb.ListSecretsRequest(), lambda r: [secret_from_pb(s) for s in r.secrets])


def delete_secret(name: str) -> Rpc[None]:
    # not retried: a retry of one that was deleted would say NOT_FOUND
    return Rpc("secrets", "Delete", pb.DeleteSecretRequest(name=name), lambda _: None, retry=False)

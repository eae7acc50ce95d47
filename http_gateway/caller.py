"""Who a request claims to be: the account and the gRPC metadata carrying its key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """Who a request claims to be, ready to send as gRPC metadata."""

    account: str
    metadata: tuple[tuple[str, str], ...]

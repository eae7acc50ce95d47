"""Timestamps as stored: integer nanoseconds since the epoch (UTC), exact to the
microsecond. Every store (jobs, schedules, accounts) writes its times this way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["from_ns", "to_ns"]


def to_ns(moment: datetime | None) -> int | None:
    """UTC datetime -> integer nanoseconds since the epoch (exact to the microsecond)."""
    if moment is None:
        return None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(value: int | None) -> datetime | None:
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value // 1_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

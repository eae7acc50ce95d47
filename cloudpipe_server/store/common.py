"""What every backend decides the same way: which specs of a submit are retries of a
job that exists (idempotency keys), how long a requeued job waits, and how stored
output chunks read from an offset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from cloudpipe_server.models import JobSpec

MAX_BACKOFF = timedelta(seconds=60)


def backoff(attempts: int) -> timedelta:
    """How long a job requeued after `attempts` lost runs waits: 1 s, doubling per
    attempt, at most 60 s."""
    return min(timedelta(seconds=2 ** min(max(attempts - 1, 0), 6)), MAX_BACKOFF)


@dataclass
class Deduped:
    """A submit with its idempotency keys resolved. `fresh` are the specs to insert;
    `sources` says, per submitted spec, where its id comes from: the index of a fresh
    spec (also for a key repeated within the call), or the key of an existing job."""

    fresh: list[JobSpec] = field(default_factory=list)
    sources: list[int | str] = field(default_factory=list)
    existing: dict[str, int] = field(default_factory=dict)

    def ids(self, inserted: Sequence[int]) -> list[int]:
        """The submit's result, given the ids the fresh specs got (in order)."""
        return [inserted[s] if isinstance(s, int) else self.existing[s] for s in self.sources]


def dedupe(specs: Sequence[JobSpec], existing: Mapping[str, int]) -> Deduped:
    """Resolve `specs` against `existing` (key -> id of the account's stored jobs)."""
    plan = Deduped(existing=dict(existing))
    first: dict[str, int] = {}  # key -> index in fresh
    for spec in specs:
        key = spec.idempotency_key
        if key and key in plan.existing:
            plan.sources.append(key)
        elif key and key in first:
            plan.sources.append(first[key])
        else:
            if key:
                first[key] = len(plan.fresh)
            plan.sources.append(len(plan.fresh))
            plan.fresh.append(spec)
    return plan


def keys_of(specs: Iterable[JobSpec]) -> list[str]:
    """The distinct non-empty idempotency keys of `specs`, sorted."""
    return sorted({spec.idempotency_key for spec in specs if spec.idempotency_key})


def read_from(chunks: Iterable[tuple[int, bytes]], offset: int) -> bytes:
    """The bytes from `offset` on of a stream stored as (offset, data) chunks, given in
    offset order; chunks that end before `offset` may be included or not."""
    parts = []
    for start, data in chunks:
        if start + len(data) > offset:
            parts.append(data[max(offset - start, 0) :])
    return b"".join(parts)

"""In-process notification that a job changed, so waiters react at once instead of
at the next poll. Other replicas' changes are still seen by polling."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from cloudpipe_common.waiting import wait_set


class Subscription:
    """The ids, among those subscribed to, that changed since they were last taken."""

    def __init__(self) -> None:
        self._changed: set[int] = set()
        self._event = asyncio.Event()

    def notify(self, job_id: int) -> None:
        self._changed.add(job_id)
        self._event.set()

    async def changed(self, timeout: float) -> set[int]:
        """The ids changed since the last call, waiting up to `timeout` seconds for one
        (an empty set when none did)."""
        if not self._changed:
            await wait_set(self._event, timeout)
        return self.take()

    def take(self) -> set[int]:
        """The ids changed since the last call, without waiting."""
        changed, self._changed = self._changed, set()
        self._event.clear()
        return changed


class JobEvents:
    """Wake everything waiting on a job id."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[int, set[Subscription]] = defaultdict(set)

    def publish(self, job_id: int) -> None:
        for subscription in self._subscribers.get(job_id, ()):
            subscription.notify(job_id)

    async def wait(self, job_id: int, timeout: float) -> None:
        """Return when the job changed or after `timeout` seconds, whichever is first."""
        with self.subscribe((job_id,)) as subscription:
            await subscription.changed(timeout)

    @contextmanager
    def subscribe(self, job_ids: Collection[int]) -> Iterator[Subscription]:
        """One subscription to many jobs, held for as long as the block runs: each wake
        says which jobs changed, so a watch of 10,000 jobs reads only those, and the ids
        are registered once, not on every wait."""
        subscription = Subscription()
        for job_id in job_ids:
            self._subscribers[job_id].add(subscription)
        try:
            yield subscription
        finally:
            self.unsubscribe(subscription, job_ids)

    def unsubscribe(self, subscription: Subscription, job_ids: Collection[int]) -> None:
        """Stop telling `subscription` about `job_ids` (some may already be gone)."""
        for job_id in job_ids:
            subscribers = self._subscribers.get(job_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[job_id]

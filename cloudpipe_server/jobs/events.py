"""In-process notification that a job changed, so waiters react at once instead of
at the next poll. Other replicas' changes are still seen by polling."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection

from cloudpipe_common.waiting import wait_set


class JobEvents:
    """Wake everything waiting on a job id."""

    def __init__(self) -> None:
        self._waiters: defaultdict[int, set[asyncio.Event]] = defaultdict(set)

    def publish(self, job_id: int) -> None:
        for event in self._waiters.get(job_id, ()):
            event.set()

    async def wait(self, job_id: int, timeout: float) -> None:
        """Return when the job changed or after `timeout` seconds, whichever is first."""
        await self.wait_any((job_id,), timeout)

    async def wait_any(self, job_ids: Collection[int], timeout: float) -> None:
        """Return when any of the jobs changed or after `timeout` seconds, whichever is
        first. One event serves every id, so waiting on many jobs costs one wake-up."""
        event = asyncio.Event()
        for job_id in job_ids:
            self._waiters[job_id].add(event)
        try:
            await wait_set(event, timeout)
        finally:
            for job_id in job_ids:
                waiters = self._waiters[job_id]
                waiters.discard(event)
                if not waiters:
                    del self._waiters[job_id]

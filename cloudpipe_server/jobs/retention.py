"""Retention: the periodic sweep that removes what finished jobs leave behind.

Every `interval` seconds each server runs bounded batches (`JobStore.purge`, at most
`batch` jobs per statement) until a batch comes back short: finished jobs' stdout,
stderr, result and stdin are emptied `output_days` after they finished, the jobs
deleted `job_days` after (0: kept), and each account's finished jobs' outputs are kept
within `account_bytes` (0: no budget), the oldest emptied first (`JobStore.trim_output`).
Servers sharing a store may sweep at once; the
store never removes a job twice (and never one a waiting job depends on). A failed
sweep is logged and tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloudpipe_server.errors import CloudpipeError
from cloudpipe_server.store.base import JobStore, Purged

log = logging.getLogger(__name__)

MAX_BATCHES_PER_SWEEP = 1000  # a sweep yields after this many; the next one goes on


@dataclass(frozen=True)
class RetentionConfig:
    output_days: float = 0.0  # 0: outputs are kept
    job_days: float = 0.0  # 0: jobs are kept
    account_bytes: int = 0  # per account, finished jobs' output; 0: no budget
    interval: float = 300.0
    batch: int = 500

    @property
    def enabled(self) -> bool:
        return self.output_days > 0 or self.job_days > 0 or self.account_bytes > 0


class Retention:
    """Sweeps `store` every `config.interval` seconds while started."""

    def __init__(self, store: JobStore, config: RetentionConfig, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._config.enabled:
            self._task = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except CloudpipeError as exc:
                log.warning("retention sweep failed, retrying in %.0f s: %s", self._config.interval, exc)
            except Exception:
                log.exception("retention sweep failed, retrying in %.0f s", self._config.interval)
            await asyncio.sleep(self._config.interval)

    async def sweep(self) -> Purged:
        """Purge batches until one is short (or MAX_BATCHES_PER_SWEEP); the totals."""
        config, now = self._config, self._clock()
        output_before = now - timedelta(days=config.output_days) if config.output_days > 0 else None
        jobs_before = now - timedelta(days=config.job_days) if config.job_days > 0 else None
        jobs = outputs = 0
        for _ in range(MAX_BATCHES_PER_SWEEP if output_before or jobs_before else 0):
            batch = await self._store.purge(output_before, jobs_before, config.batch)
            jobs, outputs = jobs + batch.jobs, outputs + batch.outputs
            if batch.jobs < config.batch and batch.outputs < config.batch:
                break
            await asyncio.sleep(0)  # let other work in between batches
        for _ in range(MAX_BATCHES_PER_SWEEP if config.account_bytes > 0 else 0):
            trimmed = await self._store.trim_output(config.account_bytes, config.batch)
            outputs += trimmed
            if trimmed < config.batch:
                break
            await asyncio.sleep(0)
        if jobs or outputs:
            log.info("retention: %d finished job(s) deleted, %d emptied of their output", jobs, outputs)
        return Purged(jobs, outputs)

"""The firing loop driven pass by pass with a fake clock, on a real SQLite schedule
store, with an in-memory stand-in for the job service (idempotency keys honoured as the
job store honours them)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.errors import StoreUnavailable
from cloudpipe_server.models import JobSpec, JobStatus
from cloudpipe_server.scheduler import loop
from cloudpipe_server.scheduler.cron import Timing
from cloudpipe_server.scheduler.loop import Scheduler, SchedulerConfig
from cloudpipe_server.scheduler.models import CatchupPolicy, FireOutcome, OverlapPolicy, Schedule, ScheduleSpec
from cloudpipe_server.scheduler.service import SavedJobService, ScheduleService
from cloudpipe_server.store import ScheduleStore, open_stores
from cloudpipe_server.store.base import OutcomeChange

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
ALICE = Principal("alice")


@dataclass
class FakeJobs:
    """Jobs as the job service keeps them: ids from 1, one job per idempotency key."""

    specs: dict[int, JobSpec] = field(default_factory=dict)
    status: dict[int, JobStatus] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    killed: list[int] = field(default_factory=list)
    down: bool = False

    async def submit(self, account: str, specs: Sequence[JobSpec]) -> list[int]:
        if self.down:
            raise StoreUnavailable("job store down")
        ids = []
        for spec in specs:
            if spec.idempotency_key not in self.keys:
                job_id = len(self.specs) + 1
                self.specs[job_id], self.status[job_id] = spec, JobStatus.QUEUED
                self.keys[spec.idempotency_key] = job_id
            ids.append(self.keys[spec.idempotency_key])
        return ids

    async def statuses(self, account: str, job_ids: Sequence[int]) -> dict[int, JobStatus]:
        return {i: self.status[i] for i in job_ids if i in self.status}

    async def kill(self, account: str, job_id: int) -> None:
        self.killed.append(job_id)
        self.status[job_id] = JobStatus.KILLED


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    store: ScheduleStore
    jobs: FakeJobs
    clock: Clock
    scheduler: Scheduler
    schedules: ScheduleService
    saved: SavedJobService

    async def at(self, moment: datetime) -> None:
        """Move the clock and run one pass."""
        self.clock.now = moment
        await self.scheduler.run_pass()

    async def history(self, name: str) -> list[tuple[datetime, FireOutcome]]:
        fires = await self.store.fires((await self.store.get_schedule("alice", name)).id, limit=1000)
        return [(f.scheduled_at, f.outcome) for f in reversed(fires)]


def build(store: ScheduleStore, jobs: FakeJobs, clock: Clock, owner: str = "s1") -> Scheduler:
    config = SchedulerConfig(owner=owner, lease_seconds=30, misfire_grace=10)
    return Scheduler(store, jobs, config, clock)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = open_stores(f"sqlite:///{tmp_path / 'cloudpipe.db'}").schedules
    await store.initialize()
    jobs, clock = FakeJobs(), Clock()
    scheduler = build(store, jobs, clock)
    yield World(store, jobs, clock, scheduler, ScheduleService(store, jobs, clock), SavedJobService(store, jobs, clock))
    await store.close()


def every_minute(name: str = "tick", **options: object) -> ScheduleSpec:
    """Runs saved job "report" every minute; overlapping runs allowed unless said otherwise."""
    options.setdefault("overlap", OverlapPolicy.ALLOW)
    return ScheduleSpec(name=name, cron="* * * * *", saved_job="report", **options)  # type: ignore[arg-type]


async def test_each_cron_time_makes_one_job_from_the_saved_job(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="echo v1"))
    created = await world.schedules.create(ALICE, every_minute())
    await world.saved.update(ALICE, "report", JobSpec(cmd="echo v2"))
    for minute in range(1, 4):
        await world.at(T0 + minute * MINUTE + timedelta(seconds=0.2))
        await world.at(T0 + minute * MINUTE + timedelta(seconds=0.7))  # a second pass finds nothing new
    assert len(world.jobs.specs) == 3
    first = world.jobs.specs[1]
    assert first.cmd == "echo v2" and (first.saved_job, first.saved_job_version) == ("report", 2)
    assert first.schedule_id == created.id and first.name == "tick"  # named after the schedule
    assert first.idempotency_key == f"schedule:{created.id}:{(T0 + MINUTE).isoformat()}"
    assert await world.history("tick") == [(T0 + m * MINUTE, FireOutcome.RUNNING) for m in (1, 2, 3)]


async def catch_up_after_downtime(world: World, policy: CatchupPolicy, window: timedelta = MINUTE) -> list[int]:
    """Minute fires 1..10 fall into a downtime; the scheduler comes back at 10:30."""
    await world.saved.create(ALICE, "report", JobSpec(cmd="true"))
    await world.schedules.create(
        ALICE, every_minute(catchup=policy, catchup_window=window, overlap=OverlapPolicy.ALLOW)
    )
    await world.at(T0 + 10 * MINUTE + timedelta(seconds=30))
    keys = [spec.idempotency_key for spec in world.jobs.specs.values()]
    return sorted(datetime.fromisoformat(key.split(":", 2)[2]).minute for key in keys)  # the minutes that ran


async def test_catch_up_skip_runs_none_of_the_missed_fires(world: World) -> None:
    assert await catch_up_after_downtime(world, CatchupPolicy.SKIP) == []
    assert [o for _, o in await world.history("tick")] == [FireOutcome.SKIPPED] * 10


async def test_catch_up_run_once_runs_only_the_latest(world: World) -> None:
    assert await catch_up_after_downtime(world, CatchupPolicy.RUN_ONCE) == [10]
    assert [o for _, o in await world.history("tick")] == [FireOutcome.SKIPPED] * 9 + [FireOutcome.RUNNING]


async def test_catch_up_run_all_runs_those_within_the_window(world: World) -> None:
    assert await catch_up_after_downtime(world, CatchupPolicy.RUN_ALL, window=timedelta(minutes=4)) == [7, 8, 9, 10]
    next_pass = await world.history("tick")
    assert len(next_pass) == 10 and (await world.store.get_schedule("alice", "tick")).next_fire_at == T0 + 11 * MINUTE


async def test_two_schedulers_on_one_store_fire_each_time_once(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="true"))
    for n in range(20):
        await world.schedules.create(ALICE, every_minute(f"s{n}", overlap=OverlapPolicy.ALLOW))
    other = build(world.store, world.jobs, world.clock, owner="s2")
    for minute in range(1, 6):
        world.clock.now = T0 + minute * MINUTE + timedelta(seconds=0.1)
        await asyncio.gather(world.scheduler.run_pass(), other.run_pass(), world.scheduler.run_pass())
    keys = [spec.idempotency_key for spec in world.jobs.specs.values()]
    assert len(keys) == 100 == len(set(keys))
    for n in range(20):
        assert len(await world.history(f"s{n}")) == 5


async def test_a_fire_left_pending_by_a_crash_is_completed_once(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="true"))
    await world.schedules.create(ALICE, every_minute())
    world.jobs.down = True  # the submit fails: the fire is recorded, its job is not
    await world.at(T0 + MINUTE)
    assert await world.history("tick") == [(T0 + MINUTE, FireOutcome.PENDING)]
    world.jobs.down = False
    world.clock.now = T0 + MINUTE + timedelta(seconds=10)
    await world.scheduler.housekeeping()  # younger than a lease: its submitter may still be at work
    assert world.jobs.specs == {}
    world.clock.now = T0 + MINUTE + timedelta(seconds=31)
    await world.scheduler.housekeeping()
    assert len(world.jobs.specs) == 1 and await world.history("tick") == [(T0 + MINUTE, FireOutcome.RUNNING)]


async def test_a_job_submitted_but_not_attached_is_not_submitted_twice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="true"))
    await world.schedules.create(ALICE, every_minute())
    original = world.store.set_fire_outcomes

    async def crash(changes: Sequence[OutcomeChange]) -> list[bool]:
        raise StoreUnavailable("the server died after the submit")

    monkeypatch.setattr(world.store, "set_fire_outcomes", crash)
    with pytest.raises(StoreUnavailable):
        await world.at(T0 + MINUTE)
    monkeypatch.setattr(world.store, "set_fire_outcomes", original)
    restarted = build(world.store, world.jobs, world.clock, owner="s1-restarted")
    world.clock.now = T0 + 2 * MINUTE - timedelta(seconds=1)
    await restarted.housekeeping()
    assert list(world.jobs.specs) == [1]
    [fire] = await world.store.fires((await world.store.get_schedule("alice", "tick")).id)
    assert (fire.outcome, fire.job_id) == (FireOutcome.RUNNING, 1)


async def test_overlap_skip_and_then_run_when_the_previous_job_ended(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="sleep 100"))
    await world.schedules.create(ALICE, every_minute(overlap=OverlapPolicy.SKIP))
    await world.at(T0 + MINUTE)
    await world.at(T0 + 2 * MINUTE)  # job 1 still queued: skipped
    world.jobs.status[1] = JobStatus.DONE
    await world.at(T0 + 3 * MINUTE)
    assert await world.history("tick") == [
        (T0 + MINUTE, FireOutcome.FINISHED),
        (T0 + 2 * MINUTE, FireOutcome.SKIPPED),
        (T0 + 3 * MINUTE, FireOutcome.RUNNING),
    ]


async def test_overlap_buffer_one_runs_the_buffered_fire_after_the_previous_ends(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="sleep 100"))
    await world.schedules.create(ALICE, every_minute(overlap=OverlapPolicy.BUFFER_ONE))
    for minute in (1, 2, 3):
        await world.at(T0 + minute * MINUTE)
    assert [o for _, o in await world.history("tick")] == [
        FireOutcome.RUNNING,
        FireOutcome.BUFFERED,
        FireOutcome.SKIPPED,
    ]
    await world.scheduler.housekeeping()
    assert len(world.jobs.specs) == 1  # still waiting
    world.jobs.status[1] = JobStatus.ERROR
    await world.scheduler.housekeeping()
    assert len(world.jobs.specs) == 2
    history = await world.history("tick")
    assert [o for _, o in history] == [FireOutcome.FINISHED, FireOutcome.RUNNING, FireOutcome.SKIPPED]


async def test_overlap_cancel_previous_kills_the_running_job(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="sleep 100"))
    await world.schedules.create(ALICE, every_minute(overlap=OverlapPolicy.CANCEL_PREVIOUS))
    await world.at(T0 + MINUTE)
    world.jobs.status[1] = JobStatus.PROCESSING
    await world.at(T0 + 2 * MINUTE)
    assert world.jobs.killed == [1] and len(world.jobs.specs) == 2


async def test_a_fire_of_a_deleted_saved_job_fails_with_the_reason(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="true"))
    spec = replace(every_minute(), saved_job_version=1)
    await world.schedules.create(ALICE, spec)
    await world.store.delete_saved_job("alice", "report")  # behind the service's back
    await world.at(T0 + MINUTE)
    [fire] = await world.store.fires((await world.store.get_schedule("alice", "tick")).id)
    assert fire.outcome is FireOutcome.FAILED and "no saved job named 'report'" in fire.reason


async def test_a_paused_schedule_does_not_fire_and_resumes_from_now(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="true"))
    await world.schedules.create(ALICE, every_minute())
    await world.schedules.pause(ALICE, "tick")
    await world.at(T0 + 5 * MINUTE)
    world.clock.now = T0 + 5 * MINUTE + timedelta(seconds=30)
    resumed = await world.schedules.resume(ALICE, "tick")
    assert resumed.next_fire_at == T0 + 6 * MINUTE
    await world.at(T0 + 6 * MINUTE)
    assert await world.history("tick") == [(T0 + 6 * MINUTE, FireOutcome.RUNNING)]


async def test_a_schedule_past_its_end_stops(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="true"))
    await world.schedules.create(ALICE, every_minute(end_at=T0 + 2 * MINUTE))
    for minute in range(1, 5):
        await world.at(T0 + minute * MINUTE)
    assert len(world.jobs.specs) == 2
    assert (await world.store.get_schedule("alice", "tick")).next_fire_at is None


async def test_a_schedule_that_cannot_be_planned_does_not_stop_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="true"))
    broken = await world.schedules.create(ALICE, every_minute("broken"))
    await world.schedules.create(ALICE, every_minute("fine"))
    real = loop.timing_of

    def timing_of(schedule: Schedule) -> Timing:
        if schedule.id == broken.id:
            raise OverflowError("date value out of range")  # e.g. a value stored before it was validated
        return real(schedule)

    monkeypatch.setattr(loop, "timing_of", timing_of)
    await world.at(T0 + MINUTE)
    assert await world.history("fine") == [(T0 + MINUTE, FireOutcome.RUNNING)]
    assert await world.history("broken") == []


async def test_a_long_catch_up_is_decided_a_budget_per_pass_without_losing_or_doubling_a_fire(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="true"))
    for name in ("a", "b", "c"):
        await world.schedules.create(ALICE, every_minute(name, catchup=CatchupPolicy.RUN_ALL))
    threads: set[str] = set()
    real = loop.plan_pass

    def plan_pass(*args: Any) -> list[loop.Plan]:
        threads.add(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(loop, "plan_pass", plan_pass)
    config = SchedulerConfig(owner="s1", lease_seconds=30, misfire_grace=10, max_fires_per_pass=7)
    scheduler = Scheduler(world.store, world.jobs, config, world.clock)
    world.clock.now = T0 + 10 * MINUTE + timedelta(seconds=30)  # minutes 1-10 of three schedules missed
    passes = 0
    while await scheduler.run_pass():
        passes += 1
        assert len(world.jobs.specs) <= 7 * passes
    assert passes == 5 and len(world.jobs.specs) == 30  # ceil(30 / 7) passes, each fire once
    for name in ("a", "b", "c"):
        assert await world.history(name) == [(T0 + m * MINUTE, FireOutcome.RUNNING) for m in range(1, 11)]
    assert threading.current_thread().name not in threads  # decided off the event loop


async def test_a_fire_whose_job_no_longer_exists_is_finished_as_deleted_wherever_it_is_seen(world: World) -> None:
    await world.saved.create(ALICE, "report", JobSpec(cmd="sleep 100"))
    await world.schedules.create(ALICE, every_minute(overlap=OverlapPolicy.SKIP))
    await world.at(T0 + MINUTE)
    del world.jobs.status[1]  # the job store lost it
    [shown] = await world.schedules.history(ALICE, "tick")  # `history` and `ls` settle it
    assert (shown.outcome, shown.job_status, shown.reason) == (
        FireOutcome.FINISHED,
        "deleted",
        "job 1 no longer exists",
    )
    [stored] = await world.store.fires(shown.schedule_id)
    assert (stored.outcome, stored.job_status, stored.reason) == (
        FireOutcome.FINISHED,
        "deleted",
        "job 1 no longer exists",
    )
    await world.at(T0 + 2 * MINUTE)  # and it no longer blocks the overlap policy
    assert [o for _, o in await world.history("tick")] == [FireOutcome.FINISHED, FireOutcome.RUNNING]

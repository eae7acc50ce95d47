"""The firing loop asks where an account stands before firing in its name: a deleted
account's fires fail and its schedule is paused, a disabled account's fires fail, and an
unknown standing (auth service down) leaves them pending. Real SQLite schedule store;
the jobs and the account check are in-memory stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from cloudpipe_server.auth import ChainAuthenticator, Principal, Standing, StaticAdminAuthenticator
from cloudpipe_server.auth.base import Authenticator
from cloudpipe_server.errors import Unavailable
from cloudpipe_server.models import JobSpec
from cloudpipe_server.scheduler.loop import Scheduler, SchedulerConfig
from cloudpipe_server.scheduler.models import FireOutcome, OverlapPolicy, ScheduleSpec
from cloudpipe_server.scheduler.service import SavedJobService, ScheduleService
from cloudpipe_server.store import ScheduleStore, open_stores
from tests.unit.test_scheduler_loop import MINUTE, T0, Clock, FakeJobs

ALICE = Principal("alice")


class Accounts(Authenticator):
    """An account check that answers what the test sets."""

    def __init__(self) -> None:
        self.answer: Standing | None = Standing.ACTIVE
        self.down = False

    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        raise NotImplementedError

    async def standing(self, account: str) -> Standing | None:
        if self.down:
            raise Unavailable("auth service down")
        return self.answer


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ScheduleStore]:
    schedules = open_stores(f"sqlite:///{tmp_path / 'cloudpipe.db'}").schedules
    await schedules.initialize()
    yield schedules
    await schedules.close()


async def setup(store: ScheduleStore, accounts: Accounts) -> tuple[Scheduler, FakeJobs, Clock]:
    jobs, clock = FakeJobs(), Clock()
    await SavedJobService(store, jobs, clock).create(ALICE, "report", JobSpec(cmd="true"))
    spec = ScheduleSpec(name="tick", cron="* * * * *", saved_job="report", overlap=OverlapPolicy.ALLOW)
    await ScheduleService(store, jobs, clock).create(ALICE, spec)
    config = SchedulerConfig(owner="s1", lease_seconds=30, misfire_grace=10)
    return Scheduler(store, jobs, config, clock, accounts=accounts), jobs, clock


async def outcomes(store: ScheduleStore) -> list[tuple[FireOutcome, str | None]]:
    schedule = await store.get_schedule("alice", "tick")
    return [(f.outcome, f.reason) for f in reversed(await store.fires(schedule.id))]


async def test_a_deleted_accounts_schedule_makes_no_job_and_is_paused(store: ScheduleStore) -> None:
    accounts = Accounts()
    scheduler, jobs, clock = await setup(store, accounts)
    clock.now = T0 + MINUTE + timedelta(seconds=0.2)
    await scheduler.run_pass()
    assert len(jobs.specs) == 1
    accounts.answer = Standing.GONE
    clock.now = T0 + 2 * MINUTE + timedelta(seconds=0.2)
    await scheduler.run_pass()
    assert len(jobs.specs) == 1
    assert (await outcomes(store))[-1] == (FireOutcome.FAILED, "account alice was deleted")
    assert (await store.get_schedule("alice", "tick")).paused
    clock.now = T0 + 5 * MINUTE
    await scheduler.run_pass()
    assert len(jobs.specs) == 1 and len(await outcomes(store)) == 2  # paused: nothing more is recorded


async def test_a_disabled_accounts_fires_fail_but_its_schedule_goes_on(store: ScheduleStore) -> None:
    accounts = Accounts()
    accounts.answer = Standing.DISABLED
    scheduler, jobs, clock = await setup(store, accounts)
    clock.now = T0 + MINUTE + timedelta(seconds=0.2)
    await scheduler.run_pass()
    assert jobs.specs == {}
    assert await outcomes(store) == [(FireOutcome.FAILED, "account alice is disabled")]
    assert not (await store.get_schedule("alice", "tick")).paused


async def test_while_the_standing_is_unknown_fires_wait_then_run(store: ScheduleStore) -> None:
    accounts = Accounts()
    accounts.down = True
    scheduler, jobs, clock = await setup(store, accounts)
    clock.now = T0 + MINUTE + timedelta(seconds=0.2)
    await scheduler.run_pass()
    assert jobs.specs == {} and [o for o, _ in await outcomes(store)] == [FireOutcome.PENDING]
    accounts.down = False
    clock.now = T0 + MINUTE + timedelta(seconds=45)  # housekeeping completes fires pending over a lease
    await scheduler.housekeeping()
    assert len(jobs.specs) == 1 and [o for o, _ in await outcomes(store)] == [FireOutcome.RUNNING]


class Remote(Authenticator):
    def __init__(self, answer: Standing | None) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        raise NotImplementedError

    async def standing(self, account: str) -> Standing | None:
        self.asked.append(account)
        return self.answer


async def test_the_chain_answers_for_the_admin_and_asks_the_auth_service_for_the_rest() -> None:
    remote = Remote(Standing.ACTIVE)
    chain = ChainAuthenticator([StaticAdminAuthenticator("admin", "admin-key"), remote], reserved=["admin"])
    assert await chain.standing("admin") is Standing.ACTIVE
    assert await chain.standing("alice") is Standing.ACTIVE
    assert await chain.standing("Admin") is Standing.GONE  # a lookalike is never the auth service's
    assert remote.asked == ["alice"]
    remote.answer = None
    assert await chain.standing("bob") is Standing.GONE  # nobody vouches for it

"""The QuotaStore contract, and the job store's claim honouring each account's own
running limit, run against every backend that can run here (the same `stores` fixture,
backends and MongoDB double as the JobStore contract)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cloudpipe_server.models import JobStatus, Outcome
from cloudpipe_server.store import AccountQuota, QuotaStore, Stores
from tests.contract.common import LEASE, T0, spec

LATER = T0 + timedelta(minutes=5)


@pytest.fixture
def store(stores: Stores) -> QuotaStore:
    """Here, the quota store of conftest's `stores` (the job store elsewhere)."""
    return stores.quotas


async def claimed_ids(stores: Stores, owner: str, default: int, limit: int = 10) -> list[int]:
    return [job.id for job in await stores.jobs.claim(owner, T0, LEASE, limit, per_account_limit=default)]


# -- get, set, list, delete -----------------------------------------------------------------


async def test_an_account_without_overrides_runs_under_the_defaults(store: QuotaStore) -> None:
    assert await store.get_quota("alice") == AccountQuota("alice")
    assert await store.list_quotas() == []
    assert AccountQuota("alice").effective(5, 2) == (5, 2)


async def test_a_set_quota_is_got_and_listed(store: QuotaStore) -> None:
    assert await store.set_quota("alice", 10, None, T0) == AccountQuota("alice", 10, None, T0)
    assert await store.get_quota("alice") == AccountQuota("alice", 10, None, T0)
    assert (await store.get_quota("alice")).effective(5, 2) == (10, 2)
    assert await store.list_quotas() == [AccountQuota("alice", 10, None, T0)]


async def test_a_set_replaces_the_overrides_whole(store: QuotaStore) -> None:
    await store.set_quota("alice", 10, 3, T0)
    assert await store.set_quota("alice", None, 0, LATER) == AccountQuota("alice", None, 0, LATER)
    got = await store.get_quota("alice")
    assert got == AccountQuota("alice", None, 0, LATER)
    assert got.effective(5, 2) == (5, 0), "0 is kept: no limit, not the default"


async def test_setting_both_to_the_default_removes_the_record(store: QuotaStore) -> None:
    await store.set_quota("alice", 10, 3, T0)
    assert await store.set_quota("alice", None, None, LATER) == AccountQuota("alice")
    assert await store.get_quota("alice") == AccountQuota("alice")
    assert await store.list_quotas() == []


async def test_quotas_are_listed_by_account_and_kept_apart(store: QuotaStore) -> None:
    for name in ("carol", "Bob", "alice", "émile"):
        await store.set_quota(name, len(name), None, T0)
    assert [q.account for q in await store.list_quotas()] == ["Bob", "alice", "carol", "émile"]
    assert (await store.get_quota("carol")).max_queued == 5


async def test_delete_quota_says_whether_there_was_one(store: QuotaStore) -> None:
    await store.set_quota("alice", 1, 1, T0)
    await store.set_quota("bob", 2, 2, T0)
    assert await store.delete_quota("alice")
    assert not await store.delete_quota("alice")
    assert await store.get_quota("alice") == AccountQuota("alice")
    assert await store.list_quotas() == [AccountQuota("bob", 2, 2, T0)]


async def test_concurrent_sets_of_one_account_leave_one_whole_record(store: QuotaStore) -> None:
    await asyncio.gather(*(store.set_quota("alice", n, n, T0) for n in range(1, 9)))
    [kept] = await store.list_quotas()
    assert kept.max_queued == kept.max_running and kept.max_queued in range(1, 9)


# -- the claim reads each account's running limit -------------------------------------------


async def test_claim_holds_an_account_to_its_lower_override(stores: Stores) -> None:
    a1, a2, _a3 = await stores.jobs.submit("alice", [spec("a1"), spec("a2"), spec("a3")], T0)
    b1, b2, _b3 = await stores.jobs.submit("bob", [spec("b1"), spec("b2"), spec("b3")], T0)
    await stores.quotas.set_quota("alice", None, 1, T0)
    assert await claimed_ids(stores, "d1", default=2) == [a1, b1, b2]
    assert await claimed_ids(stores, "d2", default=2) == []
    assert await stores.jobs.finish(a1, "d1", Outcome(JobStatus.DONE, T0, return_code=0))
    assert await claimed_ids(stores, "d2", default=2) == [a2]


async def test_claim_lets_an_account_run_up_to_its_higher_override(stores: Stores) -> None:
    a1, a2, a3 = await stores.jobs.submit("alice", [spec("a1"), spec("a2"), spec("a3")], T0)
    b1, _b2 = await stores.jobs.submit("bob", [spec("b1"), spec("b2")], T0)
    await stores.quotas.set_quota("alice", None, 3, T0)
    assert await claimed_ids(stores, "d1", default=1) == [a1, a2, a3, b1]


async def test_an_override_of_zero_lifts_the_default_for_that_account(stores: Stores) -> None:
    ids = await stores.jobs.submit("alice", [spec(str(n)) for n in range(4)], T0)
    b1, _b2 = await stores.jobs.submit("bob", [spec("b1"), spec("b2")], T0)
    await stores.quotas.set_quota("alice", 5, 0, T0)
    assert await claimed_ids(stores, "d1", default=1) == [*ids, b1]


async def test_an_override_limits_its_account_when_the_server_has_no_default(stores: Stores) -> None:
    a1, _a2 = await stores.jobs.submit("alice", [spec("a1"), spec("a2")], T0)
    b1, b2 = await stores.jobs.submit("bob", [spec("b1"), spec("b2")], T0)
    await stores.quotas.set_quota("alice", None, 1, T0)
    assert await claimed_ids(stores, "d1", default=0) == [a1, b1, b2]


async def test_a_queued_only_override_leaves_the_running_default(stores: Stores) -> None:
    a1, a2 = await stores.jobs.submit("alice", [spec("a1"), spec("a2")], T0)
    await stores.quotas.set_quota("alice", 7, None, T0)
    assert await claimed_ids(stores, "d1", default=1) == [a1]
    assert await claimed_ids(stores, "d1", default=0) == [a2]


async def test_a_cleared_override_gives_the_account_the_default_again(stores: Stores) -> None:
    a1, a2, _a3 = await stores.jobs.submit("alice", [spec("a1"), spec("a2"), spec("a3")], T0)
    await stores.quotas.set_quota("alice", None, 1, T0)
    assert await claimed_ids(stores, "d1", default=2) == [a1]
    assert await stores.quotas.delete_quota("alice")
    assert await claimed_ids(stores, "d1", default=2) == [a2]


async def test_concurrent_claims_keep_to_an_override(stores: Stores, request: pytest.FixtureRequest) -> None:
    """Exact on SQLite and PostgreSQL; MongoDB may overshoot by one job per concurrent
    claimer (JobStore.claim)."""
    await stores.jobs.submit("alice", [spec(str(n)) for n in range(12)], T0)
    await stores.quotas.set_quota("alice", None, 3, T0)
    batches = await asyncio.gather(*(claimed_ids(stores, f"d{n}", default=0, limit=2) for n in range(6)))
    running = sum(len(batch) for batch in batches)
    mongo = "mongodb" in request.node.callspec.id
    assert running == 3 or (mongo and 3 <= running <= 3 + 6)

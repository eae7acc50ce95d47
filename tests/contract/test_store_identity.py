"""The store's server identities (issue 16, item 7): one live server per
CLOUDPIPE_SERVER_ID on one store. An identity is a lease: held until it expires or is
released, renewed by its holder, taken over from a holder the caller proved dead."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from cloudpipe_server.store.base import JobStore

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_an_identity_has_one_holder_until_its_lease_expires(store: JobStore) -> None:
    assert await store.hold_identity("srv", "a", at(0), at(30)) == "a"
    assert await store.hold_identity("srv", "b", at(1), at(31)) == "a"  # live: refused, unchanged
    assert await store.hold_identity("srv", "a", at(10), at(40)) == "a"  # a renewal
    assert await store.hold_identity("srv", "b", at(39), at(69)) == "a"  # still live, thanks to it
    assert await store.hold_identity("other", "b", at(39), at(69)) == "b"  # identities are independent
    assert await store.hold_identity("srv", "b", at(40), at(70)) == "b"  # expired: taken
    assert await store.hold_identity("srv", "a", at(41), at(71)) == "b"  # the old holder lost it


async def test_a_holder_proved_dead_is_replaced_and_a_released_identity_is_free(store: JobStore) -> None:
    assert await store.hold_identity("srv", "a", at(0), at(30)) == "a"
    assert await store.hold_identity("srv", "b", at(1), at(31), replacing="a") == "b"
    assert await store.hold_identity("srv", "c", at(2), at(32), replacing="a") == "b"  # a no longer holds it
    await store.release_identity("srv", "a")  # not the holder: nothing changes
    assert await store.hold_identity("srv", "c", at(3), at(33)) == "b"
    await store.release_identity("srv", "b")
    assert await store.hold_identity("srv", "c", at(4), at(34)) == "c"


async def test_concurrent_takers_agree_on_one_holder(store: JobStore) -> None:
    holders = await asyncio.gather(*(store.hold_identity("srv", f"h{i}", at(0), at(30)) for i in range(8)))
    assert len(set(holders)) == 1 and holders[0] in {f"h{i}" for i in range(8)}

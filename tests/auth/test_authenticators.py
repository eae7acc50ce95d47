"""RemoteAuthenticator's answers, cache and outage handling against a scripted auth
service (httpx.MockTransport); ChainAuthenticator's order; the failure limiter. The
same classes run against the real service in test_end_to_end.py."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from cloudpipe_common.ratelimit import FailureLimiter, LimiterConfig
from cloudpipe_server.auth import ChainAuthenticator, Principal, StaticAdminAuthenticator
from cloudpipe_server.auth.remote import RemoteAuthConfig, RemoteAuthenticator
from cloudpipe_server.errors import TooManyAttempts, Unauthenticated, Unavailable

KEY = "ab" * 64
CONFIG = RemoteAuthConfig(url="https://auth.test/v1", ca="", cert="", key="", cache_ttl=30)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def remote(
    handler: Callable[[httpx.Request], httpx.Response], clock: Clock | None = None, ttl: float = 30
) -> tuple[RemoteAuthenticator, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    config = RemoteAuthConfig(url=CONFIG.url, ca="", cert="", key="", cache_ttl=ttl)
    return RemoteAuthenticator(config, client=client, clock=clock or Clock()), seen


async def test_validate_is_the_original_get_with_sorted_form_values() -> None:
    auth, seen = remote(lambda r: httpx.Response(204))
    assert await auth.authenticate("some user", KEY) == Principal("some user")
    assert seen[0].method == "GET"
    assert str(seen[0].url) == f"https://auth.test/v1/validate?accountName=some+user&apiKey={KEY}"


async def test_a_key_alone_is_resolved_to_its_account() -> None:
    auth, seen = remote(lambda r: httpx.Response(200, json={"accountName": "alice"}))
    assert await auth.authenticate(None, KEY) == Principal("alice")
    assert "accountName" not in seen[0].url.params


@pytest.mark.parametrize("account", ["alice", None])
async def test_404_is_unauthenticated(account: str | None) -> None:
    auth, _ = remote(lambda r: httpx.Response(404))
    with pytest.raises(Unauthenticated):
        await auth.authenticate(account, KEY)


async def test_429_is_too_many_attempts() -> None:
    auth, _ = remote(lambda r: httpx.Response(429, headers={"retry-after": "42"}))
    with pytest.raises(TooManyAttempts) as caught:
        await auth.authenticate("alice", KEY)
    assert caught.value.retry_after == 42


def _connect_error(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


@pytest.mark.parametrize(
    "handler",
    [
        _connect_error,
        _timeout,
        lambda r: httpx.Response(500),
        lambda r: httpx.Response(503),
        lambda r: httpx.Response(200),  # compat path wants 204
        lambda r: httpx.Response(401),
        lambda r: httpx.Response(302, headers={"location": "https://elsewhere/"}),
    ],
)
async def test_outages_and_surprises_are_unavailable_never_allowed(
    handler: Callable[[httpx.Request], httpx.Response],
) -> None:
    auth, _ = remote(handler)
    with pytest.raises(Unavailable):
        await auth.authenticate("alice", KEY)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"accountName": ""}', b'{"accountName": 7}'])
async def test_a_bad_extension_answer_is_unavailable(body: bytes) -> None:
    auth, _ = remote(lambda r: httpx.Response(200, content=body))
    with pytest.raises(Unavailable):
        await auth.authenticate(None, KEY)


async def test_positive_answers_are_cached_for_the_ttl_only() -> None:
    clock = Clock()
    answers = [httpx.Response(204), httpx.Response(404)]
    auth, seen = remote(lambda r: answers.pop(0), clock)
    assert await auth.authenticate("alice", KEY) == Principal("alice")
    clock.now += 29
    assert await auth.authenticate("alice", KEY) == Principal("alice")
    assert len(seen) == 1
    clock.now += 2
    with pytest.raises(Unauthenticated):
        await auth.authenticate("alice", KEY)  # revoked meanwhile: seen after the TTL
    assert len(seen) == 2


async def test_negative_answers_and_other_credentials_are_not_served_from_the_cache() -> None:
    answers = [httpx.Response(404), httpx.Response(204), httpx.Response(404)]
    auth, seen = remote(lambda r: answers.pop(0))
    with pytest.raises(Unauthenticated):
        await auth.authenticate("alice", KEY)
    assert await auth.authenticate("alice", KEY) == Principal("alice")
    with pytest.raises(Unauthenticated):
        await auth.authenticate("bob", KEY)
    assert len(seen) == 3


async def test_the_cache_never_holds_the_key() -> None:
    auth, _ = remote(lambda r: httpx.Response(204))
    await auth.authenticate("alice", KEY)
    cached = list(auth._cache)
    assert cached and all(KEY.encode() not in entry and KEY.encode()[:32] not in entry for entry in cached)


async def test_httpx_request_logs_do_not_carry_the_key(caplog: pytest.LogCaptureFixture) -> None:
    auth, _ = remote(lambda r: httpx.Response(204))
    with caplog.at_level(logging.DEBUG):
        await auth.authenticate("alice", KEY)
    assert "auth.test" in caplog.text  # httpx did log the request...
    assert KEY not in caplog.text  # ...without its query string


async def test_missing_key_is_unauthenticated_without_a_request() -> None:
    auth, seen = remote(lambda r: httpx.Response(204))
    with pytest.raises(Unauthenticated):
        await auth.authenticate("alice", "")
    assert seen == []


async def test_the_chain_tries_the_admin_first_and_reserves_its_name() -> None:
    answers: dict[str | None, httpx.Response] = {}
    auth, seen = remote(lambda r: answers[r.url.params.get("accountName")], ttl=0)
    chain = ChainAuthenticator([StaticAdminAuthenticator("admin", "admin-key"), auth], reserved=["admin"])
    assert await chain.authenticate("admin", "admin-key") == Principal("admin", admin=True)
    assert await chain.authenticate(None, "admin-key") == Principal("admin", admin=True)
    assert seen == []
    answers["alice"] = httpx.Response(204)
    assert await chain.authenticate("alice", KEY) == Principal("alice")
    answers["admin"] = httpx.Response(204)  # an auth-service account named "admin"
    with pytest.raises(Unauthenticated):
        await chain.authenticate("admin", KEY)
    answers[None] = httpx.Response(200, json={"accountName": "admin"})
    with pytest.raises(Unauthenticated):
        await chain.authenticate(None, KEY)
    answers["bob"] = httpx.Response(503)
    with pytest.raises(Unavailable):
        await chain.authenticate("bob", KEY)


def test_the_limiter_allows_a_burst_then_refills() -> None:
    clock = Clock()
    limiter = FailureLimiter(LimiterConfig(burst=2, refill_seconds=10), clock)
    limiter.check("a")
    limiter.fail("a")
    limiter.fail("a")
    with pytest.raises(TooManyAttempts) as caught:
        limiter.check("a")
    assert caught.value.retry_after == 10
    limiter.check("b")  # other keys are unaffected
    clock.now += 10
    limiter.check("a")
    limiter.fail("a")
    with pytest.raises(TooManyAttempts):
        limiter.check("a", "b")


def test_a_disabled_limiter_never_refuses() -> None:
    limiter = FailureLimiter(LimiterConfig(burst=0))
    for _ in range(100):
        limiter.fail("a")
    limiter.check("a")


def test_the_limiter_forgets_keys_beyond_its_size() -> None:
    clock = Clock()
    limiter = FailureLimiter(LimiterConfig(burst=1, refill_seconds=1, max_keys=10), clock)
    for i in range(100):
        limiter.fail(f"k{i}")
        clock.now += 0.01
    assert len(limiter._buckets) <= 10

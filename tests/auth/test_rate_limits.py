"""Brute-force protection of the auth service: failed password and key attempts are
counted per account and per source address, and answered 429 past the budget."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudpipe_common.ratelimit import address_key
from tests.auth.support import AuthProcess, new_account, start_auth_service

BURST = 3


@pytest.fixture
def strict(pki_dir: Path, tmp_path: Path) -> Iterator[AuthProcess]:
    """A fresh auth service allowing BURST failures, then one per 10 minutes."""
    service = start_auth_service(
        pki_dir,
        tmp_path / "strict-auth",
        {"CLOUDPIPE_AUTH_FAILURE_BURST": str(BURST), "CLOUDPIPE_AUTH_FAILURE_REFILL_SECONDS": "600"},
    )
    yield service
    assert service.stop() == 0, service.log


def test_wrong_passwords_for_one_account_end_in_429_even_with_the_right_one(strict: AuthProcess) -> None:
    name, password, _ = new_account(strict)
    with strict.external_client() as client:
        for _ in range(BURST):
            wrong = client.post("/v1/keys", data={"accountName": name, "password": "guess-" + secrets.token_hex(4)})
            assert wrong.status_code == 401
        blocked = client.post("/v1/keys", data={"accountName": name, "password": password})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "too many failed" in blocked.json()["message"]


def test_one_source_guessing_many_accounts_is_limited_too(strict: AuthProcess) -> None:
    name, password, _ = new_account(strict)
    with strict.external_client() as client:
        statuses = [
            client.post("/v2/login", json={"accountName": f"nobody-{i}", "password": "guess-guess"}).status_code
            for i in range(BURST + 1)
        ]
        assert statuses[-1] == 429
        assert client.post("/v2/login", json={"accountName": name, "password": password}).status_code == 429


def test_failed_key_checks_for_an_account_end_in_429_but_its_real_key_still_works(strict: AuthProcess) -> None:
    name, _, key = new_account(strict)
    with strict.internal_client() as client:
        statuses = [
            client.get("/v1/validate", params={"accountName": name, "apiKey": secrets.token_hex(64)}).status_code
            for _ in range(BURST + 2)
        ]
        assert statuses[:BURST] == [404] * BURST
        assert set(statuses[BURST:]) == {429}
        assert client.get("/v1/validate", params={"accountName": name, "apiKey": key}).status_code == 204


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("10.0.0.7", "10.0.0.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("[::1]", "::/64"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_client_counts_by_its_64_since_one_host_holds_a_whole_64(host: str, key: str) -> None:
    assert address_key(host) == key

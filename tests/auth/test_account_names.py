"""Account names are whole-string matches, and no account may look like a reserved
name (issue 16, item 13): `admin\\n` was registered, bypassed the reserved-admin rule
and split log lines."""

from __future__ import annotations

import secrets

import httpx
import pytest

from cloudpipe_common.names import is_reserved
from cloudpipe_server.auth import ChainAuthenticator, Principal, StaticAdminAuthenticator
from cloudpipe_server.auth.base import Authenticator
from cloudpipe_server.errors import Unauthenticated
from tests.auth.support import AuthProcess

# case, fullwidth, invisible, combining-mark and trailing-control variants of "admin"
LOOKALIKES = ["admin\n", "Admin", "ADMIN", "\uff41\uff44\uff4d\uff49\uff4e", "admin\u200b", "a\u0301dmin"]
# not ASCII at all: refused by the name rule (letters, digits, . _ @ + -) before any comparison
NON_ASCII = ["adm\u0131n", "\u0430dmin"]  # dotless i; Cyrillic a


def create(service: AuthProcess, name: str) -> httpx.Response:
    with service.external_client() as client:
        return client.post("/v1/accounts", data={"accountName": name, "password": "long enough password"})


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00", " "])
def test_a_name_with_a_trailing_newline_or_junk_is_refused(auth_service: AuthProcess, suffix: str) -> None:
    name = f"trailing-{secrets.token_hex(3)}{suffix}"
    response = create(auth_service, name)
    assert response.status_code == 400, response.text
    assert "account name" in response.text


@pytest.mark.parametrize("name", [*LOOKALIKES, *NON_ASCII, "admin"], ids=repr)
def test_reserved_names_and_their_lookalikes_cannot_be_registered(auth_service: AuthProcess, name: str) -> None:
    response = create(auth_service, name)
    assert response.status_code == 400, response.text


def test_ordinary_names_still_register(auth_service: AuthProcess) -> None:
    assert create(auth_service, f"administrator-{secrets.token_hex(3)}").status_code == 201


@pytest.mark.parametrize("name", ["admin", *LOOKALIKES])
def test_lookalikes_of_the_admin_are_reserved(name: str) -> None:
    assert is_reserved(name, ["admin"])


@pytest.mark.parametrize("name", ["administrator", "adminx", "bob", "ad-min"])
def test_other_names_are_not_reserved(name: str) -> None:
    assert not is_reserved(name, ["admin"])


class Answers(Authenticator):
    """A double of the auth service that vouches for whatever account it is told: the
    real service refuses these names at sign-up, so only a double can hand them on."""

    def __init__(self, account: str) -> None:
        self.account = account

    async def authenticate(self, account: str | None, key: str | None) -> Principal:
        return Principal(self.account)


@pytest.mark.parametrize("name", [*LOOKALIKES, *NON_ASCII, "bad name", "x" * 200, "alice\n"], ids=repr)
async def test_the_chain_refuses_lookalikes_and_malformed_names_from_later_authenticators(name: str) -> None:
    chain = ChainAuthenticator([StaticAdminAuthenticator("admin", "admin-key"), Answers(name)], reserved=["admin"])
    with pytest.raises(Unauthenticated):
        await chain.authenticate(name, "some-key")
    ok = ChainAuthenticator([StaticAdminAuthenticator("admin", "admin-key"), Answers("alice")], reserved=["admin"])
    assert await ok.authenticate("alice", "some-key") == Principal("alice")

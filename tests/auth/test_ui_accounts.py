"""The UI's accounts and keys routes (/ui/api/auth/...) of a real gateway in front of a
real auth service over TLS: sign-up (and the page's "closed" answer), sign-in, named keys
shown once, revocation, the admin's view; one account never sees or revokes another's
keys, an account's token is no admin credential, and no secret reaches a log."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.conftest import ADMIN_TOKEN
from tests.auth.support import AuthProcess, new_account, start_auth_service
from tests.gateway.support import GatewayProcess, assert_api_error, start_gateway
from tests.support import ServerProcess, free_port


def accounts_gateway(server: str, auth: AuthProcess, log_dir: Path) -> GatewayProcess:
    return start_gateway(server, log_dir, "--auth-url", auth.external, "--auth-ca", str(auth.pki / "ca.pem"))


@pytest.fixture(scope="module")
def gateway(
    auth_service: AuthProcess, auth_servers: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway whose accounts pages use `auth_service` (sign-up open, admin token set),
    in front of a server that checks keys with it."""
    server: ServerProcess = auth_servers.kind(True)  # type: ignore[attr-defined]
    process = accounts_gateway(server.address, auth_service, tmp_path_factory.mktemp("ui-accounts"))
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


def sign_in(http: httpx.Client, account: str, password: str) -> dict[str, str]:
    response = http.post("/ui/api/auth/login", data={"account": account, "password": password})
    assert response.status_code == 200, response.text
    assert response.json()["account"] == account and response.json()["expires_at"]
    return {"authorization": f"Bearer {response.json()['token']}"}


def test_sign_up_sign_in_and_keys_created_once_listed_by_name_and_revoked(
    http: httpx.Client, gateway: GatewayProcess, auth_service: AuthProcess
) -> None:
    assert http.get("/ui/api/auth/signup").json() == {"configured": True, "open": True, "min_password_length": 8}
    account, password = f"ui-{secrets.token_hex(3)}@example.com", secrets.token_urlsafe(12)
    created = http.post("/ui/api/auth/signup", data={"account": account, "password": password})
    assert created.status_code == 200 and created.json() == {"account": account}
    assert_api_error(http.post("/ui/api/auth/signup", data={"account": account, "password": password}), 409, "CONFLICT")

    session = sign_in(http, account, password)
    assert http.get("/ui/api/auth/keys", headers=session).json() == {"keys": []}
    made = http.post("/ui/api/auth/keys", data={"name": "laptop"}, headers=session).json()
    assert made["key"]["name"] == "laptop" and len(made["secret"]) == 128
    (listed,) = http.get("/ui/api/auth/keys", headers=session).json()["keys"]
    assert listed == made["key"] and "secret" not in listed  # shown once, never listed

    # The new key works on the rest of the UI (the server checks it with the auth service).
    assert httpx.get(f"{gateway.url}/ui/api/account", auth=(account, made["secret"]), timeout=30).status_code == 200
    revoked = http.post("/ui/api/auth/keys/revoke", data={"id": made["key"]["id"]}, headers=session)
    assert revoked.status_code == 200
    assert http.get("/ui/api/auth/keys", headers=session).json() == {"keys": []}
    refused = httpx.get(f"{gateway.url}/ui/api/account", auth=(account, made["secret"]), timeout=30)
    assert_api_error(refused, 401, "AFAIL")

    assert http.post("/ui/api/auth/logout", headers=session).status_code == 200
    assert_api_error(http.get("/ui/api/auth/keys", headers=session), 401, "SESSION")
    for secret in (password, made["secret"], session["authorization"][7:]):
        assert secret not in gateway.log and secret not in auth_service.log


def test_one_account_never_sees_or_revokes_anothers_keys_and_is_no_admin(
    http: httpx.Client, auth_service: AuthProcess
) -> None:
    alice, alice_password, _ = new_account(auth_service, "alice")
    bob, bob_password, _ = new_account(auth_service, "bob")
    alice_session, bob_session = sign_in(http, alice, alice_password), sign_in(http, bob, bob_password)
    bobs = http.post("/ui/api/auth/keys", data={"name": "bob's"}, headers=bob_session).json()["key"]
    alices = http.get("/ui/api/auth/keys", headers=alice_session).json()["keys"]
    assert bobs["id"] not in [key["id"] for key in alices]
    assert_api_error(
        http.post("/ui/api/auth/keys/revoke", data={"id": bobs["id"]}, headers=alice_session), 404, "NOTFOUND"
    )
    assert bobs in http.get("/ui/api/auth/keys", headers=bob_session).json()["keys"]
    # An account's sign-in is not the admin credential.
    assert_api_error(http.get("/ui/api/auth/admin/accounts", headers=alice_session), 401, "SESSION")
    assert_api_error(http.get("/ui/api/auth/admin/keys", params={"name": bob}, headers=alice_session), 401, "SESSION")


def test_the_admin_lists_disables_revokes_and_deletes_accounts(http: httpx.Client, auth_service: AuthProcess) -> None:
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    made = f"made-{secrets.token_hex(3)}@example.com"
    created = http.post("/ui/api/auth/admin/accounts", data={"account": made, "password": "long enough"}, headers=admin)
    assert created.status_code == 200 and created.json()["account"] == made and created.json()["disabled"] is False
    name, password, _key = new_account(auth_service, "managed")
    accounts = http.get("/ui/api/auth/admin/accounts", headers=admin).json()["accounts"]
    assert {made, name} <= {a["account"] for a in accounts}
    assert [a["account"] for a in accounts] == sorted(a["account"] for a in accounts)

    keys = http.get("/ui/api/auth/admin/keys", params={"name": name}, headers=admin).json()["keys"]
    assert len(keys) == 1 and "secret" not in keys[0]
    disabled = http.post("/ui/api/auth/admin/account/disable", data={"name": name, "disabled": "true"}, headers=admin)
    assert disabled.json()["disabled"] is True
    assert_api_error(http.post("/ui/api/auth/login", data={"account": name, "password": password}), 401, "SESSION")
    enabled = http.post("/ui/api/auth/admin/account/disable", data={"name": name, "disabled": "false"}, headers=admin)
    assert enabled.json()["disabled"] is False
    revoked = http.post("/ui/api/auth/admin/keys/revoke-all", data={"name": name}, headers=admin)
    assert revoked.json() == {"revoked": 1}
    assert http.post("/ui/api/auth/admin/account/delete", data={"name": name}, headers=admin).status_code == 200
    assert name not in {a["account"] for a in http.get("/ui/api/auth/admin/accounts", headers=admin).json()["accounts"]}
    gone = http.post("/ui/api/auth/admin/account/delete", data={"name": name}, headers=admin)
    assert_api_error(gone, 404, "NOTFOUND")


def test_bad_input_and_missing_credentials_are_4xx(http: httpx.Client) -> None:
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    assert_api_error(http.post("/ui/api/auth/login", data={"account": "x"}), 400, "QINVAL")
    assert_api_error(http.get("/ui/api/auth/login"), 405, "MINVAL")
    assert_api_error(http.get("/ui/api/auth/keys"), 401, "SESSION")
    assert_api_error(http.get("/ui/api/auth/keys", headers={"authorization": "Basic eDp5"}), 401, "SESSION")
    assert_api_error(http.post("/ui/api/auth/keys/revoke", data={"id": "../admin"}, headers=admin), 400, "QINVAL")
    assert_api_error(http.post("/ui/api/auth/admin/account/delete", data={"name": "a/b"}, headers=admin), 400, "QINVAL")
    bad_flag = http.post("/ui/api/auth/admin/account/disable", data={"name": "a", "disabled": "yes"}, headers=admin)
    assert_api_error(bad_flag, 400, "QINVAL")
    assert_api_error(http.post("/ui/api/auth/signup", content=b"account=" + b"x" * (20 << 10)), 413, "QINVAL")


def test_closed_sign_up_is_said_and_refused_and_no_auth_service_is_said(
    auth_service: AuthProcess, pki_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    closed = start_auth_service(
        pki_dir, tmp_path_factory.mktemp("closed-auth"), {"CLOUDPIPE_AUTH_OPEN_SIGNUP": "false"}
    )
    log_dir = tmp_path_factory.mktemp("closed-gateway")
    gateway = accounts_gateway(f"127.0.0.1:{free_port()}", closed, log_dir)
    bare = start_gateway(f"127.0.0.1:{free_port()}", log_dir)
    try:
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            assert http.get("/ui/api/auth/signup").json()["open"] is False
            refused = http.post("/ui/api/auth/signup", data={"account": "someone", "password": "long enough"})
            assert_api_error(refused, 403, "DENIED")
            assert "sign-up is closed" in refused.json()["error"]["message"]
        with httpx.Client(base_url=bare.url, timeout=30) as http:
            assert http.get("/ui/api/auth/signup").json() == {
                "configured": False,
                "open": False,
                "min_password_length": 0,
            }
            assert_api_error(http.post("/ui/api/auth/login", data={"account": "a", "password": "b"}), 501, "NOAUTH")
        closed.stop()
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            assert_api_error(http.get("/ui/api/auth/signup"), 503, "ACONN", retry=True)
    finally:
        assert gateway.stop() == 0, gateway.log
        assert bare.stop() == 0, bare.log
        closed.stop()


@pytest.mark.parametrize("trusted", [True, False], ids=["gateway-trusted", "gateway-not-trusted"])
def test_a_trusted_gateway_keeps_each_clients_failures_apart(
    trusted: bool, pki_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With CLOUDPIPE_AUTH_TRUSTED_PROXIES naming the gateway, one client's failed sign-ins
    (from 127.0.0.2) are throttled without locking out another (127.0.0.3), and a header a
    client sends itself is replaced by the gateway; without, everyone shares its bucket."""
    env = {
        "CLOUDPIPE_AUTH_TRUSTED_PROXIES": "127.0.0.1" if trusted else "127.0.0.9",
        "CLOUDPIPE_AUTH_FAILURE_BURST": "2",
    }
    service = start_auth_service(pki_dir, tmp_path_factory.mktemp("proxied-auth"), env)
    gateway = accounts_gateway(f"127.0.0.1:{free_port()}", service, tmp_path_factory.mktemp("proxied-gateway"))

    def client_from(address: str) -> httpx.Client:
        return httpx.Client(base_url=gateway.url, transport=httpx.HTTPTransport(local_address=address), timeout=30)

    try:
        names = [new_account(service, f"p{n}") for n in range(4)]
        with client_from("127.0.0.2") as attacker, client_from("127.0.0.3") as other:
            codes = [
                attacker.post("/ui/api/auth/login", data={"account": name, "password": "wrong"}).status_code
                for name, _, _ in names[:3]
            ]
            assert codes == [401, 401, 429]  # per source, across accounts
            forged = {"x-forwarded-for": "10.9.8.7"}
            again = attacker.post("/ui/api/auth/login", data={"account": names[0][0], "password": "x"}, headers=forged)
            assert again.status_code == 429  # still 127.0.0.2's bucket
            name, password, _ = names[3]
            answer = other.post("/ui/api/auth/login", data={"account": name, "password": password})
            assert answer.status_code == (200 if trusted else 429)
    finally:
        assert gateway.stop() == 0, gateway.log
        service.stop()


def test_the_quota_routes_set_and_clear_an_accounts_quotas_for_the_admin_only(
    gateway: GatewayProcess, auth_service: AuthProcess, auth_servers: object
) -> None:
    server: ServerProcess = auth_servers.kind(True)  # type: ignore[attr-defined]
    name, _password, key = new_account(auth_service, "quota")
    with (
        httpx.Client(base_url=gateway.url, auth=("admin", server.api_key), timeout=30) as admin,
        httpx.Client(base_url=gateway.url, auth=(name, key), timeout=30) as own,
    ):
        made = admin.post("/ui/api/quota/set", data={"account": name, "max_queued": "4", "max_running": ""})
        assert made.status_code == 200, made.text
        assert made.json()["override"] == {"max_queued": 4, "max_running": None} and made.json()["updated_at"]
        assert own.get("/ui/api/quota").json()["max_queued"] == 4  # one's own, for anyone
        listed = admin.get("/ui/api/quotas").json()
        assert name in [q["account"] for q in listed["accounts"]] and set(listed["defaults"]) == {
            "max_queued",
            "max_running",
        }
        assert_api_error(own.post("/ui/api/quota/set", data={"account": name, "max_queued": "99"}), 403, "AFAIL")
        assert_api_error(own.get("/ui/api/quotas"), 403, "AFAIL")
        assert_api_error(admin.post("/ui/api/quota/set", data={"account": name, "max_queued": "-1"}), 400, "QINVAL")
        assert_api_error(
            admin.post("/ui/api/quota/set", data={"account": name, "max_queued": "10000000"}), 400, "QINVAL"
        )
        assert_api_error(admin.post("/ui/api/quota/set", data={"max_queued": "1"}), 400, "QINVAL")
        for odd in ("²", "٣", "9" * 30, "1.5", "1e3"):  # unicode digits, past int64, not whole: 400, never 500
            refused = admin.post("/ui/api/quota/set", data={"account": name, "max_running": odd})
            assert_api_error(refused, 400, "QINVAL")
        with httpx.Client(base_url=gateway.url, auth=("admin", "wrong-key"), timeout=30) as stranger:
            # bad credentials beat bad input
            assert stranger.post("/ui/api/quota/set", data={"account": name, "max_running": "²"}).status_code == 401
        missing = admin.post("/ui/api/quota/set", data={"account": "nobody@example.com", "max_queued": "1"})
        assert_api_error(missing, 404, "NOTFOUND")
        assert_api_error(admin.get("/ui/api/quota/set"), 405, "MINVAL")
        cleared = admin.post("/ui/api/quota/set", data={"account": name})
        assert (
            cleared.json()["override"] == {"max_queued": None, "max_running": None} and not cleared.json()["updated_at"]
        )

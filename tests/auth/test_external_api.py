"""The external listener over real TLS: the original's form API (spec 5.3) and the
JSON API for people (sessions, named keys, password change, admin)."""

from __future__ import annotations

import re
import secrets

import httpx

from tests.auth.conftest import ADMIN_TOKEN
from tests.auth.support import AuthProcess, new_account


def validate(service: AuthProcess, name: str, key: str) -> int:
    with service.internal_client() as client:
        return client.get("/v1/validate", params={"accountName": name, "apiKey": key}).status_code


def login(client: httpx.Client, name: str, password: str) -> dict[str, str]:
    response = client.post("/v2/login", json={"accountName": name, "password": password})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


def test_heartbeat(auth_service: AuthProcess) -> None:
    with auth_service.external_client() as client:
        response = client.get("/")
    assert (response.status_code, response.text) == (200, "auth-store external API alive and running.\n")


def test_create_account_then_duplicate_is_409(auth_service: AuthProcess) -> None:
    name = f"someone-{secrets.token_hex(3)}@gmail.com"
    with auth_service.external_client() as client:
        created = client.post("/v1/accounts", data={"accountName": name, "password": "long enough"})
        assert (created.status_code, created.content) == (201, b"")
        again = client.post("/v1/accounts", data={"accountName": name, "password": "another one"})
    assert again.status_code == 409
    assert again.json() == {"message": f'The account name "{name}" has already been taken. Please choose another.'}


def test_create_account_needs_both_fields_and_post(auth_service: AuthProcess) -> None:
    with auth_service.external_client() as client:
        missing = client.post("/v1/accounts", data={"accountName": "x"})
        assert missing.status_code == 400
        assert missing.json() == {"message": 'Missing required parameters "accountName" and "password".'}
        assert client.get("/v1/accounts").status_code == 405
        short = client.post("/v1/accounts", data={"accountName": "shorty", "password": "123"})
        assert short.status_code == 400 and "at least 8" in short.json()["message"]


def test_bodies_too_large_or_too_deep_are_400_not_500(auth_service: AuthProcess) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    big = b"accountName=x&password=" + b"p" * (65 << 10)
    with auth_service.external_client() as client:
        for method, path in (("POST", "/v1/accounts"), ("POST", "/v1/keys"), ("DELETE", "/v1/keys")):
            response = client.request(method, path, content=big, headers=form)
            assert response.status_code == 400, (method, path, response.text)
            assert response.json() == {"message": "The request body is larger than 65536 bytes."}
        deep = client.post("/v2/login", content=b"[" * 60_000)
    assert deep.status_code == 400
    assert deep.json() == {"message": "The request body must be a JSON object."}
    assert "Traceback" not in auth_service.log


def test_a_new_key_is_128_hex_plain_text_and_validates(auth_service: AuthProcess) -> None:
    name, password, _ = new_account(auth_service)
    with auth_service.external_client() as client:
        response = client.post("/v1/keys", data={"accountName": name, "password": password})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain"
    assert re.fullmatch(r"[0-9a-f]{128}", response.text)
    assert validate(auth_service, name, response.text) == 204


def test_a_wrong_password_or_unknown_account_gets_no_key(auth_service: AuthProcess) -> None:
    name, _, _ = new_account(auth_service)
    with auth_service.external_client() as client:
        for account, password in ((name, "wrongwrongwrong"), ("unknown@gmail.com", "whatever1")):
            response = client.post("/v1/keys", data={"accountName": account, "password": password})
            assert response.status_code == 401
            assert response.json() == {"message": "Incorrect account name or password."}


def test_revoking_a_key_with_the_key_itself(auth_service: AuthProcess) -> None:
    name, _, key = new_account(auth_service)
    other, _, other_key = new_account(auth_service)
    with auth_service.external_client() as client:
        not_theirs = client.request("DELETE", "/v1/keys", params={"accountName": other, "apiKey": key})
        assert not_theirs.status_code == 401
        assert validate(auth_service, name, key) == 204
        revoked = client.request("DELETE", "/v1/keys", params={"accountName": name, "apiKey": key})
        assert (revoked.status_code, revoked.content) == (204, b"")
    assert validate(auth_service, name, key) == 404
    assert validate(auth_service, other, other_key) == 204


def test_sessions_named_keys_last_use_and_revocation_by_id(auth_service: AuthProcess) -> None:
    name, password, _ = new_account(auth_service)
    with auth_service.external_client() as client:
        auth = login(client, name, password)
        created = client.post("/v2/keys", json={"name": "laptop"}, headers=auth)
        assert created.status_code == 201
        body = created.json()
        assert body["name"] == "laptop" and body["lastUsedAt"] is None and len(body["key"]) == 128
        assert validate(auth_service, name, body["key"]) == 204
        listed = client.get("/v2/keys", headers=auth).json()["keys"]
        assert [k["name"] for k in listed][-1] == "laptop"
        assert all("key" not in k for k in listed)
        assert body["key"] not in client.get("/v2/keys", headers=auth).text
        laptop = next(k for k in listed if k["id"] == body["id"])
        assert laptop["lastUsedAt"] is not None
        assert client.delete(f"/v2/keys/{body['id']}", headers=auth).status_code == 204
        assert client.delete(f"/v2/keys/{body['id']}", headers=auth).status_code == 404
        assert validate(auth_service, name, body["key"]) == 404
        assert client.post("/v2/logout", headers=auth).status_code == 204
        assert client.get("/v2/keys", headers=auth).status_code == 401


def test_one_account_cannot_revoke_anothers_key_by_id(auth_service: AuthProcess) -> None:
    name, password, _ = new_account(auth_service)
    victim, victim_password, victim_key = new_account(auth_service)
    with auth_service.external_client() as client:
        victim_ids = [k["id"] for k in client.get("/v2/keys", auth=(victim, victim_password)).json()["keys"]]
        auth = login(client, name, password)
        assert client.delete(f"/v2/keys/{victim_ids[0]}", headers=auth).status_code == 404
    assert validate(auth_service, victim, victim_key) == 204


def test_changing_the_password(auth_service: AuthProcess) -> None:
    name, password, key = new_account(auth_service)
    with auth_service.external_client() as client:
        auth = login(client, name, password)
        wrong = client.post(
            "/v2/account/password", json={"currentPassword": "nope-nope", "newPassword": "brand new one"}, headers=auth
        )
        assert wrong.status_code == 401
        changed = client.post(
            "/v2/account/password", json={"currentPassword": password, "newPassword": "brand new one"}, headers=auth
        )
        assert changed.status_code == 204
        assert client.get("/v2/account", headers=auth).status_code == 401  # sessions ended
        assert client.post("/v2/login", json={"accountName": name, "password": password}).status_code == 401
        login(client, name, "brand new one")
    assert validate(auth_service, name, key) == 204  # keys survive a password change


def test_admin_endpoints_need_the_admin_token(auth_service: AuthProcess) -> None:
    name, _, key = new_account(auth_service)
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with auth_service.external_client() as client:
        assert client.get("/v2/admin/accounts").status_code == 401
        assert client.get("/v2/admin/accounts", headers={"authorization": "Bearer wrong"}).status_code == 401
        listed = client.get("/v2/admin/accounts", headers=admin)
        assert listed.status_code == 200
        assert name in [a["accountName"] for a in listed.json()["accounts"]]
        disabled = client.patch(f"/v2/admin/accounts/{name}", json={"disabled": True}, headers=admin)
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True
        assert validate(auth_service, name, key) == 404
        client.patch(f"/v2/admin/accounts/{name}", json={"disabled": False}, headers=admin)
        assert validate(auth_service, name, key) == 204
        revoked = client.delete(f"/v2/admin/accounts/{name}/keys", headers=admin)
        assert revoked.json() == {"revoked": 1}
        assert validate(auth_service, name, key) == 404
        assert client.delete(f"/v2/admin/accounts/{name}", headers=admin).status_code == 204
        assert client.delete(f"/v2/admin/accounts/{name}", headers=admin).status_code == 404


def test_the_auth_service_log_has_no_secret(auth_service: AuthProcess) -> None:
    name, password, key = new_account(auth_service)
    with auth_service.external_client() as client:
        token = login(client, name, password)["authorization"][7:]
        client.request("DELETE", "/v1/keys", params={"accountName": name, "apiKey": key})
    validate(auth_service, name, key)
    log = auth_service.log
    assert name in log
    for secret in (password, key, token):
        assert secret not in log


def test_the_signup_policy_says_whether_anyone_may_sign_up(auth_service: AuthProcess) -> None:
    with auth_service.external_client() as client:
        response = client.get("/v2/signup")
    assert response.status_code == 200
    assert response.json() == {"open": True, "minPasswordLength": 8}  # the tests' service opens sign-up

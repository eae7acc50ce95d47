"""A real cloudpipe server checking API keys with a real auth service over mutual TLS,
reached through the SDK (gRPC) and the multyvac HTTP gateway."""

from __future__ import annotations

import secrets
from pathlib import Path

import grpc
import httpx
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_sdk import Client
from cloudpipe_sdk._errors import AuthError, Unavailable
from tests.auth.support import AuthProcess, new_account, start_auth_service
from tests.gateway.support import GatewayProcess, assert_api_error, start_gateway
from tests.support import ServerProcess, free_port, start_server

SECRETS: list[str] = []  # every key and password used here; none may reach a log


def account(service: AuthProcess) -> tuple[str, str]:
    name, password, key = new_account(service, "e2e")
    SECRETS.extend([password, key])
    return name, key


def call(server: ServerProcess, method: str, request: object, metadata: tuple[tuple[str, str], ...]) -> object:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        return getattr(stub, method)(request, metadata=metadata, timeout=20)


def credentials(key: str, name: str | None = None) -> tuple[tuple[str, str], ...]:
    metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {key}"),)
    return (*metadata, ("x-cloudpipe-account", name)) if name else metadata


def rpc_error(server: ServerProcess, metadata: tuple[tuple[str, str], ...]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(server, "QueueStats", pb.QueueStatsRequest(), metadata)
    return caught.value


@pytest.fixture
def gateway(auth_gateway: GatewayProcess) -> GatewayProcess:
    return auth_gateway


def test_the_sdk_works_with_an_account_and_its_key(auth_service: AuthProcess, auth_server: ServerProcess) -> None:
    name, key = account(auth_service)
    with Client(auth_server.address, api_key=key, account=name) as client:
        assert client.list() == []
        assert set(client.queue_stats()) >= {"queued", "done"}


def test_the_sdk_works_with_a_key_alone(auth_service: AuthProcess, auth_server: ServerProcess) -> None:
    _, key = account(auth_service)
    with Client(auth_server.address, api_key=key) as client:
        assert client.list() == []


def test_a_wrong_key_or_someone_elses_key_is_unauthenticated(
    auth_service: AuthProcess, auth_server: ServerProcess
) -> None:
    name, _ = account(auth_service)
    _, other_key = account(auth_service)
    for metadata in (credentials(secrets.token_hex(64), name), credentials(other_key, name), ()):
        assert rpc_error(auth_server, metadata).code() == grpc.StatusCode.UNAUTHENTICATED
    with Client(auth_server.address, api_key=secrets.token_hex(64)) as client, pytest.raises(AuthError):
        client.list()


def test_a_revoked_key_is_refused(auth_service: AuthProcess, auth_server: ServerProcess) -> None:
    name, key = account(auth_service)
    assert call(auth_server, "QueueStats", pb.QueueStatsRequest(), credentials(key, name))
    with auth_service.external_client() as client:
        assert client.request("DELETE", "/v1/keys", params={"accountName": name, "apiKey": key}).status_code == 204
    assert rpc_error(auth_server, credentials(key, name)).code() == grpc.StatusCode.UNAUTHENTICATED
    assert rpc_error(auth_server, credentials(key)).code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_admin_credential_still_works_without_the_auth_service(auth_server: ServerProcess) -> None:
    assert call(auth_server, "QueueStats", pb.QueueStatsRequest(), credentials(auth_server.api_key, "admin"))
    assert call(auth_server, "QueueStats", pb.QueueStatsRequest(), credentials(auth_server.api_key))


def test_an_auth_service_account_cannot_take_the_admins_name(
    auth_service: AuthProcess, auth_server: ServerProcess
) -> None:
    password = secrets.token_urlsafe(12)
    with auth_service.external_client() as client:
        # the auth service reserves the name itself (and its lookalikes: test_account_names.py,
        # which also shows the server refusing such a name should a service vouch for one)
        created = client.post("/v1/accounts", data={"accountName": "admin", "password": password})
        assert created.status_code == 400 and "reserved" in created.text
        issued = client.post("/v1/keys", data={"accountName": "admin", "password": password})
        assert issued.status_code != 200
        key = secrets.token_hex(64)  # no key was issued: a guess must not pass either
    SECRETS.extend([password, key])
    assert rpc_error(auth_server, credentials(key, "admin")).code() == grpc.StatusCode.UNAUTHENTICATED
    assert rpc_error(auth_server, credentials(key)).code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_gateway_takes_basic_account_and_key(auth_service: AuthProcess, gateway: GatewayProcess) -> None:
    name, key = account(auth_service)
    response = httpx.get(f"{gateway.url}/v1/job", auth=(name, key), timeout=30)
    assert (response.status_code, response.json()) == (200, {"jobs": []})
    stats = httpx.get(f"{gateway.url}/v1/job/queue_stats", auth=(name, key), timeout=30)
    assert stats.status_code == 200
    wrong = httpx.get(f"{gateway.url}/v1/job", auth=(name, secrets.token_hex(64)), timeout=30)
    assert_api_error(wrong, 401, "AFAIL", f"Unable to authenticate account [{name}]")


def test_auth_service_down_is_unavailable_and_nothing_is_accepted(
    pki_dir: Path, tmp_path: Path, auth_service: AuthProcess
) -> None:
    """A server whose auth service stops: UNAVAILABLE for gRPC, ACONN (500, retry) for
    HTTP; no key is taken as valid nor as wrong; the admin credential keeps working."""
    own = start_auth_service(pki_dir, tmp_path / "auth")
    name, key = account(own)
    server = start_server(tmp_path / "server", env=own.server_env(CLOUDPIPE_AUTH_CACHE_TTL="0"), fake=True)
    gateway = start_gateway(server.address, tmp_path)
    try:
        assert call(server, "QueueStats", pb.QueueStatsRequest(), credentials(key, name))
        assert own.stop() == 0, own.log
        for metadata in (credentials(key, name), credentials(key), credentials(secrets.token_hex(64), name)):
            error = rpc_error(server, metadata)
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert ("x-cloudpipe-auth", "unavailable") in tuple(error.trailing_metadata() or ())
        with Client(server.address, api_key=key, account=name, retry_for=0.5) as client, pytest.raises(Unavailable):
            client.list()
        for method, path in (("GET", "/v1/job"), ("POST", "/v1/job/kill"), ("GET", "/v1/job/queue_stats")):
            response = httpx.request(method, f"{gateway.url}{path}", auth=(name, key), timeout=30)
            error_body = assert_api_error(response, 500, "ACONN", retry=True)
            assert error_body["message"].startswith("Unable to connect to authentication service: ")
        submitted = httpx.post(f"{gateway.url}/v1/job", auth=(name, key), json={"jobs": []}, timeout=30)
        assert_api_error(submitted, 500, "ACONN", retry=True)
        assert call(server, "QueueStats", pb.QueueStatsRequest(), credentials(server.api_key, "admin"))
    finally:
        gateway_rc, server_rc = gateway.stop(), server.stop()
        own.stop()
    assert (gateway_rc, server_rc) == (0, 0), server.log + gateway.log
    for secret in SECRETS:
        assert secret not in server.log and secret not in gateway.log and secret not in own.log


def test_an_auth_service_that_was_never_there_is_unavailable(pki_dir: Path, tmp_path: Path) -> None:
    env = {
        "CLOUDPIPE_AUTH_SERVICE": f"https://127.0.0.1:{free_port()}/v1",
        "CLOUDPIPE_AUTH_CA": str(pki_dir / "ca.pem"),
        "CLOUDPIPE_AUTH_CERT": str(pki_dir / "cloudpipe-cert.pem"),
        "CLOUDPIPE_AUTH_KEY": str(pki_dir / "cloudpipe-key.pem"),
    }
    server = start_server(tmp_path, env=env, fake=True)
    try:
        assert rpc_error(server, credentials(secrets.token_hex(64), "x")).code() == grpc.StatusCode.UNAVAILABLE
    finally:
        assert server.stop() == 0, server.log


STRICT = {"CLOUDPIPE_AUTH_FAILURE_BURST": "3", "CLOUDPIPE_AUTH_FAILURE_REFILL_SECONDS": "600"}


def test_failed_authentications_are_limited_per_peer_but_a_valid_key_still_works(tmp_path: Path) -> None:
    server = start_server(tmp_path, env=STRICT, fake=True)
    try:
        codes = [rpc_error(server, credentials("guess-" + secrets.token_hex(8))).code() for _ in range(4)]
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
        assert call(server, "QueueStats", pb.QueueStatsRequest(), credentials(server.api_key, "admin"))
        blocked = rpc_error(server, credentials("guess-" + secrets.token_hex(8)))
        assert blocked.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many failed" in (blocked.details() or "")
        assert ("x-cloudpipe-auth", "throttled") in tuple(blocked.trailing_metadata() or ())
    finally:
        assert server.stop() == 0, server.log


def test_one_client_guessing_keys_through_the_gateway_does_not_lock_out_the_others(tmp_path: Path) -> None:
    """Every gateway user reaches the server from the gateway's address: one peer."""
    server = start_server(tmp_path, env=STRICT, fake=True)
    try:
        gateway = start_gateway(server.address, tmp_path)
        try:
            guesses = [
                httpx.get(f"{gateway.url}/v1/job", auth=("admin", secrets.token_hex(8)), timeout=30) for _ in range(4)
            ]
            assert [r.status_code for r in guesses] == [401, 401, 401, 429]
            admin = httpx.get(f"{gateway.url}/v1/job", auth=("admin", server.api_key), timeout=30)
            assert admin.status_code == 200, admin.text
        finally:
            assert gateway.stop() == 0, gateway.log
    finally:
        assert server.stop() == 0, server.log


def test_keys_and_passwords_never_reach_a_log(
    auth_service: AuthProcess, auth_server: ServerProcess, gateway: GatewayProcess
) -> None:
    assert SECRETS, "the tests above ran first"
    for secret in SECRETS:
        assert secret not in auth_server.log
        assert secret not in auth_service.log
        assert secret not in gateway.log

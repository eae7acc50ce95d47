"""The internal listener over real mutual TLS: only certificates of our CA with the
clientAuth usage get in, and the validate protocol is the original's (spec 5.3)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from cloudpipe_auth import pki
from tests.auth.support import AuthProcess, new_account, tls_context


def refused(service: AuthProcess, context: ssl.SSLContext) -> bool:
    """True when the TLS session cannot be used for a request."""
    try:
        with httpx.Client(base_url=service.internal, verify=context, timeout=10) as client:
            client.get("/v1/style")
    except httpx.TransportError:
        return True
    return False


def test_no_client_certificate_is_refused(auth_service: AuthProcess) -> None:
    assert refused(auth_service, tls_context(auth_service.pki, None))


def test_a_certificate_from_another_ca_is_refused(auth_service: AuthProcess, tmp_path: Path) -> None:
    pki.init(tmp_path / "other")
    context = ssl.create_default_context(cafile=str(auth_service.pki / "ca.pem"))
    context.load_cert_chain(
        str(tmp_path / "other" / "cloudpipe-cert.pem"), str(tmp_path / "other" / "cloudpipe-key.pem")
    )
    assert refused(auth_service, context)


def test_a_server_certificate_of_our_ca_is_not_a_client_certificate(auth_service: AuthProcess) -> None:
    assert refused(auth_service, tls_context(auth_service.pki, "server"))


def test_the_external_listener_does_not_answer_the_internal_api(auth_service: AuthProcess) -> None:
    with auth_service.external_client() as client:
        response = client.get("/v1/validate", params={"accountName": "a", "apiKey": "b"})
    assert (response.status_code, response.text) == (200, "auth-store external API alive and running.\n")


def test_heartbeat_and_style(auth_service: AuthProcess) -> None:
    with auth_service.internal_client() as client:
        for path in ("/", "/v1/", "/anything/else"):
            beat = client.get(path)
            assert (beat.status_code, beat.text) == (200, "auth-store internal API alive and running.\n")
        style = client.get("/v1/style")
        assert (style.status_code, style.text) == (200, "auth-store")
        assert style.headers["content-type"] == "text/plain"
        assert client.post("/v1/style").status_code == 405


def test_validate_answers_204_for_a_key_of_the_account_and_404_otherwise(auth_service: AuthProcess) -> None:
    name, _, key = new_account(auth_service)
    other, _, other_key = new_account(auth_service)
    with auth_service.internal_client() as client:
        ok = client.get("/v1/validate", params={"accountName": name, "apiKey": key})
        assert (ok.status_code, ok.content) == (204, b"")
        for account, api_key in ((name, other_key), (other, key), ("nobody@example.com", key), (name, "0" * 128)):
            bad = client.get("/v1/validate", params={"accountName": account, "apiKey": api_key})
            assert (bad.status_code, bad.content) == (404, b"")


@pytest.mark.parametrize(
    "params", [{}, {"accountName": "a"}, {"accountName": "", "apiKey": "k"}, {"accountName": "a", "apiKey": ""}]
)
def test_validate_without_both_parameters_is_400(auth_service: AuthProcess, params: dict[str, str]) -> None:
    with auth_service.internal_client() as client:
        response = client.get("/v1/validate", params=params)
    assert response.status_code == 400
    assert response.json() == {"message": 'Missing required parameters "accountName" and "apiKey".'}


def test_validate_accepts_only_get(auth_service: AuthProcess) -> None:
    with auth_service.internal_client() as client:
        response = client.post("/v1/validate", data={"accountName": "a", "apiKey": "b"})
    assert response.status_code == 405
    assert response.json() == {"message": "Unsupported method POST. Only GET is accepted for this resource."}


def test_a_key_alone_names_its_account(auth_service: AuthProcess) -> None:
    name, _, key = new_account(auth_service)
    with auth_service.internal_client() as client:
        found = client.get("/v1/validate", params={"apiKey": key})
        assert (found.status_code, found.json()) == (200, {"accountName": name})
        assert client.get("/v1/validate", params={"apiKey": "f" * 128}).status_code == 404

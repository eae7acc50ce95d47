"""The secrets page in a real browser against a real server on the Docker engine (one that
lets callers name their account, so each test's account is new): a secret set in the form
is listed by name and reaches a job that names it, its value is nowhere in the page, the
answers or either process's log; "New value" replaces it; deleting asks first; another
account's secret looks missing. And the `/ui/api/secret...` routes' refusals."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cloudpipe_proto.v1 import jobs_pb2 as jpb
from cloudpipe_proto.v1 import secrets_pb2 as pb
from http_gateway.ui_secrets import MAX_FORM_BYTES, MAX_VALUE_BYTES
from tests.gateway.support import GatewayProcess, assert_api_error, start_gateway
from tests.secrets.conftest import Tenant
from tests.secrets.test_secrets import run
from tests.support import ServerProcess, code_of, start_server
from tests.ui.screens import screenshot
from tests.ui.support import log_in_to_jobs, text_of, wait_for

pytestmark = pytest.mark.docker

FIRST = "first-" + uuid.uuid4().hex
SECOND = "second-" + uuid.uuid4().hex
PRINT_DIGEST = 'printf %s "$API_TOKEN" | sha256sum | cut -c1-64'


def digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).hexdigest().encode() + b"\n"


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, GatewayProcess]]:
    """A server that accepts any account name with any key, and a gateway in front of it."""
    data_dir: Path = tmp_path_factory.mktemp("secrets-page")
    server = start_server(data_dir, env={"CLOUDPIPE_ALLOW_ANONYMOUS": "true"})
    try:
        gateway = start_gateway(server.address, data_dir)
    except BaseException:
        server.stop()
        raise
    yield server, gateway
    gateway_rc = gateway.stop()
    assert server.stop() == 0, server.log
    assert gateway_rc == 0, gateway.log


@pytest.fixture
def tenant(anonymous: tuple[ServerProcess, GatewayProcess]) -> Iterator[Tenant]:
    account = Tenant(anonymous[0], "secrets-page")
    yield account
    account.channel.close()


def secret_row(driver: WebDriver, name: str) -> str:
    """The text of the secret's row ("" when none), in one script call (no stale element)."""
    script = "const row = document.querySelector(arguments[0]); return row ? row.innerText : '';"
    return str(driver.execute_script(script, f'#secrets tr[data-secret="{name}"]'))


def names(tenant: Tenant) -> list[str]:
    listed = tenant.secrets.List(pb.ListSecretsRequest(), metadata=tenant.metadata, timeout=30)
    return [secret.name for secret in listed.secrets]


def test_a_secret_set_in_the_page_reaches_a_job_and_its_value_is_never_shown(
    browser: WebDriver, anonymous: tuple[ServerProcess, GatewayProcess], tenant: Tenant
) -> None:
    server, gateway = anonymous
    browser.get(f"{gateway.url}/ui/")
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    log_in_to_jobs(browser, gateway.url, tenant.account, "any-key")
    browser.find_element(By.LINK_TEXT, "Secrets").click()
    wait_for(browser, lambda d: "No secrets yet" in text_of(d, "#secrets"), message="no empty state")
    assert "cloudpipe secret set" in text_of(browser, "#secrets")

    browser.find_element(By.ID, "set-name").send_keys("API_TOKEN")
    browser.find_element(By.ID, "set-value").send_keys(FIRST)
    browser.find_element(By.ID, "set-submit").click()
    wait_for(browser, lambda d: text_of(d, "#notice") == "Saved API_TOKEN.")
    wait_for(browser, lambda d: secret_row(d, "API_TOKEN"), message="the secret is not listed")
    assert browser.find_element(By.ID, "set-value").get_attribute("value") == ""  # the form forgets it
    assert browser.find_element(By.CSS_SELECTOR, '#secrets tr[data-secret="API_TOKEN"] time').text
    assert FIRST not in browser.page_source
    assert names(tenant) == ["API_TOKEN"]
    assert run(tenant, PRINT_DIGEST, "API_TOKEN").stdout == digest(FIRST)
    screenshot(browser, "secrets")

    # a new value: the button names the secret, the value is typed again
    browser.find_element(By.CSS_SELECTOR, 'button[data-action="replace"][data-secret="API_TOKEN"]').click()
    assert browser.find_element(By.ID, "set-name").get_attribute("value") == "API_TOKEN"
    assert browser.find_element(By.ID, "set-value").get_attribute("value") == ""
    browser.find_element(By.ID, "set-value").send_keys(SECOND)
    browser.find_element(By.ID, "set-submit").click()
    wait_for(browser, lambda d: text_of(d, "#notice") == "Saved API_TOKEN.")
    assert run(tenant, PRINT_DIGEST, "API_TOKEN").stdout == digest(SECOND)

    delete = 'button[data-action="delete"][data-secret="API_TOKEN"]'
    browser.find_element(By.CSS_SELECTOR, delete).click()
    confirm = wait_for(browser, lambda d: d.switch_to.alert)
    assert confirm.text.startswith("Delete secret API_TOKEN?")
    confirm.dismiss()
    assert secret_row(browser, "API_TOKEN") and names(tenant) == ["API_TOKEN"]
    browser.find_element(By.CSS_SELECTOR, delete).click()
    wait_for(browser, lambda d: d.switch_to.alert).accept()
    wait_for(browser, lambda d: text_of(d, "#notice") == "Deleted API_TOKEN.")
    wait_for(browser, lambda d: not secret_row(d, "API_TOKEN"), message="the secret is still listed")
    assert names(tenant) == []
    submit = jpb.SubmitRequest(jobs=[jpb.JobSpec(cmd=PRINT_DIGEST, secrets=["API_TOKEN"])])
    refused = code_of(lambda: tenant.jobs.Submit(submit, metadata=tenant.metadata, timeout=30))
    assert refused == grpc.StatusCode.NOT_FOUND  # a job naming it now is refused
    for value in (FIRST, SECOND):
        assert value not in browser.page_source
        assert value not in server.log and value not in gateway.log


def test_the_routes_refuse_bad_input_by_meaning_and_never_echo_a_value(
    anonymous: tuple[ServerProcess, GatewayProcess], tenant: Tenant
) -> None:
    _server, gateway = anonymous
    other = f"other-{uuid.uuid4().hex[:8]}"
    with (
        httpx.Client(base_url=gateway.url, auth=(tenant.account, "k"), timeout=30) as http,
        httpx.Client(base_url=gateway.url, auth=(other, "k"), timeout=30) as bob,
    ):
        made = http.post("/ui/api/secret/set", data={"name": "DB_URL", "value": FIRST})
        assert made.status_code == 200, made.text
        assert set(made.json()) == {"name", "created_at", "updated_at"} and made.json()["name"] == "DB_URL"
        listed = http.get("/ui/api/secrets")
        assert [s["name"] for s in listed.json()["secrets"]] == ["DB_URL"]
        for answer in (made, listed):
            assert FIRST not in answer.text

        # another account's secret looks missing: not listed, not deletable
        assert bob.get("/ui/api/secrets").json() == {"secrets": []}
        assert_api_error(bob.post("/ui/api/secret/delete", data={"name": "DB_URL"}), 404, "NOTFOUND")
        assert names(tenant) == ["DB_URL"]

        bad_name = http.post("/ui/api/secret/set", data={"name": "1BAD", "value": FIRST})
        assert FIRST not in assert_api_error(bad_name, 400, "QINVAL")["message"]
        assert_api_error(http.post("/ui/api/secret/set", data={"name": "X"}), 400, "QINVAL")
        assert_api_error(http.post("/ui/api/secret/set", data={"name": "X", "value": ""}), 400, "QINVAL")
        assert_api_error(http.post("/ui/api/secret/set", data={"value": FIRST}), 400, "QINVAL")
        big = http.post("/ui/api/secret/set", data={"name": "BIG", "value": "v" * (MAX_VALUE_BYTES + 1)})
        assert_api_error(big, 400, "QINVAL", f"A secret's value is at most {MAX_VALUE_BYTES} bytes")
        huge = http.post("/ui/api/secret/set", content=b"name=X&value=" + b"v" * MAX_FORM_BYTES)
        assert_api_error(huge, 413, "QINVAL")
        escape = http.post(
            "/ui/api/secret/set",
            content=f"name=X&value={FIRST}%zz".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert "%zz" not in assert_api_error(escape, 400, "QINVAL", "The form has a malformed %-escape")["message"]
        assert_api_error(http.get("/ui/api/secret/set"), 405, "MINVAL")
        assert_api_error(http.post("/ui/api/secrets"), 405, "MINVAL")
        assert_api_error(http.post("/ui/api/secret/delete", data={"name": "NOPE"}), 404, "NOTFOUND")
        assert names(tenant) == ["DB_URL"]  # nothing refused was stored

        gone = http.post("/ui/api/secret/delete", data={"name": "DB_URL"})
        assert gone.json() == {"deleted": "DB_URL"}
        assert names(tenant) == []

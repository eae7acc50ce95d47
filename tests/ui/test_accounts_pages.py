"""The account (sign up, sign in, API keys) and admin (accounts) pages in a real browser,
through a real gateway and a real auth service over TLS, with a server that checks keys
with it; and their screenshots for docs/ui.md."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from tests.auth.conftest import ADMIN_TOKEN
from tests.auth.conftest import auth_servers as auth_servers  # the server checking keys with the service
from tests.auth.conftest import auth_service as auth_service
from tests.auth.conftest import pki_dir as pki_dir
from tests.auth.support import AuthProcess, new_account, start_auth_service
from tests.gateway.support import GatewayProcess, start_gateway
from tests.support import PerExecutor, ServerProcess
from tests.ui.screens import screenshot
from tests.ui.support import log_in_to_jobs, text_of, wait_for, wait_visible


def accounts_gateway(server: str, auth: AuthProcess, log_dir: Path) -> GatewayProcess:
    return start_gateway(server, log_dir, "--auth-url", auth.external, "--auth-ca", str(auth.pki / "ca.pem"))


@pytest.fixture(scope="module")
def server(auth_servers: PerExecutor[ServerProcess]) -> ServerProcess:
    return auth_servers.kind(True)


@pytest.fixture(scope="module")
def gateway(
    auth_service: AuthProcess, server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    process = accounts_gateway(server.address, auth_service, tmp_path_factory.mktemp("ui-accounts"))
    yield process
    assert process.stop() == 0, process.log


def fresh(browser: WebDriver, url: str) -> None:
    """Open `url` with nothing stored for its origin."""
    browser.get(url)
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    browser.get(url)


def test_sign_up_then_create_use_and_revoke_a_key(browser: WebDriver, gateway: GatewayProcess) -> None:
    account, password = f"page-{secrets.token_hex(3)}@example.com", secrets.token_urlsafe(12)
    fresh(browser, f"{gateway.url}/ui/")
    browser.find_element(By.ID, "to-account").click()
    form = wait_visible(browser, "signup")
    assert not browser.find_element(By.ID, "signup-closed").is_displayed()
    assert "At least 8 characters" in text_of(browser, "#signup-help")
    form.find_element(By.ID, "signup-account").send_keys(account)
    form.find_element(By.ID, "signup-password").send_keys(password)
    form.find_element(By.ID, "signup-submit").click()
    wait_visible(browser, "signed-in")
    assert text_of(browser, "#signed-in-as") == account
    assert "No API keys yet." in text_of(browser, "#keys")

    browser.find_element(By.ID, "key-name").send_keys("laptop")
    browser.find_element(By.ID, "key-submit").click()
    wait_visible(browser, "secret-box")
    secret = text_of(browser, "#secret")
    assert len(secret) == 128
    wait_for(browser, lambda d: "laptop" in text_of(d, "#keys"), message="the key is not listed")
    assert secret not in text_of(browser, "#keys")
    screenshot(browser, "account")

    browser.find_element(By.ID, "use-key").click()  # the jobs pages, logged in with the new key
    wait_for(browser, lambda d: d.current_url.endswith("/ui/jobs.html"))
    wait_for(browser, lambda d: text_of(d, "#updated").startswith("Updated"), message="jobs never loaded")
    assert text_of(browser, "#account") == account

    browser.find_element(By.LINK_TEXT, "API keys").click()
    revoke = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "button[data-revoke]"))[0]
    revoke.click()
    wait_for(browser, lambda d: d.switch_to.alert).accept()
    wait_for(browser, lambda d: "No API keys yet." in text_of(d, "#keys"), message="not revoked")
    assert "revoked" in text_of(browser, "#notice")
    browser.find_element(By.ID, "sign-out").click()
    wait_visible(browser, "signin")
    browser.find_element(By.ID, "signin-account").send_keys(account)
    browser.find_element(By.ID, "signin-password").send_keys("not the password")
    browser.find_element(By.ID, "signin-submit").click()
    wait_for(browser, lambda d: text_of(d, "#error") == "Incorrect account name or password.")


def test_the_page_says_when_sign_up_is_closed(
    browser: WebDriver, pki_dir: Path, server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    closed = start_auth_service(pki_dir, tmp_path_factory.mktemp("closed"), {"CLOUDPIPE_AUTH_OPEN_SIGNUP": "false"})
    gateway = accounts_gateway(server.address, closed, tmp_path_factory.mktemp("closed-gateway"))
    try:
        fresh(browser, f"{gateway.url}/ui/account.html")
        banner = wait_visible(browser, "signup-closed")
        assert banner.text == "Sign-up is closed on this installation: ask your administrator for an account."
        assert not browser.find_element(By.ID, "signup").is_displayed()
        assert browser.find_element(By.ID, "signin").is_displayed()
        screenshot(browser, "signup-closed")
    finally:
        assert gateway.stop() == 0, gateway.log
        closed.stop()


def test_the_admin_disables_shows_keys_of_and_deletes_accounts(
    browser: WebDriver, gateway: GatewayProcess, auth_service: AuthProcess
) -> None:
    name, _password, _key = new_account(auth_service, "managed")
    fresh(browser, f"{gateway.url}/ui/admin.html")
    wait_visible(browser, "admin-login")
    browser.find_element(By.ID, "admin-token").send_keys("not the token")
    browser.find_element(By.ID, "admin-submit").click()
    wait_for(browser, lambda d: text_of(d, "#error") == "The auth service refused the admin token.")
    browser.find_element(By.ID, "admin-token").send_keys(ADMIN_TOKEN)
    browser.find_element(By.ID, "admin-submit").click()

    def shown(css: str) -> str:
        """The text of `css` as the page shows it now (the table is redrawn after each action)."""
        found = browser.execute_script(
            "const n = document.querySelector(arguments[0]); return n ? n.innerText : '';", css
        )
        return str(found)

    def row() -> str:
        return shown(f'#accounts tr[data-account="{name}"]')

    def click(action: str) -> None:
        browser.find_element(By.CSS_SELECTOR, f'button[data-action="{action}"][data-account="{name}"]').click()

    wait_for(browser, lambda d: "Active" in row(), message="the account is not listed")
    click("disable")
    wait_for(browser, lambda d: "Disabled" in row() and text_of(d, "#notice") == f"{name} disabled.")
    click("keys")
    wait_for(browser, lambda d: "Never" in shown(f'tr[data-keys-of="{name}"]'), message="no keys shown")
    screenshot(browser, "admin")
    click("enable")
    wait_for(browser, lambda d: "Active" in row())
    click("delete")
    wait_for(browser, lambda d: d.switch_to.alert).accept()
    wait_for(browser, lambda d: text_of(d, "#notice") == f"{name} deleted.")
    wait_for(browser, lambda d: not row(), message="still listed")


def test_the_admin_sets_an_accounts_quotas_on_the_page_and_the_server_holds_it_to_them(
    browser: WebDriver, gateway: GatewayProcess, server: ServerProcess, auth_service: AuthProcess
) -> None:
    name, _password, key = new_account(auth_service, "limited")
    log_in_to_jobs(browser, gateway.url, "admin", server.api_key)  # the quotas are the server's admin's
    browser.get(f"{gateway.url}/ui/admin.html")
    browser.execute_script("sessionStorage.removeItem('cloudpipe.admin');")
    browser.get(f"{gateway.url}/ui/admin.html")
    wait_visible(browser, "admin-login").find_element(By.ID, "admin-token").send_keys(ADMIN_TOKEN)
    browser.find_element(By.ID, "admin-submit").click()

    def cell() -> str:
        found = browser.execute_script(
            "const n = document.querySelector(arguments[0]); return n ? n.innerText : '';",
            f'td[data-quotas-of="{name}"]',
        )
        return str(found)

    wait_for(browser, lambda d: "Queued: no limit (default)" in cell(), message="the account's quotas are not shown")
    browser.find_element(By.CSS_SELECTOR, f'button[data-action="quotas"][data-account="{name}"]').click()
    assert browser.find_element(By.ID, "quota-account").get_attribute("value") == name
    browser.find_element(By.ID, "quota-max-queued").send_keys("1")
    browser.find_element(By.ID, "quota-submit").click()
    wait_for(browser, lambda d: text_of(d, "#notice").startswith(f"Quotas of {name} saved: at most 1 queued"))
    wait_for(browser, lambda d: "Queued: 1" in cell() and "(default)" in cell().split("Running")[1])
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'#quotas tr[data-quota-account="{name}"]'))
    screenshot(browser, "admin-quotas")

    # The server holds the account to it: two jobs at once are over its queued limit.
    with grpc.insecure_channel(server.address) as channel:
        jobs = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        as_it = (("authorization", f"Bearer {key}"),)
        with pytest.raises(grpc.RpcError) as refused:
            jobs.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="sleep 60")] * 2), metadata=as_it, timeout=20)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        assert "its limit is 1" in (refused.value.details() or "")  # type: ignore[attr-defined]

        browser.find_element(By.CSS_SELECTOR, f'button[data-action="quotas"][data-account="{name}"]').click()
        browser.find_element(By.ID, "quota-clear").click()
        wait_for(browser, lambda d: text_of(d, "#notice") == f"{name} runs under the server's defaults again.")
        wait_for(browser, lambda d: "Queued: no limit (default)" in cell())
        submitted = jobs.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="sleep 60")] * 2), metadata=as_it, timeout=20)
        assert len(submitted.ids) == 2
        jobs.KillAll(pb.KillAllRequest(), metadata=as_it, timeout=20)

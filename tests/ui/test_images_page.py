"""The images page in a real browser against a real server on the Docker engine (one
that lets callers name their account, so the test's account is new and has no images
but the one it builds): the image is listed with its steps, size and build time;
deleting it asks first (dismissed: kept; accepted: gone) and leaves the empty state that
says how to build one; its screenshot for docs/ui.md."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cloudpipe_sdk import Client, Image
from tests.gateway.support import GatewayProcess, start_gateway
from tests.support import ServerProcess, start_server
from tests.ui.screens import screenshot
from tests.ui.support import log_in_to_jobs, text_of, wait_for

pytestmark = pytest.mark.docker

MARKUP = "<img src=x onerror=alert(1)>"


def row_of(driver: WebDriver, reference: str) -> str:
    """The text of the image's row ("" when it is not listed), read again when the list
    is drawn anew between finding the row and reading it (a stale element)."""
    for _ in range(20):
        try:
            rows = driver.find_elements(By.CSS_SELECTOR, f'#images tr[data-image="{reference}"]')
            return str(rows[0].text) if rows else ""
        except StaleElementReferenceException:
            continue
    raise AssertionError("the images list was drawn anew at every read")


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, GatewayProcess]]:
    """A server that accepts any account name with any key, and a gateway in front of it."""
    data_dir: Path = tmp_path_factory.mktemp("images-page")
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


def test_the_images_page_lists_an_image_and_deletes_it_after_a_confirmation(
    browser: WebDriver, anonymous: tuple[ServerProcess, GatewayProcess]
) -> None:
    server, gateway = anonymous
    account = f"images-{uuid.uuid4().hex[:10]}"
    spec = Image.runner().env({"UI_PAGE": secrets.token_hex(4), "NOTE": MARKUP})
    with Client(server.address, account=account) as client:
        built = client.images.build(spec)
        try:
            log_in_to_jobs(browser, gateway.url, account, "any-key")
            browser.find_element(By.LINK_TEXT, "Images").click()
            wait_for(browser, lambda d: row_of(d, built.reference), message="the image is not listed")
            text = row_of(browser, built.reference)
            assert built.summary and built.summary in text
            assert "MiB" in text or "GiB" in text  # its size
            assert not browser.find_elements(By.CSS_SELECTOR, "#images img")  # text, never HTML
            assert browser.find_element(By.CSS_SELECTOR, f'tr[data-image="{built.reference}"] time').text
            screenshot(browser, "images")

            delete = f'button[data-action="delete"][data-image="{built.reference}"]'
            browser.find_element(By.CSS_SELECTOR, delete).click()
            confirm = wait_for(browser, lambda d: d.switch_to.alert)
            assert confirm.text.startswith(f"Delete image {built.reference}?")
            confirm.dismiss()
            assert row_of(browser, built.reference) and client.images.list()[0].reference == built.reference

            browser.find_element(By.CSS_SELECTOR, delete).click()
            wait_for(browser, lambda d: d.switch_to.alert).accept()
            wait_for(browser, lambda d: text_of(d, "#notice") == f"Deleted {built.reference}.")
            wait_for(browser, lambda d: not row_of(d, built.reference), message="the image is still listed")
            assert client.images.list() == []
            empty = text_of(browser, "#images")
            assert "No images yet" in empty and "cloudpipe image build" in empty and "Image.runner()" in empty
        finally:
            for left in client.images.list():
                client.images.delete(left.reference)

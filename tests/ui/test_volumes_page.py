"""The volumes page in a real browser against a real server on the Docker engine (one
that lets callers name their account, so the test's account is new and has only the
volume it makes over gRPC): the volume is listed; browsing it shows its files and
directories (names as text, never HTML), a directory opens with its path as a
breadcrumb, a file downloads with its exact bytes and one uploads from the page;
removing a file and deleting the volume ask first (dismissed: kept; accepted: gone),
leaving the empty state that says how to make one; its screenshot for docs/ui.md."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cloudpipe_proto.v1 import volumes_pb2 as pb
from tests.gateway.support import GatewayProcess, start_gateway
from tests.support import ServerProcess, start_server
from tests.ui.screens import screenshot
from tests.ui.support import log_in_to_jobs, text_of, wait_for
from tests.volumes.conftest import Tenant
from tests.volumes.test_volume_api import download, listing, upload

pytestmark = pytest.mark.docker

MARKUP = "<img src=x onerror=alert(1)>"


def row_of(driver: WebDriver, css: str) -> str:
    """The text of the first row at `css` ("" when none), read in one script call: the page
    may redraw its table between a separate lookup and read (a stale element)."""
    script = "const row = document.querySelector(arguments[0]); return row ? row.innerText : '';"
    text = driver.execute_script(script, css)
    return str(text)


def volume_row(driver: WebDriver, name: str) -> str:
    return row_of(driver, f'#volumes tr[data-volume="{name}"]')


def file_row(driver: WebDriver, path: str) -> str:
    return row_of(driver, f'#files tr[data-path="{path}"]')


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, GatewayProcess]]:
    """A server that accepts any account name with any key, and a gateway in front of it."""
    data_dir: Path = tmp_path_factory.mktemp("volumes-page")
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
    """gRPC stubs of a fresh account; its volumes are deleted afterwards."""
    account = Tenant(anonymous[0], "volumes")
    yield account
    account.close()


@pytest.fixture
def downloads(browser: WebDriver, tmp_path: Path) -> Iterator[Path]:
    """A folder the browser saves downloads into, for this test."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    chrome: Any = browser
    chrome.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})
    yield folder
    chrome.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "default"})


def log_in(driver: WebDriver, url: str, account: str) -> None:
    """Log in on this gateway's origin, whose storage the `browser` fixture does not clear
    (it clears the session stack's): no session of an earlier test is left to reuse."""
    driver.get(f"{url}/ui/")
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    log_in_to_jobs(driver, url, account, "any-key")


def downloaded(folder: Path, name: str, timeout: float = 20) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = folder / name
        if done.exists() and not list(folder.glob("*.crdownload")):
            return done.read_bytes()
        time.sleep(0.1)
    raise AssertionError(f"{name} was not downloaded: {sorted(p.name for p in folder.iterdir())}")


def test_the_volumes_page_browses_a_volume_and_deletes_after_a_confirmation(
    browser: WebDriver,
    anonymous: tuple[ServerProcess, GatewayProcess],
    tenant: Tenant,
    downloads: Path,
    tmp_path: Path,
) -> None:
    _server, gateway = anonymous
    name = f"reports-{uuid.uuid4().hex[:6]}"
    tenant.volumes.Create(pb.CreateVolumeRequest(name=name), metadata=tenant.metadata, timeout=60)
    summary = os.urandom(300_000)  # binary, a few of the server's chunks
    upload(tenant, name, "notes/summary.bin", summary)
    upload(tenant, name, "data.csv", b"a,b\n1,2\n")
    upload(tenant, name, MARKUP, b"markup\n")

    log_in(browser, gateway.url, tenant.account)
    browser.find_element(By.LINK_TEXT, "Volumes").click()
    wait_for(browser, lambda d: volume_row(d, name), message="the volume is not listed")
    assert browser.find_element(By.CSS_SELECTOR, f'#volumes tr[data-volume="{name}"] time').text

    browser.find_element(By.LINK_TEXT, name).click()
    wait_for(browser, lambda d: file_row(d, "data.csv"), message="the volume's files are not shown")
    assert "8 B" in file_row(browser, "data.csv")
    assert "notes/" in file_row(browser, "notes")
    assert MARKUP in file_row(browser, MARKUP)
    assert not browser.find_elements(By.CSS_SELECTOR, "#files img")  # text, never HTML
    assert browser.find_element(By.CSS_SELECTOR, '#files tr[data-path="data.csv"] time').text
    screenshot(browser, "volumes")

    browser.find_element(By.LINK_TEXT, "notes/").click()
    wait_for(browser, lambda d: file_row(d, "notes/summary.bin"), message="the directory's file is not shown")
    assert text_of(browser, "#crumbs").split() == ["Volumes", name, "notes"]
    assert "293.0 KiB" in file_row(browser, "notes/summary.bin")
    browser.find_element(By.CSS_SELECTOR, 'button[data-action="download"][data-path="notes/summary.bin"]').click()
    assert downloaded(downloads, "summary.bin") == summary

    # an upload from the page lands in the directory shown
    local = tmp_path / "from-browser.txt"
    local.write_bytes(b"uploaded by the page\n")
    browser.find_element(By.ID, "upload-file").send_keys(str(local))
    browser.find_element(By.ID, "upload-submit").click()
    wait_for(browser, lambda d: text_of(d, "#notice") == "Uploaded notes/from-browser.txt (21 B).")
    wait_for(browser, lambda d: file_row(d, "notes/from-browser.txt"), message="the upload is not listed")
    assert download(tenant, name, "notes/from-browser.txt")[1] == b"uploaded by the page\n"

    browser.find_element(By.CSS_SELECTOR, "#crumbs a:not([href='volumes.html'])").click()  # back to the top
    wait_for(browser, lambda d: file_row(d, "data.csv"), message="the top is not shown again")
    remove = 'button[data-action="remove"][data-path="data.csv"]'
    browser.find_element(By.CSS_SELECTOR, remove).click()
    confirm = wait_for(browser, lambda d: d.switch_to.alert)
    assert confirm.text.startswith(f"Remove data.csv from {name}?")
    confirm.dismiss()
    assert file_row(browser, "data.csv") and ("data.csv", False, 8) in listing(tenant, name)
    browser.find_element(By.CSS_SELECTOR, remove).click()
    wait_for(browser, lambda d: d.switch_to.alert).accept()
    wait_for(browser, lambda d: text_of(d, "#notice") == "Removed data.csv.")
    wait_for(browser, lambda d: not file_row(d, "data.csv"), message="the file is still listed")
    assert [path for path, _dir, _size in listing(tenant, name)] == [MARKUP, "notes"]

    browser.find_element(By.CSS_SELECTOR, "#crumbs a[href='volumes.html']").click()
    wait_for(browser, lambda d: volume_row(d, name), message="the list is not shown again")
    delete = f'button[data-action="delete"][data-volume="{name}"]'
    browser.find_element(By.CSS_SELECTOR, delete).click()
    confirm = wait_for(browser, lambda d: d.switch_to.alert)
    assert confirm.text.startswith(f"Delete volume {name} and every file in it?")
    confirm.dismiss()
    assert volume_row(browser, name)
    assert [v.name for v in tenant.volumes.List(pb.ListVolumesRequest(), metadata=tenant.metadata).volumes] == [name]

    browser.find_element(By.CSS_SELECTOR, delete).click()
    wait_for(browser, lambda d: d.switch_to.alert).accept()
    wait_for(browser, lambda d: text_of(d, "#notice") == f"Deleted {name}.")
    wait_for(browser, lambda d: not volume_row(d, name), message="the volume is still listed")
    assert not tenant.volumes.List(pb.ListVolumesRequest(), metadata=tenant.metadata).volumes
    empty = text_of(browser, "#volumes")
    assert "No volumes yet" in empty and "cloudpipe volume create" in empty and "client.volumes.create(" in empty


def test_a_volume_is_created_from_the_page_and_another_accounts_is_missing(
    browser: WebDriver, anonymous: tuple[ServerProcess, GatewayProcess], tenant: Tenant
) -> None:
    _server, gateway = anonymous
    log_in(browser, gateway.url, tenant.account)
    browser.get(f"{gateway.url}/ui/volumes.html")
    wait_for(browser, lambda d: "No volumes yet" in text_of(d, "#volumes"), message="no empty state")
    browser.find_element(By.ID, "create-name").send_keys("made-here")
    browser.find_element(By.ID, "create-submit").click()
    wait_for(browser, lambda d: text_of(d, "#notice") == "Created made-here.")
    wait_for(browser, lambda d: volume_row(d, "made-here"), message="the new volume is not listed")
    assert [v.name for v in tenant.volumes.List(pb.ListVolumesRequest(), metadata=tenant.metadata).volumes] == [
        "made-here"
    ]
    browser.find_element(By.LINK_TEXT, "made-here").click()
    wait_for(browser, lambda d: "No files in this volume yet" in text_of(d, "#files"), message="no empty volume")

    browser.get(f"{gateway.url}/ui/volumes.html?name=someone-elses")
    wait_for(browser, lambda d: "not found" in text_of(d, "#error"), message="a missing volume is not told")

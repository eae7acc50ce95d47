"""Web UI fixtures: a real server and a real gateway process for the session (the
helpers of tests/gateway), and headless Debian Chromium driven by Selenium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

# Skip (with this reason in -ra), rather than break collection of the whole suite, until
# the dev extra brings selenium; a missing browser, by contrast, fails (see `chromium`).
pytest.importorskip("selenium", reason="the UI tests need selenium (dev extra): pip install -e '.[dev]'")

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

from tests.gateway.conftest import Stack
from tests.gateway.conftest import py2_docker as py2_docker  # the multyvac client's image (profile test)
from tests.gateway.support import start_gateway
from tests.support import PerExecutor, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
UNFINISHED = ("waiting", "queued", "processing")


@pytest.fixture(scope="session")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PerExecutor[Stack]]:
    pool = PerExecutor(lambda fake: _stack(tmp_path_factory, fake))
    yield pool
    pool.close()


@pytest.fixture
def stack(stacks: PerExecutor[Stack], request: pytest.FixtureRequest) -> Stack:
    """A real server and a real gateway in front of it: on the Docker engine for
    `docker`-marked tests, else with the fake executor."""
    return stacks.get(request)


@contextmanager
def _stack(tmp_path_factory: pytest.TempPathFactory, fake: bool) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("ui-server")
    server = start_server(data_dir, fake=fake)
    try:
        gateway = start_gateway(server.address, data_dir)
    except BaseException:
        server.stop()
        raise
    yield Stack(server, gateway)
    try:
        _kill_everything(gateway.url, server.api_key)
    finally:
        gateway_rc = gateway.stop()
        server_rc = server.stop()
    assert gateway_rc == 0, gateway.log
    assert server_rc == 0, server.log


def _kill_everything(url: str, key: str, timeout: float = 30) -> None:
    """Kill the admin's unfinished jobs and wait until none is left running."""
    with httpx.Client(base_url=url, auth=("admin", key), timeout=30) as client:
        client.post("/v1/job/kill_all")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = client.get("/v1/job", params={"status": list(UNFINISHED)}).json()["jobs"]
            if not jobs:
                return
            time.sleep(0.3)


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client of the gateway, authenticated as the admin account."""
    with httpx.Client(base_url=stack.url, auth=("admin", stack.key), timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile, for the whole session."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("the UI tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium: webdriver.Chrome, stack: Stack) -> Iterator[webdriver.Chrome]:
    """The browser with no session stored; afterwards, no script error may have been logged
    (a CSP violation or an exception in a page is a SEVERE console entry)."""
    chromium.get(f"{stack.url}/ui/")
    chromium.execute_script("sessionStorage.clear(); localStorage.clear();")
    chromium.get_log("browser")  # type: ignore[no-untyped-call]  # drop what came before this test
    yield chromium
    try:
        entries = chromium.get_log("browser")  # type: ignore[no-untyped-call]
    except WebDriverException:
        entries = []
    # The browser logs every 4xx answer as "Failed to load resource"; the pages handle those.
    errors = [e["message"] for e in entries if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
    assert not errors, errors

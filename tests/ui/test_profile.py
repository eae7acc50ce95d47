"""The profile page: the account and its key (hidden until asked), and snippets that
run as shown, with the real multyvac 0.5.0 client and the real SDK."""

from __future__ import annotations

import subprocess
import sys

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.gateway.conftest import Stack
from tests.gateway.support import run_multyvac
from tests.support import ROOT
from tests.ui.support import log_in_to_jobs, text_of, wait_for


def source(browser: WebDriver, element_id: str) -> str:
    """A snippet exactly as a reader would copy it."""
    return str(browser.find_element(By.ID, element_id).get_attribute("textContent"))


def open_profile(browser: WebDriver, stack: Stack) -> None:
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    browser.find_element(By.LINK_TEXT, "Profile").click()
    wait_for(browser, lambda d: stack.server.address in text_of(d, "#sdk-snippet"), message="no server address")


def test_the_key_is_hidden_until_shown(browser: WebDriver, stack: Stack) -> None:
    open_profile(browser, stack)
    assert text_of(browser, "#profile-account") == "admin"
    reveal = browser.find_element(By.ID, "reveal")
    assert reveal.get_attribute("aria-pressed") == "false"
    assert stack.key not in browser.find_element(By.TAG_NAME, "main").text

    reveal.click()
    assert reveal.get_attribute("aria-pressed") == "true"
    assert reveal.text == "Hide key"
    assert text_of(browser, "#profile-key") == stack.key
    assert (
        f'multyvac.config.set_key(api_key="admin", api_secret_key="{stack.key}",\n'
        f'                        api_url="{stack.url}/v1")'
    ) in text_of(browser, "#multyvac-snippet")
    assert f'Client("{stack.server.address}", account="admin", api_key="{stack.key}")' in text_of(
        browser, "#sdk-snippet"
    )


@pytest.mark.docker
def test_the_multyvac_snippet_runs_as_shown(browser: WebDriver, stack: Stack, py2_docker: object) -> None:
    open_profile(browser, stack)
    browser.find_element(By.ID, "reveal").click()
    snippet = source(browser, "multyvac-snippet")
    result = run_multyvac(py2_docker, stack.url, stack.key, snippet + "\nemit(result=multyvac.get(jid).get_result())\n")
    assert result == {"result": 7}


@pytest.mark.docker
def test_the_sdk_snippet_runs_as_shown(browser: WebDriver, stack: Stack) -> None:
    open_profile(browser, stack)
    browser.find_element(By.ID, "reveal").click()
    snippet = source(browser, "sdk-snippet")
    run = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "7\n"

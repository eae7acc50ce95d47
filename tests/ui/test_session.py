"""Logging in and out in a real browser: the key is checked by the gateway, kept in
sessionStorage (or localStorage with "remember me"), and forgotten on logout."""

from __future__ import annotations

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.gateway.conftest import Stack
from tests.ui.support import log_in, log_in_to_jobs, stored_sessions, text_of, wait_for


def test_logging_in_with_the_admin_key_opens_the_jobs_page_for_this_tab_only(browser: WebDriver, stack: Stack) -> None:
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    assert text_of(browser, "#account") == "admin"
    session, remembered = stored_sessions(browser)
    assert json.loads(str(session)) == {"account": "admin", "key": stack.key}
    assert remembered is None


def test_a_wrong_key_shows_a_clear_error_and_stores_nothing(browser: WebDriver, stack: Stack) -> None:
    log_in(browser, stack.url, "admin", "not-the-key")
    alert = wait_for(browser, lambda d: text_of(d, "#error"), message="no error shown")
    assert alert == "Wrong account name or API key."
    assert browser.find_element(By.ID, "error").get_attribute("role") == "alert"
    key_input = browser.find_element(By.ID, "api-key")
    assert key_input.get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element == key_input
    assert browser.current_url == f"{stack.url}/ui/"
    assert stored_sessions(browser) == [None, None]


def test_missing_fields_are_named_before_anything_is_sent(browser: WebDriver, stack: Stack) -> None:
    browser.get(f"{stack.url}/ui/")
    browser.find_element(By.ID, "submit").click()
    assert text_of(browser, "#error") == "Enter your account name."
    assert browser.switch_to.active_element == browser.find_element(By.ID, "account-name")
    browser.find_element(By.ID, "account-name").send_keys("admin")
    browser.find_element(By.ID, "submit").click()
    assert text_of(browser, "#error") == "Enter your API key."


def test_logout_clears_the_session_from_both_storages(browser: WebDriver, stack: Stack) -> None:
    log_in(browser, stack.url, "admin", stack.key, remember=True)
    wait_for(browser, lambda d: d.current_url.endswith("/ui/jobs.html"))
    session, remembered = stored_sessions(browser)
    assert session is None and json.loads(str(remembered))["key"] == stack.key

    browser.find_element(By.ID, "logout").click()
    wait_for(browser, lambda d: "loggedout" in d.current_url)
    assert text_of(browser, "#notice") == "You are logged out."
    assert stored_sessions(browser) == [None, None]
    browser.get(f"{stack.url}/ui/profile.html")  # a signed-in page sends you to log in, then back
    wait_for(browser, lambda d: d.current_url.endswith("/ui/?next=profile.html"))
    log_in_form_then = browser.current_url
    browser.find_element(By.ID, "account-name").send_keys("admin")
    browser.find_element(By.ID, "api-key").send_keys(stack.key)
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, lambda d: d.current_url.endswith("/ui/profile.html"), message=log_in_form_then)


def test_a_remembered_session_survives_a_new_tab(browser: WebDriver, stack: Stack) -> None:
    log_in(browser, stack.url, "admin", stack.key, remember=True)
    wait_for(browser, lambda d: d.current_url.endswith("/ui/jobs.html"))
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")  # a new tab has an empty sessionStorage
    try:
        browser.get(f"{stack.url}/ui/")
        wait_for(browser, lambda d: d.current_url.endswith("/ui/jobs.html"), message="not kept")
    finally:
        browser.close()
        browser.switch_to.window(first)


def test_the_tab_must_log_in_again_without_remember_me(browser: WebDriver, stack: Stack) -> None:
    log_in_to_jobs(browser, stack.url, "admin", stack.key)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    try:
        browser.get(f"{stack.url}/ui/jobs.html")
        wait_for(browser, lambda d: "/ui/?next=jobs.html" in d.current_url, message="session leaked to a new tab")
    finally:
        browser.close()
        browser.switch_to.window(first)

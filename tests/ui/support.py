"""Helpers of the UI tests: log in through the form, wait for what a reader sees."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float = 20, message: str = "") -> T:
    """The first truthy value of `condition(driver)`, polled until `timeout` seconds. A
    live page redraws its rows as events arrive: an element found and then redrawn
    before it was read (StaleElementReferenceException) is "not yet", polled again."""
    wait = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])
    result: T = wait.until(condition, message)
    return result


def text_of(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def definitions(driver: WebDriver, css: str) -> dict[str, str]:
    """The `<dt>` -> `<dd>` pairs of the description list at `css`, read in one script
    call: the page may redraw the list between two separate element lookups."""
    pairs = driver.execute_script(
        "const list = document.querySelector(arguments[0]);"
        "return list ? [...list.querySelectorAll('dt')].map(dt => [dt.innerText, dt.nextElementSibling ?"
        " dt.nextElementSibling.innerText : '']) : [];",
        css,
    )
    return {str(term).strip(): str(value).strip() for term, value in pairs}


def log_in(driver: WebDriver, base_url: str, account: str, key: str, *, remember: bool = False) -> None:
    """Fill and send the login form at `/ui/` (the page it leads to is not waited for)."""
    driver.get(f"{base_url}/ui/")
    driver.find_element(By.ID, "account-name").send_keys(account)
    driver.find_element(By.ID, "api-key").send_keys(key)
    if remember:
        driver.find_element(By.ID, "remember").click()
    driver.find_element(By.ID, "submit").click()


def log_in_to_jobs(driver: WebDriver, base_url: str, account: str, key: str) -> None:
    log_in(driver, base_url, account, key)
    wait_for(driver, lambda d: d.current_url.endswith("/ui/jobs.html"), message="not on the jobs page")
    wait_for(driver, lambda d: text_of(d, "#updated").startswith("Updated"), message="jobs never loaded")


def job_row(driver: WebDriver, section: str, jid: int) -> WebElement | None:
    """The table row of job `jid` in the "ongoing" or "completed" section, if shown."""
    rows = driver.find_elements(By.XPATH, f'//div[@id="{section}"]//tr[td[1][normalize-space()="{jid}"]]')
    return rows[0] if rows else None


def wait_visible(driver: WebDriver, element_id: str, timeout: float = 20) -> WebElement:
    element = driver.find_element(By.ID, element_id)
    wait_for(driver, lambda d: element.is_displayed(), timeout, f"#{element_id} never shown")
    return element


def stored_sessions(driver: WebDriver) -> list[object]:
    """The session entries of sessionStorage and localStorage (None where absent)."""
    found: list[object] = driver.execute_script(
        "return [sessionStorage.getItem('cloudpipe.session'), localStorage.getItem('cloudpipe.session')];"
    )
    return found

"""The dashboard as a person uses it: Debian's Chromium, headless, through Selenium.

A real HTTP server runs the real app on 127.0.0.1 (an ephemeral port) over a
sandbox pipeline. The browser signs in, sees the charts drawn, follows a filter,
opens a drill-down and a manager's queue, and signs out. Screenshots land in
``tests/artifacts/`` (ignored by git). Every wait is bounded. Without Chromium
the tests fail, unless ONSTRATEGY_TEST_ALLOW_NO_BROWSER=1 (then they skip).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from connectors.base import OpportunityQuery
from connectors.sandbox import SandboxConnector
from connectors.sandbox_seed import seed
from integration.app.factory import create_app
from integration.pipeline.sweep import SweepPlan, run_sweep
from integration.runtime import Runtime
from integration.settings import Settings

pytestmark = pytest.mark.browser

TOKEN = "browser-test-token"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("ONSTRATEGY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ONSTRATEGY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 10  # seconds, for any one thing to appear
TODAY = date(2026, 11, 18)


def _need_browser() -> None:
    found = all(shutil.which(path) or Path(path).exists() for path in (CHROMIUM, CHROMEDRIVER))
    if found:
        return
    reason = (
        f"Chromium not found at {CHROMIUM} / {CHROMEDRIVER} "
        "(apt-get install chromium chromium-driver)"
    )
    if os.environ.get("ONSTRATEGY_TEST_ALLOW_NO_BROWSER") == "1":
        pytest.skip(reason)
    pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real app on a real server, over a seeded and evaluated sandbox pipeline."""
    folder = tmp_path_factory.mktemp("browser")
    shutil.copytree(Path(__file__).resolve().parent.parent / "rules", folder / "rules")
    settings = Settings.from_env(
        {
            "ONSTRATEGY_RULES_DIR": str(folder / "rules"),
            "ONSTRATEGY_DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
            "ONSTRATEGY_ADMIN_TOKEN": TOKEN,
        }
    )
    sandbox = SandboxConnector(str(folder / "sandbox.db"))
    runtime = Runtime(settings, connectors={"sandbox": sandbox}, today=lambda: TODAY)
    runtime.store.migrate()
    seed(sandbox, opportunities=300, today=TODAY)
    run_sweep(runtime, "sandbox", SweepPlan("demo", OpportunityQuery()), trigger="demo")
    httpd = make_server("127.0.0.1", 0, create_app(runtime=runtime), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=5)
    sandbox.close()


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(5)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def _shot(driver, name: str, width: int = 1280) -> Path:
    """A full-page screenshot: the window is made as tall as the page first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height + 120, 600), 6000))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    return path


def _wait(driver, condition):
    return WebDriverWait(driver, WAIT).until(condition)


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_a_leader_signs_in_reads_filters_drills_down_and_signs_out(server, browser):
    browser.get(f"{server}/dashboard")
    _wait(browser, ec.presence_of_element_located((By.ID, "token")))
    assert urlsplit(browser.current_url).path == "/signin"
    _shot(browser, "01-sign-in")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    # The overview: the headline and the charts, drawn.
    _wait(browser, ec.presence_of_element_located((By.ID, "headline")))
    assert urlsplit(browser.current_url).path == "/dashboard"
    lines = browser.find_elements(By.CSS_SELECTOR, "#trend svg path.series")
    assert lines and max(line.size["width"] for line in lines) > 300
    assert browser.find_elements(By.CSS_SELECTOR, "#by-group svg.minibar rect.bar")
    assert "Enterprise East" in browser.find_element(By.ID, "by-group").text
    _shot(browser, "02-overview")
    browser.set_window_size(1280, 1300)  # the top of the page, for the README
    browser.save_screenshot(str(ARTIFACTS / "00-top.png"))
    browser.set_window_size(1280, 900)

    # A filter is a link: the team's reps, shown by name.
    browser.find_element(By.LINK_TEXT, "Enterprise East").click()
    _wait(browser, ec.url_contains("team=Enterprise+East"))
    groups = browser.find_element(By.ID, "by-group").text
    assert "By rep" in groups and "Sean O'Brien" in groups
    _shot(browser, "03-team")

    # A drill-down: the deals behind one rep's figures.
    browser.find_element(By.CSS_SELECTOR, "#by-group tbody th a").click()
    _wait(browser, ec.presence_of_element_located((By.ID, "deals")))
    assert urlsplit(browser.current_url).path == "/dashboard/deals"
    assert browser.find_elements(By.CSS_SELECTOR, "#deals tbody tr")
    _shot(browser, "04-deals")

    # A manager's coaching queue, by name.
    browser.get(f"{server}/dashboard")
    browser.find_element(By.CSS_SELECTOR, "#coaching tbody th a").click()
    _wait(browser, ec.presence_of_element_located((By.ID, "queue")))
    assert "U-0" not in browser.find_element(By.CSS_SELECTOR, "#queue h2").text
    _shot(browser, "05-manager")

    # Sign out: back to the sign-in page, and the dashboard needs signing in again.
    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    _wait(browser, ec.presence_of_element_located((By.ID, "token")))
    assert "You are signed out" in browser.page_source
    browser.get(f"{server}/dashboard")
    _wait(browser, ec.presence_of_element_located((By.ID, "token")))
    assert urlsplit(browser.current_url).path == "/signin"


def test_the_page_loads_nothing_from_outside_the_app(server, browser):
    browser.get(f"{server}/signin")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.get_log("performance")  # drop what came before
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait(browser, ec.presence_of_element_located((By.ID, "headline")))
    urls = _requested_urls(browser)
    assert any(url.endswith("/static/app.css") for url in urls)
    outside = [url for url in urls if not url.startswith(server) and not url.startswith("data:")]
    assert outside == []
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_readable_on_a_phone(server, browser):
    browser.get(f"{server}/dashboard")
    if urlsplit(browser.current_url).path == "/signin":
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        _wait(browser, ec.presence_of_element_located((By.ID, "headline")))
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    try:
        browser.refresh()
        _wait(browser, ec.presence_of_element_located((By.ID, "headline")))
        scroll = browser.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= 390  # nothing wider than the phone: wide tables scroll in their card
        browser.save_screenshot(str(ARTIFACTS / "06-phone-top.png"))
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {**phone, "height": min(height, 6000)}
        )
        browser.save_screenshot(str(ARTIFACTS / "06-phone.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

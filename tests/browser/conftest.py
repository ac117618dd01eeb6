"""Playwright (Python API) driving Debian's Chromium against pytest-django's live server.

`make test` installs the `chromium` package when it is missing; these tests never download a browser.
Every page a test opens is watched for console errors and failed requests (see `page`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
SCREENSHOTS = Path(settings.VAR_DIR) / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def _playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(_playwright):
    browser = _playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
    yield browser
    browser.close()


def _loopback_only(route) -> None:
    """Browser tests talk to the live server only: any request to another host is aborted."""
    url = urlsplit(route.request.url)
    if url.scheme in ("data", "blob", "about") or url.hostname in LOOPBACK_HOSTS:
        route.continue_()
    else:
        route.abort("blockedbyclient")


class ConsoleWatch:
    def __init__(self):
        self.errors: list[str] = []

    def assert_clean(self):
        assert self.errors == [], self.errors


@pytest.fixture
def console():
    return ConsoleWatch()


@pytest.fixture
def page(browser, live_server, console):
    """A fresh browser context whose console errors and CSP violations fail the test."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.route("**/*", _loopback_only)
    page = context.new_page()
    page.on("console", lambda msg: msg.type == "error" and console.errors.append(msg.text))
    page.on("pageerror", lambda exc: console.errors.append(str(exc)))
    yield page
    context.close()
    console.assert_clean()


def login(page, username: str, password: str = "pw-for-tests-1") -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


LOOPBACK_ONLY = re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/]).*")


@pytest.fixture
def loopback_page(browser, live_server, console):
    """Like `page`, for flows that visit other local servers (an identity provider): any request
    that is not to 127.0.0.1/localhost is aborted (the provider's pages link a public CDN), and
    console errors count only on the portal's own pages."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.route(LOOPBACK_ONLY, lambda route: route.abort())
    page = context.new_page()

    def on_console(msg):
        if msg.type == "error" and page.url.startswith(live_server.url):
            console.errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: console.errors.append(str(exc)))
    yield page
    context.close()
    console.assert_clean()

"""The console in a real browser: Debian's headless Chromium driven by Selenium through
chromium-driver (``.ci/run`` installs both when missing; nothing is downloaded).

Against the real app on a real port: sign in with a token, approve a pending approval with a
comment and see the action run once, reject another, and a forged form on another site
(``localhost`` against ``127.0.0.1``, another port) posted by the browser with the session
cookie is refused with nothing changed. The incident, audit and admin pages render. With
``REMEDIATOR_SCREENSHOTS=DIR`` the main pages are saved there (``docs/console-*.png``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import ClientFactory, read_audit
from tests.support.approvals import AM, pending, settle
from tests.support.console import CONSOLE_TOKENS, console_settings
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import ServerFactory, serve_target
from tests.support.webhooks import alert, body

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PHONE = (412, 915)
FIVE_MINUTES_IN = datetime(2026, 11, 23, 6, 47, 28, tzinfo=UTC).timestamp()  # the fixture's startsAt + 5m


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.fail(f"Chromium or its driver is missing ({CHROMIUM}, {DRIVER}): .ci/run installs "
                    "chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--hide-scrollbars", f"--window-size={PHONE[0]},{PHONE[1]}",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CONSOLE_TOKENS.items():
        monkeypatch.setenv(name, value)


def element_gone(element: WebElement) -> bool:
    """Whether the page ``element`` was on has been replaced by another."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    return False


class Browser:
    """The driver's blocking calls, run off the event loop so the app under test can answer."""

    def __init__(self, driver: webdriver.Chrome, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots

    async def open(self, path: str) -> None:
        await asyncio.to_thread(self.driver.get, path if "://" in path else self.base + path)

    async def type(self, element_id: str, text: str) -> None:
        element = await asyncio.to_thread(self.driver.find_element, By.ID, element_id)
        await asyncio.to_thread(element.send_keys, text)

    async def click(self, element_id: str, *, then: str | None = None) -> None:
        """Click; with ``then``, wait (bounded) until the page that follows has that element."""
        element = await asyncio.to_thread(self.driver.find_element, By.ID, element_id)
        await asyncio.to_thread(element.click)
        if then is not None:
            def arrived(driver: webdriver.Chrome) -> bool:
                return bool(driver.find_elements(By.ID, then)) and element_gone(element)

            await asyncio.to_thread(WebDriverWait(self.driver, 20).until, arrived)

    async def text(self, element_id: str = "") -> str:
        if not element_id:
            return str(await asyncio.to_thread(lambda: self.driver.find_element(By.TAG_NAME, "body").text))
        element = await asyncio.to_thread(self.driver.find_element, By.ID, element_id)
        return str(await asyncio.to_thread(lambda: element.text))

    async def shot(self, name: str, width: int = PHONE[0]) -> None:
        """The whole page at ``width`` CSS pixels (a phone's by default), as a PNG."""
        def take() -> None:
            cdp = self.driver.execute_cdp_cmd
            cdp("Emulation.setDeviceMetricsOverride", {"width": width, "height": PHONE[1],
                                                       "deviceScaleFactor": 1, "mobile": width == PHONE[0]})
            height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
            cdp("Emulation.setDeviceMetricsOverride", {"width": width, "height": min(height, 3000),
                                                       "deviceScaleFactor": 1, "mobile": width == PHONE[0]})
            data = cdp("Page.captureScreenshot", {"format": "png"})["data"]
            (self.shots / f"console-{name}.png").write_bytes(base64.b64decode(data))
            cdp("Emulation.clearDeviceMetricsOverride", {})
        await asyncio.to_thread(take)


async def test_sign_in_approve_reject_and_a_forged_post_in_chromium(
        browser: webdriver.Chrome, make_client: ClientFactory, make_settings: Any,
        aiohttp_server: ServerFactory, tmp_path: Path, clock: FakeClock) -> None:
    clock.t = FIVE_MINUTES_IN  # as if the on-call opened it five minutes after the alert fired
    target, base = await serve_target(aiohttp_server)
    settings = console_settings(make_settings, base)
    client = await make_client(settings)
    for namespace in ("prod", "staging"):
        resp = await client.post("/webhook", data=body(alert(namespace=namespace)), headers=AM)
        assert resp.status == 202
    await settle(client)
    by_namespace = {a["payload"]["labels"]["namespace"]: a for a in await pending(client)}
    shots = Path(os.environ.get("REMEDIATOR_SCREENSHOTS") or tmp_path)
    await asyncio.to_thread(shots.mkdir, parents=True, exist_ok=True)
    site = str(client.make_url("")).rstrip("/")
    b = Browser(browser, site, shots)
    await asyncio.to_thread(browser.delete_all_cookies)

    await b.open("/ui/approvals")  # not signed in: to the sign-in page
    assert browser.current_url == f"{site}/ui/login"
    await b.shot("login")
    await b.type("token", "oncall-secret")
    await b.click("signin", then="signout")
    page = await b.text()
    assert browser.current_url == f"{site}/ui/approvals", page
    assert "oncall-alice · approver" in page
    assert page.count("Review and decide") == 2
    await b.shot("approvals")

    prod, staging = by_namespace["prod"], by_namespace["staging"]
    await b.open(f"/ui/approvals/{prod['id']}")
    assert "POST " in await b.text("plan")
    await b.shot("approval")
    await b.type("comment", "purge is safe")
    await b.click("approve", then="message")
    await settle(client)
    assert "Approved: the plan is queued to run." in await b.text("message")
    assert "approved by console:oncall-alice" in await b.text("status")
    assert [c[1] for c in target.calls] == ["/svc/purge/prod"]

    await b.open(f"/ui/approvals/{staging['id']}")
    await b.click("reject", then="status")
    await settle(client)
    assert "rejected by console:oncall-alice" in await b.text("status")
    assert len(target.calls) == 1

    # another site's form, submitted by this browser (the session cookie included)
    resp = await client.post("/webhook", data=body(alert(namespace="qa")), headers=AM)
    assert resp.status == 202
    await settle(client)
    [qa] = await pending(client)
    evil = web.Application()
    form = (f'<form method="post" action="{site}/ui/approvals/{qa["id"]}/approve">'
            '<input name="comment" value="pwned"><button id="go" type="submit">win a prize</button></form>')

    async def lure(_: web.Request) -> web.Response:
        return web.Response(text=form, content_type="text/html")

    evil.router.add_get("/", lure)
    evil_server = await aiohttp_server(evil, host="localhost")
    await b.open(f"http://localhost:{evil_server.port}/")
    await b.click("go", then="error")
    await settle(client)
    assert "Refused" in await b.text()
    assert [a["id"] for a in await pending(client)] == [qa["id"]]
    assert len(target.calls) == 1

    await b.open(f"/ui/incidents/{prod['fingerprint']}")
    assert "approved by console:oncall-alice" in await b.text("timeline")
    assert "met" in await b.text("verdict")
    await b.shot("incident")
    await b.open("/ui/audit?event=approval.*")
    assert "console:oncall-alice" in await b.text("records")
    await b.shot("audit", 1100)

    actors = [(r["event"], r["actor"]) for r in read_audit(settings.audit)
              if r["event"] in ("approval.approved", "approval.rejected")]
    assert actors == [("approval.approved", "console:oncall-alice"),
                      ("approval.rejected", "console:oncall-alice")]


async def test_the_admin_page_in_chromium(browser: webdriver.Chrome, make_client: ClientFactory,
                                          make_settings: Any, aiohttp_server: ServerFactory,
                                          tmp_path: Path) -> None:
    _, base = await serve_target(aiohttp_server)
    client = await make_client(console_settings(make_settings, base))
    site = str(client.make_url("")).rstrip("/")
    shots = Path(os.environ.get("REMEDIATOR_SCREENSHOTS") or tmp_path)
    b = Browser(browser, site, shots)
    await asyncio.to_thread(browser.delete_all_cookies)
    await b.open("/ui/login")
    await b.type("token", "adm")
    await b.click("signin", then="signout")
    await b.open("/ui/admin")
    await b.type("reason", "change freeze")
    await b.click("pause", then="resume")
    assert "Paused" in await b.text("message")
    assert "Automation is paused (admin) by console:sre-admin: change freeze" in await b.text()
    await b.shot("admin")
    await b.click("resume", then="pause")
    assert "Resumed." in await b.text("message")

"""The console in a real headless Chromium (Debian's chromium + chromium-driver, via selenium):
log in, search a payment made through the sandboxes, open its timeline, pause a partner; and
its sessions, roles and cross-site posts over plain HTTP.
Screenshots are kept under the test's temporary folder (``QRGW_CONSOLE_SHOTS`` copies them)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_kit import SHANGHAI, AdminKit, admin_kit
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from gateway.routing_app import routing_table
from gateway.sandbox_env import SandboxEnvironment

CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,900")


@pytest.fixture
def browser() -> Iterator[Any]:
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    profile = tempfile.mkdtemp(prefix="qrgw-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in (*CHROMIUM_ARGS, f"--user-data-dir={profile}"):
        opts.add_argument(a)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
async def kit(sandbox_env: SandboxEnvironment) -> AsyncIterator[AdminKit]:
    async with admin_kit(sandbox_env, "memory", None) as k:
        yield k


def shoot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    if target := os.environ.get("QRGW_CONSOLE_SHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


async def in_browser(fn: Callable[[], Any]) -> Any:
    """Selenium blocks: drive it in a thread while this loop serves the console."""
    return await asyncio.to_thread(fn)


async def test_console_login_search_timeline_pause(kit: AdminKit, browser: Any, tmp_path: Path) -> None:
    ids = []
    for i, (qr, value, cur) in enumerate([(SHANGHAI, "5000", "CNY"), (None, "15000", "KRW")]):
        r = await (kit.pay(f"ui-{i}", qr=qr, value=value, cur=cur) if qr else kit.pay(f"ui-{i}", value=value))
        ids.append(r.json()["payment_id"])
        await kit.final(ids[-1])
    base = kit.gw.admin_url
    wait = WebDriverWait(browser, 20)

    def login() -> None:
        browser.get(f"{base}/console/payments")
        assert "/console/login" in browser.current_url  # no session: the login page
        browser.find_element(By.ID, "token").send_keys(kit.tokens["operator"])
        browser.find_element(By.ID, "login").click()
        # the login page's own URL (…/login?next=/console/payments) contains the target: wait for the page
        wait.until(lambda d: "/console/login" not in d.current_url)
        who = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "header .who")))
        assert "ana-operator" in who.text
    await in_browser(login)

    def search() -> str:
        form = browser.find_element(By.ID, "search")
        form.find_element(By.NAME, "partner").send_keys("alipay-cn")
        form.find_element(By.TAG_NAME, "button").click()
        wait.until(ec.url_contains("partner=alipay-cn"))
        rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "main table tbody tr"))
        assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == [ids[0]]  # only the cross-border one
        cells = rows[0].find_elements(By.TAG_NAME, "td")
        assert cells[2].text == "SUCCEEDED" and "st-succeeded" in cells[2].get_attribute("innerHTML")
        assert cells[7].value_of_css_property("text-align") in ("right", "end")  # amounts right-aligned
        shoot(browser, tmp_path, "console-search")
        rows[0].find_element(By.TAG_NAME, "a").click()
        wait.until(ec.url_contains(f"/console/payments/{ids[0]}"))
        return str(wait.until(lambda d: "Timeline" in d.find_element(By.TAG_NAME, "main").text
                              and d.find_element(By.TAG_NAME, "main").text))
    page = await in_browser(search)
    assert "Timeline" in page and "kakaopay-kr debit" in page and "alipay-cn credit" in page
    steps = await in_browser(lambda: [r.find_elements(By.TAG_NAME, "td")[1].text for r in
                                      browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")])
    assert steps[0] == "created" and steps[-1] == "webhook payment.succeeded"
    await in_browser(lambda: shoot(browser, tmp_path, "console-timeline"))

    def pause() -> str:
        browser.get(f"{base}/console/partners")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "main table tbody tr"))
        row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")
                   if r.find_element(By.TAG_NAME, "td").text == "alipay-cn")
        row.find_element(By.NAME, "reason").send_keys("settlement file late")
        row.find_element(By.CSS_SELECTOR, "button.pause").click()
        wait.until(ec.alert_is_present()).accept()  # the little JavaScript: confirm first
        wait.until(lambda d: "PAUSED" in d.find_element(By.TAG_NAME, "main").text)
        shoot(browser, tmp_path, "console-partners")
        browser.get(f"{base}/console/")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".tiles")))
        shoot(browser, tmp_path, "console-overview")
        browser.get(f"{base}/console/audit")
        return str(wait.until(lambda d: "partner.pause" in d.find_element(By.TAG_NAME, "main").text
                              and d.find_element(By.TAG_NAME, "main").text))
    audit_text = await in_browser(pause)
    assert "partner.pause" in audit_text and "settlement file late" in audit_text and "ana-operator" in audit_text
    assert routing_table(kit.gw.app).status.paused("alipay-cn")
    shots = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.glob("*.png")))
    assert shots == [
        "console-overview.png", "console-partners.png", "console-search.png", "console-timeline.png"]


async def test_console_sessions_roles_and_cross_site_posts(kit: AdminKit) -> None:
    base = kit.gw.admin_url
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.post("/console/login", data={"token": "qrgw_op_wrong", "next": "/console/"})
        assert r.status_code == 303 and "failed=1" in r.headers["location"]
        r = await c.post("/console/login", data={"token": kit.tokens["viewer"], "next": "https://evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/console/"  # never redirected off the console
        set_cookie = r.headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and kit.tokens["viewer"] not in set_cookie
        page = await c.get("/console/partners")
        assert page.status_code == 200 and "ana-viewer" in page.text and "button class=\"pause\"" not in page.text
        for path in ("/console/", "/console/payments", "/console/review", "/console/dead-letters",
                     "/console/settlement", "/console/audit", "/console/static/console.css"):
            assert (await c.get(path)).status_code == 200, path
        bad = await c.get("/console/settlement", params={"day": "2026-13-40"})
        assert bad.status_code == 422 and "VALIDATION_ERROR" in bad.text  # shown in the page, status kept
        r = await c.post("/console/partners/alipay-cn/pause", data={"reason": "x"})
        assert r.status_code == 403 and "OPERATOR_ROLE_NOT_ALLOWED" in r.text
        r = await c.post("/console/logout", headers={"Origin": "https://evil.example"})
        assert r.status_code == 403  # a cross-site post is refused, even a logout
        assert (await c.post("/console/logout")).status_code == 303
        r = await c.get("/console/partners")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")  # the session ended
    assert not routing_table(kit.gw.app).status.paused("alipay-cn")

"""The bench page in a real headless Chromium, driven the way a tester at a desk would drive it.

Needs Debian's ``chromium`` and the ``playwright`` package; without them these tests fail (they
never skip) and say what to install. Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cp_pi.app import Station
from cp_pi.csms.server import CentralSystem
from tests.conftest import CP_ID

from .conftest import BenchStationFactory
from .helpers import bench_url

try:
    from playwright.async_api import Browser, Locator, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the fixture below turns this into a failure
    async_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium and Playwright's Python package, or a failure that says what to install."""
    if async_playwright is None:
        pytest.fail(
            "the page tests need Playwright: pip install playwright (never its own browsers)"
        )
    if not CHROMIUM.exists():
        pytest.fail(f"the page tests need Chromium at {CHROMIUM}: apt-get install chromium")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, station: Station) -> AsyncIterator[Page]:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    await opened.goto(bench_url(station) + "/")
    yield opened
    await context.close()
    assert errors == [], "the page's script failed"


class ConnectorPanel:
    """One connector's panel, found the way a screen reader finds it: by its heading."""

    def __init__(self, page: Page, connector_id: int = 1) -> None:
        self.panel = page.get_by_role("region", name=f"Connector {connector_id}")
        self.status = self.fact("status")
        self.picture = self.panel.get_by_role("img")

    def button(self, name: str) -> Locator:
        return self.panel.get_by_role("button", name=name, exact=True)

    def fact(self, name: str) -> Locator:
        return self.panel.locator(f'[data-field="{name}"]')

    def answer(self, action: str) -> Locator:
        return self.panel.locator(f'[data-answer="{action}"]')


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / name, full_page=True)


async def test_the_unlock_story_on_the_page(page: Page) -> None:
    c1 = ConnectorPanel(page)
    await expect(c1.status).to_have_text("Available")
    await expect(page.locator("#link")).to_have_text("connected")

    await c1.button("Plug in cable").click()
    await expect(c1.status).to_have_text("Preparing")
    await expect(c1.picture).to_have_attribute("aria-label", re.compile("cable plugged in"))

    await c1.button("Remote start").click()
    await expect(c1.answer("remote_start")).to_have_text("Accepted")
    await expect(c1.status).to_have_text("Charging")
    await expect(c1.fact("transaction")).to_have_text("#1 (TAG1)")
    await expect(c1.fact("lock")).to_have_text("engaged")
    await expect(c1.fact("contactor")).to_have_text("closed")

    await c1.button("Unlock connector").click()
    await expect(c1.answer("unlock")).to_have_text("Unlocked")
    await expect(c1.status).to_have_text("Finishing")
    await expect(c1.fact("transaction")).to_have_text("none")
    await expect(c1.fact("lock")).to_have_text("open")
    await expect(c1.picture).to_have_attribute("aria-label", re.compile("lock open"))
    stop = page.locator(".entry", has_text="StopTransaction").filter(has_text="UnlockCommand")
    await expect(stop).to_have_count(1)

    await c1.button("Remote start").click()
    await expect(c1.status).to_have_text("Charging")
    await expect(c1.fact("lock")).to_have_text("engaged")
    await c1.button("Lock stuck").click()
    await expect(c1.button("Lock stuck")).to_have_attribute("aria-pressed", "true")
    await expect(c1.fact("fault")).to_have_text("lock stuck")

    await c1.button("Unlock connector").click()
    await expect(c1.answer("unlock")).to_have_text("UnlockFailed")
    await expect(c1.status).to_have_text("Faulted")
    await expect(c1.fact("error_code")).to_have_text("ConnectorLockFailure")
    await expect(c1.fact("lock")).to_have_text("engaged")
    await expect(page.locator("#queued")).to_have_text("0")  # StopTransaction was delivered
    await screenshot(page, "bench.png")


async def test_a_welded_contactor_is_shown_closed_after_it_was_told_to_open(page: Page) -> None:
    c1 = ConnectorPanel(page)
    await c1.button("Plug in cable").click()
    await c1.button("Remote start").click()
    await expect(c1.status).to_have_text("Charging")
    await c1.button("Contactor welded").click()
    await c1.button("Remote stop").click()
    await expect(c1.answer("remote_stop")).to_have_text("Accepted")
    await expect(c1.status).to_have_text("Faulted")
    await expect(c1.fact("error_code")).to_have_text("PowerSwitchFailure")
    await expect(c1.fact("contactor")).to_have_text("commanded open, still closed")
    await expect(c1.picture).to_have_attribute("aria-label", re.compile("contactor closed"))


async def test_the_log_highlights_callerrors_filters_and_copies(
    page: Page, central: CentralSystem
) -> None:
    log = page.get_by_role("log")
    await expect(log.locator(".entry", has_text="BootNotification").first).to_be_visible()
    frame = [2, "typo-1", "UnlockConnector", {"connectorId": "1"}]
    await central.send_raw(CP_ID, json.dumps(frame), unique_id="typo-1")

    error = log.locator(".entry.callerror")
    await expect(error).to_have_count(1)
    await expect(error).to_contain_text("CP → CSMS")
    await expect(error).to_contain_text("UnlockConnector")
    await expect(error).to_contain_text("TypeConstraintViolation")

    await page.get_by_label("Filter").fill("typeconstraint")
    await expect(log.locator(".entry:visible")).to_have_count(1)
    await expect(page.locator("#log-count")).to_have_text(re.compile(r"^1 of \d+ frames match$"))

    await page.get_by_role("button", name="Copy log").click()
    await expect(page.locator("#log-copied")).to_have_text("copied 1 frame")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d\.\d{3}  CP → CSMS  CALLERROR  UnlockConnector  "
        r"TypeConstraintViolation: .+\n",
        copied,
    ), copied

    await page.get_by_label("Filter").fill("")
    await expect(log.locator(".entry:visible", has_text="BootNotification")).to_have_count(2)


async def test_a_dropped_bench_connection_is_said_and_mended(page: Page, station: Station) -> None:
    assert station.bench is not None
    c1 = ConnectorPanel(page)
    await expect(c1.status).to_have_text("Available")
    banner = page.get_by_role("alert")

    await station.bench.stop()
    await expect(banner).to_contain_text("Lost the connection to the bench")
    await expect(c1.button("Plug in cable")).to_be_disabled()

    await station.bench.start()
    await expect(banner).to_be_hidden(timeout=10_000)
    await c1.button("Plug in cable").click()
    await expect(c1.status).to_have_text("Preparing")


async def test_it_works_from_the_keyboard_on_a_phone(page: Page) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    c1 = ConnectorPanel(page)
    await expect(c1.status).to_have_text("Available")
    width: Any = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways on a phone"

    await c1.button("Plug in cable").focus()
    await page.keyboard.press("Enter")
    await expect(c1.status).to_have_text("Preparing")
    await page.get_by_label("Id tag").fill("PHONE-1")
    await page.keyboard.press("Tab")
    await expect(page.locator(":focus")).to_have_text("Unplug cable")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Space")
    await expect(c1.status).to_have_text("Charging")
    await expect(c1.fact("transaction")).to_have_text(re.compile(r"PHONE-1"))
    await screenshot(page, "bench-phone.png")


async def test_without_the_embedded_csms_its_buttons_are_off_and_explained(
    browser: Browser, make_bench_station: BenchStationFactory, csms: CentralSystem
) -> None:
    async with make_bench_station(csms.url) as station:
        opened = await browser.new_page()
        await opened.goto(bench_url(station) + "/")
        c1 = ConnectorPanel(opened)
        await expect(c1.status).to_have_text("Available")
        await expect(
            opened.get_by_text("These commands need the embedded central system")
        ).to_be_visible()
        await expect(c1.button("Unlock connector")).to_be_disabled()
        await expect(c1.button("Plug in cable")).to_be_enabled()
        await opened.close()


async def test_a_reservation_and_a_local_list_from_the_page(page: Page) -> None:
    c1 = ConnectorPanel(page)
    lists = page.get_by_role("region", name="Central system: local list and reservations")
    await expect(c1.status).to_have_text("Available")

    await page.get_by_label("Reserved tag").fill("DRIVER-7")
    await lists.get_by_role("button", name="Reserve now").click()

    await expect(lists.locator('[data-answer="reserve_now"]')).to_have_text("Accepted")
    await expect(c1.status).to_have_text("Reserved")
    await expect(page.locator("#reservations")).to_have_text(re.compile(r"#1 for DRIVER-7 on 1"))
    await page.get_by_label("Tags").fill("TAG1,TAG2:Blocked")
    await lists.get_by_role("button", name="Send local list").click()
    await expect(lists.locator('[data-answer="send_local_list"]')).to_have_text("Accepted")
    await expect(page.locator("#local-list-version")).to_have_text("1")
    await lists.get_by_role("button", name="Cancel reservation").click()
    await expect(c1.status).to_have_text("Available")
    await expect(page.locator("#reservations")).to_have_text("none")


async def test_smart_charging_shows_the_limit_and_the_days_schedule(page: Page) -> None:
    c1 = ConnectorPanel(page)
    await expect(c1.status).to_have_text("Available")
    section = page.get_by_role("region", name="Smart charging")
    await expect(section.locator("#smart-limit")).to_have_text("none")
    # Without a profile the schedule is the connector's maximum all day: one flat step.
    await expect(section.locator("#smart-chart path")).to_have_count(1)

    await section.get_by_role("button", name="Send sample profile").click()
    await expect(section.locator("#smart-answer")).to_have_text("Accepted")
    await expect(section.locator("#smart-limit")).to_have_text(
        re.compile(r"^(8|16|32) A \(TxDefaultProfile\)$")
    )
    # The sample's evening peak and night: the chart's step line turns more than once a day.
    await expect(section.locator("#smart-chart path")).to_have_attribute(
        "d", re.compile(r"(L[^L]+){5,}")
    )
    await screenshot(page, "bench-smart-charging.png")


async def test_the_meter_and_the_residual_current_monitor_on_the_page(page: Page) -> None:
    c1 = ConnectorPanel(page)
    await expect(c1.fact("meter_voltage")).to_have_text("L1 230 V, L2 230 V, L3 230 V")
    await expect(c1.fact("rcd")).to_have_text("ok")
    await c1.button("Plug in cable").click()
    await c1.button("Remote start").click()
    await expect(c1.status).to_have_text("Charging")
    await expect(c1.fact("meter_power")).to_have_text("11000 W")
    await expect(c1.fact("meter_current")).to_have_text("L1 15.94 A, L2 15.94 A, L3 15.94 A")

    await c1.button("Meter offline").click()
    await expect(c1.button("Meter offline")).to_have_attribute("aria-pressed", "true")
    await expect(c1.fact("meter_ok")).to_have_text("not answering")
    await expect(c1.fact("error_code")).to_have_text("PowerMeterFailure")
    await expect(c1.status).to_have_text("Charging")  # meter.on_failure = "continue"

    await c1.button("RCD trip").click()
    await expect(c1.fact("rcd")).to_have_text("tripped")
    await expect(c1.status).to_have_text("Faulted")
    await expect(c1.fact("error_code")).to_have_text("GroundFailure")
    await expect(c1.fact("contactor")).to_have_text("open")
    await expect(c1.fact("meter_ok")).to_have_text("answering")  # one fault at a time


async def test_the_vehicle_side_on_the_page(page: Page) -> None:
    c1 = ConnectorPanel(page)
    await expect(c1.fact("pilot")).to_have_text("A")
    await expect(c1.fact("current_offered")).to_have_text("0 A (config)")
    await page.get_by_label("Cable", exact=True).select_option("20")
    await c1.button("Plug with this cable").click()
    await expect(c1.fact("cable_rating")).to_have_text("20 A")
    await expect(c1.fact("pilot")).to_have_text("B1, no wave")

    await c1.button("Remote start").click()
    await expect(c1.status).to_have_text("Charging")
    await expect(c1.fact("pilot")).to_have_text("C2, 33.3 % duty")
    await expect(c1.fact("current_offered")).to_have_text("20 A (cable)")
    await expect(c1.fact("vehicle")).to_have_text("C")

    await c1.button("Vehicle state B").click()
    await expect(c1.button("Vehicle state B")).to_have_attribute("aria-pressed", "true")
    await expect(c1.status).to_have_text("SuspendedEV")
    await expect(c1.fact("pilot")).to_have_text("B2, 33.3 % duty")
    await expect(c1.fact("contactor")).to_have_text("open")
    await c1.button("Vehicle state C").click()
    await expect(c1.status).to_have_text("Charging")
    await expect(c1.fact("contactor")).to_have_text("closed")

    await c1.button("Diode missing").click()
    await expect(c1.fact("fault")).to_have_text("vehicle's diode missing")
    await expect(c1.fact("contactor")).to_have_text("open")
    await expect(c1.fact("transaction")).to_have_text("none")  # ended: a fault, not charging
    stop = page.locator(".entry", has_text="StopTransaction").filter(has_text='"reason":"Other"')
    await expect(stop).to_have_count(1)
    await screenshot(page, "bench-vehicle.png")

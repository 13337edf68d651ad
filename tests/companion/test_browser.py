"""The web app in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against a running car."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from companion.car import OWNER, PASSWORD, Car, start_car
from helpers import CHROMIUM_ARGS, chromium, eventually

HVAC = "Vehicle.Cabin.HVAC"
DRIVER_DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"


@pytest.fixture
async def page(car: Car) -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(10_000)
        try:
            yield page
        finally:
            await browser.close()
        assert not errors, errors  # no uncaught JavaScript error during the test


async def test_owner_signs_up_sees_state_controls_climate_and_pairs_a_key(car: Car, page: Page) -> None:
    p = page
    await p.goto(car.url)
    await expect(p.locator("#welcome-title")).to_have_text("Welcome")
    await p.fill("#login-name", OWNER)
    await p.fill("#login-password", PASSWORD)
    await p.click("#login-submit")

    # the state: battery gauge from the twin's SoC, doors locked, live over the WebSocket
    soc = car.broker.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current").value
    await expect(p.locator("#soc")).to_have_text(f"{soc:.0f}")
    await expect(p.locator("#lock-state")).to_have_text("Locked")
    await expect(p.locator("#live")).to_have_text("live")

    # climate on, then the set point: pressed in the app, and changed by someone else while we watch
    await p.click("nav button[data-tab=climate]")
    await p.click("#climate-toggle")
    await eventually(lambda: car.broker.get(f"{HVAC}.IsAirConditioningActive").value is True, timeout_s=5)
    await expect(p.locator("#climate-toggle")).to_have_text("Turn off")
    before = car.broker.get(f"{HVAC}.Station.Row1.Driver.Temperature").value
    await p.click("#temp-up")
    await eventually(lambda: car.broker.get(f"{HVAC}.Station.Row1.Driver.Temperature").value == before + 0.5,
                     timeout_s=5)
    await expect(p.locator("#setpoint")).to_have_text(f"{before + 0.5:.1f}")
    await car.broker.actuate({f"{HVAC}.Station.Row1.Driver.Temperature": 19.0})  # e.g. from the car's own screen
    await expect(p.locator("#setpoint")).to_have_text("19.0")

    # pair this phone (the code comes from the car's screen), then unlock with a signed command
    await p.click("nav button[data-tab=settings]")
    await p.click("#pair-start")
    await expect(p.locator("#pair-form")).to_be_visible()
    code = car.shown_code()
    assert isinstance(code, str) and len(code) == 6
    await p.fill("#pair-code", code)
    await p.click("#pair-submit")
    await expect(p.locator("#key-status")).to_contain_text("This phone is a key")
    await p.click("nav button[data-tab=car]")
    await p.click("#lock-toggle")
    await eventually(lambda: car.broker.get(DRIVER_DOOR).value is False, timeout_s=5)
    await expect(p.locator("#lock-state")).to_have_text("Unlocked")
    await p.click("#lock-toggle")
    await eventually(lambda: car.broker.get(DRIVER_DOOR).value is True, timeout_s=5)

    # warm the battery for a fast charge: the twin's heater runs and the app says so
    cond = "Vehicle.Powertrain.TractionBattery.BatteryConditioning"
    await p.click("nav button[data-tab=charge]")
    await p.click("#precondition-toggle")
    await eventually(lambda: car.broker.get(f"{cond}.IsOngoing").value is True, timeout_s=5)
    await expect(p.locator("#battery-temp")).to_contain_text("(warming)")
    await expect(p.locator("#precondition-toggle")).to_have_text("Stop warming the battery")
    await p.click("#precondition-toggle")
    await eventually(lambda: car.broker.get(f"{cond}.RequestedMode").value == "INACTIVE", timeout_s=5)

    # history and settings render (charts drawn by the app's own canvas code)
    await p.click("nav button[data-tab=history]")
    await expect(p.locator("#trip-chart")).to_be_visible()


async def test_the_centre_screen_shows_the_pairing_code_the_phone_asks_for(tmp_path: Path) -> None:
    car = await start_car(tmp_path, cabin=True)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
            phone = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
            screen = await (await browser.new_context(viewport={"width": 1280, "height": 720})).new_page()
            phone.set_default_timeout(10_000)
            screen.set_default_timeout(10_000)
            await screen.goto(f"{car.url}/cabin/")
            await expect(screen.locator("#pairing")).to_be_hidden()
            await phone.goto(car.url)
            await phone.fill("#login-name", OWNER)
            await phone.fill("#login-password", PASSWORD)
            await phone.click("#login-submit")
            await phone.click("nav button[data-tab=settings]")
            await phone.click("#pair-start")  # the phone asks the car for a code; the car's screen shows it
            await eventually(lambda: bool(car.shown_code()), timeout_s=5)
            code = car.shown_code()
            assert isinstance(code, str)
            await expect(screen.locator("#pairing")).to_be_visible()
            await expect(screen.locator("#pairing-code")).to_have_text(f"{code[:3]} {code[3:]}")
            await expect(screen.locator("#pairing-left")).to_contain_text("valid for 4:")
            await phone.fill("#pair-code", code)
            await phone.click("#pair-submit")
            await expect(phone.locator("#key-status")).to_contain_text("This phone is a key")
            await expect(screen.locator("#pairing")).to_be_hidden()  # the code is spent: the screen clears it
            await browser.close()
    finally:
        await car.shutdown()



async def test_requests_that_fail_together_share_one_refresh(car: Car, page: Page) -> None:
    """The settings tab loads two lists at once; with a stale access token both answered 401 and both refreshed
    with the same single-use refresh token, so the car took the second for a stolen one and revoked the sign-in.
    The app now refreshes once for both. The page also runs under its Content-Security-Policy without a violation."""
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    await page.goto(car.url)
    await page.fill("#login-name", OWNER)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await expect(page.locator("#live")).to_have_text("live")
    await page.evaluate("localStorage.setItem('evos.access', 'evat_no_longer_valid')")  # as if it had expired
    async with page.expect_response(lambda r: r.url.endswith("/api/v1/keys") and r.ok) as keys:
        await page.click("nav button[data-tab=settings]")  # /keys and /tokens at once, both 401
    await keys.value
    me = await page.evaluate("""fetch('/api/v1/me', {headers: {Authorization: 'Bearer ' +
                                localStorage.getItem('evos.access')}}).then((r) => r.status)""")
    assert me == 200  # still signed in
    await expect(page.locator("#app")).to_be_visible()
    assert not [text for text in console if "Content Security Policy" in text], console

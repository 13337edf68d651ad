"""The centre screen in real headless Chromium, served by the cabin router under uvicorn on a free port."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Page, async_playwright, expect

from cabin.waits import eventually
from evos.app import AppEnv
from evos.broker import LocalPort
from evos.cabin import centre_screen
from helpers import CHROMIUM_ARGS, chromium, free_port


@pytest.fixture
async def screen(car) -> AsyncIterator[str]:
    """The centre screen on a port of its own, with the companion's permissions, served alone under uvicorn."""
    from evos.car import app_named, permissions_of

    port = LocalPort(car.broker, "companion", permissions_of(app_named("companion"), car.broker))
    app = FastAPI()
    async with centre_screen(port, AppEnv(car.local.settings, car.local.data_dir)) as router:
        app.include_router(router, prefix="/cabin")
        async for url in _serve(app):
            yield url


async def _serve(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}/cabin/"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def test_api_errors_and_handover(car, screen: str) -> None:
    async with httpx.AsyncClient(base_url=screen) as http:
        assert (await http.post("api/scene", json={"name": "disco"})).status_code == 400
        r = await http.post("api/actuate", json={"Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit": 90})
        assert r.status_code == 403 and "only actuate cabin signals" in r.json()["detail"]
        r = await http.post("api/media/handover", json={"uri": "spotify:track:1", "position_s": 30, "title": "Tune"})
        assert r.status_code == 200 and r.json()["Vehicle.Cabin.Infotainment.Media.Played.Track"] == "Tune"
        r = await http.post("api/media/handover", json={"uri": "x", "position_s": -1})
        assert r.status_code == 400 and "handover position -1.0 s" in r.json()["detail"]
        r = await http.get("api/forecast/cinema")
        assert r.status_code == 200 and r.json()["text"].startswith("cinema: ")
        r = await http.post("api/assistant", json={"text": "how far can I go?"})
        assert r.json()["intent"] == "ask_range" and " km" in r.json()["reply"]
        await car.broker.actuate({"Vehicle.Evos.Twin.Driver.TargetSpeed": 40})
        await eventually(lambda: car.value("Vehicle.Speed") > 1)
        r = await http.post("api/scene", json={"name": "cinema"})
        assert r.status_code == 409 and "needs the car parked" in r.json()["detail"]


async def _media_and_seat_heating(car, page: Page) -> None:
    # cinema plays the film: the screen shows the track and a pause button; tap it and playback stops
    await expect(page.locator("#track")).not_to_have_text("Nothing playing")
    await page.get_by_role("button", name="pause").click()
    await eventually(lambda: car.value("Vehicle.Cabin.Infotainment.Media.Action") == "STOP")
    await expect(page.get_by_role("button", name="play", exact=True)).to_be_visible()
    track = await page.locator("#track").text_content()
    await page.get_by_role("button", name="next").click()
    await expect(page.locator("#track")).not_to_have_text(track or "")
    await page.get_by_role("button", name="driver seat heating").click()  # off -> low
    await eventually(lambda: car.value("Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling") == 33)
    await expect(page.get_by_role("button", name="driver seat heating")).to_have_class(re.compile(r"\bon\b"))


async def test_screen_enters_a_scene_and_asks_the_assistant(car, screen: str) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(screen)
            await expect(page.locator("#scene-status")).to_have_text("Ready")
            await expect(page.locator("#active-scene")).to_be_hidden()
            cinema = page.locator(".scene-card[data-scene=cinema]")
            # every card carries its live forecast from the twin's model
            await expect(cinema.locator(".forecast")).to_have_text(re.compile(r"^\d+ h \d+ min to 20 %$"))
            await expect(page.locator(".scene-card .forecast", has_text=" to ")).to_have_count(len(car.cabin.scenes))
            await page.get_by_role("button", name="Cinema 影院").click()  # tap the card
            await expect(cinema).to_have_class(re.compile(r"\bactive\b"))
            await expect(page.locator("#scene-status")).to_have_text("Cinema 影院")
            await expect(page.locator("#active-detail")).to_have_text(re.compile(r"^\d+ h \d+ min left to 20 %$"))
            assert car.value("Vehicle.Evos.Cabin.DoNotDisturb") is True
            assert car.value("Vehicle.Cabin.Light.IsDomeOn") is False
            await expect(page.locator("#dnd")).to_be_visible()
            await _media_and_seat_heating(car, page)
            await page.fill("#ask-text", "I'm cold")
            await page.get_by_role("button", name="Ask").click()
            await expect(page.locator("#reply")).to_have_text("OK: front driver temperature 22 °C.")  # the driver's
            assert car.target("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature") == 22.0
            await expect(page.locator("#temp-Driver")).to_have_text("22.0")
            await page.fill("#ask-text", "退出影院模式")
            await page.get_by_role("button", name="Ask").click()
            await expect(page.locator("#scene-status")).to_have_text("Ready")
            await expect(page.locator("#reply")).to_have_text("好的，已退出影院模式，车内设置已恢复。")
            await expect(page.locator("#active-scene")).to_be_hidden()
            await page.get_by_role("button", name="Rest 小憩").click()  # leave by the exit button this time
            await expect(page.locator("#active-detail")).to_have_text(re.compile(r"wake-up in (29|30) min$"))
            await page.get_by_role("button", name="Exit").click()
            await expect(page.locator("#active-scene")).to_be_hidden()
            assert car.value("Vehicle.Evos.Cabin.Scene") == "NONE"
            await page.get_by_role("button", name="driver warmer").click()
            await expect(page.locator("#temp-Driver")).to_have_text("22.5")
            assert errors == []
        finally:
            await browser.close()


async def test_bad_and_huge_inputs_get_a_clear_4xx_and_change_nothing(car, screen: str) -> None:
    json_type = {"content-type": "application/json"}
    played = "Vehicle.Cabin.Infotainment.Media.Played.URI"
    before = car.value(played)
    async with httpx.AsyncClient(base_url=screen) as http:
        r = await http.post("api/scene", content=b"{bad json", headers=json_type)
        assert r.status_code == 422 and r.json()["detail"].startswith("body"), r.text
        r = await http.post("api/scene", json={"name": "x" * 100})  # longer than a scene name may be
        assert r.status_code == 400 and "does not match the pattern" in r.json()["detail"]
        r = await http.post("api/actuate", content=b"[1, 2]", headers=json_type)
        assert r.status_code == 422 and "valid dictionary" in r.json()["detail"]
        # NaN is valid Python JSON but cannot be echoed back as JSON: it was a 500
        r = await http.post("api/media/handover", content=b'{"uri": "x", "position_s": NaN}', headers=json_type)
        assert r.status_code == 400 and "must be a finite number" in r.json()["detail"]
        r = await http.post("api/assistant", content=b'{"text": NaN}', headers=json_type)
        assert r.status_code == 422 and r.json()["detail"] == "body.text: Input should be a valid string"
        # a phone may not point the head unit at a file of the car outside the media library
        r = await http.post("api/media/handover", json={"uri": "file:///etc/passwd", "position_s": 0})
        assert r.status_code == 400 and "is not one a phone may hand over" in r.json()["detail"]
        r = await http.post("api/media/handover", json={"uri": "spotify:track:2", "position_s": 1e308})
        assert r.status_code == 400 and "Position" in r.json()["detail"]
        r = await http.post("api/actuate", json={"Vehicle.Evos.Cabin.Screen.Message": "x" * 501})
        assert r.status_code == 400 and "501 characters, at most 500" in r.json()["detail"]
        # (a body over the web server's limit is refused before it is read: tests/security/test_bodies.py)
    assert car.value(played) == before and car.media.player.track.uri == before  # type: ignore[union-attr]
    assert car.value("Vehicle.Evos.Cabin.Screen.Message") != "x" * 501

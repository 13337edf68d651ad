"""The centre screen in real headless Chromium, served by the cabin router under uvicorn on a free port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import async_playwright, expect

from evos.cabin import cabin_router
from helpers import eventually, free_port

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def screen(car) -> AsyncIterator[str]:
    app = FastAPI()
    app.include_router(cabin_router(car.cabin), prefix="/cabin")
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
        assert (await http.post("api/media/handover", json={"uri": "x", "position_s": -1})).status_code == 422
        r = await http.get("api/forecast/cinema")
        assert r.status_code == 200 and r.json()["text"].startswith("cinema: ")
        r = await http.post("api/assistant", json={"text": "how far can I go?"})
        assert r.json()["intent"] == "ask_range" and " km" in r.json()["reply"]
        car.broker.actuate("Vehicle.Evos.Twin.Driver.TargetSpeed", 40)
        await eventually(lambda: car.value("Vehicle.Speed") > 1, timeout_s=5)
        r = await http.post("api/scene", json={"name": "cinema"})
        assert r.status_code == 409 and "needs the car parked" in r.json()["detail"]


async def test_screen_enters_a_scene_and_asks_the_assistant(car, screen: str) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            await page.goto(screen)
            await expect(page.locator("#scene-status")).to_have_text("scene NONE (IDLE)")
            await page.get_by_role("button", name="Cinema 影院").click()
            await expect(page.locator("#scene-status")).to_have_text("scene cinema (ACTIVE)")
            assert car.value("Vehicle.Evos.Cabin.DoNotDisturb") is True
            assert car.value("Vehicle.Cabin.Light.IsDomeOn") is False
            await page.fill("#ask-text", "I'm cold")
            await page.get_by_role("button", name="Ask").click()
            await expect(page.locator("#reply")).to_contain_text("temp up")
            assert car.target("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature") == 22.0
            await expect(page.locator("#temp-Driver")).to_have_text("22.0")
            await page.fill("#ask-text", "退出影院模式")
            await page.get_by_role("button", name="Ask").click()
            await expect(page.locator("#scene-status")).to_have_text("scene NONE (IDLE)")
            await page.get_by_role("button", name="driver warmer").click()
            await expect(page.locator("#temp-Driver")).to_have_text("22.5")
        finally:
            await browser.close()

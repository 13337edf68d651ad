"""Trips and charging sessions: the pure recorder on hand-made readings, and recorded from a running twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from companion.car import BOTH_DATABASES, bearer, sign_in, start_car
from evos.companion._db import ChargingSession, Database, Trip
from evos.companion._recorder import Reading, Recorder
from helpers import eventually

TWIN = "Vehicle.Evos.Twin"


def test_a_trip_runs_from_moving_until_parked_long_enough() -> None:
    rec = Recorder(park_s=60)
    assert not rec.observe(Reading(moving=False, odometer_m=1000), 0).trip_started
    assert rec.observe(Reading(moving=True, speed_kmh=20, odometer_m=1000, consumed_kwh=5, soc_pct=80), 10).trip_started
    rec.observe(Reading(moving=True, speed_kmh=90, odometer_m=6000, consumed_kwh=5.8, soc_pct=79), 300)
    step = rec.observe(Reading(moving=False, odometer_m=6500, consumed_kwh=5.9, soc_pct=78.5), 400)
    assert step.trip_ended_at is None  # a red light is not the end of a trip
    rec.observe(Reading(moving=True, speed_kmh=30, odometer_m=6500, consumed_kwh=5.9), 430)
    rec.observe(Reading(moving=False, odometer_m=7000, consumed_kwh=6.0, soc_pct=78), 500)
    step = rec.observe(Reading(moving=False, odometer_m=7000, consumed_kwh=6.0, soc_pct=78), 560)
    assert step.trip_ended_at == 500  # ended when it stopped, found out park_s later
    trip = rec.trip
    assert trip is not None
    assert (trip.distance_m, trip.energy_kwh, trip.max_speed_kmh) == (6000, pytest.approx(1.0), 90)
    assert (trip.start_soc_pct, trip.end_soc_pct) == (80, 78)
    rec.finish(step)
    assert rec.trip is None


def test_a_charging_session_adds_up_the_energy() -> None:
    rec = Recorder(park_s=60)
    assert rec.observe(Reading(charging=True, energy_kwh=20.0, soc_pct=25, power_w=11e3), 0).session_started
    rec.observe(Reading(charging=True, energy_kwh=50.5, soc_pct=62, power_w=10.5e3), 3600)
    step = rec.observe(Reading(charging=False, energy_kwh=51.0, soc_pct=63, power_w=0), 3700)
    assert step.session_ended_at == 3700
    session = rec.session
    assert session is not None
    assert (session.energy_added_kwh, session.max_power_kw, session.end_soc_pct) == (31.0, 11.0, 63)


@BOTH_DATABASES
async def test_trips_and_sessions_are_recorded_from_the_car(tmp_path: Path, database_url: str) -> None:
    car = await start_car(tmp_path, plugged_in=True, trip_park_s=0.3, database_url=database_url)
    broker = car.broker
    try:
        async with httpx.AsyncClient(base_url=car.url) as http:
            headers = bearer((await sign_in(http))["access_token"])

            async def listed(path: str) -> list[dict[str, object]]:
                response = await http.get(path, headers=headers)
                assert response.status_code == 200
                rows: list[dict[str, object]] = response.json()
                return rows

            await broker.actuate({f"{TWIN}.TimeScale": 50.0})
            await broker.actuate({"Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit": 100})
            charge = await http.post("/api/v1/vehicle/commands/charge_start", headers=headers)
            assert charge.status_code == 200
            await eventually(lambda: broker.get("Vehicle.Powertrain.TractionBattery.Charging.IsCharging").value,
                             timeout_s=5)
            await eventually(lambda: len(rows(car.service.db, ChargingSession, open_only=True)) == 1, timeout_s=5)
            soc_before = broker.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current").value
            await eventually(lambda: broker.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current").value
                             > soc_before + 0.5, timeout_s=10)
            assert (await http.post("/api/v1/vehicle/commands/charge_stop", headers=headers)).status_code == 200
            await eventually(lambda: not rows(car.service.db, ChargingSession, open_only=True), timeout_s=5)
            [session] = await listed("/api/v1/charging/sessions")
            assert session["ended_at"] is not None and float(session["energy_added_kwh"]) > 0.3  # type: ignore[arg-type]
            assert float(session["end_soc_pct"]) > float(session["start_soc_pct"])  # type: ignore[arg-type]

            await broker.actuate({f"{TWIN}.ChargerConnected": False})  # a plugged-in car does not drive
            start_m = broker.get("Vehicle.TraveledDistance").value or 0
            await broker.actuate({f"{TWIN}.Driver.TargetSpeed": 60.0})
            await eventually(lambda: (broker.get("Vehicle.TraveledDistance").value or 0) > start_m + 200,
                             timeout_s=10)
            await broker.actuate({f"{TWIN}.Driver.TargetSpeed": 0.0})
            await eventually(lambda: broker.get("Vehicle.IsMoving").value is False, timeout_s=10)
            await eventually(lambda: not rows(car.service.db, Trip, open_only=True) and rows(car.service.db, Trip),
                             timeout_s=5)
            [trip] = await listed("/api/v1/trips")
            assert float(trip["distance_m"]) > 200 and float(trip["energy_kwh"]) > 0  # type: ignore[arg-type]
            assert 50 < float(trip["max_speed_kmh"]) < 70  # type: ignore[arg-type]
            reader = (await http.post("/api/v1/tokens", headers=headers,
                                      json={"name": "x", "scopes": ["vehicle_cmds"]})).json()["access_token"]
            assert (await http.get("/api/v1/trips", headers=bearer(reader))).status_code == 403
    finally:
        await car.shutdown()


def rows(db: Database, model: type[Trip | ChargingSession], open_only: bool = False) -> list[Any]:
    """The recorded trips or sessions (only those still open with ``open_only``), read straight from the database."""
    def query(session: Session) -> list[Any]:
        statement = select(model)
        if open_only:
            statement = statement.where(model.ended_at.is_(None))
        return list(session.scalars(statement))

    return db.call(query)

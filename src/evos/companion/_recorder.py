"""Trips and charging sessions recorded from the car's signals.

``Recorder`` is the pure core: fed the car's values with the time, it says when a trip or a charging session starts,
progresses and ends. A trip runs from the car starting to move until it has stood still for ``park_s``; a charging
session from ``IsCharging`` turning true to it turning false, the energy added taken from the battery's
``CurrentEnergy``. ``RecorderTask`` is the shell: it subscribes to the signals and writes each step to the database
(a new row at the start, its progress every few seconds, the end), so a crash loses at most those few seconds. Rows
a crash left open are closed at their last recorded time when the car starts again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evos.broker import Mirror, VehiclePort
from evos.companion._db import ChargingSession, Database, Trip
from evos.companion._vehicle import BAT, CHG

log = logging.getLogger("evos.companion")
UPDATE_EVERY_S = 2.0  # how often an open trip or session is written while it goes on

SIGNALS = {
    "moving": "Vehicle.IsMoving",
    "speed_kmh": "Vehicle.Speed",
    "odometer_m": "Vehicle.TraveledDistance",
    "soc_pct": f"{BAT}.StateOfCharge.Current",
    "consumed_kwh": f"{BAT}.AccumulatedConsumedEnergy",
    "charging": f"{CHG}.IsCharging",
    "energy_kwh": f"{BAT}.StateOfCharge.CurrentEnergy",
    "power_w": f"{BAT}.CurrentPower",
}


@dataclass(frozen=True)
class Reading:
    """The car's values the recorder follows (None: not available)."""

    moving: bool = False
    speed_kmh: float = 0.0
    odometer_m: float | None = None
    soc_pct: float | None = None
    consumed_kwh: float | None = None
    charging: bool = False
    energy_kwh: float | None = None
    power_w: float | None = None


@dataclass
class TripProgress:
    started_at: float
    start_odometer_m: float
    start_consumed_kwh: float
    start_soc_pct: float | None
    distance_m: float = 0.0
    energy_kwh: float = 0.0
    end_soc_pct: float | None = None
    max_speed_kmh: float = 0.0
    parked_since: float | None = None


@dataclass
class SessionProgress:
    started_at: float
    start_energy_kwh: float
    start_soc_pct: float | None
    energy_added_kwh: float = 0.0
    end_soc_pct: float | None = None
    max_power_kw: float = 0.0


@dataclass
class Step:
    """What one reading changed: trips/sessions that ``started``, progressed (``update``) or ``ended`` (at time)."""

    trip_started: bool = False
    trip_ended_at: float | None = None
    session_started: bool = False
    session_ended_at: float | None = None


class Recorder:
    """The pure trip and charging-session state machine."""

    def __init__(self, park_s: float) -> None:
        self.park_s = park_s
        self.trip: TripProgress | None = None
        self.session: SessionProgress | None = None

    def observe(self, r: Reading, now_s: float) -> Step:
        step = Step()
        self._trip(r, now_s, step)
        self._session(r, now_s, step)
        return step

    def _trip(self, r: Reading, now_s: float, step: Step) -> None:
        trip = self.trip
        if trip is None:
            if r.moving and r.odometer_m is not None:
                self.trip = TripProgress(now_s, r.odometer_m, r.consumed_kwh or 0.0, r.soc_pct, end_soc_pct=r.soc_pct,
                                         max_speed_kmh=r.speed_kmh)
                step.trip_started = True
            return
        if r.odometer_m is not None:
            trip.distance_m = max(r.odometer_m - trip.start_odometer_m, 0.0)
        if r.consumed_kwh is not None:
            trip.energy_kwh = r.consumed_kwh - trip.start_consumed_kwh
        trip.end_soc_pct = r.soc_pct if r.soc_pct is not None else trip.end_soc_pct
        trip.max_speed_kmh = max(trip.max_speed_kmh, r.speed_kmh)
        if r.moving:
            trip.parked_since = None
        elif trip.parked_since is None:
            trip.parked_since = now_s
        elif now_s - trip.parked_since >= self.park_s:
            step.trip_ended_at = trip.parked_since

    def _session(self, r: Reading, now_s: float, step: Step) -> None:
        session = self.session
        if session is None:
            if r.charging and r.energy_kwh is not None:
                self.session = SessionProgress(now_s, r.energy_kwh, r.soc_pct, end_soc_pct=r.soc_pct,
                                               max_power_kw=(r.power_w or 0.0) / 1e3)
                step.session_started = True
            return
        if r.energy_kwh is not None:
            session.energy_added_kwh = max(r.energy_kwh - session.start_energy_kwh, 0.0)
        session.end_soc_pct = r.soc_pct if r.soc_pct is not None else session.end_soc_pct
        if r.power_w is not None:
            session.max_power_kw = max(session.max_power_kw, r.power_w / 1e3)
        if not r.charging:
            step.session_ended_at = now_s

    def finish(self, step: Step) -> None:
        """Forget the trip and session that ``step`` ended (after the shell stored them)."""
        if step.trip_ended_at is not None:
            self.trip = None
        if step.session_ended_at is not None:
            self.session = None


# ---- the shell ----------------------------------------------------------------------------------------------
def close_open_rows(session: Session) -> int:
    """End trips and sessions a crash left open, at their last recorded time; how many were closed."""
    rows: list[Trip | ChargingSession] = [*session.scalars(select(Trip).where(Trip.ended_at.is_(None))),
                                          *session.scalars(select(ChargingSession)
                                                           .where(ChargingSession.ended_at.is_(None)))]
    for row in rows:
        row.ended_at = row.updated_at
    return len(rows)


def _store(session: Session, trip_id: int | None, trip: TripProgress | None, ended_at: float | None,
           session_id: int | None, charge: SessionProgress | None, charge_ended_at: float | None,
           now_s: float) -> tuple[int | None, int | None]:
    """Write the open trip and charging session (creating rows as needed); their row ids."""
    if trip is not None:
        row = session.get(Trip, trip_id) if trip_id is not None else None
        if row is None:
            row = Trip(started_at=trip.started_at, start_odometer_m=trip.start_odometer_m,
                       start_soc_pct=trip.start_soc_pct, updated_at=now_s)
            session.add(row)
        row.distance_m, row.energy_kwh = trip.distance_m, trip.energy_kwh
        row.end_soc_pct, row.max_speed_kmh, row.updated_at, row.ended_at = (
            trip.end_soc_pct, trip.max_speed_kmh, now_s, ended_at)
        session.flush()
        trip_id = row.id
    if charge is not None:
        crow = session.get(ChargingSession, session_id) if session_id is not None else None
        if crow is None:
            crow = ChargingSession(started_at=charge.started_at, start_soc_pct=charge.start_soc_pct, updated_at=now_s)
            session.add(crow)
        crow.energy_added_kwh, crow.end_soc_pct, crow.max_power_kw = (
            charge.energy_added_kwh, charge.end_soc_pct, charge.max_power_kw)
        crow.updated_at, crow.ended_at = now_s, charge_ended_at
        session.flush()
        session_id = crow.id
    return trip_id, session_id


class RecorderTask:
    """Follows the car and records trips and charging sessions into the database until stopped."""

    def __init__(self, port: VehiclePort, db: Database, park_s: float) -> None:
        self.port = port
        self.db = db
        self.recorder = Recorder(park_s)
        self._trip_id: int | None = None
        self._session_id: int | None = None
        self._last_write = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        closed = await self.db.run(close_open_rows)
        if closed:
            log.warning("companion: closed %d trip(s)/session(s) left open by an unclean stop", closed)
        known = {s.path for s in await self.port.signals("Vehicle")}
        names = {path: name for name, path in SIGNALS.items() if path in known}
        stopper = asyncio.create_task(stop.wait())
        async with Mirror(self.port, names) as mirror:
            try:
                version = mirror.version
                while not stop.is_set():
                    changed = asyncio.create_task(mirror.changed(since=version))
                    done, _ = await asyncio.wait({changed, stopper}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                    if changed in done:
                        version = changed.result()
                    else:
                        changed.cancel()
                    await self._observe({names[p]: v for p, v in mirror.values().items()}, time.time())
            finally:
                stopper.cancel()
                await self._write(time.time(), None, None)

    async def _observe(self, values: dict[str, Any], now_s: float) -> None:
        reading = replace(Reading(), **{k: v for k, v in values.items() if v is not None})
        step = self.recorder.observe(reading, now_s)
        ended = step.trip_ended_at is not None or step.session_ended_at is not None
        if step.trip_started or step.session_started or ended or now_s - self._last_write >= UPDATE_EVERY_S:
            await self._write(now_s, step.trip_ended_at, step.session_ended_at)
        self.recorder.finish(step)
        if step.trip_ended_at is not None:
            self._trip_id = None
        if step.session_ended_at is not None:
            self._session_id = None

    async def _write(self, now_s: float, trip_ended_at: float | None, session_ended_at: float | None) -> None:
        rec = self.recorder
        if rec.trip is None and rec.session is None:
            return
        self._trip_id, self._session_id = await self.db.run(
            _store, self._trip_id, rec.trip, trip_ended_at, self._session_id, rec.session, session_ended_at, now_s)
        self._last_write = now_s


def trip_json(t: Trip) -> dict[str, Any]:
    per_km = t.energy_kwh * 1e3 / (t.distance_m / 1e3) if t.distance_m > 0 else None
    return {"id": t.id, "started_at": t.started_at, "ended_at": t.ended_at, "distance_m": t.distance_m,
            "energy_kwh": t.energy_kwh, "consumption_wh_per_km": per_km, "start_soc_pct": t.start_soc_pct,
            "end_soc_pct": t.end_soc_pct, "max_speed_kmh": t.max_speed_kmh}


def session_json(s: ChargingSession) -> dict[str, Any]:
    return {"id": s.id, "started_at": s.started_at, "ended_at": s.ended_at, "energy_added_kwh": s.energy_added_kwh,
            "start_soc_pct": s.start_soc_pct, "end_soc_pct": s.end_soc_pct, "max_power_kw": s.max_power_kw}


def list_trips(session: Session, limit: int) -> list[dict[str, Any]]:
    return [trip_json(t) for t in session.scalars(select(Trip).order_by(Trip.started_at.desc()).limit(limit))]


def list_sessions(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(ChargingSession).order_by(ChargingSession.started_at.desc()).limit(limit))
    return [session_json(s) for s in rows]

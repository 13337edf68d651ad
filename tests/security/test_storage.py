"""A full or broken disk is a fault the car reports and outlives (issue 12, item 8): a lock was carried out but
answered 500 and never audited, and 1.4 s later the body's periodic save raised "database or disk is full" and the
whole process exited. Now a command whose own save fails is refused before anything changes, and a failing
periodic save is published as a storage fault, kept for the next try and cleared once saving works again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from evos.broker import Broker, LocalPort
from evos.errors import UnavailableError
from evos.twin import load_vehicle
from evos.twin._body import BodyProvider, BodyStore
from evos.twin._provider import OVERLAY, TwinProvider
from evos.twin._store import StateStore
from evos.vss import load_catalog

LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"
CHARGE_LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"


def disk_full(*_args: Any) -> None:
    raise sqlite3.OperationalError("database or disk is full")


async def test_the_body_refuses_a_command_it_cannot_save_and_outlives_a_failing_disk(tmp_path: Path,
                                                                                   monkeypatch: Any) -> None:
    broker = Broker(load_catalog(overlays=[OVERLAY]))
    body = BodyProvider(LocalPort(broker, "body"), tmp_path / "body.sqlite")
    await body.start()
    assert body.store is not None
    locked = broker.get(LOCK).value
    monkeypatch.setattr(body.store, "save", disk_full)
    with pytest.raises(UnavailableError, match="disk is full; nothing was changed"):
        await broker.actuate({LOCK: not locked})
    assert broker.get(LOCK).value == locked and body.values[LOCK] == locked  # refused before it was done

    await broker.actuate({WINDOW: 40})  # a motor's target: its positions are saved as it moves
    body.tick(10.0)
    await body.save()  # fails: said, kept for the next try, not fatal
    assert "disk is full" in str(broker.get("Vehicle.Evos.Body.StorageFault").value)
    monkeypatch.undo()
    await body.save()
    assert broker.get("Vehicle.Evos.Body.StorageFault").value == ""
    await body.port.close()
    assert BodyStore(tmp_path / "body.sqlite").load()[WINDOW] == 40  # the kept changes reached the disk


async def test_the_twin_refuses_a_setting_it_cannot_save_and_outlives_a_failing_disk(tmp_path: Path,
                                                                                   monkeypatch: Any) -> None:
    broker = Broker(load_catalog(overlays=[OVERLAY]))
    store = StateStore(tmp_path / "twin.sqlite")
    twin = TwinProvider(LocalPort(broker, "twin"), load_vehicle("xiaomi-su7"), store)
    await twin.start()
    limit = broker.get(CHARGE_LIMIT).value
    monkeypatch.setattr(store, "save_settings", disk_full)
    with pytest.raises(UnavailableError, match="cannot save the settings"):
        await broker.actuate({CHARGE_LIMIT: 55})
    assert broker.get(CHARGE_LIMIT).value == limit
    monkeypatch.setattr(store, "save", disk_full)
    await twin.stop()  # its last save fails: said, not raised
    assert "disk is full" in str(broker.get("Vehicle.Evos.Twin.StorageFault").value)

"""Nothing is done that the audit log does not hold (issue 12, item 8): the phone API wrote a command to the audit
log after carrying it out, so a command carried out while the log could not be written left no trace. Now every
entrance (the phone API, the centre screen) writes the request first and, when it cannot, refuses it and changes
nothing; the entry gets its outcome once the car has answered."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx

from companion.car import Car, bearer, sign_in
from evos.companion import _audit

SETPOINT = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


def disk_full(*_args: Any) -> None:
    raise sqlite3.OperationalError("database or disk is full")


async def entries(http: httpx.AsyncClient, owner: dict[str, str]) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/audit?limit=50", headers=owner)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


async def test_a_command_the_audit_log_cannot_hold_is_refused_at_every_entrance(car: Car, monkeypatch: Any) -> None:
    async with httpx.AsyncClient(base_url=car.url, timeout=10) as http:
        owner = bearer((await sign_in(http))["access_token"])
        before = car.broker.get(SETPOINT).value
        assert before != 23.5
        monkeypatch.setattr(_audit, "requested", disk_full)
        phone = await http.post("/api/v1/vehicle/commands/set_temperature", headers=owner,
                                json={"args": {"temperature_c": 23.5}})
        assert phone.status_code == 503 and "audit log cannot be written" in phone.json()["detail"], phone.text
        screen = await http.post("/cabin/api/actuate", json={SETPOINT: 23.5})
        assert screen.status_code == 503 and "audit log cannot be written" in screen.json()["detail"], screen.text
        assert car.broker.get(SETPOINT).value == before  # neither was carried out
        assert not [e for e in await entries(http, owner) if e["result"] == "completed"]

        monkeypatch.undo()  # the disk works again: the same requests are carried out and written with their outcome
        phone = await http.post("/api/v1/vehicle/commands/set_temperature", headers=owner,
                                json={"args": {"temperature_c": 23.5}})
        assert phone.status_code == 200, phone.text
        assert (await http.post("/cabin/api/actuate", json={SETPOINT: 22.5})).status_code == 200
        assert car.broker.get(SETPOINT).value == 22.5
        done = [(e["user"], e["command"], e["result"]) for e in await entries(http, owner)]
        assert done[:2] == [("centre screen", "actuate", "completed"), ("owner", "set_temperature", "completed")], done

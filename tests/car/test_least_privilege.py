"""Each app's token grants only what its job needs: the table in docs/architecture.md, checked on the scope the
supervisor mints (parsed as the broker parses a token), and once through the real Unix socket with a real token."""

from __future__ import annotations

import pytest

from evos.app import overlays_of
from evos.broker import Broker, Permissions
from evos.car import app_named, apps_overlay, car_apps, permissions_of
from evos.vss import load_catalog

LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"
CRUISE = "Vehicle.ADAS.CruiseControl.IsActive"
CRUISE_SPEED = "Vehicle.ADAS.CruiseControl.SpeedSet"
AEB = "Vehicle.ADAS.EBA.IsEngaged"
HVAC = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
SCENE = "Vehicle.Evos.Cabin.Scene"
CHARGE_LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
TARGET_SPEED = "Vehicle.Evos.Twin.Driver.TargetSpeed"  # what ACC commands the powertrain
BRAKE = "Vehicle.Evos.Twin.Driver.BrakePedal"
VOLUME = "Vehicle.Cabin.Infotainment.Media.Volume"

# (app, action, path, allowed): what a reviewer of a car OS would ask first
TABLE = [
    ("cabin", "actuate", LOCK, False),  # a comfort function cannot open the car
    ("cabin", "actuate", CRUISE, False),  # ... nor touch driver assistance
    ("cabin", "actuate", CRUISE_SPEED, False),
    ("cabin", "actuate", TARGET_SPEED, False),  # ... nor drive
    ("cabin", "actuate", HVAC, True),  # scenes set the climate
    ("cabin", "actuate", WINDOW, True),  # and the shades and windows
    ("cabin", "provide", SPEED, False),  # it cannot forge what the car senses
    ("cabin", "provide", SOC, False),
    ("cabin", "read", SOC, True),
    ("media", "actuate", LOCK, False),
    ("media", "actuate", HVAC, False),
    ("media", "actuate", CRUISE, False),
    ("media", "provide", SPEED, False),
    ("media", "read", LOCK, False),  # the player has no business reading the locks
    ("companion", "actuate", LOCK, True),  # the owner's phone key (each command signed and scoped)
    ("companion", "actuate", CHARGE_LIMIT, True),
    ("companion", "actuate", CRUISE, False),  # no driving from the phone
    ("companion", "actuate", TARGET_SPEED, False),
    ("companion", "provide", SPEED, False),
    ("adas", "actuate", TARGET_SPEED, True),  # driver assistance commands the powertrain and the brake
    ("adas", "actuate", BRAKE, True),
    ("adas", "actuate", LOCK, False),
    ("adas", "actuate", HVAC, False),
    ("adas", "provide", SPEED, False),  # it reads the speed, the twin senses it
    ("adas", "provide", AEB, True),
    ("twin", "provide", SPEED, True),
    ("twin", "provide", SOC, True),
    ("twin", "actuate", CRUISE, False),  # the twin moves the car as the pedals say, it does not decide
    ("twin", "actuate", LOCK, False),  # the locks are the body hardware's
    ("twin", "provide", AEB, False),
    ("body", "actuate", LOCK, True),
    ("body", "actuate", CRUISE, False),
    ("body", "provide", SPEED, False),
    ("body", "provide", SOC, False),
]


@pytest.fixture(scope="module")
def permissions() -> dict[str, Permissions]:
    apps = car_apps()
    catalog = load_catalog(overlays=[*overlays_of(apps), apps_overlay([a.signal_name for a in apps])])
    broker = Broker(catalog)
    return {app.name: permissions_of(app, broker) for app in apps}


@pytest.mark.parametrize(("app", "action", "path", "allowed"), TABLE, ids=[f"{a}-{c}-{p.rsplit('.', 2)[-2]}."
                         f"{p.rsplit('.', 1)[-1]}" for a, c, p, _ in TABLE])
def test_the_token_grants_only_the_apps_job(permissions: dict[str, Permissions], app: str, action: str, path: str,
                                            allowed: bool) -> None:
    assert permissions[app].allows(action, path) is allowed  # type: ignore[arg-type]


def test_no_comfort_app_may_actuate_a_safety_or_driving_signal(permissions: dict[str, Permissions]) -> None:
    catalog = load_catalog()
    driving = [s.path for s in catalog if s.path.startswith(("Vehicle.ADAS.", "Vehicle.Chassis.", "Vehicle.Powertrain."
                                                             "ElectricMotor."))]
    for app in car_apps():
        if app.partition != "comfort":
            continue
        granted = [p for p in driving if permissions[app.name].allows("actuate", p)
                   or permissions[app.name].allows("provide", p)]
        assert granted == [], (app.name, granted[:5])
    assert app_named("adas").partition == "safety"

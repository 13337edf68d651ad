"""VSS and the twin's controls, in one place: which actuator sets which ``Controls`` field, how its VSS value
converts, and back.

The running twin applies each actuation with ``apply_actuation``; anyone who needs the controls a car runs with
(the cabin's energy forecast) reads them from the car's published values with ``controls_from_vss``, so the
twin and the forecast cannot disagree about what a signal means. ``controls_to_vss`` gives the actuators'
values a twin publishes for its controls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from evos.twin._realtime import Controls, conditioning_target_c
from evos.vss import Value

BAT = "Vehicle.Powertrain.TractionBattery"
CHG = f"{BAT}.Charging"
TWIN = "Vehicle.Evos.Twin"
HVAC = "Vehicle.Cabin.HVAC"
CONDITIONING_TARGET = f"{BAT}.BatteryConditioning.TargetTemperature"
TIME_SCALE = f"{TWIN}.TimeScale"
POWER_STATE = "Vehicle.LowVoltageSystemState"  # VSS: UNDEFINED, LOCK, OFF, ACC, ON, START
# The electric loads of the other apps' devices, which the twin's battery carries (W): the body hardware's
# (seat heaters, defroster, blower, lights) and the media's (playback, the centre screen).
LOADS = ("Vehicle.Evos.Body.LoadPower", "Vehicle.Evos.Cabin.MediaLoadPower")

# actuator path -> (Controls field, conversion from the VSS value)
ACTUATORS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    f"{CHG}.ChargeLimit": ("charge_limit_pct", float),
    f"{CHG}.StartStopCharging": ("charging_enabled", lambda v: v == "START"),
    f"{HVAC}.IsAirConditioningActive": ("hvac_on", bool),  # climate on/off (heating or cooling)
    f"{HVAC}.Station.Row1.Driver.Temperature": ("cabin_setpoint_c", float),
    f"{HVAC}.Station.Row1.Passenger.Temperature": ("cabin_setpoint_c", float),
    f"{TWIN}.Driver.AcceleratorPedal": ("accelerator_pct", float),
    f"{TWIN}.Driver.BrakePedal": ("brake_pct", float),
    f"{TWIN}.Driver.SteeringAngle": ("steering_deg", float),
    f"{TWIN}.Driver.TargetSpeed": ("target_speed_kmh", lambda v: None if v < 0 else float(v)),
    f"{TWIN}.Driver.TargetAcceleration": ("target_accel_mps2", float),
    f"{TWIN}.ChargerConnected": ("charger_connected", bool),
    f"{TWIN}.ChargerPower": ("charger_kw", float),
    f"{TWIN}.AmbientTemperature": ("ambient_c", float),
    f"{BAT}.BatteryConditioning.RequestedMode": ("battery_conditioning", str),
    CONDITIONING_TARGET: ("battery_target_c", float),
}
# The owner's settings among them: what a car keeps over a restart (the twin saves them before it answers a change).
# Driver inputs are not (a car starts parked) nor the simulated world's (charger, weather: the command line's).
SETTINGS = (f"{CHG}.ChargeLimit", f"{CHG}.StartStopCharging", f"{HVAC}.IsAirConditioningActive",
            f"{HVAC}.Station.Row1.Driver.Temperature", f"{HVAC}.Station.Row1.Passenger.Temperature",
            f"{BAT}.BatteryConditioning.RequestedMode", CONDITIONING_TARGET)
# every signal controls_from_vss reads
CONTROL_SIGNALS = (*ACTUATORS, POWER_STATE, *LOADS)
DRIVE_INPUTS = ("accelerator_pct", "brake_pct", "steering_deg", "target_speed_kmh", "target_accel_mps2")


def apply_actuation(controls: Controls, batch: Mapping[str, Value]) -> Controls:
    """The controls after the twin carried out ``batch`` (paths of ``ACTUATORS``; others are ignored).

    A pedal takes over from the driver model (its target speed is dropped), and a new conditioning mode heats
    to its own target unless the batch sets one. Any drive input switches the car on (``power_on``).
    """
    changes: dict[str, Any] = {}
    for path, value in batch.items():
        if path not in ACTUATORS:
            continue
        name, convert = ACTUATORS[path]
        changes[name] = convert(value)
        if name in ("accelerator_pct", "brake_pct"):
            changes.setdefault("target_speed_kmh", None)
            changes.setdefault("target_accel_mps2", None)
        if name == "battery_conditioning":
            changes.setdefault("battery_target_c", None)
    if "target_speed_kmh" in changes:  # a target without its rate: the driver model judges it by how it changes
        changes.setdefault("target_accel_mps2", None)
    if any(name in changes for name in DRIVE_INPUTS):
        changes["power_on"] = True
    return replace(controls, **changes) if changes else controls


def controls_from_vss(values: Mapping[str, Value | None], base: Controls | None = None) -> Controls:
    """The controls a car runs with, from its signals' current values (``None``: not available, ``base`` keeps
    its own): its actuators', its power state (``POWER_STATE``) and the loads of ``LOADS``, which add up to
    ``cabin_load_w``."""
    base = base or Controls()
    controls = apply_actuation(base, {p: v for p, v in values.items() if p in ACTUATORS and v is not None})
    power = values.get(POWER_STATE)
    controls = replace(controls, power_on=power in ("ON", "START") if power is not None else base.power_on)
    loads = [float(v) for p in LOADS if isinstance(v := values.get(p), int | float) and not isinstance(v, bool)]
    return replace(controls, cabin_load_w=sum(loads)) if loads else controls


def controls_to_vss(c: Controls) -> dict[str, Value]:
    """The values of the actuators a twin serves, for controls ``c`` (what it publishes at start)."""
    return {
        f"{CHG}.ChargeLimit": round(c.charge_limit_pct),
        f"{CHG}.StartStopCharging": "START" if c.charging_enabled else "STOP",
        f"{HVAC}.IsAirConditioningActive": c.hvac_on,
        f"{HVAC}.Station.Row1.Driver.Temperature": c.cabin_setpoint_c,
        f"{HVAC}.Station.Row1.Passenger.Temperature": c.cabin_setpoint_c,
        f"{TWIN}.ChargerConnected": c.charger_connected,
        f"{TWIN}.ChargerPower": c.charger_kw,
        f"{TWIN}.AmbientTemperature": c.ambient_c,
        f"{BAT}.BatteryConditioning.RequestedMode": c.battery_conditioning,
        **({CONDITIONING_TARGET: target_c} if (target_c := conditioning_target_c(c)) is not None else {}),
    }


__all__ = ["ACTUATORS", "CONTROL_SIGNALS", "LOADS", "POWER_STATE", "SETTINGS", "TIME_SCALE", "apply_actuation",
           "controls_from_vss", "controls_to_vss"]

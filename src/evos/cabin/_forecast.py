"""Energy forecast of a scene: how long the parked car can hold it from the current SoC down to a reserve.

It asks the twin's own model (``evos.twin.parked_runtime_s``) with the controls the car runs with, read from its
signals by the twin's own codec (``evos.twin.controls_from_vss``: climate, charger, battery conditioning,
ambient), changed as the scene would change them, and the electric load of the body devices on
(``evos.twin.body_load_w``) plus, while media plays, the audio and the centre screen (``media_load_w``), from the
current SoC and cabin and battery temperatures. Runtimes are cached by their inputs (rounded to 0.01 % SoC and
0.1 K), so a screen asking again costs a lookup; a new one costs tens of milliseconds (run it off the event loop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

from evos.cabin._engine import format_duration
from evos.cabin._scenes import Scene
from evos.twin import CONTROL_SIGNALS, Controls, TwinState, Vehicle, body_load_w, controls_from_vss, parked_runtime_s
from evos.vss import Value

BAT = "Vehicle.Powertrain.TractionBattery"
SOC = f"{BAT}.StateOfCharge.Current"
BATTERY_TEMP = f"{BAT}.Temperature.Average"
CABIN_TEMP = "Vehicle.Evos.Twin.CabinTemperature"
MEDIA_ACTION = "Vehicle.Cabin.Infotainment.Media.Action"
BRIGHTNESS = "Vehicle.Cabin.Infotainment.HMI.Brightness"
INPUTS = (SOC, BATTERY_TEMP, CABIN_TEMP, MEDIA_ACTION, BRIGHTNESS, *CONTROL_SIGNALS)
# Media load over the awake car's base load (the twin's ``Climate.aux_w``, which has the screen at its lowest
# brightness and no playback). Both measured on the 12 V bus of a 2020 Tesla Model S over CAN, parked in P, by an
# owner (teslamotorsclub.com/tmc/threads/demystifying-the-power-consumers-in-my-model-s.204247/post-4963351):
MEDIA_PLAYBACK_W = 28.0  # "Spotify play": streaming, decoding and the amplifier (volume not stated)
SCREEN_FULL_BRIGHTNESS_W = 38.0  # "Display at 100% brightness (instead of lowest)"; taken as linear in brightness
DEFAULT_BRIGHTNESS_PCT = 50.0  # when the car publishes no brightness (assumed: mid-scale)


@dataclass(frozen=True)
class Forecast:
    """Time a scene can run (``runtime_s``) from ``soc_pct`` down to ``reserve_pct``."""

    scene: str
    runtime_s: float
    soc_pct: float
    reserve_pct: float
    ambient_c: float
    hvac_on: bool
    setpoint_c: float
    cabin_load_w: float  # body devices and media
    media_load_w: float = 0.0  # of which media

    @property
    def text(self) -> str:
        return f"{self.scene}: {format_duration(self.runtime_s)} to {self.reserve_pct:.0f} %"


def _number(values: Mapping[str, Value | None], path: str, default: float) -> float:
    value = values.get(path)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def media_load_w(values: Mapping[str, Value | None]) -> float:
    """Electric load, W, of media playback and the centre screen at ``values`` (0 unless media plays)."""
    if values.get(MEDIA_ACTION) != "PLAY":
        return 0.0
    return MEDIA_PLAYBACK_W + SCREEN_FULL_BRIGHTNESS_W * _number(values, BRIGHTNESS, DEFAULT_BRIGHTNESS_PCT) / 100


def forecast(vehicle: Vehicle, scene: Scene | None, values: Mapping[str, Value | None], reserve_pct: float,
             name: str = "") -> Forecast:
    """Forecast for ``scene`` (None: the cabin as it is) from current ``values`` (broker paths -> values).

    ``values`` should hold ``INPUTS`` and the body actuators' current values; missing ones fall back to the
    twin's defaults (ambient 20 °C, climate off).
    """
    after = dict(values)
    if scene is not None:
        after.update(scene.set)
    media_w = media_load_w(after)
    load_w = body_load_w({p: v for p, v in after.items() if v is not None}) + media_w
    controls = replace(controls_from_vss(after), cabin_load_w=load_w)
    soc_pct = _number(values, SOC, 80.0)
    state = TwinState(soc=round(soc_pct / 100, 4),
                      battery_temp_c=round(_number(values, BATTERY_TEMP, controls.ambient_c), 1),
                      cabin_temp_c=round(_number(values, CABIN_TEMP, controls.ambient_c), 1))
    runtime_s = _runtime_s(vehicle, state, controls, reserve_pct / 100)
    return Forecast(name or (scene.name if scene else "cabin"), runtime_s, soc_pct, reserve_pct, controls.ambient_c,
                    controls.hvac_on, controls.cabin_setpoint_c, load_w, media_w)


@lru_cache(maxsize=256)
def _runtime_s(vehicle: Vehicle, state: TwinState, controls: Controls, reserve_soc: float) -> float:
    return parked_runtime_s(vehicle, state, controls, reserve_soc)

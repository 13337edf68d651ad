"""The driver-assistance app in the running car (``evos up``): the highway pilot's ACC and the AEB, the car's safety
partition.

It talks only through its vehicle-data port, in its own process, at a fixed control rate (``rate_hz``, 20 Hz; while
the car stands with nothing for it to do, ``parked_rate_hz`` and at once on any new input) with a deadline monitor:
a period whose step starts a whole period late is a missed deadline, counted and published
(``Vehicle.Evos.ADAS.DeadlineMisses``) with the control period's p99 and maximum over the last ``window_s``. Its
inputs come from a mirror of the signals (a read never waits for the broker), its actuations go out without the
control step waiting for them (the latest demand wins), and a stale input still faults. It reads ``Vehicle.Speed``,
``Vehicle.Acceleration.Longitudinal`` and the driver's pedals (the twin's
``Vehicle.Evos.Twin.Driver.{BrakePedal,AcceleratorPedal}``, target or actual), and serves the set points as
actuators: VSS 6.0 ``Vehicle.ADAS.CruiseControl.{IsEnabled, IsActive, SpeedSet, AdaptiveIntervalSet}`` and
``Vehicle.ADAS.EBA.IsEnabled``, plus ``Vehicle.Evos.ADAS.TimeGap`` (seconds) from ``data/adas-overlay.vspec``. It
publishes the state: ``CruiseControl.IsError``, ``EBA.IsEngaged``/``IsError`` and the overlay's
``Vehicle.Evos.ADAS.{State, ForwardCollisionWarning, FaultReason}``.

Driving: the twin has a driver model that tracks ``Vehicle.Evos.Twin.Driver.TargetSpeed`` (km/h; −1 hands back to
the pedals). While the pilot is active the service integrates the ACC's acceleration demand (ISO 15622 limits, jerk-
limited) into a reference speed and actuates it as the target speed with the demand as the target acceleration
(``Vehicle.Evos.Twin.Driver.TargetAcceleration``), so the car follows the ACC's profile instead of jumping to the
set speed. The running car has no traffic: unless an object list is plugged in (``objects=``), the road ahead is
free. An AEB demand is carried out with the twin's brake pedal (the vehicle's full-brake deceleration at 100 %).

Transitions are the :class:`HighwayPilot`'s: the brake pedal cancels to standby and the target speed is handed back;
the accelerator beyond ``accelerator_override_pct`` is a temporary override (the pilot stops actuating and resumes
from the current speed when it is released); ``Vehicle.Speed`` missing or older than ``stale_after_s`` → fault
(target handed back) → standby once it is fresh again (the driver must engage again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from evos.adas._acc import AccMode, Observation
from evos.adas._aeb import AebController, AebStage
from evos.adas._lateral import LaneFrame
from evos.adas._params import AccParams, AebParams, _check
from evos.adas._pilot import HighwayPilot
from evos.adas._sensor import SensorFrame
from evos.app import App, AppEnv, Grants, paths_in
from evos.broker import Mirror, VehiclePort
from evos.errors import EvosError, InvalidValueError, NotPermittedError
from evos.twin import Chassis, Vehicle, load_vehicle
from evos.vss import Value

log = logging.getLogger("evos.adas")
OVERLAY = Path(str(resources.files("evos.adas").joinpath("data", "adas-overlay.vspec")))

CC = "Vehicle.ADAS.CruiseControl"
EBA = "Vehicle.ADAS.EBA"
EVOS = "Vehicle.Evos.ADAS"
SPEED = "Vehicle.Speed"
ACCEL = "Vehicle.Acceleration.Longitudinal"
DRIVER = "Vehicle.Evos.Twin.Driver"
TARGET_SPEED = f"{DRIVER}.TargetSpeed"
TARGET_ACCEL = f"{DRIVER}.TargetAcceleration"
BRAKE_PEDAL = f"{DRIVER}.BrakePedal"
ACCELERATOR_PEDAL = f"{DRIVER}.AcceleratorPedal"
TIME_SCALE = "Vehicle.Evos.Twin.TimeScale"
TWIN_VEHICLE = "Vehicle.Evos.Twin.Vehicle"
INPUTS = (SPEED, ACCEL, BRAKE_PEDAL, ACCELERATOR_PEDAL, TIME_SCALE, TWIN_VEHICLE)
PROVIDED = (f"{CC}.IsEnabled", f"{CC}.IsActive", f"{CC}.SpeedSet", f"{CC}.AdaptiveIntervalSet", f"{EBA}.IsEnabled",
            f"{EVOS}.TimeGap")
ACTUATED = (TARGET_SPEED, TARGET_ACCEL, BRAKE_PEDAL)
MONITOR = (f"{EVOS}.DeadlineMisses", f"{EVOS}.ControlPeriodP99", f"{EVOS}.ControlPeriodMax")
MAX_STEP_S = 0.2  # car time one control step may integrate (the twin publishes every 0.1 s of car time)
HAND_BACK_KMH = -1.0  # TargetSpeed −1: the twin's driver model lets go, the pedals drive
# AdaptiveIntervalSet is a level ("commonly 1-5 with 1 being closest", VSS 6.0); evos maps it onto its time gaps
# (ISO 15622 asks for at least one setting in 1.0-2.5 s; the steps between are assumed, evenly spread)
INTERVAL_TIME_GAPS_S = {1: 1.0, 2: 1.4, 3: 1.8, 4: 2.2, 5: 2.5}


@dataclass(frozen=True)
class AdasServiceConfig:
    """Tunables of the driver-assistance app in the car."""

    stale_after_s: float = 0.5  # Vehicle.Speed older than this (wall time) is a fault
    # ... unless it says the car stands: the twin sends a standing car's speed once a second (its cyclic refresh)
    standstill_stale_after_s: float = 2.5
    accelerator_override_pct: float = 10.0  # assumed: a pedal press beyond this is the driver taking over
    min_set_speed_kmh: float = 30.0  # assumed typical ACC set-speed range (stop-and-go still follows to 0)
    max_set_speed_kmh: float = 180.0
    rate_hz: float = 20.0  # the control rate in car time (production ACC/AEB controllers run at 20-100 Hz)
    # parked (standing, no pilot, no brake demand, no pedal): the loop steps at this rate, and at once on any new input
    parked_rate_hz: float = 2.0
    window_s: float = 10.0  # the deadline monitor's window for the period's p99 and maximum

    def __post_init__(self) -> None:
        _check(self, {"stale_after_s": (0.05, 10.0), "standstill_stale_after_s": (0.05, 10.0),
                      "parked_rate_hz": (0.1, 200.0), "accelerator_override_pct": (1.0, 100.0),
                      "min_set_speed_kmh": (0.0, 200.0), "max_set_speed_kmh": (10.0, 216.0),
                      "rate_hz": (1.0, 200.0), "window_s": (1.0, 600.0)})


class DeadlineMonitor:
    """The control loop's timing: periods (between step starts, in car time) over a window, and missed deadlines (a
    step that starts a whole period or more after it was due; the loop then skips the slots it missed)."""

    def __init__(self, period_s: float, window_s: float) -> None:
        self.period_s = period_s
        self.misses = 0
        self.periods_s: deque[float] = deque(maxlen=max(int(window_s / period_s), 10))
        self._last_start_s: float | None = None
        self._last_period_s = period_s

    def started(self, due_s: float, now_s: float, period_s: float | None = None) -> float:
        """A step due at ``due_s`` starts at ``now_s`` (monotonic); returns when the next one is due, ``period_s``
        later (default: the nominal period; shorter while the car's time runs faster, longer while it is parked)."""
        period_s = period_s or self.period_s
        if self._last_start_s is not None:  # in nominal terms, against the period the last step was given
            self.periods_s.append((now_s - self._last_start_s) * self.period_s / self._last_period_s)
        self._last_start_s, self._last_period_s = now_s, period_s
        late_s = now_s - due_s
        if late_s >= period_s:
            missed = int(late_s // period_s)
            self.misses += missed
            return due_s + (missed + 1) * period_s
        return due_s + period_s

    def p99_s(self) -> float:
        if not self.periods_s:
            return 0.0
        ordered = sorted(self.periods_s)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]

    def max_s(self) -> float:
        return max(self.periods_s, default=0.0)


def _level_for(time_gap_s: float) -> int:
    """The AdaptiveIntervalSet level whose time gap is nearest."""
    return min(INTERVAL_TIME_GAPS_S, key=lambda level: abs(INTERVAL_TIME_GAPS_S[level] - time_gap_s))


class AdasService:
    """ACC (the highway pilot's longitudinal part) and AEB on a vehicle-data port whose car carries
    ``ADAS_OVERLAY`` and the twin overlay; ``run(stop)`` steps at ``config.rate_hz`` until ``stop`` is set.

    ``objects(now_s) -> SensorFrame``: the forward object list (radar/camera), if one is fitted; without it the
    road ahead is free. ``start`` raises AlreadyProvidedError when another app provides the set points.
    """

    def __init__(self, port: VehiclePort, config: AdasServiceConfig | None = None,
                 objects: Callable[[float], SensorFrame] | None = None, acc: AccParams | None = None) -> None:
        self.port = port
        self.config = config or AdasServiceConfig()
        self.pilot = HighwayPilot(acc)
        self.aeb = AebController()
        self.objects = objects
        self.aeb_enabled = True
        self.now_s = 0.0  # car time (the twin's time scale applied), for the controllers
        self.fault_reason = ""
        self.monitor = DeadlineMonitor(1.0 / self.config.rate_hz, self.config.window_s)
        self.chassis = Chassis()  # the car's, once the twin says which car it is
        self._vehicle_name = ""
        self.steps = 0
        self._inputs: Mirror | None = None
        self._speed_set_kmh: float | None = None
        self._v_ref_mps: float | None = None  # the reference speed while the pilot drives
        self._aeb_pedal_pct = 0  # brake pedal the AEB holds (told apart from the driver's)
        self._aeb_stage = AebStage.IDLE
        self._news = asyncio.Event()  # a new input came: a parked loop steps at once
        self._last_wall_s: float | None = None
        self._published: dict[str, Any] = {}
        self._outgoing: dict[str, Value] = {}  # actuations not sent yet (the latest demand per path wins)
        self._wake_sender = asyncio.Event()

    def _value(self, path: str) -> Value | None:
        return self._inputs.value(path) if self._inputs is not None else None

    # ---- set points ------------------------------------------------------------------------------------------
    def _check(self, batch: dict[str, Any]) -> None:
        c = self.config
        speed_set = batch.get(f"{CC}.SpeedSet")
        if speed_set is not None and not c.min_set_speed_kmh <= speed_set <= c.max_set_speed_kmh:
            raise InvalidValueError(f"{CC}.SpeedSet: value {speed_set} is outside the set-speed range "
                                    f"[{c.min_set_speed_kmh:g}, {c.max_set_speed_kmh:g}] km/h", path=f"{CC}.SpeedSet")
        level = batch.get(f"{CC}.AdaptiveIntervalSet")
        if level is not None and level not in INTERVAL_TIME_GAPS_S:
            raise InvalidValueError(f"{CC}.AdaptiveIntervalSet: value {level} is not a level 1-5 (1: closest)",
                                    path=f"{CC}.AdaptiveIntervalSet")
        if batch.get(f"{CC}.IsActive") is True:
            self._check_engage(batch)

    def _check_engage(self, batch: dict[str, Any]) -> None:
        path = f"{CC}.IsActive"
        enabling = batch.get(f"{CC}.IsEnabled")
        mode = self.pilot.mode
        if enabling is False or (mode is AccMode.OFF and enabling is not True):
            raise NotPermittedError(f"{path}: cruise control is off; enable it first ({CC}.IsEnabled)", path=path)
        if mode is AccMode.FAULT:
            raise NotPermittedError(f"{path}: cruise control has a fault ({self.fault_reason})", path=path)
        stale = self._stale_reason(time.time())
        if stale:
            raise NotPermittedError(f"{path}: cannot engage, {stale}", path=path)
        speed_kmh = self._value(SPEED)
        wanted = batch.get(f"{CC}.SpeedSet", self._speed_set_kmh)
        if wanted is None and isinstance(speed_kmh, float | int) and speed_kmh < self.config.min_set_speed_kmh:
            raise NotPermittedError(f"{path}: no set speed and the car is below {self.config.min_set_speed_kmh:g} "
                                    f"km/h; set {CC}.SpeedSet first", path=path)

    def _on_actuate(self, batch: dict[str, Any]) -> None:
        self._check(batch)
        enabled = batch.get(f"{CC}.IsEnabled")
        if enabled is True:
            self.pilot.switch_on()
        elif enabled is False:
            self.pilot.switch_off()
        if f"{EBA}.IsEnabled" in batch:
            self.aeb_enabled = bool(batch[f"{EBA}.IsEnabled"])
        level = batch.get(f"{CC}.AdaptiveIntervalSet")
        time_gap = batch.get(f"{EVOS}.TimeGap", INTERVAL_TIME_GAPS_S[level] if level is not None else None)
        if time_gap is not None:
            self.pilot.acc.set_time_gap(float(time_gap))
        if f"{CC}.SpeedSet" in batch:
            self._speed_set_kmh = float(batch[f"{CC}.SpeedSet"])
            self.pilot.acc.set_speed(self._speed_set_kmh / 3.6)
        active = batch.get(f"{CC}.IsActive")
        if active is True and self.pilot.mode is AccMode.STANDBY:
            if self._speed_set_kmh is None:  # SET: the current speed becomes the set speed
                speed_kmh = float(self._value(SPEED) or 0.0)  # type: ignore[arg-type]
                self._speed_set_kmh = max(round(speed_kmh), self.config.min_set_speed_kmh)
            self.pilot.engage(self._speed_set_kmh / 3.6)
        elif active is False:
            self.pilot.cancel()
        self._publish()

    # ---- the control step -------------------------------------------------------------------------------------
    def _stale_reason(self, wall_now_s: float) -> str:
        point = self._inputs.datapoint(SPEED) if self._inputs is not None else None
        if point is None or not point.available or point.timestamp_s is None:
            return f"{SPEED} is not available"
        age_s = wall_now_s - point.timestamp_s
        limit_s = self.config.standstill_stale_after_s if point.value == 0 else self.config.stale_after_s
        return f"{SPEED} stale for {age_s:.1f} s" if age_s > limit_s else ""

    def parked(self) -> bool:
        """Standing, with nothing for the pilot or the AEB to do: the loop may step at the parked rate."""
        return (self._value(SPEED) == 0 and self._v_ref_mps is None and self._aeb_stage is AebStage.IDLE
                and self.pilot.mode in (AccMode.OFF, AccMode.STANDBY) and not self._pedal_pct(ACCELERATOR_PEDAL)
                and not self._pedal_pct(BRAKE_PEDAL))

    def _pedal_pct(self, path: str) -> float:
        value = self._value(path)
        return float(value) if isinstance(value, int | float) else 0.0

    def _take_vehicle(self) -> None:
        """The car's chassis (its full-brake deceleration: the brake pedal's scale), once the twin names the car."""
        name = self._value(TWIN_VEHICLE)
        if not isinstance(name, str) or not name or name == self._vehicle_name:
            return
        self._vehicle_name = name
        try:
            vehicle: Vehicle = load_vehicle(name)
        except EvosError as exc:
            log.warning("adas: using a default chassis: the twin's vehicle %r cannot be loaded here: %s", name, exc)
            return
        self.chassis = vehicle.chassis
        self.aeb = AebController(AebParams(full_decel_mps2=vehicle.chassis.max_brake_mps2),
                                 ego_width_m=vehicle.chassis.width_m)

    def step(self, wall_now_s: float) -> None:
        """One control step at wall-clock ``wall_now_s`` (``time.time()``); car time advances by the twin's scale."""
        self.steps += 1
        dt_s = 0.0
        if self._last_wall_s is not None:
            scale = self._value(TIME_SCALE)
            dt_s = max(wall_now_s - self._last_wall_s, 0.0) * float(scale or 1.0)  # type: ignore[arg-type]
            dt_s = min(dt_s, MAX_STEP_S)  # a scheduling hiccup (or a time-scale change) is not integrated blind
        self._last_wall_s = wall_now_s
        self.now_s += dt_s
        self.fault_reason = self._stale_reason(wall_now_s)
        healthy = not self.fault_reason
        speed = self._value(SPEED)
        accel = self._value(ACCEL)
        speed_mps = float(speed) / 3.6 if healthy and isinstance(speed, int | float) else 0.0
        accel_mps2 = float(accel) if healthy and isinstance(accel, int | float) else 0.0
        if not healthy:
            frame = SensorFrame(self.now_s, (), healthy=False)
        else:
            frame = self.objects(self.now_s) if self.objects is not None else SensorFrame(self.now_s)
        brake = self._pedal_pct(BRAKE_PEDAL) > self._aeb_pedal_pct
        accelerator = self._pedal_pct(ACCELERATOR_PEDAL) > self.config.accelerator_override_pct
        obs = Observation(self.now_s, speed_mps, accel_mps2, frame, brake, accelerator)
        aeb = self.aeb.command(obs) if self.aeb_enabled and healthy else None
        self._aeb_stage = aeb.stage if aeb is not None else AebStage.IDLE
        braking = aeb is not None and aeb.accel_mps2 is not None
        # the ACC runs on its own reference speed while it drives (the twin follows it), on the measured one else
        v_mps = self._v_ref_mps if self._v_ref_mps is not None else speed_mps
        command = self.pilot.command(replace(obs, speed_mps=v_mps, intervention=braking),
                                     LaneFrame(self.now_s, healthy=True))
        if command.mode is AccMode.ACTIVE and command.accel_mps2 is not None and not braking:
            self._v_ref_mps = max(v_mps + command.accel_mps2 * dt_s, 0.0)
            accel_ref = command.accel_mps2 if self._v_ref_mps > 0 else 0.0
            self._actuate({TARGET_SPEED: self._v_ref_mps * 3.6, TARGET_ACCEL: max(min(accel_ref, 10.0), -10.0)})
        elif self._v_ref_mps is not None:
            self._v_ref_mps = None
            self._actuate({TARGET_SPEED: HAND_BACK_KMH})
        self._brake_for(aeb.accel_mps2 if aeb is not None else None)
        self._publish()

    def _brake_for(self, accel_mps2: float | None) -> None:
        """Carry out an AEB demand with the brake pedal (and release it when the AEB lets go)."""
        full = self.chassis.max_brake_mps2
        pct = 0 if accel_mps2 is None else min(round(-accel_mps2 / full * 100), 100)
        if pct != self._aeb_pedal_pct:
            self._aeb_pedal_pct = max(pct, 0)
            self._actuate({BRAKE_PEDAL: self._aeb_pedal_pct})

    def _actuate(self, targets: dict[str, Value]) -> None:
        """Queue actuations for the sender (the control step never waits for the twin)."""
        self._outgoing.update(targets)
        self._wake_sender.set()

    async def _send(self, stop: asyncio.Event) -> None:
        """Send queued actuations in order, the latest demand per path; the twin gone or refusing is logged."""
        while not stop.is_set() or self._outgoing:
            if not self._outgoing:
                self._wake_sender.clear()
                waiter = asyncio.create_task(self._wake_sender.wait())
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopping}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopping.cancel()
                continue
            batch, self._outgoing = self._outgoing, {}
            try:
                await self.port.actuate(batch)
            except EvosError as exc:  # the twin gone or refusing must not stop the app: report it, go on
                log.warning("adas: %s", exc)

    def signals(self) -> dict[str, Any]:
        """The state the app publishes, in VSS paths and units."""
        mode = self.pilot.mode
        p = self.pilot.acc.params
        fault = mode is AccMode.FAULT
        values: dict[str, Any] = {
            f"{CC}.IsEnabled": mode is not AccMode.OFF,
            f"{CC}.IsActive": mode in (AccMode.ACTIVE, AccMode.OVERRIDE),
            f"{CC}.IsAdaptive": True,
            f"{CC}.IsError": fault,
            f"{CC}.AdaptiveIntervalSet": _level_for(p.time_gap_s),
            f"{EBA}.IsEnabled": self.aeb_enabled,
            f"{EBA}.IsEngaged": self._aeb_stage >= AebStage.PARTIAL,
            f"{EBA}.IsError": self.aeb_enabled and bool(self.fault_reason),
            f"{EVOS}.State": mode.value.upper(),
            f"{EVOS}.TimeGap": p.time_gap_s,
            f"{EVOS}.ForwardCollisionWarning": self._aeb_stage >= AebStage.WARNING,
            f"{EVOS}.FaultReason": self.fault_reason if fault else "",
        }
        if self._speed_set_kmh is not None:
            values[f"{CC}.SpeedSet"] = self._speed_set_kmh
        return values

    def _monitor_signals(self) -> dict[str, Any]:
        m = self.monitor
        return {f"{EVOS}.DeadlineMisses": m.misses, f"{EVOS}.ControlPeriodP99": round(m.p99_s() * 1e3, 1),
                f"{EVOS}.ControlPeriodMax": round(m.max_s() * 1e3, 1)}

    def _publish(self, values: dict[str, Any] | None = None) -> None:
        changed = {k: v for k, v in (values or self.signals()).items() if self._published.get(k, math.nan) != v}
        if changed:
            self.port.publish_nowait(changed)
            self._published.update(changed)

    # ---- the async shell ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Follow the inputs, claim the set points and publish the state."""
        self._inputs = await Mirror(self.port, INPUTS).start()
        self._inputs.on_change(lambda _batch: self._news.set())
        await self.port.provide(PROVIDED, self._on_actuate)
        self._publish({**self.signals(), **self._monitor_signals()})

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] = lambda: None) -> None:
        """Step at ``config.rate_hz`` until ``stop`` is set, watching every deadline; hand the car back to the
        driver on the way out."""
        await self.start()
        sender = asyncio.create_task(self._send(stop), name="adas actuations")
        news = self._news
        ready()
        loop = asyncio.get_running_loop()
        due_s = loop.time()
        report_at_s = due_s + 1.0
        try:
            while not stop.is_set():
                now_s = loop.time()
                parked = self.parked()
                if due_s > now_s and not (parked and news.is_set()):
                    if not parked:  # a plain timer: ``stop`` is seen within one period
                        await asyncio.sleep(due_s - now_s)
                    else:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(news.wait(), due_s - now_s)
                    continue
                news.clear()
                due_s = min(due_s, now_s)  # woken early by an input: not late
                # the rate is in car time: while the twin runs time faster (tests, demos), so does the loop
                scale = self._value(TIME_SCALE)
                speedup = min(max(float(scale), 1.0), 10.0) if isinstance(scale, int | float) else 1.0
                rate_hz = self.config.parked_rate_hz if parked else self.config.rate_hz
                due_s = self.monitor.started(due_s, now_s, 1.0 / (rate_hz * speedup))
                self._take_vehicle()
                self.step(time.time())
                if now_s >= report_at_s:  # the monitor's figures, once a second
                    self._publish(self._monitor_signals())
                    report_at_s = now_s + 1.0
        finally:
            if self._v_ref_mps is not None:
                self._actuate({TARGET_SPEED: HAND_BACK_KMH})
            with contextlib.suppress(EvosError):
                await asyncio.wait_for(sender, 2.0)
            sender.cancel()
            if self._inputs is not None:
                await self._inputs.stop()


async def _main(port: VehiclePort, env: AppEnv) -> None:
    adas = env.instance = AdasService(port)
    await adas.run(env.stop, env.ready)


ADAS_APP = App(
    name="adas", summary="driver assistance: ACC, AEB, the highway pilot (the safety partition)", partition="safety",
    main=_main, overlays=(OVERLAY,),
    grants=Grants(read=paths_in(*INPUTS), provide=paths_in(CC, EBA, EVOS), actuate=paths_in(*PROVIDED, *ACTUATED)),
)

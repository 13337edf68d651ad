"""The ADAS app in the running car: the real twin and ``AdasService``, each an app on its own port of one broker
(as ``evos up`` runs them, in one process), at the twin's time scale 10 (each 10 ms of wall time is 0.1 s of car
time)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from evos.adas import ADAS_APP, AdasService, SensorFrame, Track
from evos.app import App, AppEnv
from evos.broker import Broker, VehiclePort
from evos.car import LocalCar, local_car
from evos.errors import InvalidValueError, NotPermittedError
from evos.twin import TWIN_APP
from helpers import eventually

CC = "Vehicle.ADAS.CruiseControl"
STATE = "Vehicle.Evos.ADAS.State"
TARGET = "Vehicle.Evos.Twin.Driver.TargetSpeed"
BRAKE = "Vehicle.Evos.Twin.Driver.BrakePedal"
ACCELERATOR = "Vehicle.Evos.Twin.Driver.AcceleratorPedal"
WAIT_S = 30.0  # wall-time bound of every wait (the car needs ~2 s of wall time to reach 100 km/h)


@dataclass
class Car:
    local: LocalCar

    @property
    def broker(self) -> Broker:
        return self.local.broker

    @property
    def adas(self) -> AdasService:
        service: AdasService = self.local.app("adas")
        return service

    def value(self, path: str) -> object:
        return self.broker.get(path).value

    def speed_kmh(self) -> float:
        return float(self.broker.get("Vehicle.Speed").value or 0.0)  # type: ignore[arg-type]

    async def actuate(self, targets: dict[str, object]) -> None:
        await self.local.port.actuate(targets)


def adas_with(objects: Callable[[float], SensorFrame]) -> App:
    """The ADAS app with a forward object list plugged in."""

    async def main(port: VehiclePort, env: AppEnv) -> None:
        adas = env.instance = AdasService(port, objects=objects)
        await adas.run(env.stop, env.ready)

    return dataclasses.replace(ADAS_APP, main=main)


@contextlib.asynccontextmanager
async def running(adas: App = ADAS_APP) -> AsyncIterator[Car]:
    async with local_car([TWIN_APP, adas]) as local:
        car = Car(local)
        await car.actuate({"Vehicle.Evos.Twin.TimeScale": 10.0})
        yield car


@pytest.fixture
async def car() -> AsyncIterator[Car]:
    async with running() as c:
        yield c


async def car_seconds(car: Car, seconds: float) -> None:
    """Let ``seconds`` of car time pass."""
    start_s = car.adas.now_s
    await eventually(lambda: car.adas.now_s > start_s + seconds, WAIT_S)


async def cruise_at_100(car: Car) -> None:
    await car.actuate({f"{CC}.IsEnabled": True, f"{CC}.SpeedSet": 100.0})
    assert car.value(STATE) == "STANDBY"
    await car.actuate({f"{CC}.IsActive": True})
    assert car.value(STATE) == "ACTIVE" and car.value(f"{CC}.IsActive") is True
    await eventually(lambda: car.speed_kmh() > 99.0, WAIT_S)


async def test_acc_accelerates_within_limits_and_holds_the_set_speed(car: Car) -> None:
    accels: list[float] = []
    accel_times_s: list[float] = []  # car time: wall-clock stamps times the time scale
    speeds: list[float] = []
    with car.broker.subscribe_paths(("Vehicle.Speed", "Vehicle.Acceleration.Longitudinal")) as sub:  # all values
        await cruise_at_100(car)
        await car_seconds(car, 20.0)  # hold it
        while (batch := sub.get_nowait()) is not None:
            for path, point in batch.items():
                if not isinstance(point.value, float):
                    continue
                if path == "Vehicle.Speed":
                    speeds.append(point.value)
                else:
                    accels.append(point.value)
                    accel_times_s.append((point.timestamp_s or 0.0) * 10)
    assert max(accels) <= 2.0 + 1e-6  # ISO 15622: ≤ 2.0 m/s²
    assert max(accels) > 1.5  # and it does use the acceleration it may
    assert min(accels) >= -3.5
    # jerk over 1 s of car time, as ISO 15622 averages it (samples come at the twin's ticks, whose wall-clock
    # stamps jitter on a loaded machine: neighbouring samples would measure the jitter, not the car)
    jerks = [abs(accels[j] - accels[i]) / (accel_times_s[j] - accel_times_s[i])
             for i in range(len(accels)) for j in range(i + 1, len(accels))
             if 0.9 <= accel_times_s[j] - accel_times_s[i] <= 1.1]
    assert jerks and max(jerks) <= 5.0 * 1.1  # ISO 15622 below 20 m/s (a jump to the set speed: ~15 m/s³)
    assert max(speeds) < 101.0  # no overshoot beyond 1 km/h
    assert 99.0 < car.speed_kmh() < 101.0
    assert car.value(TARGET) is not None and 99.0 < float(car.value(TARGET)) <= 100.0  # type: ignore[arg-type]


async def test_brake_pedal_cancels_to_standby_and_hands_the_car_back(car: Car) -> None:
    await cruise_at_100(car)
    await car.actuate({BRAKE: 30})
    await eventually(lambda: car.value(STATE) == "STANDBY", WAIT_S)
    await eventually(lambda: car.value(TARGET) == -1.0, WAIT_S)
    assert car.value(f"{CC}.IsActive") is False and car.value(f"{CC}.IsEnabled") is True
    await eventually(lambda: car.speed_kmh() < 80.0, WAIT_S)  # the driver's brake slows it; the pilot stays out
    await car.actuate({BRAKE: 0})
    speed = car.speed_kmh()
    await car_seconds(car, 3.0)
    assert car.value(STATE) == "STANDBY" and car.speed_kmh() <= speed  # not resumed by itself
    await car.actuate({f"{CC}.IsActive": True})  # RESUME: back to the set speed
    await eventually(lambda: car.speed_kmh() > 99.0, WAIT_S)


async def test_accelerator_is_a_temporary_override(car: Car) -> None:
    await cruise_at_100(car)
    await car.actuate({ACCELERATOR: 5})  # below the override threshold (10 %): a resting foot
    await car_seconds(car, 2.0)
    assert car.value(STATE) == "ACTIVE"
    await car.actuate({ACCELERATOR: 60})
    await eventually(lambda: car.value(STATE) == "OVERRIDE", WAIT_S)
    await eventually(lambda: car.speed_kmh() > 115.0, WAIT_S)  # the driver's pedal wins
    assert car.value(f"{CC}.IsActive") is True
    await car.actuate({ACCELERATOR: 0})
    await eventually(lambda: car.value(STATE) == "ACTIVE", WAIT_S)
    await eventually(lambda: car.speed_kmh() < 101.0, WAIT_S)  # back down to the set speed


async def test_stale_speed_is_a_fault_and_engaging_is_refused(car: Car) -> None:
    await cruise_at_100(car)
    await car.local.stop_app("twin")  # Vehicle.Speed stops updating
    await eventually(lambda: car.value(STATE) == "FAULT", WAIT_S)
    assert car.value(f"{CC}.IsError") is True and car.value("Vehicle.ADAS.EBA.IsError") is True
    assert "Vehicle.Speed stale" in str(car.value("Vehicle.Evos.ADAS.FaultReason"))
    with pytest.raises(NotPermittedError, match="fault"):
        await car.actuate({f"{CC}.IsActive": True})
    await car.local.start_app(TWIN_APP)  # fresh speed again: standby, the driver must engage again
    await eventually(lambda: car.value(STATE) == "STANDBY", WAIT_S)
    assert car.value(f"{CC}.IsError") is False and car.value("Vehicle.Evos.ADAS.FaultReason") == ""


async def test_parked_it_steps_slowly_without_faulting_and_a_silent_twin_still_faults(car: Car) -> None:
    # a standing car's speed comes once a second (the twin's refresh), not every tick: that is no fault
    await car_seconds(car, 2.0)
    assert car.adas.parked() and car.speed_kmh() == 0.0
    steps = car.adas.steps
    for _ in range(30):  # 3 s of wall time
        await asyncio.sleep(0.1)
        assert car.value(STATE) != "FAULT", car.value("Vehicle.Evos.ADAS.FaultReason")
    # the parked rate (2 Hz of car time, x10 here) and a step per new input, not the 20 Hz (x10) of driving
    assert car.adas.steps - steps < 3 * (2 * 10 * 1.5 + 5), car.adas.steps - steps
    assert car.value("Vehicle.ADAS.EBA.IsError") is False and car.adas.fault_reason == ""
    await car.local.stop_app("twin")  # a twin gone silent while parked is still found out (the AEB's error)
    await eventually(lambda: car.value("Vehicle.ADAS.EBA.IsError") is True, WAIT_S)
    assert "Vehicle.Speed stale" in car.adas.fault_reason


async def test_the_parked_loop_wakes_when_the_car_moves(car: Car) -> None:
    await car_seconds(car, 2.0)
    assert car.adas.parked()
    await car.actuate({TARGET: 40.0})
    await eventually(lambda: car.speed_kmh() > 1.0, WAIT_S)
    await eventually(lambda: not car.adas.parked(), 2.0)
    await cruise_at_100(car)  # and drives as before
    assert car.value(STATE) == "ACTIVE"


async def test_bad_requests_are_refused_and_change_nothing(car: Car) -> None:
    with pytest.raises(NotPermittedError, match="enable it first"):
        await car.actuate({f"{CC}.IsActive": True})
    with pytest.raises(InvalidValueError, match="SpeedSet: value 250"):
        await car.actuate({f"{CC}.IsEnabled": True, f"{CC}.SpeedSet": 250.0})
    assert car.value(STATE) == "OFF" and car.broker.get_target(f"{CC}.IsEnabled").value is None
    with pytest.raises(InvalidValueError, match="AdaptiveIntervalSet: value 9"):
        await car.actuate({f"{CC}.AdaptiveIntervalSet": 9})
    with pytest.raises(InvalidValueError, match="TimeGap"):
        await car.actuate({"Vehicle.Evos.ADAS.TimeGap": 0.5})  # the overlay's range [1.0, 2.5] s
    await car.actuate({f"{CC}.IsEnabled": True})
    with pytest.raises(NotPermittedError, match="no set speed"):  # parked, and no SpeedSet given
        await car.actuate({f"{CC}.IsActive": True})
    await car.actuate({f"{CC}.AdaptiveIntervalSet": 1})
    assert car.value("Vehicle.Evos.ADAS.TimeGap") == 1.0
    await car.actuate({"Vehicle.Evos.ADAS.TimeGap": 2.5})
    assert car.value(f"{CC}.AdaptiveIntervalSet") == 5 and car.adas.pilot.acc.params.time_gap_s == 2.5


async def test_aeb_brakes_for_a_stopped_car_with_the_cruise_control_off() -> None:
    """An object list plugged in: a stopped car 60 m ahead, the driver holds 60 km/h; AEB warns and stops short.

    The object list reads the car's speed from the broker at each of its own steps (not from the test's polling), so
    the gap it reports is the gap the car really has, however late the test's waits wake up."""
    travelled = {"m": 0.0, "s": 0.0}
    brokers: list[Broker] = []

    def objects(now_s: float) -> SensorFrame:
        speed = brokers[0].get("Vehicle.Speed").value if brokers else None  # None: the car has not started yet
        speed_mps = float(speed or 0.0) / 3.6  # type: ignore[arg-type]
        travelled["m"] += speed_mps * (now_s - travelled["s"])
        travelled["s"] = now_s
        return SensorFrame(now_s, (Track(1, 60.0 - travelled["m"], -speed_mps, 0.0, 0.0, 1.9),))

    async with running(adas_with(objects)) as car:
        brokers.append(car.broker)
        with car.broker.subscribe_paths(("Vehicle.Evos.ADAS.ForwardCollisionWarning",
                                         "Vehicle.ADAS.EBA.IsEngaged")) as sub:
            seen: dict[str, set[object]] = {}

            def follow() -> bool:
                while (batch := sub.get_nowait()) is not None:
                    for path, point in batch.items():
                        seen.setdefault(path, set()).add(point.value)
                return True

            await car.actuate({TARGET: 60.0})  # the driver model: a driver who does not brake
            await eventually(lambda: follow() and car.speed_kmh() > 20.0, WAIT_S)
            await eventually(lambda: follow() and car.speed_kmh() < 0.1, WAIT_S)
            follow()
        assert True in seen["Vehicle.Evos.ADAS.ForwardCollisionWarning"]
        assert True in seen["Vehicle.ADAS.EBA.IsEngaged"]
        # stopped short of it, not far back (2-5 m here; on a loaded machine the object list, integrated from the
        # speed it reads, lags the twin by a step or two and the car stops up to ~5.2 m back)
        assert 0.0 < 60.0 - travelled["m"] < 8.0

"""AEB brakes to a standstill and reaches HOLD at every control rate (issue 11).

A Euro NCAP CCRs-like case: the ego approaches a stationary car straight ahead (100 % overlap), starting at
TTC 4 s as Euro NCAP AEB C2C v3.0.2 does; AEB on, ACC off, the driver not braking (the simulator's driver then
holds the initial speed, so nothing but AEB stops the car). The sensor is ideal — no noise, no latency — so
the only thing that changes between runs is the control rate and the start speed.

Every run must end without contact, with the ego standing, AEB in its HOLD stage, and the ego staying put while
AEB holds it. The hold lasts ``AebParams().hold_s`` (2 s, "held 2 s" in docs/adas.md); after it, AEB hands the car
back to the driver, and this simulated driver, who holds the initial speed, drives on — that is the driver's
doing, not AEB's, so the standing check covers the hold (the run goes on 3 s and more past the stop, and must
stay free of contact throughout).
"""

from __future__ import annotations

import numpy as np
import pytest

from evos.adas import AebParams, AebStage, EgoSpec, RunResult, Scenario, SensorParams, TargetSpec, simulate

START_TTC_S = 4.0  # Euro NCAP AEB C2C v3.0.2: CCRs starts at TTC 4 s
DURATION_S = START_TTC_S + 6.0  # as the built-in CCRs cells; the ego stands by ~5 s, so ≥ 3 s past the stop
STANDING_MPS = 0.05  # where AEB itself counts the car as standing
HELD_S = AebParams().hold_s  # how long AEB holds the car after the stop: the standing check covers this
IDEAL_SENSOR = SensorParams(range_noise_m=0.0, range_rate_noise_mps=0.0, lateral_noise_m=0.0, accel_noise_mps2=0.0,
                            latency_steps=0)
FINE_SPEEDS_MPS = tuple(5.0 + 0.25 * i for i in range(41))  # 5-15 m/s (18-54 km/h)
COARSE_SPEEDS_MPS = FINE_SPEEDS_MPS[::2]  # 0.5 m/s steps
SWEEP = [(10.0, v) for v in FINE_SPEEDS_MPS] + [(rate, v) for rate in (20.0, 25.0, 50.0, 100.0)
                                               for v in COARSE_SPEEDS_MPS]


def ccrs(speed_mps: float, rate_hz: float) -> Scenario:
    return Scenario(
        f"CCRs {speed_mps:g} m/s at {rate_hz:g} Hz",
        EgoSpec(speed_mps=speed_mps, acc=False, aeb=True),  # no brake-pedal windows: the driver does not brake
        (TargetSpec(gap_m=speed_mps * START_TTC_S, speed_mps=0.0),),
        duration_s=DURATION_S, rate_hz=rate_hz, sensor=IDEAL_SENSOR)


def describe(result: RunResult, k: int) -> str:
    trace = result.trace
    return (f"t={trace.time_s[k]:.2f} s v={trace.ego_speed_mps[k]:.3f} m/s "
            f"stage={AebStage(int(trace.aeb_stage[k])).name} gap={trace.gap_m[k]:.2f} m")


def test_the_sweep_covers_the_rates_and_speeds() -> None:
    assert len(FINE_SPEEDS_MPS) == 41 and FINE_SPEEDS_MPS[0] == 5.0 and FINE_SPEEDS_MPS[-1] == 15.0
    assert {rate for rate, _ in SWEEP} == {10.0, 20.0, 25.0, 50.0, 100.0}


@pytest.mark.parametrize(("rate_hz", "speed_mps"), SWEEP, ids=[f"{r:g}hz-{v:g}mps" for r, v in SWEEP])
def test_aeb_stops_and_holds_a_ccrs_approach(rate_hz: float, speed_mps: float) -> None:
    result = simulate(ccrs(speed_mps, rate_hz))
    trace = result.trace
    speed = trace.ego_speed_mps
    label = f"{speed_mps:g} m/s at {rate_hz:g} Hz"

    assert not result.collision, f"{label}: hit the stopped car at {result.impact_speed_mps:.2f} m/s"
    standing = np.flatnonzero(speed < STANDING_MPS)
    assert standing.size, f"{label}: never stopped (lowest speed {speed.min():.3f} m/s)"
    first = int(standing[0])
    hold_steps = round(HELD_S * rate_hz)
    assert first + hold_steps <= len(speed), f"{label}: stopped at {trace.time_s[first]:.2f} s, too late to watch"

    window = slice(first, first + hold_steps)  # from the first standstill to the end of the hold
    moving = first + np.flatnonzero(speed[window] >= STANDING_MPS)
    assert not moving.size, (f"{label}: stopped at {describe(result, first)}, then moved again toward the stopped "
                             f"car: {describe(result, int(moving[0]))}")
    not_held = first + 1 + np.flatnonzero(trace.aeb_stage[first + 1:first + hold_steps] != AebStage.HOLD)
    assert not not_held.size, (f"{label}: standing but AEB not holding: {describe(result, int(not_held[0]))} "
                               f"(stopped at {describe(result, first)})")
    assert result.aeb_stage == AebStage.HOLD.name.lower(), f"{label}: strongest stage {result.aeb_stage}"

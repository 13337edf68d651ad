"""ACC and AEB: control laws, limits and state machines, on hand-made observations and short simulated runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evos.adas import (
    AccController,
    AccMode,
    AccParams,
    AebController,
    AebStage,
    EgoSpec,
    ObjectTruth,
    Observation,
    RadarSensor,
    Scenario,
    SensorFrame,
    SensorParams,
    TargetAction,
    TargetSpec,
    Track,
    required_decel_mps2,
    simulate,
)
from evos.errors import InvalidArgumentError

KMH = 1 / 3.6


def frame(*tracks: Track, now_s: float = 0.0, healthy: bool = True) -> SensorFrame:
    return SensorFrame(now_s, tracks, healthy)


def lead(range_m: float, rate_mps: float = 0.0, lateral_m: float = 0.0) -> Track:
    return Track(1, range_m, rate_mps, 0.0, lateral_m, 1.9)


# ---- ACC state machine --------------------------------------------------------------------------------
def test_acc_is_off_until_switched_on_and_engaged() -> None:
    acc = AccController()
    obs = Observation(0.0, 20.0, 0.0, frame())
    assert acc.command(obs).accel_mps2 is None and acc.mode is AccMode.OFF
    assert not acc.engage()  # SET does nothing while the main switch is off
    acc.switch_on()
    assert acc.command(obs).mode is AccMode.STANDBY
    assert acc.engage(25.0)
    assert acc.command(Observation(0.01, 20.0, 0.0, frame())).mode is AccMode.ACTIVE


def test_brake_pedal_sends_acc_to_standby_and_accelerator_overrides() -> None:
    acc = AccController()
    acc.switch_on()
    acc.engage(30.0)
    assert acc.command(Observation(0.0, 20.0, 0.0, frame(), accelerator_pedal=True)).mode is AccMode.OVERRIDE
    assert acc.command(Observation(0.01, 20.0, 0.0, frame(), accelerator_pedal=True)).accel_mps2 is None
    assert acc.command(Observation(0.02, 20.0, 0.0, frame())).mode is AccMode.ACTIVE  # released: resumes
    cmd = acc.command(Observation(0.03, 20.0, 0.0, frame(), brake_pedal=True))
    assert cmd.mode is AccMode.STANDBY and cmd.accel_mps2 is None
    assert acc.command(Observation(0.04, 20.0, 0.0, frame())).mode is AccMode.STANDBY  # stays until re-engaged


def test_sensor_fault_disengages_until_healthy_and_re_engaged() -> None:
    acc = AccController()
    acc.switch_on()
    acc.engage(30.0)
    cmd = acc.command(Observation(0.0, 20.0, 0.0, frame(healthy=False)))
    assert cmd.mode is AccMode.FAULT and cmd.accel_mps2 is None
    assert not acc.engage()
    assert acc.command(Observation(0.01, 20.0, 0.0, frame())).mode is AccMode.STANDBY
    assert acc.engage()
    acc.switch_off()
    assert acc.command(Observation(0.02, 20.0, 0.0, frame(healthy=False))).mode is AccMode.OFF


def test_time_gap_is_selectable_within_1_to_2_5_s() -> None:
    acc = AccController()
    acc.set_time_gap(1.0)
    acc.set_time_gap(2.5)
    assert acc.params.time_gap_s == 2.5
    with pytest.raises(InvalidArgumentError, match=r"time_gap_s.*\[1, 2.5\].*0.8"):
        acc.set_time_gap(0.8)
    with pytest.raises(InvalidArgumentError, match="max_decel_mps2"):
        AccParams(max_decel_mps2=5.0)


def test_acc_commands_respect_accel_and_jerk_limits_step_by_step() -> None:
    """A close, slow car appears: the demand ramps at ≤ 2.5 m/s³ (above 20 m/s) and saturates at -3.5 m/s²."""
    acc = AccController(AccParams(set_speed_mps=30.0))
    acc.switch_on()
    acc.engage()
    dt = 0.01
    demands = [acc.command(Observation(k * dt, 25.0, 0.0, frame(lead(20.0, -10.0)))).accel_mps2 for k in range(300)]
    a = np.array(demands, dtype=float)
    assert a.min() == pytest.approx(-3.5)
    assert np.abs(np.diff(a)).max() <= 2.5 * dt + 1e-12
    free = [acc.command(Observation(3 + k * dt, 10.0, 0.0, frame())).accel_mps2 for k in range(400)]
    assert max(free) == pytest.approx(2.0)  # free road, far below the set speed: capped at +2 m/s²
    assert np.abs(np.diff(np.array(free, dtype=float))).max() <= 5.0 * dt + 1e-12  # below 20 m/s: 5 m/s³


def test_acc_ignores_cars_in_the_next_lane() -> None:
    acc = AccController(AccParams(set_speed_mps=25.0))
    acc.switch_on()
    acc.engage()
    cmd = acc.command(Observation(0.0, 25.0, 0.0, frame(lead(10.0, -5.0, lateral_m=3.5))))
    assert cmd.lead is None and cmd.accel_mps2 == 0.0


# ---- AEB ------------------------------------------------------------------------------------------------
def test_required_deceleration_by_hand() -> None:
    assert required_decel_mps2(10.0, 10.0, 10.0, 0.0) == pytest.approx(5.0)  # v²/2d to a stopped car
    assert required_decel_mps2(10.0, 20.0, 10.0, 0.0) == pytest.approx(5.0)  # v_r²/2d to a moving car
    # lead at 10 m/s braking at 6 m/s² stops in 8.33 m: the ego (20 m/s) must stop within 18.33 m
    assert required_decel_mps2(10.0, 20.0, 10.0, 6.0) == pytest.approx(400 / (2 * (10 + 100 / 12)))
    # lead braking gently (2 m/s²), speeds match before it stops: b + v_r²/2d
    assert required_decel_mps2(10.0, 20.0, 5.0, 2.0) == pytest.approx(2.0 + 25 / 20)
    # ... but the same lead 50 m ahead stops (after 7.5 s) before the speeds would match: v²/2(d + v_t²/2b)
    assert required_decel_mps2(50.0, 20.0, 5.0, 2.0) == pytest.approx(400 / (2 * (50 + 225 / 4)))
    assert required_decel_mps2(0.0, 5.0, 5.0, 0.0) == math.inf
    assert required_decel_mps2(10.0, 20.0, -1.0, 0.0) == 0.0


def test_aeb_stages_escalate_with_urgency_and_latch() -> None:
    aeb = AebController()
    assert aeb.command(Observation(0.0, 20.0, 0.0, frame(lead(100.0, -20.0)))).stage is AebStage.IDLE
    # 20 m/s towards a stopped car, stopping 1 m short: required 400 / 2(d - 1)
    assert aeb.command(Observation(0.1, 20.0, 0.0, frame(lead(60.0, -20.0)))).stage is AebStage.WARNING  # 3.4 m/s²
    partial = aeb.command(Observation(0.2, 20.0, 0.0, frame(lead(45.0, -20.0))))  # 4.5 m/s²
    assert partial.stage is AebStage.PARTIAL and partial.accel_mps2 == -4.0
    full = aeb.command(Observation(0.3, 20.0, 0.0, frame(lead(35.0, -20.0))))  # 5.9 m/s²
    assert full.stage is AebStage.FULL and full.accel_mps2 == -9.0
    # still closing in but now at a lower urgency: braking does not weaken
    assert aeb.command(Observation(0.4, 10.0, -9.0, frame(lead(15.0, -3.0)))).stage is AebStage.FULL
    assert aeb.command(Observation(0.5, 0.0, 0.0, frame(lead(2.0, 0.0)))).stage is AebStage.HOLD


def test_aeb_ignores_a_car_in_the_next_lane() -> None:
    cmd = AebController().command(Observation(0.0, 20.0, 0.0, frame(lead(8.0, -20.0, lateral_m=3.5))))
    assert cmd.stage is AebStage.IDLE and cmd.threat is None


# ---- sensor ----------------------------------------------------------------------------------------------
def test_sensor_range_fov_latency_and_determinism() -> None:
    params = SensorParams(max_range_m=100.0, fov_deg=20.0, latency_steps=3)
    truth = ObjectTruth.of((0, 50.0, -5.0, 0.0, 0.0, 1.9, 4.7), (1, 150.0, 0.0, 0.0, 0.0, 1.9, 4.7),
                           (2, 10.0, 0.0, 0.0, 6.0, 1.9, 4.7))
    sensor = RadarSensor(params, np.random.default_rng(7))
    frames = [sensor.measure(k * 0.01, truth) for k in range(5)]
    assert [len(f.tracks) for f in frames] == [0, 0, 0, 1, 1]  # 3 steps late; only object 0 is seen
    assert frames[3].tracks[0].object_id == 0 and frames[3].tracks[0].range_m == pytest.approx(50.0, abs=0.5)
    again = RadarSensor(params, np.random.default_rng(7))
    assert [again.measure(k * 0.01, truth) for k in range(5)][4].tracks == frames[4].tracks


# ---- closed loop -----------------------------------------------------------------------------------------
def _follow(time_gap_s: float) -> np.ndarray:
    lead_car = TargetSpec(gap_m=30.0, speed_mps=25.0)
    result = simulate(Scenario("follow", EgoSpec(speed_mps=25.0, acc=True, set_speed_mps=30.0,
                                                 time_gap_s=time_gap_s), (lead_car,), duration_s=60.0))
    assert not result.collision and not result.comfort_breach
    tail = result.trace.time_s > 45.0
    return result.trace.gap_m[tail] / result.trace.ego_speed_mps[tail]


@pytest.mark.parametrize("time_gap_s", [1.0, 1.8, 2.5])
def test_acc_steady_following_converges_to_the_set_time_gap(time_gap_s: float) -> None:
    gaps = _follow(time_gap_s)
    expected = time_gap_s + 4.0 / 25.0  # the law keeps standstill distance + time gap × speed
    assert gaps.mean() == pytest.approx(expected, abs=0.05)
    assert gaps.std() < 0.03


def test_acc_stops_short_of_a_stationary_car_from_50_kmh() -> None:
    v = 50 * KMH
    result = simulate(Scenario("acc stop", EgoSpec(speed_mps=v, acc=True), (TargetSpec(gap_m=4 * v, speed_mps=0.0),),
                               duration_s=15.0))
    assert not result.collision
    assert result.trace.ego_speed_mps[-1] == 0.0
    assert 2.0 < result.trace.gap_m[-1] < 6.0  # near the 4 m standstill distance
    assert result.aeb_stage in ("idle", "warning")  # ACC alone did it, without emergency braking
    assert not result.comfort_breach and result.max_decel_mps2 <= 3.5


def test_acc_stop_and_go_follows_a_lead_that_stops_and_drives_off() -> None:
    actions = (TargetAction(at_s=5.0, accel_mps2=-2.0, until_speed_mps=0.0),
               TargetAction(at_s=20.0, accel_mps2=1.5, until_speed_mps=12.0))
    result = simulate(Scenario("stop and go", EgoSpec(speed_mps=12.0, acc=True, set_speed_mps=15.0),
                               (TargetSpec(gap_m=25.0, speed_mps=12.0, actions=actions),), duration_s=40.0))
    tr = result.trace
    assert not result.collision and not result.comfort_breach
    stopped = (tr.time_s > 17.0) & (tr.time_s < 20.0)  # the lead stopped at 11 s
    assert np.all(tr.ego_speed_mps[stopped] < 0.1)
    assert tr.ego_speed_mps[-1] == pytest.approx(12.0, abs=0.5)  # resumed behind the lead by itself
    assert result.max_jerk_mps3 <= 5.0 and result.max_decel_mps2 <= 3.5


def test_aeb_alone_avoids_a_stationary_car_at_50_kmh() -> None:
    v = 50 * KMH
    result = simulate(Scenario("aeb", EgoSpec(speed_mps=v), (TargetSpec(gap_m=4 * v, speed_mps=0.0),),
                               duration_s=10.0))
    assert not result.collision
    assert result.aeb_stage in ("full", "hold") and result.fcw_time_s is not None
    assert result.trace.ego_speed_mps[-1] == 0.0 and result.trace.gap_m[-1] > 0.0


def test_aeb_off_hits_the_stationary_car() -> None:
    """The counter-check: without AEB the driver who holds the speed crashes at full speed."""
    v = 50 * KMH
    result = simulate(Scenario("no aeb", EgoSpec(speed_mps=v, aeb=False), (TargetSpec(gap_m=4 * v, speed_mps=0.0),),
                               duration_s=10.0))
    assert result.collision and result.impact_speed_mps == pytest.approx(v, abs=0.2)


def test_a_run_ending_between_one_and_two_seconds_has_metrics() -> None:
    """A crash after 1.2 s (shorter than the 1 s jerk window plus the second before it) used to raise a ValueError
    in the comfort metric; now it reports the crash, and no comfort window."""
    v = 20.0
    result = simulate(Scenario("early crash", EgoSpec(speed_mps=v, aeb=False), (TargetSpec(gap_m=1.2 * v,
                                                                                            speed_mps=0.0),)))
    assert result.collision and result.duration_s == pytest.approx(1.2, abs=0.02)
    assert not result.comfort_breach and result.max_jerk_mps3 < 0.1  # the driver just held the speed


def test_a_car_in_the_next_lane_is_passed_without_braking() -> None:
    target = TargetSpec(gap_m=40.0, speed_mps=0.0, lane=1)
    result = simulate(Scenario("adjacent", EgoSpec(speed_mps=20.0), (target,), duration_s=5.0))
    assert not result.collision and result.aeb_stage == "idle"
    assert result.trace.ego_speed_mps[-1] == pytest.approx(20.0, abs=0.1)


def test_cut_in_close_ahead_triggers_aeb() -> None:
    """A slower car (10 m/s slower) cuts in from the left lane, overlapping the ego's path at TTC ~2 s."""
    cut_in = TargetSpec(gap_m=35.0, speed_mps=10.0, lane=1, actions=(TargetAction(at_s=0.5, to_lane=0,
                                                                                   duration_s=2.0),))
    result = simulate(Scenario("cut-in", EgoSpec(speed_mps=20.0, acc=True), (cut_in,), duration_s=10.0))
    assert not result.collision and result.min_ttc_s < 2.5
    tr = result.trace
    assert tr.ego_speed_mps[-1] == pytest.approx(10.0, abs=1.5)  # now following it


def test_driver_brake_during_acc_hands_control_back() -> None:
    result = simulate(Scenario("brake", EgoSpec(speed_mps=25.0, acc=True, brake_pedal=((2.0, 3.0),)),
                               duration_s=6.0))
    tr = result.trace
    assert tr.acc_active[tr.time_s < 2.0].all() and not tr.acc_active[tr.time_s > 2.0].any()
    # the driver braked at 3 m/s² for 1 s, through the 0.25 s actuator lag
    assert tr.ego_speed_mps[tr.time_s == 3.0][0] == pytest.approx(25.0 - 3.0 * (1 - 0.25), abs=0.3)
    assert tr.ego_speed_mps[-1] > 24.0  # then holds ~25 m/s again (ACC stays in standby)

"""Highway pilot: ACC + lane centring + lane changes (on request, and automatic to overtake slower traffic).

One state machine for the whole function, a pure core driven by ``command(observation)``:
``off`` —switch_on→ ``standby`` —engage→ ``active``; the accelerator pedal or steering torque → ``override`` (the
driver's input wins on the axis they touch: no acceleration demand while the accelerator is pressed, no steering
and no lane change while they steer) → back to ``active`` when released; the brake pedal → ``standby`` (the driver
must engage again); an unhealthy object or lane sensor → ``fault`` → ``standby`` once healthy. AEB is not part of
the pilot: it always runs and its demand wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from evos.adas._acc import AccController, AccMode, Observation, select_lead
from evos.adas._lateral import LaneCentring, LaneChange, LaneChangeState, LaneFrame, LateralParams, gap_free
from evos.adas._params import AccParams, _check
from evos.adas._sensor import Track


@dataclass(frozen=True)
class PilotParams:
    """When the pilot overtakes on its own (automatic lane changes; keep right when the right lane is free)."""

    auto_lane_change: bool = True
    overtake_margin_mps: float = 3.0  # a lead this much slower than the set speed is worth overtaking
    overtake_range_m: float = 80.0  # ... when it is this close
    keep_right_clear_s: float = 6.0  # go back right when the right lane is free this many seconds ahead
    cooldown_s: float = 5.0  # between automatic lane changes

    def __post_init__(self) -> None:
        _check(self, {"overtake_margin_mps": (0.0, 30.0), "overtake_range_m": (5.0, 300.0),
                      "keep_right_clear_s": (0.0, 30.0), "cooldown_s": (0.0, 120.0)})


@dataclass(frozen=True)
class PilotCommand:
    """Demands for this step (None: no demand on that axis) and the pilot's state."""

    mode: AccMode
    accel_mps2: float | None
    curvature_per_m: float | None
    lane_change: LaneChangeState
    lead: Track | None = None
    indicator: int = 0  # +1 left, -1 right while a lane change is requested or under way


class HighwayPilot:
    """ACC, lane centring and lane changes for one car: ``command(observation, lanes, steering_torque)``."""

    def __init__(self, acc: AccParams | None = None, lateral: LateralParams | None = None,
                 pilot: PilotParams | None = None, ego_length_m: float = 4.7) -> None:
        self.acc = AccController(acc)
        self.centring = LaneCentring(lateral)
        self.lane_change = LaneChange(lateral, ego_length_m)
        self.params = pilot or PilotParams()
        self.mode = AccMode.OFF
        self._last_auto_s = -1e9

    def switch_on(self) -> None:
        if self.mode is AccMode.OFF:
            self.mode = AccMode.STANDBY
            self.acc.switch_on()

    def switch_off(self) -> None:
        self.mode = AccMode.OFF
        self.acc.switch_off()
        self.lane_change.cancel()

    def engage(self, set_speed_mps: float | None = None) -> bool:
        if self.mode is not AccMode.STANDBY or not self.acc.engage(set_speed_mps):
            return False
        self.mode = AccMode.ACTIVE
        self.centring.reset()
        return True

    def cancel(self) -> None:
        """CANCEL: from active or override back to standby (the driver hands nothing back to engage again)."""
        if self.mode in (AccMode.ACTIVE, AccMode.OVERRIDE):
            self.mode = AccMode.STANDBY
            self.acc.cancel()
            self.lane_change.cancel()

    def request_lane_change(self, direction: int, now_s: float) -> bool:
        """The indicator stalk: +1 left, -1 right; only while active."""
        return self.mode is AccMode.ACTIVE and self.lane_change.request(direction, now_s)

    def _transition(self, obs: Observation, lanes: LaneFrame, steering_torque: bool) -> None:
        if self.mode is AccMode.OFF:
            return
        if not (obs.frame.healthy and lanes.healthy):
            self.mode = AccMode.FAULT
        elif self.mode is AccMode.FAULT or (self.mode in (AccMode.ACTIVE, AccMode.OVERRIDE) and obs.brake_pedal):
            self.mode = AccMode.STANDBY
        elif self.mode is AccMode.ACTIVE and (obs.accelerator_pedal or steering_torque):
            self.mode = AccMode.OVERRIDE
        elif self.mode is AccMode.OVERRIDE and not (obs.accelerator_pedal or steering_torque):
            self.mode = AccMode.ACTIVE
            self.centring.reset()
        if self.mode is not AccMode.ACTIVE:
            self.lane_change.cancel()

    def command(self, obs: Observation, lanes: LaneFrame, steering_torque: bool = False) -> PilotCommand:
        self._transition(obs, lanes, steering_torque)
        if self.mode is AccMode.ACTIVE:
            self._auto_lane_change(obs, lanes)
        plan = self.lane_change.step(obs.now_s, obs.speed_mps, lanes, obs.frame) if self.mode is AccMode.ACTIVE \
            else None
        w = lanes.lane_width_m
        path: tuple[float, ...] = (0.0,)
        if plan is not None and self.lane_change.state is not LaneChangeState.WAITING:
            pos = plan[0]
            path = (-pos, self.lane_change.direction * w - pos)  # both lanes, relative to the ego
        acc_obs = obs if path == obs.path_lateral_m else Observation(
            obs.now_s, obs.speed_mps, obs.accel_mps2, obs.frame, obs.brake_pedal, obs.accelerator_pedal,
            obs.intervention, path)
        acc_cmd = self.acc.command(acc_obs)
        curvature = None
        if self.mode is AccMode.ACTIVE or (self.mode is AccMode.OVERRIDE and not steering_torque):
            if plan is None:
                curvature = self.centring.command(obs.now_s, obs.speed_mps, lanes)
            else:
                curvature = self.centring.command(obs.now_s, obs.speed_mps, lanes, plan[1], position_m=plan[0])
        else:
            self.centring.reset()
        busy = self.lane_change.state is not LaneChangeState.IDLE
        return PilotCommand(self.mode, acc_cmd.accel_mps2, curvature, self.lane_change.state, acc_cmd.lead,
                            self.lane_change.direction if busy else 0)

    def _auto_lane_change(self, obs: Observation, lanes: LaneFrame) -> None:
        """Overtake a slower lead on the left; return to the right lane when it is free."""
        p = self.params
        if (not p.auto_lane_change or self.lane_change.state is not LaneChangeState.IDLE
                or obs.now_s - self._last_auto_s < p.cooldown_s):
            return
        set_speed = self.acc.params.set_speed_mps
        lead = select_lead(obs.frame, lanes.lane_width_m / 2)
        w = lanes.lane_width_m
        lead_speed = obs.speed_mps + lead.range_rate_mps if lead is not None else math.inf
        slow_lead = (lead is not None and lead.range_m < p.overtake_range_m
                     and lead_speed < set_speed - p.overtake_margin_mps)
        if slow_lead and lanes.lanes_left > 0 and self._lane_better(obs, w, lead_speed):
            self._request(1, obs.now_s)
        elif not slow_lead and lanes.lanes_right > 0 and self._right_clear(obs, w, set_speed):
            self._request(-1, obs.now_s)

    def _lane_better(self, obs: Observation, lane_m: float, lead_speed_mps: float) -> bool:
        """Whether the lane ``lane_m`` to the left is free enough now and moves faster than our lead."""
        ahead = [t for t in obs.frame.tracks if t.range_m > 0 and abs(t.lateral_m - lane_m) <= lane_m / 2]
        faster = all(obs.speed_mps + t.range_rate_mps > lead_speed_mps + 1.0 or t.range_m > self.params.overtake_range_m
                     for t in ahead)
        return faster and gap_free(self.lane_change.params, obs.speed_mps, obs.frame, lane_m, lane_m,
                                   self.lane_change.ego_length_m)

    def _right_clear(self, obs: Observation, lane_width_m: float, set_speed_mps: float) -> bool:
        clear_m = self.params.keep_right_clear_s * max(obs.speed_mps, 1.0)
        for t in obs.frame.tracks:
            if abs(t.lateral_m + lane_width_m) > lane_width_m / 2:
                continue
            if t.range_m > 0 and t.range_m < clear_m and obs.speed_mps + t.range_rate_mps < set_speed_mps - 1.0:
                return False
        return gap_free(self.lane_change.params, obs.speed_mps, obs.frame, -lane_width_m, lane_width_m,
                        self.lane_change.ego_length_m)

    def _request(self, direction: int, now_s: float) -> None:
        if self.lane_change.request(direction, now_s):
            self._last_auto_s = now_s

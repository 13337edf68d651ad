"""Driver assistance: ACC, AEB, lane centring, lane changes and a highway pilot, sensors and a road simulator.

Public API: the controllers ``AccController``, ``AebController`` and ``HighwayPilot`` (``command(observation)``),
lateral parts (``LaneCentring``, ``LaneChange``), the sensor interfaces ``ObjectSensor``/``RadarSensor`` and
``LaneSensor``, the road (``Road``, ``Segment``) and traffic (``TrafficSpec``), the highway-env check
(``run_highway_env``), scenarios (``Scenario``, ``load_scenario``), ``simulate(scenario)`` and the
built-in suites (``run_suite("euro-ncap-ccr")``). Everything is synchronous and deterministic for a given seed,
except ``AdasService(port)``: the app in the running car (``ADAS_APP``), with the signals of ``ADAS_OVERLAY``.
"""

from evos.adas._acc import AccCommand, AccController, AccMode, Observation
from evos.adas._aeb import AebCommand, AebController, AebStage, required_decel_mps2
from evos.adas._highway_env import HighwayEnvResult, run_highway_env
from evos.adas._lateral import (
    LaneCentring,
    LaneChange,
    LaneChangeState,
    LaneFrame,
    LaneSensor,
    LaneSensorParams,
    LateralParams,
)
from evos.adas._params import AccParams, AebParams, EgoLimits, SensorParams
from evos.adas._pilot import HighwayPilot, PilotCommand, PilotParams
from evos.adas._road import Road, Segment
from evos.adas._scenario import EgoSpec, Scenario, ScenarioFileError, TargetAction, TargetSpec, load_scenario
from evos.adas._sensor import ObjectSensor, ObjectTruth, RadarSensor, SensorFrame, Track
from evos.adas._service import ADAS_APP, AdasService, AdasServiceConfig, DeadlineMonitor
from evos.adas._service import OVERLAY as ADAS_OVERLAY
from evos.adas._sim import RunResult, simulate
from evos.adas._suite import SUITES, SuiteRun, run_suite, suite_scenarios, summary
from evos.adas._traffic import IdmParams, MobilParams, TrafficSpec

__all__ = [
    "ADAS_APP",
    "ADAS_OVERLAY",
    "SUITES",
    "AccCommand",
    "AccController",
    "AccMode",
    "AccParams",
    "AdasService",
    "AdasServiceConfig",
    "AebCommand",
    "AebController",
    "AebParams",
    "AebStage",
    "DeadlineMonitor",
    "EgoLimits",
    "EgoSpec",
    "HighwayEnvResult",
    "HighwayPilot",
    "IdmParams",
    "LaneCentring",
    "LaneChange",
    "LaneChangeState",
    "LaneFrame",
    "LaneSensor",
    "LaneSensorParams",
    "LateralParams",
    "MobilParams",
    "ObjectSensor",
    "ObjectTruth",
    "Observation",
    "PilotCommand",
    "PilotParams",
    "RadarSensor",
    "Road",
    "RunResult",
    "Scenario",
    "ScenarioFileError",
    "Segment",
    "SensorFrame",
    "SensorParams",
    "SuiteRun",
    "TargetAction",
    "TargetSpec",
    "Track",
    "TrafficSpec",
    "load_scenario",
    "required_decel_mps2",
    "run_highway_env",
    "run_suite",
    "simulate",
    "suite_scenarios",
    "summary",
]

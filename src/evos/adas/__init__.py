"""Driver assistance: adaptive cruise control (ACC), emergency braking (AEB), sensors and a road simulator.

Public API: the controllers ``AccController`` and ``AebController`` (``command(observation)``), the sensor interface
``ObjectSensor`` with ``RadarSensor``, scenarios (``Scenario``, ``load_scenario``), ``simulate(scenario)`` and the
built-in suites (``run_suite("euro-ncap-ccr")``). Everything is synchronous and deterministic for a given seed.
"""

from evos.adas._acc import AccCommand, AccController, AccMode, Observation
from evos.adas._aeb import AebCommand, AebController, AebStage, required_decel_mps2
from evos.adas._params import AccParams, AebParams, EgoLimits, SensorParams
from evos.adas._scenario import EgoSpec, Scenario, ScenarioFileError, TargetAction, TargetSpec, load_scenario
from evos.adas._sensor import ObjectSensor, ObjectTruth, RadarSensor, SensorFrame, Track
from evos.adas._sim import RunResult, simulate
from evos.adas._suite import SUITES, SuiteRun, run_suite, suite_scenarios, summary

__all__ = [
    "SUITES",
    "AccCommand",
    "AccController",
    "AccMode",
    "AccParams",
    "AebCommand",
    "AebController",
    "AebParams",
    "AebStage",
    "EgoLimits",
    "EgoSpec",
    "ObjectSensor",
    "ObjectTruth",
    "Observation",
    "RadarSensor",
    "RunResult",
    "Scenario",
    "ScenarioFileError",
    "SensorFrame",
    "SensorParams",
    "SuiteRun",
    "TargetAction",
    "TargetSpec",
    "Track",
    "load_scenario",
    "required_decel_mps2",
    "run_suite",
    "simulate",
    "suite_scenarios",
    "summary",
]

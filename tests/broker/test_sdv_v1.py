"""``sdv.databroker.v1`` (the KUKSA databroker's API up to 0.6.1, which Eclipse Velocitas apps speak), through the
real server: the Broker service (GetDatapoints, SetDatapoints, Subscribe with its query language, GetMetadata) and
the Collector service (RegisterDatapoints, UpdateDatapoints, StreamDatapoints), as docs/sdv-databroker-v1.md states
them. Authorization is off here; the attacks on this entrance are in tests/security/test_sdv_v1_attacks.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from broker.sdv_client import (
    CALL_S,
    NOT_AVAILABLE,
    UNKNOWN,
    Sdv,
    close,
    dp,
    error_names,
    next_raw,
    next_reply,
    refused,
    sdv_channel,
    seconds,
    subscribe,
    subscribed,
    typed,
)
from evos import errors
from evos.broker import Broker, BrokerServer
from evos.broker.sdv_v1 import broker_pb2, collector_pb2, types_pb2
from evos.vss import Catalog, EntryType, load_catalog
from helpers import eventually

# sensors and attributes (VSS 6.0)
SPEED = "Vehicle.Speed"  # float
MOVING = "Vehicle.IsMoving"  # boolean
ABS = "Vehicle.ADAS.ABS.IsEngaged"  # boolean
CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"  # boolean
AIR = "Vehicle.Exterior.AirTemperature"  # float, never set in these tests unless a test sets it
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"  # float, 0 to 100
LATITUDE = "Vehicle.CurrentLocation.Latitude"  # double, -90 to 90
DISTANCE = "Vehicle.TraveledDistance"  # uint32
TIRE = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"  # uint16
TIME_TO_SERVICE = "Vehicle.Service.TimeToService"  # int32
STEERING = "Vehicle.Chassis.SteeringWheel.Angle"  # int16
GEAR = "Vehicle.Powertrain.Transmission.CurrentGear"  # int8
DTC = "Vehicle.Diagnostics.DTCList"  # string[]
CELLS = "Vehicle.Powertrain.TractionBattery.CellVoltage.CellVoltages"  # float[]
VIN = "Vehicle.VehicleIdentification.VIN"  # string attribute
DOOR_COUNT = "Vehicle.Cabin.DoorCount"  # uint8 attribute, catalog default 4
SEAT_POS_COUNT = "Vehicle.Cabin.SeatPosCount"  # uint8[] attribute, catalog default [2, 3]
# actuators (VSS 6.0)
WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"  # uint8, 0 to 100
FAN = "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed"  # uint8, 0 to 100
AMBIENT = "Vehicle.Cabin.Light.AmbientLight.Row1.DriverSide.Intensity"  # uint8, 1 to 100
CRUISE_INTERVAL = "Vehicle.ADAS.CruiseControl.AdaptiveIntervalSet"  # uint8, no min/max
SEAT_POS = "Vehicle.Cabin.Seat.Row1.DriverSide.Position"  # uint16, min 0
DISPLAY_OFF = "Vehicle.Cabin.Infotainment.HMI.DisplayOffDuration"  # uint16, no min/max
TRIP = "Vehicle.TripMeterReading"  # uint32
SEAT_HEAT = "Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling"  # int8, -100 to 100
SELECTED_GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"  # int8, no min/max
STEER_TARGET = "Vehicle.MotionManagement.Steering.SteeringWheel.AngleTarget"  # int16, no min/max
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"  # float
DEST_LAT = "Vehicle.Cabin.Infotainment.Navigation.DestinationSet.Latitude"  # double, -90 to 90
AC = "Vehicle.Cabin.HVAC.IsAirConditioningActive"  # boolean
AIRFLOW = "Vehicle.Cabin.HVAC.Station.Row1.Driver.AirDistribution"  # string, allowed UP, MIDDLE, DOWN
# signals of datatypes VSS 6.0 has none of (or no actuator of), from an overlay
ODOMETER = "Vehicle.Evos.Test.Odometer"  # int64 sensor, with a description
SERIALS = "Vehicle.Evos.Test.Serials"  # uint64[] sensor
DELTAS = "Vehicle.Evos.Test.Deltas"  # int64[] sensor
LEVEL = "Vehicle.Evos.Test.Level"  # int32 actuator, -5 to 5, with a description
OFFSET = "Vehicle.Evos.Test.Offset"  # int64 actuator
ENERGY = "Vehicle.Evos.Test.Energy"  # uint64 actuator
OFFSETS = "Vehicle.Evos.Test.Offsets"  # int16[] actuator
SWITCHES = "Vehicle.Evos.Test.Switches"  # boolean[] actuator
WEIGHTS = "Vehicle.Evos.Test.Weights"  # double[] actuator
TEST_OVERLAY = {
    ODOMETER: {"type": "sensor", "datatype": "int64", "description": "A signed 64-bit count, for the tests."},
    SERIALS: {"type": "sensor", "datatype": "uint64[]"},
    DELTAS: {"type": "sensor", "datatype": "int64[]"},
    LEVEL: {"type": "actuator", "datatype": "int32", "min": -5, "max": 5, "description": "A level from -5 to 5."},
    OFFSET: {"type": "actuator", "datatype": "int64"},
    ENERGY: {"type": "actuator", "datatype": "uint64"},
    OFFSETS: {"type": "actuator", "datatype": "int16[]"},
    SWITCHES: {"type": "actuator", "datatype": "boolean[]"},
    WEIGHTS: {"type": "actuator", "datatype": "double[]"},
}
NOWHERE = "Vehicle.Cabin.Teleporter.IsEngaged"  # no such signal
NO_ID = 987_654  # no signal has this id
ACTUATORS = [WINDOW, FAN, AMBIENT, CRUISE_INTERVAL, SEAT_POS, DISPLAY_OFF, TRIP, SEAT_HEAT, SELECTED_GEAR, STEER_TARGET,
             TEMP, DEST_LAT, AC, AIRFLOW, LEVEL, OFFSET, ENERGY, OFFSETS, SWITCHES, WEIGHTS]
OLD_S = 1_000_000.0  # a source timestamp long past: a reply stamped with it was not stamped "now"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """VSS 6.0 and the few test signals of datatypes it lacks (the conftest's ``broker`` and ``server`` use it)."""
    return load_catalog(overlays=[TEST_OVERLAY])


@pytest.fixture
async def sdv(server: BrokerServer) -> AsyncIterator[Sdv]:
    async with sdv_channel(server.address) as stubs:
        yield stubs


class Hardware:
    """The provider of ``ACTUATORS``: keeps every batch it is asked to carry out, and (``follow``) reports it done by
    publishing it as the actuators' current values, as the car's apps do."""

    def __init__(self, broker: Broker, follow: bool = True) -> None:
        self.broker = broker
        self.follow = follow
        self.batches: list[dict[str, Any]] = []
        broker.provide(ACTUATORS, self.handle)

    async def handle(self, batch: dict[str, Any]) -> None:
        self.batches.append(dict(batch))
        if self.follow:
            self.broker.publish(batch)


@pytest.fixture
def hardware(broker: Broker) -> Hardware:
    return Hardware(broker)


def ids(broker: Broker, *paths: str) -> list[int]:
    return [broker.catalog.get(path).id for path in paths]


async def get(sdv: Sdv, *paths: str) -> dict[str, tuple[str | None, Any]]:
    reply = await sdv.broker.GetDatapoints(broker_pb2.GetDatapointsRequest(datapoints=list(paths)), timeout=CALL_S)
    return {path: typed(datapoint) for path, datapoint in reply.datapoints.items()}


async def set_datapoints(sdv: Sdv, datapoints: dict[str, types_pb2.Datapoint]) -> dict[str, str]:
    reply = await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints=datapoints), timeout=CALL_S)
    return error_names(reply.errors)


async def update(sdv: Sdv, datapoints: dict[int, types_pb2.Datapoint]) -> dict[int, str]:
    reply = await sdv.collector.UpdateDatapoints(collector_pb2.UpdateDatapointsRequest(datapoints=datapoints),
                                                 timeout=CALL_S)
    return error_names(reply.errors)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# ==== GetDatapoints ==============================================================================================


async def test_get_datapoints_gives_the_current_value_stamped_when_the_broker_got_it(sdv: Sdv, broker: Broker
                                                                                      ) -> None:
    broker.publish({SPEED: 12.5})
    reply = await sdv.broker.GetDatapoints(broker_pb2.GetDatapointsRequest(datapoints=[SPEED]), timeout=CALL_S)
    assert list(reply.datapoints) == [SPEED]
    assert typed(reply.datapoints[SPEED]) == ("float_value", 12.5)
    assert seconds(reply.datapoints[SPEED]) == pytest.approx(broker.get(SPEED).timestamp_s, abs=1e-6)


@pytest.mark.parametrize(("path", "value", "expected"), [
    (SPEED, 12.5, ("float_value", 12.5)),
    (LATITUDE, 48.125, ("double_value", 48.125)),
    (MOVING, True, ("bool_value", True)),
    (VIN, "W0L000051T2123456", ("string_value", "W0L000051T2123456")),
    (GEAR, -1, ("int32_value", -1)),
    (STEERING, -300, ("int32_value", -300)),
    (TIME_TO_SERVICE, -86_400, ("int32_value", -86_400)),
    (ODOMETER, -(2**40), ("int64_value", -(2**40))),
    (FAN, 40, ("uint32_value", 40)),
    (TIRE, 250, ("uint32_value", 250)),
    (DISTANCE, 4_000_000_000, ("uint32_value", 4_000_000_000)),
    (ENERGY, 2**63 + 1, ("uint64_value", 2**63 + 1)),
    (DOOR_COUNT, None, ("uint32_value", 4)),  # None: the catalog's default
    (DTC, ["P0A80", "U0100"], ("string_array", ["P0A80", "U0100"])),
    (CELLS, [3.5, 3.75], ("float_array", [3.5, 3.75])),
    (SEAT_POS_COUNT, None, ("uint32_array", [2, 3])),
    (OFFSETS, [1, -2], ("int32_array", [1, -2])),
    (DELTAS, [-(2**40), 7], ("int64_array", [-(2**40), 7])),
    (SERIALS, [2**64 - 1], ("uint64_array", [2**64 - 1])),
    (SWITCHES, [True, False], ("bool_array", [True, False])),
    (WEIGHTS, [0.5, -1.25], ("double_array", [0.5, -1.25])),
], ids=lambda v: v.rsplit(".", 1)[-1] if isinstance(v, str) and v.startswith("Vehicle.") else None)
async def test_get_datapoints_holds_each_datatype_in_its_field(sdv: Sdv, broker: Broker, path: str, value: Any,
                                                               expected: tuple[str, Any]) -> None:
    if value is not None:
        broker.publish({path: value})
    assert await get(sdv, path) == {path: expected}


async def test_get_datapoints_answers_every_path_asked_for(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 30.0})
    assert await get(sdv, SPEED, AIR, NOWHERE, "Vehicle.Cabin") == {
        SPEED: ("float_value", 30.0), AIR: NOT_AVAILABLE, NOWHERE: UNKNOWN, "Vehicle.Cabin": UNKNOWN}


async def test_get_datapoints_gives_an_actuators_current_value_not_its_target(sdv: Sdv, broker: Broker) -> None:
    still = Hardware(broker, follow=False)  # carries nothing out: the window does not move
    assert await set_datapoints(sdv, {WINDOW: dp("uint32_value", 40)}) == {}
    assert still.batches == [{WINDOW: 40}]
    assert await get(sdv, WINDOW) == {WINDOW: NOT_AVAILABLE}
    broker.publish({WINDOW: 25})
    assert await get(sdv, WINDOW) == {WINDOW: ("uint32_value", 25)}


async def test_get_datapoints_of_nothing_is_invalid_argument(sdv: Sdv) -> None:
    error = await rpc_error(sdv.broker.GetDatapoints(broker_pb2.GetDatapointsRequest(), timeout=CALL_S))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "No datapoints requested" in (error.details() or "")


# ==== SetDatapoints ==============================================================================================


async def test_set_datapoints_actuates_and_the_current_value_follows(sdv: Sdv, broker: Broker,
                                                                     hardware: Hardware) -> None:
    errors_ = await set_datapoints(sdv, {WINDOW: dp("uint32_value", 40), TEMP: dp("float_value", 21.5),
                                         AIRFLOW: dp("string_value", "UP")})
    assert errors_ == {}
    assert hardware.batches == [{WINDOW: 40, TEMP: 21.5, AIRFLOW: "UP"}]  # one batch for one provider
    assert (broker.get(WINDOW).value, broker.get(TEMP).value, broker.get(AIRFLOW).value) == (40, 21.5, "UP")
    assert await get(sdv, WINDOW, TEMP, AIRFLOW) == {
        WINDOW: ("uint32_value", 40), TEMP: ("float_value", 21.5), AIRFLOW: ("string_value", "UP")}


# (actuator, field, value sent, value the provider is asked for)
RIGHT_FIELDS = [
    (WINDOW, "uint32_value", 40, 40),  # UInt8
    (SEAT_POS, "uint32_value", 500, 500),  # UInt16
    (TRIP, "uint32_value", 4_000_000_000, 4_000_000_000),  # UInt32
    (ENERGY, "uint64_value", 2**63 + 1, 2**63 + 1),  # UInt64
    (SEAT_HEAT, "int32_value", -20, -20),  # Int8
    (STEER_TARGET, "int32_value", -1200, -1200),  # Int16
    (LEVEL, "int32_value", -5, -5),  # Int32
    (OFFSET, "int64_value", -(2**40), -(2**40)),  # Int64
    (TEMP, "float_value", 21.5, 21.5),  # Float
    (DEST_LAT, "double_value", 48.125, 48.125),  # Double
    (AC, "bool_value", True, True),
    (AC, "bool_value", False, False),
    (AIRFLOW, "string_value", "DOWN", "DOWN"),
    (OFFSETS, "int32_array", [1, -2], (1, -2)),  # Int16[]
    (SWITCHES, "bool_array", [True, False], (True, False)),
    (WEIGHTS, "double_array", [0.5], (0.5,)),
]


@pytest.mark.parametrize(("path", "field", "value", "asked"), RIGHT_FIELDS,
                         ids=[f"{p.rsplit('.', 1)[-1]}-{f}" for p, f, *_ in RIGHT_FIELDS])
async def test_set_datapoints_takes_the_field_of_the_signals_datatype(sdv: Sdv, hardware: Hardware, path: str,
                                                                      field: str, value: Any, asked: Any) -> None:
    assert await set_datapoints(sdv, {path: dp(field, value)}) == {}
    assert hardware.batches == [{path: asked}]


# (actuator, field, value): not the field of the actuator's datatype, or no value at all
WRONG_FIELDS = [
    (WINDOW, "int32_value", 40),  # UInt8 takes uint32_value only
    (WINDOW, "int64_value", 40),
    (WINDOW, "uint64_value", 40),
    (WINDOW, "float_value", 40.0),
    (WINDOW, "double_value", 40.0),
    (WINDOW, "bool_value", True),
    (WINDOW, "string_value", "40"),
    (WINDOW, "uint32_array", [40]),
    (SEAT_POS, "int32_value", 500),  # UInt16
    (TRIP, "uint64_value", 5),  # UInt32
    (TRIP, "int32_value", 5),
    (ENERGY, "uint32_value", 5),  # UInt64
    (ENERGY, "int64_value", 5),
    (SEAT_HEAT, "uint32_value", 20),  # Int8 takes int32_value only
    (SEAT_HEAT, "int64_value", 20),
    (SEAT_HEAT, "float_value", 20.0),
    (STEER_TARGET, "uint32_value", 5),  # Int16
    (LEVEL, "int64_value", 1),  # Int32
    (LEVEL, "uint32_value", 1),
    (OFFSET, "int32_value", 1),  # Int64
    (TEMP, "double_value", 21.5),  # Float takes float_value only
    (TEMP, "int32_value", 21),
    (TEMP, "uint32_value", 21),
    (DEST_LAT, "float_value", 48.0),  # Double takes double_value only
    (AC, "int32_value", 1),
    (AC, "uint32_value", 1),
    (AC, "string_value", "true"),
    (AIRFLOW, "bool_value", True),
    (AIRFLOW, "string_array", ["UP"]),
    (OFFSETS, "int64_array", [1]),  # Int16[] takes int32_array only
    (OFFSETS, "int32_value", 1),
    (SWITCHES, "bool_value", True),
    (WEIGHTS, "float_array", [0.5]),
    (WINDOW, None, None),  # a Datapoint that holds no value
    (WINDOW, "failure_value", "NOT_AVAILABLE"),
    (AC, "failure_value", "INVALID_VALUE"),
]


@pytest.mark.parametrize(("path", "field", "value"), WRONG_FIELDS,
                         ids=[f"{p.rsplit('.', 1)[-1]}-{f}" for p, f, _ in WRONG_FIELDS])
async def test_set_datapoints_refuses_another_field_as_invalid_type(sdv: Sdv, broker: Broker, hardware: Hardware,
                                                                    path: str, field: str | None, value: Any) -> None:
    assert await set_datapoints(sdv, {path: dp(field, value)}) == {path: "INVALID_TYPE"}
    assert hardware.batches == []
    assert broker.get_target(path).value is None and broker.get(path).value is None


OUT_OF_BOUNDS = [
    (WINDOW, "uint32_value", 101),  # its max
    (AMBIENT, "uint32_value", 0),  # its min
    (CRUISE_INTERVAL, "uint32_value", 256),  # UInt8's range (no min/max of its own)
    (CRUISE_INTERVAL, "uint32_value", 2**32 - 1),
    (DISPLAY_OFF, "uint32_value", 65_536),  # UInt16's range
    (SELECTED_GEAR, "int32_value", 128),  # Int8's range
    (SELECTED_GEAR, "int32_value", -129),
    (STEER_TARGET, "int32_value", 32_768),  # Int16's range
    (STEER_TARGET, "int32_value", -32_769),
    (SEAT_HEAT, "int32_value", -101),  # its min
    (LEVEL, "int32_value", 6),  # its max
    (DEST_LAT, "double_value", 90.5),
    (AIRFLOW, "string_value", "SIDEWAYS"),  # not one of the allowed values
    (AIRFLOW, "string_value", "up"),
]


@pytest.mark.parametrize(("path", "field", "value"), OUT_OF_BOUNDS,
                         ids=[f"{p.rsplit('.', 1)[-1]}-{v}" for p, _, v in OUT_OF_BOUNDS])
async def test_set_datapoints_refuses_a_value_out_of_bounds(sdv: Sdv, broker: Broker, hardware: Hardware, path: str,
                                                            field: str, value: Any) -> None:
    assert await set_datapoints(sdv, {path: dp(field, value)}) == {path: "OUT_OF_BOUNDS"}
    assert hardware.batches == [] and broker.get_target(path).value is None


@pytest.mark.parametrize(("path", "datapoint", "error"), [
    (SPEED, dp("float_value", 50.0), "ACCESS_DENIED"),  # a sensor
    (ABS, dp("bool_value", True), "ACCESS_DENIED"),
    (VIN, dp("string_value", "W0L000051T2123456"), "ACCESS_DENIED"),  # an attribute
    (DOOR_COUNT, dp("uint32_value", 2), "ACCESS_DENIED"),
    (NOWHERE, dp("bool_value", True), "UNKNOWN_DATAPOINT"),
    ("Vehicle.Cabin.HVAC", dp("bool_value", True), "UNKNOWN_DATAPOINT"),  # a branch, not a signal
])
async def test_set_datapoints_takes_only_actuators(sdv: Sdv, broker: Broker, hardware: Hardware, path: str,
                                                   datapoint: types_pb2.Datapoint, error: str) -> None:
    before = broker.get(DOOR_COUNT)
    assert await set_datapoints(sdv, {path: datapoint}) == {path: error}
    assert hardware.batches == []
    assert broker.get(SPEED).value is None and broker.get(VIN).value is None and broker.get(DOOR_COUNT) == before


async def test_set_datapoints_is_all_or_nothing_and_lists_every_error(sdv: Sdv, broker: Broker,
                                                                      hardware: Hardware) -> None:
    errors_ = await set_datapoints(sdv, {
        TEMP: dp("float_value", 22.0),  # right
        WINDOW: dp("uint32_value", 30),  # right
        SPEED: dp("float_value", 1.0),
        NOWHERE: dp("bool_value", True),
        FAN: dp("int32_value", 3),
        SEAT_HEAT: dp("int32_value", 120),
    })
    assert errors_ == {SPEED: "ACCESS_DENIED", NOWHERE: "UNKNOWN_DATAPOINT", FAN: "INVALID_TYPE",
                       SEAT_HEAT: "OUT_OF_BOUNDS"}
    assert hardware.batches == []
    for path in (TEMP, WINDOW, SPEED, FAN, SEAT_HEAT):
        assert broker.get(path).value is None, path
    for path in (TEMP, WINDOW, FAN, SEAT_HEAT):
        assert broker.get_target(path).value is None, path


async def test_set_datapoints_of_an_actuator_nobody_provides_is_unavailable(sdv: Sdv, broker: Broker) -> None:
    got: list[dict[str, Any]] = []

    async def window_only(batch: dict[str, Any]) -> None:
        got.append(batch)

    broker.provide([WINDOW], window_only)
    error = await rpc_error(sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
        WINDOW: dp("uint32_value", 30), TEMP: dp("float_value", 22.0)}), timeout=CALL_S))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert TEMP in (error.details() or "")
    assert got == [] and broker.get_target(WINDOW).value is None  # the provided one was not carried out either


@pytest.mark.parametrize(("refusal", "status"), [
    (errors.NotPermittedError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
])
async def test_set_datapoints_refused_by_the_provider_fails_with_its_status_and_message(
        sdv: Sdv, broker: Broker, refusal: type[errors.EvosError], status: grpc.StatusCode) -> None:
    async def refuse(batch: dict[str, Any]) -> None:
        raise refusal(f"{WINDOW}: the window motor is overheated, try again later", path=WINDOW)

    broker.provide([WINDOW], refuse)
    error = await rpc_error(sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
        WINDOW: dp("uint32_value", 30)}), timeout=CALL_S))
    assert error.code() == status
    assert "the window motor is overheated" in (error.details() or "")
    assert broker.get_target(WINDOW).value is None and broker.get(WINDOW).value is None


async def test_set_datapoints_of_nothing_is_invalid_argument(sdv: Sdv, hardware: Hardware) -> None:
    error = await rpc_error(sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(), timeout=CALL_S))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert hardware.batches == []


# ==== Subscribe ==================================================================================================


async def test_subscribe_replies_at_once_with_the_current_values(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 12.5, FAN: 40, DTC: ["P0A80"]})
    call = subscribe(sdv, f"SELECT {SPEED}, {AIR}, {FAN}, {DTC}, {DOOR_COUNT}")
    try:
        assert await next_reply(call) == {SPEED: ("float_value", 12.5), AIR: NOT_AVAILABLE, FAN: ("uint32_value", 40),
                                          DTC: ("string_array", ["P0A80"]), DOOR_COUNT: ("uint32_value", 4)}
    finally:
        call.cancel()


async def test_subscribe_replies_on_each_change_with_every_select_field(sdv: Sdv, broker: Broker) -> None:
    call = subscribe(sdv, f"SELECT {SPEED}, {MOVING}")
    try:
        assert await next_reply(call) == {SPEED: NOT_AVAILABLE, MOVING: NOT_AVAILABLE}
        broker.publish({SPEED: 10.0})
        assert await next_reply(call) == {SPEED: ("float_value", 10.0), MOVING: NOT_AVAILABLE}
        broker.publish({MOVING: True})
        assert await next_reply(call) == {SPEED: ("float_value", 10.0), MOVING: ("bool_value", True)}
        broker.publish({SPEED: 20.0, MOVING: False})  # one batch: one reply
        assert await next_reply(call) == {SPEED: ("float_value", 20.0), MOVING: ("bool_value", False)}
        broker.publish({SPEED: 21.0})
        assert await next_reply(call) == {SPEED: ("float_value", 21.0), MOVING: ("bool_value", False)}
    finally:
        call.cancel()


async def test_subscribe_replies_when_a_where_only_signal_changes_while_the_condition_holds(sdv: Sdv,
                                                                                            broker: Broker) -> None:
    broker.publish({SPEED: 10.0, AIR: 5.0})
    call = subscribe(sdv, f"SELECT {SPEED} WHERE {AIR} > 0")
    try:
        assert await next_reply(call) == {SPEED: ("float_value", 10.0)}  # the WHERE-only path is not a field
        broker.publish({AIR: 6.0})
        assert await next_reply(call) == {SPEED: ("float_value", 10.0)}
        broker.publish({AIR: -1.0})  # the condition fails: nothing
        broker.publish({SPEED: 20.0})  # a SELECT path changes, the condition still fails: nothing
        broker.publish({AIR: 7.0})  # holds again
        assert await next_reply(call) == {SPEED: ("float_value", 20.0)}
    finally:
        call.cancel()


async def test_subscribe_sends_nothing_for_a_value_published_again_unchanged(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 10.0, MOVING: True})
    call = subscribe(sdv, f"SELECT {SPEED} WHERE {MOVING} = true")
    try:
        assert await next_reply(call) == {SPEED: ("float_value", 10.0)}
        broker.publish({SPEED: 10.0})  # the same value again
        broker.publish({MOVING: True})
        broker.publish({SPEED: 10.0, MOVING: True, ABS: True})  # and a signal the query does not name
        broker.publish({ABS: False})
        broker.publish({SPEED: 11.0})
        assert await next_reply(call) == {SPEED: ("float_value", 11.0)}
    finally:
        call.cancel()


async def test_subscribe_where_false_sends_nothing_until_it_holds(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 10.0})
    call = await subscribed(sdv, broker, f"SELECT {SPEED}, {ABS} WHERE {SPEED} > 130.0", SPEED)  # Velocitas'
    try:
        broker.publish({SPEED: 100.0})
        broker.publish({ABS: True})
        broker.publish({SPEED: 130.0})
        broker.publish({SPEED: 131.5})
        assert await next_reply(call) == {SPEED: ("float_value", 131.5), ABS: ("bool_value", True)}
        broker.publish({SPEED: 90.0})
        broker.publish({SPEED: 135.0})
        assert await next_reply(call) == {SPEED: ("float_value", 135.0), ABS: ("bool_value", True)}
    finally:
        call.cancel()


async def test_subscribe_replies_are_stamped_with_the_time_of_the_reply(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 10.0}, timestamp_s=OLD_S)
    start_s = time.time()
    call = subscribe(sdv, f"SELECT {SPEED}, {AIR}, {SPEED} > 5 AS fast")
    try:
        first = await next_raw(call)
        broker.publish({SPEED: 11.0}, timestamp_s=OLD_S)
        second = await next_raw(call)
        end_s = time.time()
        for reply in (first, second):
            assert set(reply.fields) == {SPEED, AIR, "fast"}
            for name, datapoint in reply.fields.items():
                assert start_s - 1 <= seconds(datapoint) <= end_s + 1, (name, datapoint)
        assert typed(second.fields[SPEED]) == ("float_value", 11.0)
    finally:
        call.cancel()


async def test_subscribe_field_names_path_alias_and_position(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 12.5, MOVING: True})
    call = subscribe(sdv, f"SELECT {SPEED} AS speed, {MOVING} moving, {SPEED} > 100 AS fast, {SPEED}, ({SPEED} > 5), "
                          f"LAG({SPEED}), {SPEED} BETWEEN 10 AND 20, LAG({SPEED}) AS previousSpeed")
    try:
        assert await next_reply(call) == {
            "speed": ("float_value", 12.5), "moving": ("bool_value", True), "fast": ("bool_value", False),
            SPEED: ("float_value", 12.5), "field_5": ("bool_value", True), "field_6": NOT_AVAILABLE,
            "field_7": ("bool_value", True), "previousSpeed": NOT_AVAILABLE}
        broker.publish({SPEED: 150.0})
        assert await next_reply(call) == {
            "speed": ("float_value", 150.0), "moving": ("bool_value", True), "fast": ("bool_value", True),
            SPEED: ("float_value", 150.0), "field_5": ("bool_value", True), "field_6": ("float_value", 12.5),
            "field_7": ("bool_value", False), "previousSpeed": ("float_value", 12.5)}
    finally:
        call.cancel()


async def test_subscribe_field_n_counts_from_one(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 12.5})
    call = subscribe(sdv, f"SELECT ({SPEED} = 0), {SPEED}")
    try:
        assert await next_reply(call) == {"field_1": ("bool_value", False), SPEED: ("float_value", 12.5)}
    finally:
        call.cancel()


async def test_subscribe_lag_is_the_value_before_the_last_change(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 10.0})
    call = subscribe(sdv, f"SELECT {SPEED}, LAG({SPEED}) AS prev")
    try:
        assert await next_reply(call) == {SPEED: ("float_value", 10.0), "prev": NOT_AVAILABLE}
        broker.publish({SPEED: 20.0})
        assert await next_reply(call) == {SPEED: ("float_value", 20.0), "prev": ("float_value", 10.0)}
        broker.publish({SPEED: 20.0})  # unchanged: no reply, and no change of LAG
        broker.publish({SPEED: 30.0})
        assert await next_reply(call) == {SPEED: ("float_value", 30.0), "prev": ("float_value", 20.0)}
    finally:
        call.cancel()


async def test_subscribe_lag_in_where_speeding_up_only(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 10.0})
    call = await subscribed(sdv, broker, f"SELECT {SPEED} WHERE {SPEED} > LAG({SPEED})", SPEED)
    try:  # no first reply: LAG has no value yet, so the comparison fails
        broker.publish({SPEED: 20.0})
        assert await next_reply(call) == {SPEED: ("float_value", 20.0)}
        broker.publish({SPEED: 15.0})  # slower: nothing
        broker.publish({SPEED: 18.0})
        assert await next_reply(call) == {SPEED: ("float_value", 18.0)}
    finally:
        call.cancel()


async def test_subscribe_between_is_inclusive_and_takes_numbers(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 10.0})
    call = await subscribed(sdv, broker, f"SELECT {SPEED} WHERE {SPEED} BETWEEN 50 AND 150", SPEED)  # QUERY.md's
    try:
        broker.publish({SPEED: 49.5})
        broker.publish({SPEED: 50.0})
        assert await next_reply(call) == {SPEED: ("float_value", 50.0)}
        broker.publish({SPEED: 151.0})
        broker.publish({SPEED: 150.0})
        assert await next_reply(call) == {SPEED: ("float_value", 150.0)}
        broker.publish({SPEED: 100.0})
        assert await next_reply(call) == {SPEED: ("float_value", 100.0)}
    finally:
        call.cancel()


async def test_subscribe_not_between(sdv: Sdv, broker: Broker) -> None:
    broker.publish({FAN: 10})
    call = subscribe(sdv, f"SELECT {FAN} WHERE {FAN} NOT BETWEEN 20 AND 40")
    try:
        assert await next_reply(call) == {FAN: ("uint32_value", 10)}
        broker.publish({FAN: 20})
        broker.publish({FAN: 30})
        broker.publish({FAN: 40})
        broker.publish({FAN: 41})
        assert await next_reply(call) == {FAN: ("uint32_value", 41)}
    finally:
        call.cancel()


# {A}, {B} and {C}: three boolean sensors
LOGIC = [
    ("{A} AND {B}", (True, True, False), True),
    ("{A} AND {B}", (True, False, False), False),
    ("{A} OR {B}", (False, False, False), False),
    ("{A} OR {B}", (False, True, False), True),
    ("NOT {A}", (True, False, False), False),
    ("NOT {A}", (False, False, False), True),
    ("NOT ({A} AND {B})", (True, True, False), False),
    ("NOT {A} AND {B}", (False, False, False), False),  # (NOT A) AND B: NOT binds tighter than AND
    ("{A} OR {B} AND {C}", (True, False, False), True),  # A OR (B AND C): AND binds tighter than OR
    ("({A} OR {B}) AND {C}", (True, False, False), False),
    ("{A} AND ({B} OR {C})", (True, False, True), True),
    ("NOT (NOT {A})", (True, False, False), True),
    ("(({A}))", (True, False, False), True),
    ("{A} = TRUE AND {B} = FALSE", (True, False, False), True),
    ("{A} = true OR {C} = true", (False, False, False), False),
    ("{A} <> {B}", (True, False, False), True),
    ("{A} != {B}", (True, True, False), False),
    ("({A} OR {B}) AND NOT ({B} AND {C})", (False, True, True), False),
]


@pytest.mark.parametrize(("expression", "values", "expected"), LOGIC,
                         ids=[f"{e.format(A='A', B='B', C='C')}-{''.join('TF'[not v] for v in vs)}"
                              for e, vs, _ in LOGIC])
async def test_subscribe_not_and_or_parentheses(sdv: Sdv, broker: Broker, expression: str,
                                                values: tuple[bool, bool, bool], expected: bool) -> None:
    broker.publish(dict(zip((MOVING, ABS, CHARGING), values, strict=True)))
    call = subscribe(sdv, f"SELECT {expression.format(A=MOVING, B=ABS, C=CHARGING)} AS r")
    try:
        assert await next_reply(call) == {"r": ("bool_value", expected)}
    finally:
        call.cancel()


# (values, condition, whether it holds): numbers take the type of the other side; numbers of different datatypes
# compare; float equality is within a small epsilon
NUMBERS = [
    ({SPEED: 130.5}, f"{SPEED} > 130", True),
    ({SPEED: 130.0}, f"{SPEED} > 130", False),
    ({SPEED: 130.0}, f"{SPEED} >= 130", True),
    ({SPEED: 130.0}, f"{SPEED} = 130", True),
    ({SPEED: 130.0}, f"{SPEED} <= 129.5", False),
    ({SPEED: 130.5}, f"130 < {SPEED}", True),  # the literal on the left
    ({SPEED: 0.1}, f"{SPEED} = 0.1", True),  # a Float holds 0.1 only nearly
    ({SPEED: 0.1}, f"{SPEED} != 0.1", False),
    ({SPEED: 0.1}, f"{SPEED} = 0.2", False),
    ({FAN: 40}, f"{FAN} = 40", True),
    ({FAN: 40}, f"{FAN} <> 40", False),
    ({FAN: 40}, f"{FAN} > 39", True),
    ({FAN: 40}, f"{FAN} < 40", False),
    ({DISTANCE: 4_000_000_000}, f"{DISTANCE} > 3999999999", True),  # beyond Int32: typed as the UInt32
    ({ODOMETER: 5_000_000_000}, f"{ODOMETER} >= 5000000000", True),
    ({ENERGY: 2**64 - 1}, f"{ENERGY} = 18446744073709551615", True),  # beyond Int64: typed as the UInt64
    ({LATITUDE: 48.25}, f"{LATITUDE} > 48", True),  # typed as the Double
    ({FAN: 40, SPEED: 39.5}, f"{FAN} > {SPEED}", True),  # UInt8 against Float
    ({FAN: 40, SPEED: 40.0}, f"{FAN} = {SPEED}", True),
    ({SEAT_HEAT: -20, SPEED: 0.0}, f"{SEAT_HEAT} < {SPEED}", True),  # Int8 against Float
    ({DISTANCE: 100, TIME_TO_SERVICE: 100}, f"{DISTANCE} = {TIME_TO_SERVICE}", True),  # UInt32 against Int32
    ({DISTANCE: 0, TIME_TO_SERVICE: -1}, f"{TIME_TO_SERVICE} < {DISTANCE}", True),
    ({DISTANCE: 4_000_000_000, TIME_TO_SERVICE: -1}, f"{TIME_TO_SERVICE} > {DISTANCE}", False),
    ({LATITUDE: 48.5, SPEED: 48.5}, f"{LATITUDE} = {SPEED}", True),  # Double against Float
    ({AIRFLOW: "UP"}, f"{AIRFLOW} = 'UP'", True),
    ({AIRFLOW: "UP"}, f"{AIRFLOW} <> 'UP'", False),
    ({AIRFLOW: "UP"}, f"{AIRFLOW} = 'DOWN'", False),
    ({MOVING: True}, f"{MOVING} = true", True),
    ({MOVING: True}, f"{MOVING} = FALSE", False),
]


@pytest.mark.parametrize(("values", "condition", "holds"), NUMBERS,
                         ids=[c.replace("Vehicle.", "") for _, c, _ in NUMBERS])
async def test_subscribe_comparisons_and_literal_typing(sdv: Sdv, broker: Broker, values: dict[str, Any],
                                                        condition: str, holds: bool) -> None:
    broker.publish(values)
    call = subscribe(sdv, f"SELECT {condition} AS r")
    try:
        assert await next_reply(call) == {"r": ("bool_value", holds)}
    finally:
        call.cancel()
    if holds:  # the same, as a condition: it holds at once, so a first reply
        call = subscribe(sdv, f"SELECT {DOOR_COUNT} WHERE {condition}")
        try:
            assert await next_reply(call) == {DOOR_COUNT: ("uint32_value", 4)}
        finally:
            call.cancel()


async def test_subscribe_equal_to_a_signal_without_value_is_false_not_equal_is_true(sdv: Sdv, broker: Broker
                                                                                     ) -> None:
    call = subscribe(sdv, f"SELECT ({AIR} = 20) AS eq, ({AIR} != 20) AS ne, ({MOVING} = true) AS moving")
    try:
        assert await next_reply(call) == {"eq": ("bool_value", False), "ne": ("bool_value", True),
                                          "moving": ("bool_value", False)}
    finally:
        call.cancel()


async def test_subscribe_where_equal_to_a_signal_without_value_sends_nothing(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 10.0})
    call = await subscribed(sdv, broker, f"SELECT {SPEED} WHERE {AIR} = 20", SPEED)
    try:
        broker.publish({SPEED: 11.0})
        broker.publish({AIR: 20.0})
        assert await next_reply(call) == {SPEED: ("float_value", 11.0)}
    finally:
        call.cancel()


async def test_subscribe_where_not_equal_to_a_signal_without_value_holds(sdv: Sdv, broker: Broker) -> None:
    broker.publish({SPEED: 10.0})
    call = subscribe(sdv, f"SELECT {SPEED} WHERE {AIR} != 20")
    try:
        assert await next_reply(call) == {SPEED: ("float_value", 10.0)}
        broker.publish({AIR: 20.0})  # now equal: nothing
        broker.publish({SPEED: 12.0})
        broker.publish({AIR: 21.0})
        assert await next_reply(call) == {SPEED: ("float_value", 12.0)}
    finally:
        call.cancel()


@pytest.mark.parametrize(("operator", "holding"), [("<", 10.0), ("<=", 20.0), (">", 30.0), (">=", 20.0)])
async def test_subscribe_ordering_a_signal_without_value_sends_nothing_until_it_has_one(
        sdv: Sdv, broker: Broker, operator: str, holding: float) -> None:
    broker.publish({SPEED: 10.0})
    call = await subscribed(sdv, broker, f"SELECT {SPEED} WHERE {AIR} {operator} 20", SPEED)
    try:
        broker.publish({SPEED: 11.0})
        broker.publish({AIR: holding})
        assert await next_reply(call) == {SPEED: ("float_value", 11.0)}
    finally:
        call.cancel()


@pytest.mark.parametrize("query", [
    f"select {SPEED} as speed where {SPEED} between 10 and 20 and not ({MOVING} = false)",
    f"SeLeCt {SPEED} aS speed WhErE {SPEED} BeTwEeN 10 AnD 20 aNd NoT ({MOVING} = FaLsE)",
    f"SELECT {SPEED} AS speed WHERE {SPEED} BETWEEN 10 AND 20 AND NOT ({MOVING} = FALSE)",
    f"SELECT {SPEED} speed WHERE ({SPEED} >= 10 AND {SPEED} <= 20) AND {MOVING} = True",
    f"\n    SELECT\n        {SPEED} AS speed\n    WHERE\n        {SPEED} BETWEEN 10 AND 20\n        AND\n"
    f"        {MOVING} = true\n    ",
])
async def test_subscribe_keywords_are_case_insensitive(sdv: Sdv, broker: Broker, query: str) -> None:
    broker.publish({SPEED: 12.5, MOVING: True})
    call = subscribe(sdv, query)
    try:
        assert await next_reply(call) == {"speed": ("float_value", 12.5)}
    finally:
        call.cancel()


async def test_subscribe_velocitas_seat_query(sdv: Sdv, broker: Broker) -> None:
    """The seat adjuster example's query, on VSS 6.0's seat (Velocitas sends ``SELECT a, b WHERE cond``)."""
    broker.publish({SEAT_POS: 150, SPEED: 0.0})
    call = await subscribed(sdv, broker, f"SELECT {SEAT_POS}, {SPEED} WHERE {SEAT_POS} < 100", SEAT_POS)
    try:
        broker.publish({SEAT_POS: 99})
        assert await next_reply(call) == {SEAT_POS: ("uint32_value", 99), SPEED: ("float_value", 0.0)}
        broker.publish({SPEED: 5.0})
        assert await next_reply(call) == {SEAT_POS: ("uint32_value", 99), SPEED: ("float_value", 5.0)}
    finally:
        call.cancel()


async def test_subscribe_follows_current_values_not_targets(sdv: Sdv, broker: Broker) -> None:
    still = Hardware(broker, follow=False)
    call = subscribe(sdv, f"SELECT {WINDOW}")
    try:
        assert await next_reply(call) == {WINDOW: NOT_AVAILABLE}
        assert await set_datapoints(sdv, {WINDOW: dp("uint32_value", 40)}) == {}
        assert still.batches == [{WINDOW: 40}]  # asked, but the window did not move: no reply
        broker.publish({WINDOW: 10})
        assert await next_reply(call) == {WINDOW: ("uint32_value", 10)}
    finally:
        call.cancel()


async def test_subscriptions_are_independent(sdv: Sdv, broker: Broker) -> None:
    fast = subscribe(sdv, f"SELECT {SPEED} WHERE {SPEED} > 100")
    every = subscribe(sdv, f"SELECT {SPEED}")
    try:
        assert await next_reply(every) == {SPEED: NOT_AVAILABLE}
        broker.publish({SPEED: 50.0})
        assert await next_reply(every) == {SPEED: ("float_value", 50.0)}
        broker.publish({SPEED: 120.0})
        assert await next_reply(every) == {SPEED: ("float_value", 120.0)}
        assert await next_reply(fast) == {SPEED: ("float_value", 120.0)}  # its first: 50 did not hold
    finally:
        close([fast, every])


FAILS_PARSING = ("xpected", "end", "near", "position", "syntax", "parse", "Parse", "incomplete", "missing")
# (query, the message names the problem with one of these)
BAD_QUERIES = [
    ("SELECT Vehicle.Sped", ("Vehicle.Sped",)),  # no such signal
    (f"SELECT {SPEED} WHERE Vehicle.Cabin.Door.Row1.DriverSide.IsOpn = true", ("IsOpn",)),  # in WHERE only
    ("SELECT LAG(Vehicle.Spd)", ("Vehicle.Spd",)),
    ("SELECT Vehicle.Cabin", ("Vehicle.Cabin",)),  # a branch, not a signal
    (f"SELECT {SPEED} WHERE {SPEED} > abc", ("abc",)),
    (f"SELECT {SPEED} WHERE {AIRFLOW} = 5", ("AirDistribution", "string", "String")),  # a number, a string signal
    (f"SELECT {SPEED} WHERE {SPEED} = 'fast'", ("fast", "string", "String")),
    (f"SELECT {SPEED} WHERE {SPEED} = {VIN}", ("VIN", "string", "String")),
    (f"SELECT {SPEED} WHERE {MOVING} > 1", ("IsMoving", "bool", "Bool")),
    (f"SELECT {FAN} WHERE {FAN} > 300", ("300",)),  # not a UInt8
    (f"SELECT {FAN} WHERE {FAN} = 2.5", ("2.5",)),
    (f"SELECT {SEAT_HEAT} WHERE {SEAT_HEAT} < 200", ("200",)),  # not an Int8
    (f"SELECT {SPEED} WHERE {SPEED} BETWEEN 'a' AND 'b'", ("'a'", "string", "String", "BETWEEN")),
    (f"SELECT {SPEED} WHERE {SPEED} AND {MOVING}", ("AND",)),  # AND, OR, NOT and WHERE need booleans
    (f"SELECT {SPEED} WHERE {MOVING} OR {SPEED}", ("OR",)),
    (f"SELECT {SPEED} WHERE NOT {SPEED}", ("NOT",)),
    (f"SELECT {MOVING} WHERE {SPEED}", ("WHERE", "bool", "Bool")),
    (f"SELECT {MOVING} WHERE 42", ("WHERE", "bool", "Bool", "42")),
    ("SELECT *", ("*",)),
    (f"SELECT {SPEED} FROM Vehicle", ("FROM",)),
    (f"SELECT {SPEED} WHERE {SPEED} + 1 > 2", ("+",)),  # arithmetic
    (f"SELECT {SPEED} * 2", ("*",)),
    (f"SELECT {SPEED} WHERE {SPEED} IN (1, 2)", ("IN",)),
    (f"SELECT {SPEED} WHERE {AIRFLOW} LIKE 'U%'", ("LIKE",)),
    (f"SELECT {SPEED} WHERE {SPEED} IS NULL", ("IS", "NULL")),
    (f"SELECT MAX({SPEED})", ("MAX",)),  # functions other than LAG
    (f"SELECT CAST({SPEED} AS INT)", ("CAST",)),
    (f"SELECT LAG({SPEED} > 1)", ("LAG",)),  # LAG of a path only
    (f"SELECT (SELECT {SPEED})", ("subquer", "Subquer", "sub-quer", "nested", "Nested")),
    (f"SELECT {SPEED} WHERE {SPEED} > (SELECT {SPEED})", ("subquer", "Subquer", "sub-quer", "nested", "Nested")),
    (f"SELECT DISTINCT {SPEED}", ("DISTINCT",)),
    (f"SELECT {SPEED} WHERE {SPEED} > 1 ORDER BY {SPEED}", ("ORDER",)),
    (f"SELECT {SPEED} GROUP BY {SPEED}", ("GROUP", "'BY'")),  # GROUP is taken for an alias (``expr name``)
    (f"SELECT {SPEED} LIMIT 1", ("LIMIT", "'1'")),
    (f"SELECT {SPEED}; SELECT {MOVING}", (";", "one", "statement")),
    ("UPDATE Vehicle SET Speed = 1", ("SELECT", "UPDATE")),
    ("", ("empty", "Empty", "SELECT")),
    ("SELECT", FAILS_PARSING),
    (f"SELECT {SPEED},", FAILS_PARSING),
    (f"SELECT {SPEED} WHERE", FAILS_PARSING),
    (f"SELECT {SPEED} WHERE {SPEED} > 1 AND", FAILS_PARSING),
    (f"SELECT {SPEED} WHERE ({SPEED} > 1", (*FAILS_PARSING, ")", "parenthes")),
    (f"SELECT {SPEED} AS", FAILS_PARSING),
    (f"SELECT {SPEED} WHERE {AIRFLOW} = 'UP", (*FAILS_PARSING, "'", "unterminated", "Unterminated", "quote")),
]


@pytest.mark.parametrize(("query", "names"), BAD_QUERIES, ids=[q.replace("Vehicle.", "") or "empty"
                                                                 for q, _ in BAD_QUERIES])
async def test_subscribe_to_a_bad_query_is_invalid_argument_naming_the_problem(sdv: Sdv, query: str,
                                                                               names: tuple[str, ...]) -> None:
    error = await refused(subscribe(sdv, query))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    details = error.details() or ""
    assert any(name in details for name in names), f"{details!r} names none of {names}"


async def test_subscribe_to_an_unknown_path_suggests_one(sdv: Sdv) -> None:
    error = await refused(subscribe(sdv, "SELECT Vehicle.Sped"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Vehicle.Sped" in (error.details() or "") and "Vehicle.Speed" in (error.details() or "")


async def test_open_streams_end_unavailable_when_the_broker_stops(sdv: Sdv, server: BrokerServer) -> None:
    call = subscribe(sdv, f"SELECT {SPEED}")
    assert await next_reply(call) == {SPEED: NOT_AVAILABLE}
    await server.stop(0)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(call.read(), 5)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE


# ==== GetMetadata ================================================================================================

DATA_TYPES = [
    (SPEED, "FLOAT"), (LATITUDE, "DOUBLE"), (MOVING, "BOOL"), (VIN, "STRING"), (GEAR, "INT8"), (STEERING, "INT16"),
    (TIME_TO_SERVICE, "INT32"), (ODOMETER, "INT64"), (FAN, "UINT8"), (TIRE, "UINT16"), (DISTANCE, "UINT32"),
    (ENERGY, "UINT64"), (DTC, "STRING_ARRAY"), (SWITCHES, "BOOL_ARRAY"), (OFFSETS, "INT16_ARRAY"),
    (DELTAS, "INT64_ARRAY"), (SEAT_POS_COUNT, "UINT8_ARRAY"), (SERIALS, "UINT64_ARRAY"), (CELLS, "FLOAT_ARRAY"),
    (WEIGHTS, "DOUBLE_ARRAY"),
]


async def metadata(sdv: Sdv, *names: str) -> list[types_pb2.Metadata]:
    reply = await sdv.broker.GetMetadata(broker_pb2.GetMetadataRequest(names=list(names)), timeout=CALL_S)
    return list(reply.list)


async def test_get_metadata_of_everything(sdv: Sdv, catalog: Catalog) -> None:
    every = await metadata(sdv)
    assert sorted(m.name for m in every) == sorted(s.path for s in catalog)
    for m in every:
        signal = catalog.get(m.name)
        assert m.id == signal.id, m.name
        assert m.entry_type == {EntryType.SENSOR: types_pb2.ENTRY_TYPE_SENSOR,
                                EntryType.ACTUATOR: types_pb2.ENTRY_TYPE_ACTUATOR,
                                EntryType.ATTRIBUTE: types_pb2.ENTRY_TYPE_ATTRIBUTE}[signal.entry_type], m.name
        expected = types_pb2.STATIC if signal.entry_type is EntryType.ATTRIBUTE else types_pb2.ON_CHANGE
        assert m.change_type == expected, m.name


async def test_get_metadata_of_named_signals_leaves_out_unknown_names(sdv: Sdv, catalog: Catalog) -> None:
    listed = {m.name: m for m in await metadata(sdv, WINDOW, NOWHERE, SPEED, VIN, AIRFLOW, LEVEL, ODOMETER)}
    assert sorted(listed) == sorted([WINDOW, SPEED, VIN, AIRFLOW, LEVEL, ODOMETER])
    window, speed, vin, airflow, level, odometer = (listed[p] for p in (WINDOW, SPEED, VIN, AIRFLOW, LEVEL, ODOMETER))
    assert (window.id, window.entry_type, window.data_type, window.change_type) == (
        catalog.get(WINDOW).id, types_pb2.ENTRY_TYPE_ACTUATOR, types_pb2.UINT8, types_pb2.ON_CHANGE)
    assert (window.min.WhichOneof("typed_value"), window.min.uint32) == ("uint32", 0)
    assert (window.max.WhichOneof("typed_value"), window.max.uint32) == ("uint32", 100)
    assert not window.HasField("allowed")
    assert (speed.id, speed.entry_type, speed.data_type, speed.change_type) == (
        catalog.get(SPEED).id, types_pb2.ENTRY_TYPE_SENSOR, types_pb2.FLOAT, types_pb2.ON_CHANGE)
    assert not speed.HasField("min") and not speed.HasField("max") and not speed.HasField("allowed")
    assert (vin.id, vin.entry_type, vin.data_type, vin.change_type) == (
        catalog.get(VIN).id, types_pb2.ENTRY_TYPE_ATTRIBUTE, types_pb2.STRING, types_pb2.STATIC)
    assert airflow.allowed.WhichOneof("values") == "string_values"
    assert list(airflow.allowed.string_values.values) == ["UP", "MIDDLE", "DOWN"]
    assert (level.min.WhichOneof("typed_value"), level.min.int32, level.max.int32) == ("int32", -5, 5)
    assert level.description == "A level from -5 to 5."
    assert (odometer.data_type, odometer.description) == (types_pb2.INT64, "A signed 64-bit count, for the tests.")


@pytest.mark.parametrize(("path", "restriction", "low", "high"), [
    (SOC, "float", 0.0, 100.0),
    (LATITUDE, "double", -90.0, 90.0),
    (SEAT_HEAT, "int32", -100, 100),
    (AMBIENT, "uint32", 1, 100),
])
async def test_get_metadata_min_max_in_the_field_of_the_datatype(sdv: Sdv, path: str, restriction: str,
                                                                 low: float, high: float) -> None:
    (m,) = await metadata(sdv, path)
    assert (m.min.WhichOneof("typed_value"), m.max.WhichOneof("typed_value")) == (restriction, restriction)
    assert (getattr(m.min, restriction), getattr(m.max, restriction)) == (low, high)


@pytest.mark.parametrize(("path", "data_type"), DATA_TYPES, ids=[t for _, t in DATA_TYPES])
async def test_get_metadata_data_types(sdv: Sdv, path: str, data_type: str) -> None:
    (m,) = await metadata(sdv, path)
    assert (m.name, types_pb2.DataType.Name(m.data_type)) == (path, data_type)


# ==== Collector ==================================================================================================


def registration(name: str, data_type: int = types_pb2.FLOAT) -> collector_pb2.RegistrationMetadata:
    return collector_pb2.RegistrationMetadata(name=name, data_type=data_type, description="a feeder's signal",
                                              change_type=types_pb2.CONTINUOUS)


async def test_register_datapoints_gives_the_catalogs_ids(sdv: Sdv, broker: Broker) -> None:
    reply = await sdv.collector.RegisterDatapoints(collector_pb2.RegisterDatapointsRequest(list=[
        registration(SPEED), registration(TIRE, types_pb2.STRING),  # metadata that differs is not compared
        registration(ODOMETER, types_pb2.INT64)]), timeout=CALL_S)
    assert dict(reply.results) == dict(zip((SPEED, TIRE, ODOMETER), ids(broker, SPEED, TIRE, ODOMETER), strict=True))
    listed = {m.name: m for m in await metadata(sdv, TIRE)}
    assert listed[TIRE].data_type == types_pb2.UINT16  # unchanged


@pytest.mark.parametrize("names", [["Vehicle.Evos.Feeder.Humidity"], [SPEED, "Vehicle.Evos.Feeder.Humidity"]])
async def test_register_datapoints_of_a_name_the_catalog_lacks_is_invalid_argument(sdv: Sdv, names: list[str]
                                                                                    ) -> None:
    error = await rpc_error(sdv.collector.RegisterDatapoints(collector_pb2.RegisterDatapointsRequest(
        list=[registration(name) for name in names]), timeout=CALL_S))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Vehicle.Evos.Feeder.Humidity" in (error.details() or "")
    assert not await metadata(sdv, "Vehicle.Evos.Feeder.Humidity")


async def test_update_datapoints_sets_current_values_of_any_entry_as_one_batch(sdv: Sdv, broker: Broker) -> None:
    speed, window, vin = ids(broker, SPEED, WINDOW, VIN)
    call = subscribe(sdv, f"SELECT {SPEED}, {WINDOW}, {VIN}")
    try:
        assert await next_reply(call) == {SPEED: NOT_AVAILABLE, WINDOW: NOT_AVAILABLE, VIN: NOT_AVAILABLE}
        assert await update(sdv, {speed: dp("float_value", 50.0), window: dp("uint32_value", 30),
                                  vin: dp("string_value", "W0L000051T2123456")}) == {}
        everything = {SPEED: ("float_value", 50.0), WINDOW: ("uint32_value", 30),
                      VIN: ("string_value", "W0L000051T2123456")}
        assert await next_reply(call) == everything  # one reply for the one batch
        assert (broker.get(SPEED).value, broker.get(WINDOW).value, broker.get(VIN).value) == (
            50.0, 30, "W0L000051T2123456")
        assert broker.get_target(WINDOW).value is None  # a current value, not an actuation
        assert await update(sdv, {speed: dp("float_value", 51.0)}) == {}
        assert await next_reply(call) == {**everything, SPEED: ("float_value", 51.0)}
    finally:
        call.cancel()


# (signal, field, value, the error; None: it is set to ``stored``)
UPDATES = [
    (TIME_TO_SERVICE, "int32_value", -5, None, -5),
    (TIME_TO_SERVICE, "int64_value", -5, "INVALID_TYPE", None),
    (TIME_TO_SERVICE, "uint32_value", 5, "INVALID_TYPE", None),
    (ODOMETER, "int64_value", 2**40, None, 2**40),
    (ODOMETER, "int32_value", 1, "INVALID_TYPE", None),
    (GEAR, "int32_value", 128, "OUT_OF_BOUNDS", None),
    (STEERING, "int32_value", -40_000, "OUT_OF_BOUNDS", None),
    (TIRE, "uint32_value", 70_000, "OUT_OF_BOUNDS", None),
    (DOOR_COUNT, "uint32_value", 5, None, 5),  # an attribute
    (SPEED, "float_value", 88.5, None, 88.5),
    (SPEED, "double_value", 88.5, "INVALID_TYPE", None),
    (SPEED, None, None, "INVALID_TYPE", None),
    (SPEED, "failure_value", "NOT_AVAILABLE", "INVALID_TYPE", None),
    (SOC, "float_value", 100.5, "OUT_OF_BOUNDS", None),
    (LATITUDE, "double_value", 91.0, "OUT_OF_BOUNDS", None),
    (LATITUDE, "float_value", 45.0, "INVALID_TYPE", None),
    (MOVING, "bool_value", False, None, False),
    (MOVING, "string_value", "false", "INVALID_TYPE", None),
    (DTC, "string_array", ["P0A80"], None, ("P0A80",)),
    (DTC, "string_value", "P0A80", "INVALID_TYPE", None),
    (CELLS, "float_array", [3.5, 3.75], None, (3.5, 3.75)),
    (CELLS, "double_array", [3.5], "INVALID_TYPE", None),
    (SEAT_POS_COUNT, "uint32_array", [2, 3, 3], None, (2, 3, 3)),
    (SEAT_POS_COUNT, "uint32_array", [2, 256], "OUT_OF_BOUNDS", None),
    (SEAT_POS_COUNT, "int32_array", [2], "INVALID_TYPE", None),
    (SERIALS, "uint64_array", [2**64 - 1], None, (2**64 - 1,)),
    (SERIALS, "uint32_array", [1], "INVALID_TYPE", None),
]


@pytest.mark.parametrize(("path", "field", "value", "error", "stored"), UPDATES,
                         ids=[f"{p.rsplit('.', 1)[-1]}-{f}-{e or 'set'}" for p, f, _, e, _ in UPDATES])
async def test_update_datapoints_checks_each_value(sdv: Sdv, broker: Broker, path: str, field: str | None,
                                                   value: Any, error: str | None, stored: Any) -> None:
    (signal_id,) = ids(broker, path)
    before = broker.get(path).value
    if error is None:
        assert await update(sdv, {signal_id: dp(field, value)}) == {}
        assert broker.get(path).value == stored
    else:
        assert await update(sdv, {signal_id: dp(field, value)}) == {signal_id: error}
        assert broker.get(path).value == before


async def test_update_datapoints_is_all_or_nothing_and_lists_every_error(sdv: Sdv, broker: Broker) -> None:
    speed, soc, moving, fan = ids(broker, SPEED, SOC, MOVING, FAN)
    assert await update(sdv, {NO_ID: dp("float_value", 1.0), -1: dp("float_value", 1.0),
                              speed: dp("double_value", 1.0), soc: dp("float_value", 101.0),
                              moving: dp("bool_value", True), fan: dp("uint32_value", 50)}) == {
        NO_ID: "UNKNOWN_DATAPOINT", -1: "UNKNOWN_DATAPOINT", speed: "INVALID_TYPE", soc: "OUT_OF_BOUNDS"}
    assert [broker.get(p).value for p in (SPEED, SOC, MOVING, FAN)] == [None] * 4


async def test_stream_datapoints_answers_only_requests_with_errors(sdv: Sdv, broker: Broker) -> None:
    speed, soc = ids(broker, SPEED, SOC)
    requests: asyncio.Queue[collector_pb2.StreamDatapointsRequest | None] = asyncio.Queue()

    async def feed() -> AsyncIterator[collector_pb2.StreamDatapointsRequest]:
        while (request := await requests.get()) is not None:
            yield request

    def send(datapoints: dict[int, types_pb2.Datapoint]) -> None:
        requests.put_nowait(collector_pb2.StreamDatapointsRequest(datapoints=datapoints))

    call = sdv.collector.StreamDatapoints(feed())
    try:
        send({speed: dp("float_value", 10.0)})
        send({speed: dp("float_value", 20.0), soc: dp("float_value", 150.0)})  # all or nothing: speed stays 10
        reply = await asyncio.wait_for(call.read(), 5)
        assert error_names(reply.errors) == {soc: "OUT_OF_BOUNDS"}
        assert broker.get(SPEED).value == 10.0 and broker.get(SOC).value is None
        send({soc: dp("float_value", 80.0)})  # no answer
        send({NO_ID: dp("float_value", 1.0)})
        reply = await asyncio.wait_for(call.read(), 5)
        assert error_names(reply.errors) == {NO_ID: "UNKNOWN_DATAPOINT"}  # the next answer: this one's
        assert (broker.get(SPEED).value, broker.get(SOC).value) == (10.0, 80.0)
        send({speed: dp("float_value", 30.0), soc: dp("float_value", 81.0)})
        await eventually(lambda: (broker.get(SPEED).value, broker.get(SOC).value) == (30.0, 81.0))
        requests.put_nowait(None)  # the feeder is done (half-close): the stream ends, OK
        assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF
        assert await asyncio.wait_for(call.code(), 5) == grpc.StatusCode.OK
    finally:
        call.cancel()

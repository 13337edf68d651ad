"""Bad input through every interface gets its status and a clear message; the broker keeps serving, unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from evos.broker import Broker, BrokerServer
from helpers import accept, collect

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
VIN = "Vehicle.VehicleIdentification.VIN"
CELLS = "Vehicle.Powertrain.TractionBattery.CellVoltage.CellVoltages"
SEATS = "Vehicle.Cabin.SeatPosCount"  # uint8[]
GEAR = "Vehicle.Powertrain.Transmission.CurrentGear"  # int8


def sid(path: str) -> t2.SignalID:
    return t2.SignalID(path=path)


def publish(path: str, **value: Any) -> v2.PublishValueRequest:
    return v2.PublishValueRequest(signal_id=sid(path), data_point=t2.Datapoint(value=t2.Value(**value)))


def actuate(path: str, **value: Any) -> v2.ActuateRequest:
    return v2.ActuateRequest(signal_id=sid(path), value=t2.Value(**value))


# (case id, v2 method, request, expected status, message fragment)
V2_CASES = [
    ("unknown path", "GetValue", v2.GetValueRequest(signal_id=sid("Vehicle.Sped")), grpc.StatusCode.NOT_FOUND,
     "did you mean Vehicle.Speed"),
    ("unknown id", "GetValue", v2.GetValueRequest(signal_id=t2.SignalID(id=99999)), grpc.StatusCode.NOT_FOUND,
     "unknown signal id 99999"),
    ("no signal id", "GetValue", v2.GetValueRequest(), grpc.StatusCode.INVALID_ARGUMENT, "neither a path nor an id"),
    ("branch is not a signal", "GetValue", v2.GetValueRequest(signal_id=sid("Vehicle.Cabin")),
     grpc.StatusCode.NOT_FOUND, "Vehicle.Cabin"),
    ("wrong datatype", "PublishValue", publish(SPEED, string="fast"), grpc.StatusCode.INVALID_ARGUMENT,
     "Vehicle.Speed: value 'fast' is str, expected a number"),
    ("out of range", "PublishValue", publish(SOC, float=150.0), grpc.StatusCode.INVALID_ARGUMENT,
     "above the maximum 100"),
    ("out of datatype range", "PublishValue", publish(GEAR, int32=200), grpc.StatusCode.INVALID_ARGUMENT,
     "outside the range of int8"),
    ("no value", "PublishValue", v2.PublishValueRequest(signal_id=sid(SPEED)), grpc.StatusCode.INVALID_ARGUMENT,
     "no value given"),
    ("oversize array", "PublishValue", publish(CELLS, float_array=t2.FloatArray(values=[3.7] * 5000)),
     grpc.StatusCode.INVALID_ARGUMENT, "longer than the limit of 4096"),
    ("array element out of range", "PublishValue", publish(SEATS, uint32_array=t2.Uint32Array(values=[2, 256])),
     grpc.StatusCode.INVALID_ARGUMENT, "outside the range of uint8"),
    ("target for an attribute", "Actuate", actuate(VIN, string="X"), grpc.StatusCode.INVALID_ARGUMENT,
     "is an attribute, not an actuator"),
    ("target for a sensor", "Actuate", actuate(SPEED, float=1.0), grpc.StatusCode.INVALID_ARGUMENT,
     "is a sensor, not an actuator"),
    ("actuator without provider", "Actuate", actuate(DOOR, bool=True), grpc.StatusCode.UNAVAILABLE,
     "no provider"),
    ("batch with one bad entry", "BatchActuate", v2.BatchActuateRequest(actuate_requests=[
        actuate("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", float=21.0), actuate(DOOR, string="open")]),
     grpc.StatusCode.INVALID_ARGUMENT, "expected a boolean"),
    ("malformed pattern", "ListMetadata", v2.ListMetadataRequest(root="Vehicle..Speed"),
     grpc.StatusCode.INVALID_ARGUMENT, "malformed pattern"),
    ("pattern matches nothing", "ListMetadata", v2.ListMetadataRequest(root="Vehicle.Warp.*"),
     grpc.StatusCode.NOT_FOUND, "unknown pattern"),
]


def snapshot(broker: Broker) -> tuple[dict, dict, dict]:
    return copy.copy(broker._values), copy.copy(broker._targets), copy.copy(broker._providers)


@pytest.fixture
async def channel(server: BrokerServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as chan:
        yield chan


async def assert_still_serving(channel: grpc.aio.Channel) -> None:
    stub = v2_grpc.VALStub(channel)
    await stub.PublishValue(publish(SPEED, float=12.0))
    assert (await stub.GetValue(v2.GetValueRequest(signal_id=sid(SPEED)))).data_point.value.float == 12.0


@pytest.mark.parametrize(("method", "request_", "status", "message"), [c[1:] for c in V2_CASES],
                         ids=[c[0] for c in V2_CASES])
async def test_v2_bad_input(
    channel: grpc.aio.Channel, broker: Broker, method: str, request_: Any, status: grpc.StatusCode, message: str
) -> None:
    temperature_requests: list[dict] = []
    broker.provide(["Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"], collect(temperature_requests))
    before = snapshot(broker)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await getattr(v2_grpc.VALStub(channel), method)(request_)
    assert info.value.code() == status
    assert message in (info.value.details() or "")
    assert snapshot(broker) == before
    assert temperature_requests == []  # nothing of a failed batch was forwarded
    await assert_still_serving(channel)


async def test_v2_subscribe_bad_input(channel: grpc.aio.Channel) -> None:
    stub = v2_grpc.VALStub(channel)
    cases = [
        (v2.SubscribeRequest(signal_paths=["Vehicle.Cabin"]), grpc.StatusCode.NOT_FOUND, "Vehicle.Cabin"),
        (v2.SubscribeRequest(signal_paths=[]), grpc.StatusCode.INVALID_ARGUMENT, "at least one signal"),
        (v2.SubscribeRequest(signal_paths=[SPEED], buffer_size=5000), grpc.StatusCode.INVALID_ARGUMENT,
         "buffer_size 5000"),
    ]
    for request, status, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.Subscribe(request):
                pass
        assert (info.value.code(), message in (info.value.details() or "")) == (status, True)
    await assert_still_serving(channel)


def entry_update(path: str, field: int = t1.FIELD_VALUE, **value: Any) -> v1.EntryUpdate:
    datapoint = t1.Datapoint(**value)
    entry = t1.DataEntry(path=path, value=datapoint) if field == t1.FIELD_VALUE else \
        t1.DataEntry(path=path, actuator_target=datapoint)
    return v1.EntryUpdate(entry=entry, fields=[field])


V1_SET_CASES = [
    ("unknown path", [entry_update("Vehicle.Nope", float=1.0)], 404, "unknown signal"),
    ("wrong datatype", [entry_update(SPEED, string="fast")], 400, "expected a number"),
    ("out of range", [entry_update(SOC, float=-1.0)], 400, "below the minimum 0"),
    ("target for attribute", [entry_update(VIN, t1.FIELD_ACTUATOR_TARGET, string="X")], 400, "not an actuator"),
    ("target without provider", [entry_update(DOOR, t1.FIELD_ACTUATOR_TARGET, bool=True)], 503, "no provider"),
    ("good and bad together", [entry_update(SPEED, float=50.0), entry_update(SOC, float=101.0)], 400,
     "above the maximum"),
]


@pytest.mark.parametrize(("updates", "code", "message"), [c[1:] for c in V1_SET_CASES],
                         ids=[c[0] for c in V1_SET_CASES])
async def test_v1_set_bad_input(
    channel: grpc.aio.Channel, broker: Broker, updates: list[v1.EntryUpdate], code: int, message: str
) -> None:
    before = snapshot(broker)
    response = await v1_grpc.VALStub(channel).Set(v1.SetRequest(updates=updates))
    assert [e.error.code for e in response.errors] == [code]
    assert message in response.errors[0].error.message
    assert snapshot(broker) == before
    await assert_still_serving(channel)


async def test_v1_get_bad_patterns(channel: grpc.aio.Channel) -> None:
    response = await v1_grpc.VALStub(channel).Get(v1.GetRequest(entries=[
        v1.EntryRequest(path="Vehicle..Speed"), v1.EntryRequest(path="Vehicle.Warp"), v1.EntryRequest(path=SPEED)]))
    assert [(e.path, e.error.code) for e in response.errors] == [("Vehicle..Speed", 400), ("Vehicle.Warp", 404)]
    assert [e.path for e in response.entries] == [SPEED]  # the good request is still answered
    assert response.error.code == 400
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await v1_grpc.VALStub(channel).Get(v1.GetRequest())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_provider_stream_bad_input(channel: grpc.aio.Channel, broker: Broker) -> None:
    stub = v2_grpc.VALStub(channel)
    broker.provide([DOOR], accept)
    claim_taken = v2.OpenProviderStreamRequest(provide_actuation_request=v2.ProvideActuationRequest(
        actuator_identifiers=[sid(DOOR)]))
    call = stub.OpenProviderStream(iter([claim_taken]))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # a publish with a bad value answers with its status, the stream stays open
    soc_id = broker.catalog.get(SOC).id
    bad = v2.OpenProviderStreamRequest(publish_values_request=v2.PublishValuesRequest(
        request_id=7, data_points={soc_id: t2.Datapoint(value=t2.Value(float=300.0)),
                                   12345678: t2.Datapoint(value=t2.Value(float=1.0))}))
    call = stub.OpenProviderStream(iter([bad]))
    response = await asyncio.wait_for(call.read(), 2)
    status = response.publish_values_response.status
    assert response.publish_values_response.request_id == 7
    assert status[12345678].code == t2.ERROR_CODE_NOT_FOUND
    call.cancel()
    assert not broker.get(SOC).available


async def _send_raw(port: int, payload: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    with contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(reader.read(65536), 2)
    writer.close()


async def test_garbage_bytes_on_the_socket(server: BrokerServer, channel: grpc.aio.Channel, broker: Broker) -> None:
    before = snapshot(broker)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    for payload in (os.urandom(4096), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", preface + os.urandom(512),
                    b"\x00" * 100_000):
        await _send_raw(server.port, payload)
    assert snapshot(broker) == before
    await assert_still_serving(channel)


async def test_cli_bad_input(server: BrokerServer, broker: Broker) -> None:
    before = snapshot(broker)
    cases: list[tuple[list[str], str]] = [
        (["get", "Vehicle.Sped"], "did you mean Vehicle.Speed"),
        (["set", SOC, "150"], "above the maximum 100"),
        (["set", SPEED, "fast"], "is not a valid float"),
        (["actuate", DOOR, "true"], "no provider"),
        (["actuate", VIN, "X"], "not an actuator"),
        (["signals", "Vehicle..Speed"], "malformed pattern"),
    ]
    for args, message in cases:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "evos", *args, "--address", server.address,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "300"})
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 1, (args, out, err)
        assert message in err.decode(), (args, err)
    assert snapshot(broker) == before


def test_unreachable_broker_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "evos", "get", SPEED, "--address", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 1
    assert f"broker at 127.0.0.1:{port}" in proc.stderr and "UNAVAILABLE" in proc.stderr


"""The KUKSA RPCs the SDK does not exercise, through raw generated stubs against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

import evos
from evos.broker import Broker, BrokerServer
from helpers import accept, collect, eventually

SPEED = "Vehicle.Speed"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


@pytest.fixture
async def stubs(server: BrokerServer) -> AsyncIterator[tuple[v1_grpc.VALStub, v2_grpc.VALStub]]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield v1_grpc.VALStub(channel), v2_grpc.VALStub(channel)


async def test_server_info(stubs: tuple) -> None:
    s1, s2 = stubs
    assert (await s2.GetServerInfo(v2.GetServerInfoRequest())).version == evos.__version__
    assert (await s1.GetServerInfo(v1.GetServerInfoRequest())).name == "evos-databroker"


async def test_get_values_in_request_order_with_ids(stubs: tuple, broker: Broker) -> None:
    _, s2 = stubs
    broker.publish({SPEED: 12.5})
    speed_id = broker.catalog.get(SPEED).id
    response = await s2.GetValues(v2.GetValuesRequest(signal_ids=[
        t2.SignalID(path=DOOR), t2.SignalID(id=speed_id)]))
    assert [dp.value.WhichOneof("typed_value") for dp in response.data_points] == [None, "float"]
    assert response.data_points[1].value.float == 12.5
    assert response.data_points[1].timestamp.seconds > 0


async def test_list_metadata(stubs: tuple, broker: Broker) -> None:
    _, s2 = stubs
    metadata = (await s2.ListMetadata(v2.ListMetadataRequest(root="Vehicle.Cabin.Sunroof.*"))).metadata
    assert {m.path for m in metadata} == {"Vehicle.Cabin.Sunroof.Position", "Vehicle.Cabin.Sunroof.Switch"}
    soc = (await s2.ListMetadata(v2.ListMetadataRequest(
        root="Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"))).metadata[0]
    assert (soc.data_type, soc.entry_type, soc.unit) == (t2.DATA_TYPE_FLOAT, t2.ENTRY_TYPE_SENSOR, "percent")
    assert (soc.min.float, soc.max.float, soc.id) == (0.0, 100.0, broker.catalog.get(soc.path).id)
    switch = (await s2.ListMetadata(v2.ListMetadataRequest(root="Vehicle.Cabin.Sunroof.Switch"))).metadata[0]
    assert "TILT_UP" in switch.allowed_values.string_array.values
    everything = (await s2.ListMetadata(v2.ListMetadataRequest())).metadata
    assert len(everything) == len(broker.catalog)


async def test_subscribe_by_id(stubs: tuple, broker: Broker) -> None:
    _, s2 = stubs
    speed_id = broker.catalog.get(SPEED).id
    stream = s2.SubscribeById(v2.SubscribeByIdRequest(signal_ids=[speed_id]))
    first = await stream.read()
    assert not first.entries[speed_id].value.WhichOneof("typed_value")
    broker.publish({SPEED: 3.0})
    assert (await asyncio.wait_for(stream.read(), 2)).entries[speed_id].value.float == 3.0
    stream.cancel()


async def test_subscribe_filter_limits_the_rate(stubs: tuple, broker: Broker) -> None:
    _, s2 = stubs
    stream = s2.Subscribe(v2.SubscribeRequest(signal_paths=[SPEED], filter=t2.Filter(
        min_sample_interval=t2.SampleInterval(interval_ms=200))))
    await stream.read()  # current value, at once
    for i in range(20):
        broker.publish({SPEED: float(i)})
    merged = await asyncio.wait_for(stream.read(), 2)
    assert merged.entries[SPEED].value.float == 19.0  # the latest value of the interval
    stream.cancel()


async def test_actuate_stream_and_batch(stubs: tuple, broker: Broker) -> None:
    _, s2 = stubs
    got: list[dict] = []
    broker.provide([DOOR, TEMP], collect(got))

    def request(path: str, **value: object) -> v2.ActuateRequest:
        return v2.ActuateRequest(signal_id=t2.SignalID(path=path), value=t2.Value(**value))  # type: ignore[arg-type]

    await s2.ActuateStream(iter([request(DOOR, bool=True), request(TEMP, float=20.0)]))
    await s2.BatchActuate(v2.BatchActuateRequest(actuate_requests=[
        request(DOOR, bool=False), request(TEMP, float=19.5)]))
    assert got == [{DOOR: True}, {TEMP: 20.0}, {DOOR: False, TEMP: 19.5}]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s2.ActuateStream(iter([request(DOOR, bool=True), request(SPEED, float=1.0)]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert got[-1] == {DOOR: True}  # the one before the bad request was carried out


async def test_v1_subscribe_values_and_targets(stubs: tuple, broker: Broker) -> None:
    s1, _ = stubs
    stream = s1.Subscribe(v1.SubscribeRequest(entries=[
        v1.SubscribeEntry(path="Vehicle.Cabin.Door.Row1.DriverSide", fields=[t1.FIELD_VALUE]),
        v1.SubscribeEntry(path=DOOR, fields=[t1.FIELD_ACTUATOR_TARGET]),
    ]))
    first = await stream.read()
    paths = {u.entry.path for u in first.updates}
    assert DOOR in paths and "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position" in paths
    door_first = next(u for u in first.updates if u.entry.path == DOOR)
    assert set(door_first.fields) == {t1.FIELD_VALUE, t1.FIELD_ACTUATOR_TARGET}
    await broker.actuate({DOOR: True})  # the v1 target subscriber is this actuator's provider
    update = (await asyncio.wait_for(stream.read(), 2)).updates[0]
    assert (update.entry.path, update.entry.actuator_target.bool, list(update.fields)) == (
        DOOR, True, [t1.FIELD_ACTUATOR_TARGET])
    broker.publish({DOOR: True})  # the provider reports the door open
    update = (await asyncio.wait_for(stream.read(), 2)).updates[0]
    assert (update.entry.value.bool, list(update.fields)) == (True, [t1.FIELD_VALUE])
    stream.cancel()


async def test_v1_get_views(stubs: tuple, broker: Broker) -> None:
    s1, _ = stubs
    broker.provide([TEMP], accept)
    await broker.actuate({TEMP: 22.0})
    broker.publish({TEMP: 21.0})
    response = await s1.Get(v1.GetRequest(entries=[v1.EntryRequest(path=TEMP, view=t1.VIEW_ALL)]))
    entry = response.entries[0]
    assert (entry.value.float, entry.actuator_target.float, entry.metadata.unit) == (21.0, 22.0, "Celsius")
    assert entry.metadata.HasField("actuator")
    response = await s1.Get(v1.GetRequest(entries=[v1.EntryRequest(path=TEMP, view=t1.VIEW_METADATA)]))
    assert not response.entries[0].HasField("value") and response.entries[0].HasField("metadata")


async def test_v1_streamed_update(stubs: tuple, broker: Broker) -> None:
    s1, _ = stubs

    def update(value: float) -> v1.StreamedUpdateRequest:
        return v1.StreamedUpdateRequest(updates=[v1.EntryUpdate(
            entry=t1.DataEntry(path=SPEED, value=t1.Datapoint(float=value)), fields=[t1.FIELD_VALUE])])

    stream = s1.StreamedUpdate(iter([update(10.0), update(-1e39), update(30.0)]))
    responses = [r async for r in stream]
    assert [len(r.errors) for r in responses] == [0, 1, 0]  # one response per request; errors do not end it
    assert "32-bit float" in responses[1].errors[0].error.message or "finite" in responses[1].errors[0].error.message
    assert broker.get(SPEED).value == 30.0


async def test_provider_signal_claims(stubs: tuple, broker: Broker) -> None:
    _, s2 = stubs
    speed_id = broker.catalog.get(SPEED).id
    claim = v2.OpenProviderStreamRequest(provide_signal_request=v2.ProvideSignalRequest(
        signals_sample_intervals={speed_id: t2.SampleInterval(interval_ms=100)}))
    queue: asyncio.Queue[v2.OpenProviderStreamRequest] = asyncio.Queue()
    queue.put_nowait(claim)

    async def first_requests() -> AsyncIterator[v2.OpenProviderStreamRequest]:
        while True:
            yield await queue.get()

    owner = s2.OpenProviderStream(first_requests())
    assert (await owner.read()).HasField("provide_signal_response")
    publish = v2.OpenProviderStreamRequest(publish_values_request=v2.PublishValuesRequest(
        request_id=1, data_points={speed_id: t2.Datapoint(value=t2.Value(float=50.0))}))
    queue.put_nowait(publish)
    await eventually(lambda: broker.get(SPEED).value == 50.0)
    intruder = s2.OpenProviderStream(iter([publish]))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await intruder.read()
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    owner.cancel()


async def test_v1_set_refused_by_the_provider_is_an_entry_error_and_changes_nothing(stubs: tuple,
                                                                                     broker: Broker) -> None:
    from evos.errors import NotPermittedError

    async def refuse(batch: dict) -> None:
        raise NotPermittedError(f"{DOOR}: locked", path=DOOR)

    broker.provide([DOOR], refuse)
    s1, _ = stubs
    response = await s1.Set(v1.SetRequest(updates=[
        v1.EntryUpdate(entry=t1.DataEntry(path=DOOR, actuator_target=t1.Datapoint(bool=True)),
                       fields=[t1.FIELD_ACTUATOR_TARGET]),
        v1.EntryUpdate(entry=t1.DataEntry(path=SPEED, value=t1.Datapoint(float=50.0)), fields=[t1.FIELD_VALUE])]))
    assert [(e.path, e.error.code) for e in response.errors] == [(DOOR, 403)]
    assert "locked" in response.errors[0].error.message
    assert broker.get_target(DOOR).value is None and broker.get(SPEED).value is None  # all or nothing

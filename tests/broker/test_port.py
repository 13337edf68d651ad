"""The vehicle-data port: one contract, two implementations (the in-process broker and the KUKSA v2 client).

Every test runs against both: a ``LocalPort`` on the broker, and a ``RemotePort`` through a real gRPC server
(over TCP and over a Unix socket), so that an app behaves the same in the tests and in ``evos up``.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from evos.broker import Broker, BrokerServer, LocalPort, Mirror, RemotePort, ServerConfig, VehiclePort, parse_scope
from evos.broker._auth import Permissions
from evos.errors import (
    BrokerUnreachableError,
    InternalError,
    InvalidArgumentError,
    InvalidValueError,
    NoProviderError,
    NotPermittedError,
    UnavailableError,
)
from helpers import eventually

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
PortFactory = Callable[..., Any]


@pytest.fixture(params=["local", "remote-tcp", "remote-unix"])
async def ports(request: pytest.FixtureRequest, broker: Broker) -> AsyncIterator[PortFactory]:
    """A factory of ports onto ``broker``, as its apps would hold them; closes them all at the end."""
    opened: list[VehiclePort] = []
    server = None
    if request.param != "local":
        socket = Path(tempfile.mkdtemp(prefix="evos-")) / "broker.sock"  # short: a socket path has 108 bytes
        server = BrokerServer(broker, ServerConfig(address="127.0.0.1:0", app_socket=socket))
        await server.start()
        address = server.address if request.param == "remote-tcp" else f"unix:{socket}"

    async def make(name: str = "app") -> VehiclePort:
        if server is None:
            port: VehiclePort = LocalPort(broker, name)
        else:
            remote = RemotePort(address, name=name)
            await remote.connect()
            port = remote
        opened.append(port)
        return port

    try:
        yield make
    finally:
        for port in opened:
            await port.close()
        if server is not None:
            await server.stop(0)


async def test_publish_get_and_subscribe(ports: PortFactory, broker: Broker) -> None:
    twin, reader = await ports("twin"), await ports("reader")
    async with reader.subscribe([SPEED, SOC]) as updates:
        stream = aiter(updates)
        first = await anext(stream)
        assert first[SPEED].value is None and first[SOC].value is None
        await twin.publish({SPEED: 12.5, SOC: 80.0})
        batch = await asyncio.wait_for(anext(stream), 2)
        assert {p: dp.value for p, dp in batch.items()} == {SPEED: 12.5, SOC: 80.0}  # published together
    assert (await reader.get(SPEED)).value == 12.5
    assert {p: dp.value for p, dp in (await reader.get_many([SPEED, SOC])).items()} == {SPEED: 12.5, SOC: 80.0}


async def test_bad_values_are_refused_at_the_port_and_change_nothing(ports: PortFactory, broker: Broker) -> None:
    port = await ports()
    with pytest.raises(InvalidValueError, match="above the maximum 100"):
        await port.publish({SPEED: 1.0, SOC: 150.0})
    with pytest.raises(InvalidValueError):
        await port.actuate({TEMP: "warm"})
    assert broker.get(SPEED).value is None


async def test_a_provider_carries_out_or_refuses_and_the_caller_hears_it(ports: PortFactory, broker: Broker) -> None:
    body, phone = await ports("body"), await ports("phone")
    done: list[dict[str, Any]] = []

    def doors(batch: dict[str, Any]) -> None:
        if batch.get(DOOR) is True and broker_value(broker, LOCK) is not False:
            raise NotPermittedError(f"{DOOR}: locked; unlock it first", path=DOOR)
        done.append(batch)

    await body.provide([DOOR, LOCK], doors)
    broker.publish({LOCK: True})
    with pytest.raises(NotPermittedError, match="locked; unlock it first"):
        await phone.actuate({DOOR: True})
    assert done == [] and broker.get_target(DOOR).value is None  # refused: nothing recorded
    await phone.actuate({LOCK: False})
    broker.publish({LOCK: False})
    await phone.actuate({DOOR: True})  # answered only once the provider carried it out
    assert done == [{LOCK: False}, {DOOR: True}]
    assert broker.get_target(DOOR).value is True


def broker_value(broker: Broker, path: str) -> Any:
    return broker.get(path).value


async def test_a_request_across_providers_stops_at_the_first_refusal(ports: PortFactory, broker: Broker) -> None:
    climate, body, phone = await ports("climate"), await ports("body"), await ports("phone")
    climate_done: list[dict[str, Any]] = []

    def refuse(batch: dict[str, Any]) -> None:
        raise NotPermittedError(f"{DOOR}: the car is moving", path=DOOR)

    await climate.provide([TEMP], climate_done.append)
    await body.provide([DOOR], refuse)
    with pytest.raises(NotPermittedError, match=f"the car is moving.*already carried out: {TEMP}"):
        await phone.actuate({TEMP: 21.0, DOOR: True})
    assert climate_done == [{TEMP: 21.0}] and broker.get_target(DOOR).value is None


async def test_a_provider_bug_is_contained_and_reported(ports: PortFactory, broker: Broker) -> None:
    provider, phone = await ports("buggy"), await ports("phone")

    def crash(batch: dict[str, Any]) -> None:
        raise ZeroDivisionError("bug")

    await provider.provide([TEMP], crash)
    with pytest.raises(InternalError, match="ZeroDivisionError"):
        await phone.actuate({TEMP: 21.0})
    assert broker.get_target(TEMP).value is None  # not recorded as carried out
    with pytest.raises(InternalError):  # the provider is still there and still answers
        await phone.actuate({TEMP: 22.0})


async def test_closing_a_port_frees_its_actuators(ports: PortFactory) -> None:
    provider, phone = await ports("twin"), await ports("phone")
    await provider.provide([TEMP], lambda batch: None)
    await phone.actuate({TEMP: 20.0})
    await provider.close()

    async def refused() -> bool:
        try:
            await phone.actuate({TEMP: 20.0})
        except NoProviderError:
            return True
        return False

    for _ in range(100):
        if await refused():
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the closed provider's actuator was still provided")


async def test_a_mirror_follows_the_signals(ports: PortFactory, broker: Broker) -> None:
    port = await ports()
    broker.publish({SPEED: 3.0})
    async with Mirror(port, [SPEED, SOC]) as mirror:
        assert mirror.value(SPEED) == 3.0 and mirror.value(SOC) is None
        version = mirror.version
        broker.publish({SOC: 42.0})
        await asyncio.wait_for(mirror.changed(since=version), 2)
        assert mirror.values() == {SPEED: 3.0, SOC: 42.0} and mirror.version > version
        assert mirror.datapoint(SOC).timestamp_s is not None


async def test_a_mirror_with_an_interval_merges_a_burst_and_passes_a_lone_change(ports: PortFactory,
                                                                                  broker: Broker) -> None:
    """``min_interval_s`` (KUKSA v2's ``Filter.min_sample_interval`` on a remote port): 20 updates published 10 ms
    apart arrive as one or two batches, the last value last; a change after a quiet spell is not held back."""
    port = await ports()
    async with Mirror(port, [SPEED], min_interval_s=1.0) as mirror:
        first = mirror.version
        for i in range(20):
            broker.publish({SPEED: float(i)})
            await asyncio.sleep(0.01)
        for _ in range(100):
            if mirror.value(SPEED) == 19.0:
                break
            await asyncio.sleep(0.02)
        assert mirror.value(SPEED) == 19.0
        assert 1 <= mirror.version - first <= 2  # 20 updates in ~0.2 s: the first, and the rest merged
        await asyncio.sleep(1.1)  # quiet for longer than the interval
        version = mirror.version
        broker.publish({SPEED: 50.0})
        begun = asyncio.get_running_loop().time()
        await asyncio.wait_for(mirror.changed(since=version), 2)
        assert mirror.value(SPEED) == 50.0
        assert asyncio.get_running_loop().time() - begun < 0.8  # not held back for the interval


async def test_a_target_subscription_with_an_interval_is_throttled_or_refused_naming_it(ports: PortFactory) -> None:
    """KUKSA v1's target subscription (a remote port's) has no sample interval: asking for one is an error that
    says so, not an interval silently ignored; the in-process port throttles targets as it does values."""
    port = await ports()
    if isinstance(port, RemotePort):
        with pytest.raises(InvalidArgumentError, match=r"targets.*min_interval_s"):
            async with port.subscribe([TEMP], field="target", min_interval_s=0.5):
                pass
    else:
        async with port.subscribe([TEMP], field="target", min_interval_s=0.5) as updates:
            assert TEMP in await asyncio.wait_for(anext(aiter(updates)), 2)


async def test_a_local_port_checks_its_permissions(broker: Broker) -> None:
    cabin = LocalPort(broker, "cabin", Permissions(grants=parse_scope("read:Vehicle.Cabin actuate:Vehicle.Cabin.HVAC")))
    broker.provide([LOCK, TEMP], _accept)
    await cabin.actuate({TEMP: 21.0})
    with pytest.raises(NotPermittedError, match=f"{LOCK}: permission denied.*'actuate'"):
        await cabin.actuate({LOCK: False})
    with pytest.raises(NotPermittedError, match="'read'"):
        await cabin.get(SPEED)
    with pytest.raises(NotPermittedError, match="'provide'"):
        await cabin.publish({TEMP: 21.0})


async def _accept(batch: dict[str, Any]) -> None:
    return None


async def test_the_broker_refuses_calls_from_another_thread(broker: Broker) -> None:
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            broker.publish({SPEED: 1.0})
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert errors and "belongs to the thread" in str(errors[0])
    assert broker.get(SPEED).value is None


async def test_a_provider_that_stops_answering_times_out(server: BrokerServer, broker: Broker) -> None:
    """An answering provider (the evos header) that does not answer: the actuation fails within a bound."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = v2_grpc.VALStub(channel)
        requests: asyncio.Queue[v2.OpenProviderStreamRequest] = asyncio.Queue()

        async def outgoing() -> AsyncIterator[v2.OpenProviderStreamRequest]:
            while True:
                yield await requests.get()

        stream = stub.OpenProviderStream(outgoing(), metadata=(("evos-actuation-ack", "1"),))
        await requests.put(v2.OpenProviderStreamRequest(provide_actuation_request=v2.ProvideActuationRequest(
            actuator_identifiers=[t2.SignalID(path=TEMP)])))
        assert (await stream.read()).HasField("provide_actuation_response")
        with pytest.raises(UnavailableError, match="did not answer within"):
            await broker.actuate({TEMP: 21.0})
        assert broker.get_target(TEMP).value is None
        stream.cancel()


async def test_an_expired_token_on_a_provider_stream_is_unauthenticated(broker: Broker, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "jwt.pub.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    server = BrokerServer(broker, ServerConfig(address="127.0.0.1:0", jwt_public_key=pem))
    server.access.verifier.leeway_s = 0  # type: ignore[union-attr]
    await server.start()
    try:
        import time

        token = jwt.encode({"exp": int(time.time()) + 1, "aud": "kuksa.val", "scope": "actuate provide"}, key,
                           algorithm="RS256")
        port = RemotePort(server.address, token=token, name="twin")
        await port.connect()
        await port.provide([TEMP], lambda batch: None)
        await asyncio.sleep(1.5)
        with pytest.raises(Exception):  # noqa: B017, PT011 - the stream ends; what matters is the status below
            await broker.actuate({TEMP: 20.0})  # the provider's next message meets the expired token
        await eventually(port.failure.done, 5)
        error = port.failure.exception()
        assert error is not None and "expired" in str(error), error
        assert not isinstance(error, BrokerUnreachableError)  # UNAUTHENTICATED, not UNKNOWN
        await port.close()
    finally:
        await server.stop(0)

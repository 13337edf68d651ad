"""Attacks on the ``sdv.databroker.v1`` entrance (the Velocitas API, docs/sdv-databroker-v1.md): it goes through the
same rules as every gRPC entrance of the car (docs/security.md). With authorization on, a call without a valid token
is UNAUTHENTICATED, whatever the RPC; a token's scopes bound what it reads, actuates and provides, per path; what opens
the car is refused whatever the token says and written to the audit journal as refused; hostile queries and oversized
requests are refused with INVALID_ARGUMENT. After every attack: a clear error, nothing changed (the signals are
checked), and the server still answers."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.sdv_client import (
    CALL_S,
    DENIED,
    READ_S,
    Sdv,
    bearer,
    dp,
    error_names,
    next_reply,
    refused,
    sdv_channel,
    subscribe,
    typed,
)
from companion.car import Car, start_car
from evos.broker import Broker, BrokerServer, ServerConfig, read_journal
from evos.broker._auth import LEEWAY_S
from evos.broker._wire import MAX_ENTRIES
from evos.broker.sdv_v1 import broker_pb2, collector_pb2, types_pb2
from evos.car._guard import no_opening
from helpers import eventually

SPEED = "Vehicle.Speed"  # float sensor
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"  # float sensor
MOVING = "Vehicle.IsMoving"  # boolean sensor
DISTANCE = "Vehicle.TraveledDistance"  # uint32 sensor
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"  # float actuator: the set point
FAN = "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed"  # uint8 actuator
AIRFLOW = "Vehicle.Cabin.HVAC.Station.Row1.Driver.AirDistribution"  # string actuator
SEAT_HEAT = "Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling"  # int8 actuator
LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"
ACTUATORS = [TEMP, FAN, AIRFLOW, SEAT_HEAT, LOCK, DOOR, WINDOW, TRUNK]
WATCHED = [SPEED, SOC, MOVING, *ACTUATORS]
START = {SPEED: 0.0, SOC: 80.0, MOVING: False, TEMP: 21.0, FAN: 20, AIRFLOW: "MIDDLE", SEAT_HEAT: 0, LOCK: True,
         DOOR: False, WINDOW: 0, TRUNK: False}
FULL_SCOPE = "read actuate provide"
LIVES_S = 2.0  # a short-lived token's remaining life (past its exp, within the clock-skew leeway)


# ---- the entrance under attack ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def token(key: rsa.RSAPrivateKey, scope: str = FULL_SCOPE, exp_s: float = 600, sub: str = "attacker",
          aud: str = "kuksa.val") -> str:
    now = time.time()
    claims = {"sub": sub, "aud": [aud], "iat": int(now) - 5, "exp": int(now + exp_s), "scope": scope}
    return jwt.encode(claims, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()), algorithm="RS256")


def write_public_key(key: rsa.RSAPrivateKey, directory: Path) -> Path:
    path = directory / "jwt.pub.pem"
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


class Hardware:
    """The provider of ``ACTUATORS``: carries a batch out (publishes it as the current values) and notes what the
    audit journal held when it was asked."""

    def __init__(self, broker: Broker, journal: Path) -> None:
        self.broker = broker
        self.journal = journal
        self.batches: list[dict[str, Any]] = []
        self.journal_when_asked: list[list[dict[str, Any]]] = []
        broker.provide(ACTUATORS, self.handle)

    async def handle(self, batch: dict[str, Any]) -> None:
        self.journal_when_asked.append(read_journal(self.journal))
        self.batches.append(dict(batch))
        self.broker.publish(batch)


@pytest.fixture
async def entrance(broker: Broker, tmp_path: Path, key: rsa.RSAPrivateKey
                   ) -> AsyncIterator[tuple[BrokerServer, Hardware]]:
    """The broker on TCP with authorization on (tokens signed by ``key``), journaled and guarded as the car's is
    (what opens the car is refused), its actuators provided by ``Hardware``; the car parked, locked, closed."""
    broker.publish(START)
    config = ServerConfig(address="127.0.0.1:0", jwt_public_key=write_public_key(key, tmp_path),
                          audit_journal=tmp_path / "broker-audit.sqlite")
    server = BrokerServer(broker, config, no_opening(broker))
    hardware = Hardware(broker, tmp_path / "broker-audit.sqlite")
    await server.start()
    try:
        yield server, hardware
    finally:
        await server.stop(0)


def values(broker: Broker, paths: tuple[str, ...] | list[str] = tuple(WATCHED)) -> dict[str, tuple[Any, Any]]:
    """The current and target value of each signal (what "nothing changed" compares)."""
    return {path: (broker.get(path).value, broker.get_target(path).value) for path in paths}


UNMOVED = {path: (START[path], None) for path in WATCHED}


async def still_serving(server: BrokerServer, key: rsa.RSAPrivateKey) -> None:
    """The server answers a fresh client: a read, a metadata look-up and a subscription's first reply."""
    async with sdv_channel(server.address, token(key, "read")) as sdv:
        reply = await sdv.broker.GetDatapoints(broker_pb2.GetDatapointsRequest(datapoints=[SPEED]),
                                               metadata=sdv.metadata, timeout=CALL_S)
        assert typed(reply.datapoints[SPEED]) == ("float_value", server.broker.get(SPEED).value)
        listed = await sdv.broker.GetMetadata(broker_pb2.GetMetadataRequest(names=[SPEED]), metadata=sdv.metadata,
                                              timeout=CALL_S)
        assert [m.name for m in listed.list] == [SPEED]
        call = subscribe(sdv, f"SELECT {SPEED}")
        try:
            assert SPEED in await next_reply(call)
        finally:
            call.cancel()


def journal(server: BrokerServer) -> list[dict[str, Any]]:
    return read_journal(server.config.audit_journal)  # type: ignore[arg-type]


# ---- every RPC, each way of calling without a valid token ------------------------------------------------------

Rpc = Callable[[Sdv, Broker], Awaitable[Any]]


async def get_datapoints(sdv: Sdv, broker: Broker) -> Any:
    return await sdv.broker.GetDatapoints(broker_pb2.GetDatapointsRequest(datapoints=[SPEED, LOCK]),
                                          metadata=sdv.metadata, timeout=CALL_S)


async def set_datapoints(sdv: Sdv, broker: Broker) -> Any:
    return await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
        TEMP: dp("float_value", 28.0), LOCK: dp("bool_value", False)}), metadata=sdv.metadata, timeout=CALL_S)


async def subscribe_speed(sdv: Sdv, broker: Broker) -> Any:
    call = subscribe(sdv, f"SELECT {SPEED} WHERE {LOCK} = true")
    raise await refused(call)


async def get_metadata(sdv: Sdv, broker: Broker) -> Any:
    return await sdv.broker.GetMetadata(broker_pb2.GetMetadataRequest(), metadata=sdv.metadata, timeout=CALL_S)


async def register_datapoints(sdv: Sdv, broker: Broker) -> Any:
    return await sdv.collector.RegisterDatapoints(collector_pb2.RegisterDatapointsRequest(list=[
        collector_pb2.RegistrationMetadata(name=SPEED, data_type=types_pb2.FLOAT, change_type=types_pb2.CONTINUOUS)]),
        metadata=sdv.metadata, timeout=CALL_S)


def speed_update(broker: Broker) -> dict[int, types_pb2.Datapoint]:
    return {broker.catalog.get(SPEED).id: dp("float_value", 250.0), broker.catalog.get(SOC).id: dp("float_value", 1.0)}


async def update_datapoints(sdv: Sdv, broker: Broker) -> Any:
    return await sdv.collector.UpdateDatapoints(collector_pb2.UpdateDatapointsRequest(datapoints=speed_update(broker)),
                                                metadata=sdv.metadata, timeout=CALL_S)


async def stream_datapoints(sdv: Sdv, broker: Broker) -> Any:
    call = sdv.collector.StreamDatapoints(iter([collector_pb2.StreamDatapointsRequest(
        datapoints=speed_update(broker))]), metadata=sdv.metadata, timeout=CALL_S)
    return await call.read()


RPCS: list[Rpc] = [get_datapoints, set_datapoints, subscribe_speed, get_metadata, register_datapoints,
                   update_datapoints, stream_datapoints]
CREDENTIALS: dict[str, Callable[[rsa.RSAPrivateKey, rsa.RSAPrivateKey], tuple[tuple[str, str], ...]]] = {
    "no token": lambda key, other: (),
    "not a bearer": lambda key, other: (("authorization", "Basic YWRtaW46YWRtaW4="),),
    "not a JWT": lambda key, other: bearer("not.a.jwt"),
    "signed by another key": lambda key, other: bearer(token(other)),
    "expired": lambda key, other: bearer(token(key, exp_s=-LEEWAY_S - 600)),
    "another audience": lambda key, other: bearer(token(key, aud="someone.else")),
    "unsigned": lambda key, other: bearer(jwt.encode({"sub": "attacker", "aud": ["kuksa.val"], "scope": FULL_SCOPE,
                                                      "exp": int(time.time()) + 600}, None, algorithm="none")),
}


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("rpc", RPCS, ids=lambda rpc: rpc.__name__)
async def test_every_rpc_needs_a_valid_token(entrance: tuple[BrokerServer, Hardware], key: rsa.RSAPrivateKey,
                                             other_key: rsa.RSAPrivateKey, rpc: Rpc, credential: str) -> None:
    server, hardware = entrance
    async with sdv_channel(server.address) as sdv:
        sdv.metadata = CREDENTIALS[credential](key, other_key)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rpc(sdv, server.broker)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value
    assert caught.value.details()
    assert hardware.batches == [] and values(server.broker) == UNMOVED
    await still_serving(server, key)


# ---- what a token's scopes allow ---------------------------------------------------------------------------------


async def test_a_read_token_cannot_actuate_provide_or_register(entrance: tuple[BrokerServer, Hardware],
                                                               key: rsa.RSAPrivateKey) -> None:
    server, hardware = entrance
    broker = server.broker
    speed, soc = broker.catalog.get(SPEED).id, broker.catalog.get(SOC).id
    async with sdv_channel(server.address, token(key, "read")) as sdv:
        reply = await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
            TEMP: dp("float_value", 28.0), FAN: dp("uint32_value", 100)}), metadata=sdv.metadata, timeout=CALL_S)
        assert error_names(reply.errors) == {TEMP: "ACCESS_DENIED", FAN: "ACCESS_DENIED"}
        reply = await sdv.collector.UpdateDatapoints(collector_pb2.UpdateDatapointsRequest(
            datapoints=speed_update(broker)), metadata=sdv.metadata, timeout=CALL_S)
        assert error_names(reply.errors) == {speed: "ACCESS_DENIED", soc: "ACCESS_DENIED"}
        stream = sdv.collector.StreamDatapoints(iter([collector_pb2.StreamDatapointsRequest(
            datapoints=speed_update(broker))]), metadata=sdv.metadata, timeout=CALL_S)
        answer = await asyncio.wait_for(stream.read(), READ_S)
        assert error_names(answer.errors) == {speed: "ACCESS_DENIED", soc: "ACCESS_DENIED"}
        stream.cancel()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await register_datapoints(sdv, broker)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert SPEED in (caught.value.details() or "")
        reply = await sdv.broker.GetDatapoints(broker_pb2.GetDatapointsRequest(datapoints=[TEMP, SPEED]),
                                               metadata=sdv.metadata, timeout=CALL_S)  # what it may do
        assert {p: typed(d) for p, d in reply.datapoints.items()} == {
            TEMP: ("float_value", 21.0), SPEED: ("float_value", 0.0)}
    assert hardware.batches == [] and values(broker) == UNMOVED
    await still_serving(server, key)


HVAC_ONLY = "read:Vehicle.Cabin.HVAC.**"


async def test_a_read_grant_for_one_branch_reads_nothing_else(entrance: tuple[BrokerServer, Hardware],
                                                              key: rsa.RSAPrivateKey) -> None:
    server, _ = entrance
    async with sdv_channel(server.address, token(key, HVAC_ONLY)) as sdv:
        reply = await sdv.broker.GetDatapoints(broker_pb2.GetDatapointsRequest(datapoints=[TEMP, SPEED, LOCK, FAN]),
                                               metadata=sdv.metadata, timeout=CALL_S)
        assert {p: typed(d) for p, d in reply.datapoints.items()} == {
            TEMP: ("float_value", 21.0), SPEED: DENIED, LOCK: DENIED, FAN: ("uint32_value", 20)}
        call = subscribe(sdv, f"SELECT {TEMP} WHERE {TEMP} > 18")  # what it may read
        try:
            assert await next_reply(call) == {TEMP: ("float_value", 21.0)}
        finally:
            call.cancel()


@pytest.mark.parametrize(("query", "forbidden"), [
    (f"SELECT {TEMP} WHERE {LOCK} = true", LOCK),  # named in WHERE only
    (f"SELECT {TEMP} WHERE {TEMP} > 18 AND NOT ({SPEED} > 5)", SPEED),
    (f"SELECT {TEMP}, LAG({SPEED}) AS previous", SPEED),
    (f"SELECT {TEMP}, ({MOVING} = true) AS moving", MOVING),
    (f"SELECT {SPEED}", SPEED),
    (f"SELECT {TEMP} AS t WHERE {SOC} BETWEEN 10 AND 20", SOC),
])
async def test_a_subscription_naming_a_path_the_token_may_not_read_is_permission_denied(
        entrance: tuple[BrokerServer, Hardware], key: rsa.RSAPrivateKey, query: str, forbidden: str) -> None:
    server, _ = entrance
    async with sdv_channel(server.address, token(key, HVAC_ONLY)) as sdv:
        error = await refused(subscribe(sdv, query))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
    assert forbidden in (error.details() or "")
    await still_serving(server, key)


async def test_grants_for_one_branch_act_on_nothing_else(entrance: tuple[BrokerServer, Hardware],
                                                         key: rsa.RSAPrivateKey) -> None:
    server, hardware = entrance
    broker = server.broker
    speed, soc = broker.catalog.get(SPEED).id, broker.catalog.get(SOC).id
    scope = "actuate:Vehicle.Cabin.HVAC.** provide:Vehicle.Speed"
    async with sdv_channel(server.address, token(key, scope)) as sdv:
        reply = await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
            TEMP: dp("float_value", 23.0), SEAT_HEAT: dp("int32_value", 100)}), metadata=sdv.metadata,
            timeout=CALL_S)
        assert error_names(reply.errors) == {SEAT_HEAT: "ACCESS_DENIED"}  # and the set point not carried out
        reply = await sdv.collector.UpdateDatapoints(collector_pb2.UpdateDatapointsRequest(
            datapoints=speed_update(broker)), metadata=sdv.metadata, timeout=CALL_S)
        assert error_names(reply.errors) == {soc: "ACCESS_DENIED"}  # and the speed not set
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await sdv.collector.RegisterDatapoints(collector_pb2.RegisterDatapointsRequest(list=[
                collector_pb2.RegistrationMetadata(name=SPEED, data_type=types_pb2.FLOAT),
                collector_pb2.RegistrationMetadata(name=SOC, data_type=types_pb2.FLOAT)]),
                metadata=sdv.metadata, timeout=CALL_S)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED and SOC in (caught.value.details() or "")
        assert hardware.batches == [] and values(broker) == UNMOVED
        # what the grants do allow
        registered = await sdv.collector.RegisterDatapoints(collector_pb2.RegisterDatapointsRequest(list=[
            collector_pb2.RegistrationMetadata(name=SPEED, data_type=types_pb2.FLOAT)]), metadata=sdv.metadata,
            timeout=CALL_S)
        assert dict(registered.results) == {SPEED: speed}
        reply = await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
            TEMP: dp("float_value", 23.0)}), metadata=sdv.metadata, timeout=CALL_S)
        assert error_names(reply.errors) == {}
    assert hardware.batches == [{TEMP: 23.0}]


async def test_an_actuation_is_journaled_before_it_is_carried_out(entrance: tuple[BrokerServer, Hardware],
                                                                  key: rsa.RSAPrivateKey) -> None:
    server, hardware = entrance
    async with sdv_channel(server.address, token(key, sub="diagnostics-tool")) as sdv:
        reply = await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
            TEMP: dp("float_value", 19.5)}), metadata=sdv.metadata, timeout=CALL_S)
    assert error_names(reply.errors) == {}
    assert hardware.batches == [{TEMP: 19.5}]
    (when_asked,) = hardware.journal_when_asked
    assert [(e["args"], e["result"]) for e in when_asked] == [({TEMP: 19.5}, "requested")]
    assert [(e["user"], e["args"], e["result"]) for e in journal(server)] == [
        ("diagnostics-tool", {TEMP: 19.5}, "completed")]


# ---- opening the car -------------------------------------------------------------------------------------------


@pytest.fixture
async def whole_car(tmp_path: Path, key: rsa.RSAPrivateKey) -> AsyncIterator[tuple[Car, BrokerServer]]:
    """The whole car in-process (the twin and its body hardware), parked and locked, and its broker's gRPC entrance
    on TCP as `evos up` serves it: tokens signed by ``key``, journaled, guarded."""
    car = await start_car(tmp_path)
    config = ServerConfig(address="127.0.0.1:0", jwt_public_key=write_public_key(key, tmp_path),
                          audit_journal=tmp_path / "broker-audit.sqlite")
    server = BrokerServer(car.broker, config, no_opening(car.broker))
    await server.start()
    try:
        yield car, server
    finally:
        await server.stop(0)
        await car.shutdown()


# (actuator, field, value): each unlocks or opens the parked, locked car
OPENINGS = [
    (LOCK, "bool_value", False),  # unlock the driver's door
    ("Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked", "bool_value", False),
    ("Vehicle.Body.Trunk.Rear.IsLocked", "bool_value", False),
    (DOOR, "bool_value", True),  # open a door
    (WINDOW, "uint32_value", 40),  # open a window of the locked car
    ("Vehicle.Cabin.Door.Row1.PassengerSide.Window.Switch", "string_value", "OPEN"),
    (TRUNK, "bool_value", True),  # open the trunk
    ("Vehicle.Body.Trunk.Rear.Switch", "string_value", "OPEN"),
    ("Vehicle.Body.Hood.IsOpen", "bool_value", True),
    ("Vehicle.Cabin.Sunroof.Switch", "string_value", "TILT_UP"),
]
CAR_WATCHED = [path for path, _, _ in OPENINGS] + [TEMP]


async def test_opening_the_car_through_set_datapoints_is_refused_and_journaled(
        whole_car: tuple[Car, BrokerServer], key: rsa.RSAPrivateKey) -> None:
    car, server = whole_car
    broker = car.broker
    assert broker.get(LOCK).value is True
    parked = values(broker, CAR_WATCHED)
    async with sdv_channel(server.address, token(key, FULL_SCOPE, sub="intruder")) as sdv:  # whatever the token says
        for count, (path, field, value) in enumerate(OPENINGS, 1):
            reply = await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
                path: dp(field, value)}), metadata=sdv.metadata, timeout=CALL_S)
            assert error_names(reply.errors) == {path: "ACCESS_DENIED"}, path
            assert values(broker, CAR_WATCHED) == parked, f"{path}: the car moved"
            rows = journal(server)
            assert len(rows) == count, rows
            assert (rows[0]["user"], rows[0]["args"], rows[0]["result"]) == (
                "intruder", {path: value}, "signature_required"), rows[0]
        # hidden in a harmless request: refused whole, the harmless part not carried out either
        reply = await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
            TEMP: dp("float_value", 24.0), LOCK: dp("bool_value", False)}), metadata=sdv.metadata, timeout=CALL_S)
        assert error_names(reply.errors) == {LOCK: "ACCESS_DENIED"}
        assert values(broker, CAR_WATCHED) == parked
        assert journal(server)[0]["result"] == "signature_required"
        assert journal(server)[0]["args"][LOCK] is False
        # the entrance still serves what does not open the car, and journals it
        reply = await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints={
            TEMP: dp("float_value", 22.5)}), metadata=sdv.metadata, timeout=CALL_S)
        assert error_names(reply.errors) == {}
    await eventually(lambda: broker.get(TEMP).value == 22.5)
    assert (journal(server)[0]["args"], journal(server)[0]["result"]) == ({TEMP: 22.5}, "completed")
    assert broker.get(LOCK).value is True and values(broker, CAR_WATCHED[:-1]) == {
        p: v for p, v in parked.items() if p != TEMP}


# ---- hostile queries -------------------------------------------------------------------------------------------

PREFIX = f"SELECT {SPEED} WHERE {SPEED} >"


def sized(total_bytes: int) -> str:
    """A well-formed query of exactly ``total_bytes`` bytes (spaces inside it, not at its ends)."""
    query = f"{PREFIX}{' ' * (total_bytes - len(PREFIX) - 2)} 1"
    assert len(query.encode()) == total_bytes
    return query


HOSTILE = [
    pytest.param(sized(8 * 1024 + 1), r"KiB|8192|8,192|8 192|bytes|long", id="8KiB+1"),
    pytest.param(f"SELECT {SPEED} WHERE {'(' * 65}{SPEED} > 1{')' * 65}", r"deep|nest|depth|64|level", id="65-parens"),
    pytest.param(f"SELECT {SPEED} WHERE {'NOT ' * 65}{MOVING}", r"deep|nest|depth|64|level", id="65-nots"),
    pytest.param(f"SELECT {SPEED} WHERE {'(' * 4000}{SPEED} > 1{')' * 4000}", r"deep|nest|depth|64|level",
                 id="4000-parens"),
    pytest.param(f"SELECT {SPEED} WHERE {'NOT ' * 2000}{MOVING}", r"deep|nest|depth|64|level", id="2000-nots"),
    pytest.param(f"SELECT {'(' * 3000}{SPEED}", "", id="3000-open-parens"),
    pytest.param(f"SELECT {SPEED}\x00", "", id="nul-after"),
    pytest.param("SELECT Vehicle.Sp\x00eed", "", id="nul-in-path"),
    pytest.param("\x00", "", id="nul"),
    pytest.param(f"SELECT {SPEED} WHERE {SPEED} > 1{'0' * 400}", "", id="huge-float"),
    pytest.param(f"SELECT {SPEED} WHERE {SPEED} > 1{'0' * 400}.5", "", id="huge-float-fraction"),
    pytest.param(f"SELECT {DISTANCE} WHERE {DISTANCE} > 99999999999999999999999", "", id="huge-uint32"),
    pytest.param(f"SELECT {DISTANCE} WHERE {DISTANCE} < 1e999", "", id="exponent"),
    pytest.param(f"SELECT {SPEED} WHERE {SPEED} > NaN", "", id="nan"),
    pytest.param(f"SELECT {SPEED} WHERE {AIRFLOW} = 'UP", "", id="unterminated"),
    pytest.param(f"SELECT {SPEED} WHERE {AIRFLOW} = 'it''s", "", id="unterminated-after-quote"),
    pytest.param("SELECT 'abc", "", id="unterminated-select"),
    pytest.param(f"SELECT {SPEED}; DROP TABLE x", "", id="drop-table"),
    pytest.param(f"SELECT {SPEED} WHERE {SPEED} > 1; DELETE FROM journal", "", id="delete"),
    pytest.param(f"SELECT {SPEED} UNION SELECT {LOCK}", "", id="union"),
    pytest.param("SELECT *", "", id="star"),
    pytest.param("SELECT * FROM Vehicle", "", id="star-from"),
    pytest.param("FROM Vehicle", "", id="from"),
    pytest.param(f"SELECT {SPEED} FROM Vehicle.Cabin", "", id="select-from"),
    pytest.param("SELECT Vehicle.Sp\u0435ed", "", id="cyrillic-e"),
    pytest.param(f"SELECT {SPEED} WHERE {SPEED} > (SELECT {SPEED} WHERE {LOCK} = false)", "", id="subquery"),
    pytest.param("SELECT " + ", ".join(f"LAG({SPEED})" for _ in range(700)), "", id="many-fields-too-long"),
]


@pytest.mark.parametrize(("query", "names"), HOSTILE)
async def test_a_hostile_query_is_invalid_argument_and_the_server_keeps_serving(
        entrance: tuple[BrokerServer, Hardware], key: rsa.RSAPrivateKey, query: str, names: str) -> None:
    server, hardware = entrance
    async with sdv_channel(server.address, token(key, "read")) as sdv:
        call = sdv.broker.Subscribe(broker_pb2.SubscribeRequest(query=query), metadata=sdv.metadata, timeout=CALL_S)
        error = await refused(call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    details = error.details() or ""
    assert details and len(details) < 2000, details[:300]  # a message, not an echo of a huge query
    assert re.search(names, details), f"{details!r} does not say what is wrong"
    assert hardware.batches == [] and values(server.broker) == UNMOVED
    await still_serving(server, key)


async def test_a_query_of_8_kib_is_served(entrance: tuple[BrokerServer, Hardware], key: rsa.RSAPrivateKey) -> None:
    server, _ = entrance
    server.broker.publish({SPEED: 3.0})
    async with sdv_channel(server.address, token(key, "read")) as sdv:
        call = subscribe(sdv, sized(8 * 1024))
        try:
            assert await next_reply(call) == {SPEED: ("float_value", 3.0)}
        finally:
            call.cancel()


async def test_a_long_flat_condition_is_served_or_refused_and_breaks_nothing(entrance: tuple[BrokerServer, Hardware],
                                                                             key: rsa.RSAPrivateKey) -> None:
    server, _ = entrance
    server.broker.publish({SPEED: 3.0})
    query = f"SELECT {SPEED} WHERE " + " AND ".join([f"{SPEED} > 1"] * 350)  # about 7 KiB, 350 comparisons
    assert len(query) < 8 * 1024
    async with sdv_channel(server.address, token(key, "read")) as sdv:
        call = subscribe(sdv, query)
        try:
            outcome: Any = await asyncio.wait_for(call.read(), READ_S)
        except grpc.aio.AioRpcError as error:
            outcome = error.code()
        finally:
            call.cancel()
    if isinstance(outcome, grpc.StatusCode):
        assert outcome == grpc.StatusCode.INVALID_ARGUMENT
    else:
        assert {n: typed(d) for n, d in outcome.fields.items()} == {SPEED: ("float_value", 3.0)}
    await still_serving(server, key)


async def test_a_flood_of_bad_queries_leaves_the_server_serving(entrance: tuple[BrokerServer, Hardware],
                                                                key: rsa.RSAPrivateKey) -> None:
    server, _ = entrance
    async with sdv_channel(server.address, token(key, "read")) as sdv:
        calls = [subscribe(sdv, query) for query in [f"SELECT {SPEED} WHERE {'(' * 65}{SPEED} > 1{')' * 65}",
                                                      sized(8 * 1024 + 1), "SELECT *"] * 30]
        outcomes = await asyncio.gather(*(refused(call) for call in calls))
    assert {error.code() for error in outcomes} == {grpc.StatusCode.INVALID_ARGUMENT}
    await still_serving(server, key)


# ---- oversized requests ----------------------------------------------------------------------------------------

NAMES_A_CAP = re.compile(r"at most|limit|maximum|max\b|cap\b|exceed|too many|more than", re.IGNORECASE)
TOO_MANY = MAX_ENTRIES + 1


def numbers(text: str) -> list[int]:
    return [int(re.sub(r"[,_ ]", "", n)) for n in re.findall(r"\d[\d,_]*", text)]


def many_paths() -> list[str]:
    return [f"Vehicle.Evos.Flood.Signal{i}" for i in range(TOO_MANY)]


async def oversized_set(sdv: Sdv, broker: Broker) -> Any:
    datapoints = {path: dp("bool_value", True) for path in many_paths()}
    datapoints[LOCK] = dp("bool_value", False)
    datapoints[TEMP] = dp("float_value", 30.0)
    return await sdv.broker.SetDatapoints(broker_pb2.SetDatapointsRequest(datapoints=datapoints),
                                          metadata=sdv.metadata, timeout=CALL_S)


async def oversized_get(sdv: Sdv, broker: Broker) -> Any:
    return await sdv.broker.GetDatapoints(broker_pb2.GetDatapointsRequest(datapoints=many_paths()),
                                          metadata=sdv.metadata, timeout=CALL_S)


async def oversized_metadata(sdv: Sdv, broker: Broker) -> Any:
    return await sdv.broker.GetMetadata(broker_pb2.GetMetadataRequest(names=many_paths()), metadata=sdv.metadata,
                                        timeout=CALL_S)


async def oversized_register(sdv: Sdv, broker: Broker) -> Any:
    return await sdv.collector.RegisterDatapoints(collector_pb2.RegisterDatapointsRequest(list=[
        collector_pb2.RegistrationMetadata(name=SPEED, data_type=types_pb2.FLOAT)] * TOO_MANY),
        metadata=sdv.metadata, timeout=CALL_S)


def many_ids(broker: Broker) -> dict[int, types_pb2.Datapoint]:
    datapoints = {100_000 + i: dp("float_value", 1.0) for i in range(TOO_MANY)}
    datapoints[broker.catalog.get(SPEED).id] = dp("float_value", 250.0)
    return datapoints


async def oversized_update(sdv: Sdv, broker: Broker) -> Any:
    return await sdv.collector.UpdateDatapoints(collector_pb2.UpdateDatapointsRequest(datapoints=many_ids(broker)),
                                                metadata=sdv.metadata, timeout=CALL_S)


async def oversized_stream(sdv: Sdv, broker: Broker) -> Any:
    call = sdv.collector.StreamDatapoints(iter([collector_pb2.StreamDatapointsRequest(datapoints=many_ids(broker))]),
                                          metadata=sdv.metadata, timeout=CALL_S)
    return await call.read()


@pytest.mark.parametrize("rpc", [oversized_set, oversized_get, oversized_metadata, oversized_register,
                                 oversized_update, oversized_stream], ids=lambda rpc: rpc.__name__)
async def test_a_request_over_the_entry_cap_is_refused_naming_it(entrance: tuple[BrokerServer, Hardware],
                                                                 key: rsa.RSAPrivateKey, rpc: Rpc) -> None:
    server, hardware = entrance
    async with sdv_channel(server.address, token(key)) as sdv:
        try:
            answer = await rpc(sdv, server.broker)
        except grpc.aio.AioRpcError as error:
            code, details = error.code(), error.details() or ""
        else:
            pytest.fail(f"{rpc.__name__} with {TOO_MANY:,} entries was served: {str(answer)[:200]}")
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details[:300])
    assert NAMES_A_CAP.search(details) and any(0 < n < TOO_MANY for n in numbers(details)), details[:300]
    assert hardware.batches == [] and values(server.broker) == UNMOVED
    await still_serving(server, key)


async def test_a_request_for_every_signal_is_not_over_the_cap(entrance: tuple[BrokerServer, Hardware],
                                                              key: rsa.RSAPrivateKey) -> None:
    server, _ = entrance
    every = [signal.path for signal in server.broker.catalog]
    async with sdv_channel(server.address, token(key, "read")) as sdv:
        reply = await sdv.broker.GetDatapoints(broker_pb2.GetDatapointsRequest(datapoints=every),
                                               metadata=sdv.metadata, timeout=CALL_S)
    assert len(reply.datapoints) == len(every)


# ---- streams outliving their token -----------------------------------------------------------------------------


def short_lived(key: rsa.RSAPrivateKey) -> tuple[tuple[str, str], ...]:
    now = time.time()
    claims = {"sub": "attacker", "aud": ["kuksa.val"], "iat": int(now) - 120, "exp": int(now - LEEWAY_S + LIVES_S),
              "scope": FULL_SCOPE}
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return bearer(jwt.encode(claims, pem, algorithm="RS256"))


async def test_an_idle_subscription_ends_when_its_token_expires(entrance: tuple[BrokerServer, Hardware],
                                                                key: rsa.RSAPrivateKey) -> None:
    server, _ = entrance
    async with sdv_channel(server.address) as sdv:
        sdv.metadata = short_lived(key)
        call = sdv.broker.Subscribe(broker_pb2.SubscribeRequest(query=f"SELECT {SPEED} WHERE {SPEED} > 100"),
                                    metadata=sdv.metadata, timeout=LIVES_S + 6)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value
    assert "expired" in (caught.value.details() or "")


async def test_an_idle_feeder_stream_ends_when_its_token_expires(entrance: tuple[BrokerServer, Hardware],
                                                                 key: rsa.RSAPrivateKey) -> None:
    server, _ = entrance
    stop = asyncio.Event()

    async def idle() -> AsyncIterator[collector_pb2.StreamDatapointsRequest]:
        await stop.wait()
        yield collector_pb2.StreamDatapointsRequest()  # never reached before the end

    async with sdv_channel(server.address) as sdv:
        call = sdv.collector.StreamDatapoints(idle(), metadata=short_lived(key), timeout=LIVES_S + 6)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
        finally:
            stop.set()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value
    assert "expired" in (caught.value.details() or "")

"""The gRPC entrance goes through the same rules as every other (issue 12, item 1): a KUKSA client — `evos actuate`,
`evos assistant --address`, any other — that actuates over TCP is written to the broker's audit journal *before*
the broker acts (one that cannot be written is refused and changes nothing), and what opens the car is refused
there, saying it takes a command signed by a paired phone key. The car's own apps, on their socket with their own
tokens, are not journaled by the broker (their entrances keep the companion's audit log)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc
from kuksa_client.grpc import Datapoint, VSSClientError
from kuksa_client.grpc.aio import VSSClient

from evos.broker import APP_ISSUER, Broker, BrokerServer, LocalPort, ServerConfig, read_journal
from evos.broker import _journal as journal_module
from evos.car._guard import no_opening
from evos.vss import Value

SETPOINT = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
WINDOW = "Vehicle.Cabin.Door.Row1.PassengerSide.Window.Position"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def token(key: rsa.RSAPrivateKey, sub: str, issuer: str | None = None) -> str:
    now = int(time.time())
    claims = {"sub": sub, "aud": "kuksa.val", "iat": now, "exp": now + 600, "scope": "actuate",
              **({"iss": issuer} if issuer else {})}
    return jwt.encode(claims, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()), algorithm="RS256")


class Hardware:
    """The provider of the actuators: it looks into the journal each time it is asked to act."""

    def __init__(self, broker: Broker, journal: Path) -> None:
        self.broker = broker
        self.journal = journal
        self.carried_out: list[dict[str, Value]] = []
        self.journal_when_asked: list[list[dict[str, Any]]] = []

    async def handle(self, batch: dict[str, Value]) -> None:
        self.journal_when_asked.append(read_journal(self.journal))
        self.carried_out.append(dict(batch))
        self.broker.publish(batch)


@contextlib.asynccontextmanager
async def guarded(broker: Broker, tmp_path: Path, key: rsa.RSAPrivateKey, tokens: bool = False
                  ) -> AsyncIterator[tuple[BrokerServer, Hardware]]:
    """A broker on TCP (authorization off, as `evos up` by default, or ``tokens`` signed by ``key``) and on an apps'
    socket, journaled and guarded as the car's is; the locks, a window, the trunk and the set point provided by
    ``Hardware``."""
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "jwt.pub.pem").write_bytes(pem)
    config = ServerConfig(address="127.0.0.1:0", jwt_public_key=tmp_path / "jwt.pub.pem" if tokens else None,
                          app_socket=tmp_path / "apps.sock", app_key=pem.decode(),
                          audit_journal=tmp_path / "broker-audit.sqlite")
    server = BrokerServer(broker, config, no_opening(broker))
    hardware = Hardware(broker, tmp_path / "broker-audit.sqlite")
    port = LocalPort(broker, "hardware")
    await port.provide([SETPOINT, LOCK, WINDOW, TRUNK], hardware.handle)
    await server.start()
    try:
        yield server, hardware
    finally:
        await server.stop(0)
        await port.close()


@pytest.fixture
async def car(broker: Broker, tmp_path: Path, key: rsa.RSAPrivateKey) -> AsyncIterator[tuple[BrokerServer, Hardware]]:
    broker.publish({LOCK: True})
    async with guarded(broker, tmp_path, key) as served:
        yield served


def journal(server: BrokerServer) -> list[dict[str, Any]]:
    return read_journal(server.config.audit_journal)  # type: ignore[arg-type]


async def test_an_actuation_over_grpc_is_journaled_before_it_is_carried_out(car: tuple[BrokerServer, Hardware]
                                                                           ) -> None:
    server, hardware = car
    async with VSSClient("127.0.0.1", server.port) as client:  # kuksa-client's v1 Set of a target
        await client.set_target_values({SETPOINT: Datapoint(23.5)})
    async with grpc.aio.insecure_channel(server.address) as channel:  # and v2 Actuate
        await v2_grpc.VALStub(channel).Actuate(v2.ActuateRequest(
            signal_id=t2.SignalID(path=SETPOINT), value=t2.Value(float=19.0)), timeout=10)
    assert hardware.carried_out == [{SETPOINT: 23.5}, {SETPOINT: 19.0}]
    # each time the hardware was asked, the request was already in the journal, not yet with its outcome
    first, second = hardware.journal_when_asked
    assert [(e["args"], e["result"]) for e in first] == [({SETPOINT: 23.5}, "requested")]
    assert [(e["args"], e["result"]) for e in second] == [({SETPOINT: 19.0}, "requested"),
                                                          ({SETPOINT: 23.5}, "completed")]
    rows = journal(server)
    assert [(e["command"], e["args"], e["result"]) for e in rows] == [
        ("actuate", {SETPOINT: 19.0}, "completed"), ("actuate", {SETPOINT: 23.5}, "completed")]
    assert {e["user"] for e in rows} == {"anyone (authorization is off)"}
    assert all(e["credential"].startswith("gRPC ipv4:127.0.0.1:") for e in rows), rows


@pytest.mark.parametrize(("path", "value", "field"), [
    (LOCK, False, "bool"), (TRUNK, True, "bool"), (WINDOW, 40, "uint32")])
async def test_what_opens_the_car_is_refused_over_grpc_and_journaled(
        car: tuple[BrokerServer, Hardware], path: str, value: Any, field: str) -> None:
    server, hardware = car
    async with grpc.aio.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await v2_grpc.VALStub(channel).Actuate(v2.ActuateRequest(
                signal_id=t2.SignalID(path=path), value=t2.Value(**{field: value})), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert path in refused.value.details() and "signed by a paired phone key" in refused.value.details()
    async with VSSClient("127.0.0.1", server.port) as client:  # kuksa-client's v1 Set: the same answer
        with pytest.raises(VSSClientError) as v1_refused:
            await client.set_target_values({path: Datapoint(value)})
    assert "signed by a paired phone key" in str(v1_refused.value)
    assert hardware.carried_out == []
    assert [(e["args"], e["result"]) for e in journal(server)] == [({path: value}, "signature_required")] * 2
    # closing and locking are not opening: they pass (the window of an unlocked car too)
    async with VSSClient("127.0.0.1", server.port) as client:
        await client.set_target_values({LOCK: Datapoint(True), TRUNK: Datapoint(False)})
        server.broker.publish({LOCK: False})
        await client.set_target_values({WINDOW: Datapoint(40)})
    assert hardware.carried_out == [{LOCK: True, TRUNK: False}, {WINDOW: 40}]


async def test_an_actuation_the_journal_cannot_hold_is_refused(car: tuple[BrokerServer, Hardware],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    server, hardware = car

    def disk_full(*_args: Any) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(journal_module.Journal, "_insert", disk_full)
    async with grpc.aio.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await v2_grpc.VALStub(channel).Actuate(v2.ActuateRequest(
                signal_id=t2.SignalID(path=SETPOINT), value=t2.Value(float=25.0)), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "audit journal cannot be written" in refused.value.details()
        assert hardware.carried_out == [] and server.broker.get_target(SETPOINT).value is None
        monkeypatch.undo()  # the disk works again
        await v2_grpc.VALStub(channel).Actuate(v2.ActuateRequest(
            signal_id=t2.SignalID(path=SETPOINT), value=t2.Value(float=25.0)), timeout=10)
    assert hardware.carried_out == [{SETPOINT: 25.0}]
    assert [e["result"] for e in journal(server)] == ["completed"]


async def test_the_token_names_who_asked_and_the_apps_are_not_journaled(broker: Broker, tmp_path: Path,
                                                                       key: rsa.RSAPrivateKey) -> None:
    async with guarded(broker, tmp_path, key, tokens=True) as (server, hardware):
        for address, bearer in ((server.address, token(key, "diagnostics-tool")),
                                (f"unix:{tmp_path / 'apps.sock'}", token(key, "app:cabin", APP_ISSUER))):
            async with grpc.aio.insecure_channel(address) as channel:
                await v2_grpc.VALStub(channel).Actuate(v2.ActuateRequest(
                    signal_id=t2.SignalID(path=SETPOINT), value=t2.Value(float=21.0)),
                    metadata=[("authorization", f"Bearer {bearer}")], timeout=10)
    assert len(hardware.carried_out) == 2
    assert [(e["user"], e["result"]) for e in journal(server)] == [("diagnostics-tool", "completed")]


def test_a_journal_found_unusable_is_set_aside_and_a_new_one_begun(tmp_path: Path) -> None:
    path = tmp_path / "broker-audit.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    journal = journal_module.Journal(path)
    try:
        row = journal._insert(time.time(), journal_module.Caller("someone", "gRPC test"), "actuate", "{}",
                              "requested", "")
    finally:
        journal.close()
    assert row == 1 and [e["user"] for e in read_journal(path)] == ["someone"]
    assert [p.name.startswith("broker-audit.sqlite.bad-") for p in tmp_path.iterdir()].count(True) == 1


def test_an_unreadable_journal_leaves_the_owner_the_companions_log(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from evos.companion._routes import _journal_entries

    path = tmp_path / "broker-audit.sqlite"
    path.write_bytes(b"garbage" * 1000)
    assert _journal_entries(path, 10) == [] and _journal_entries(None, 10) == []
    assert "not a readable audit journal" in caplog.text and str(path) in caplog.text

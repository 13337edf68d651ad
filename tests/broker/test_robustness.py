"""Edge cases found in review: timestamps, float32 values, leaks, token expiry, stuck providers, bad files."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf.timestamp_pb2 import Timestamp
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from evos.broker import Broker, BrokerServer, ServerConfig
from evos.broker._access import Access
from evos.broker._auth import ALLOW_ALL, Permissions, TokenVerifier, parse_scope
from evos.broker._grpc_v2 import OUTBOX_MESSAGES, ValV2Servicer, _ProviderSession
from evos.errors import InvalidArgumentError, InvalidValueError, UnauthenticatedError, UnavailableError
from helpers import eventually

SPEED = "Vehicle.Speed"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
CELLS = "Vehicle.Powertrain.TractionBattery.CellVoltage.CellVoltages"


@pytest.fixture
async def stub(server: BrokerServer) -> AsyncIterator[v2_grpc.VALStub]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield v2_grpc.VALStub(channel)


@pytest.mark.parametrize(("seconds", "nanos"), [(2**63 - 1, 0), (-1, 500_000_000), (10, 2_000_000_000)])
async def test_bad_timestamps_are_refused(stub: v2_grpc.VALStub, broker: Broker, seconds: int, nanos: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.PublishValue(v2.PublishValueRequest(signal_id=t2.SignalID(path=SPEED), data_point=t2.Datapoint(
            value=t2.Value(float=1.0), timestamp=Timestamp(seconds=seconds, nanos=nanos))))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "timestamp" in (info.value.details() or "")
    assert not broker.get(SPEED).available
    await stub.GetValue(v2.GetValueRequest(signal_id=t2.SignalID(path=SPEED)))  # the signal still reads


async def test_source_timestamp_is_kept(stub: v2_grpc.VALStub, broker: Broker) -> None:
    await stub.PublishValue(v2.PublishValueRequest(signal_id=t2.SignalID(path=SPEED), data_point=t2.Datapoint(
        value=t2.Value(float=1.0), timestamp=Timestamp(seconds=1_700_000_000, nanos=250_000_000))))
    assert broker.get(SPEED).timestamp_s == pytest.approx(1_700_000_000.25)


@pytest.mark.parametrize("value", [16777215.0, 1234567.875, 123456.78125, 0.1, 21.5, -3.4e38])
async def test_float32_values_round_trip(stub: v2_grpc.VALStub, broker: Broker, value: float) -> None:
    await stub.PublishValue(v2.PublishValueRequest(
        signal_id=t2.SignalID(path=SPEED), data_point=t2.Datapoint(value=t2.Value(float=value))))
    stored = broker.get(SPEED).value
    assert isinstance(stored, float)
    assert t2.Value(float=stored).float == t2.Value(float=value).float  # the same float32
    assert len(repr(stored)) <= len(repr(value)) + 1  # and its short decimal, not 0.10000000149...
    await stub.PublishValue(v2.PublishValueRequest(signal_id=t2.SignalID(path=CELLS), data_point=t2.Datapoint(
        value=t2.Value(float_array=t2.FloatArray(values=[value, 0.1])))))
    assert broker.get(CELLS).value == (stored, 0.1)  # arrays are treated like scalars


def test_huge_int_for_a_float_signal(broker: Broker) -> None:
    with pytest.raises(InvalidValueError, match="outside the range of float"):
        broker.publish({SPEED: 10**400})


async def test_failed_and_cancelled_v1_subscriptions_leave_nothing_behind(server: BrokerServer, broker: Broker) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        s1 = v1_grpc.VALStub(channel)
        for path in ("Vehicle..Speed", "Vehicle.Nope"):
            with pytest.raises(grpc.aio.AioRpcError):
                await s1.Subscribe(v1.SubscribeRequest(entries=[v1.SubscribeEntry(
                    path=path, fields=[t1.FIELD_VALUE])])).read()
        stream = s1.Subscribe(v1.SubscribeRequest(entries=[
            v1.SubscribeEntry(path=SPEED, fields=[t1.FIELD_VALUE]),
            v1.SubscribeEntry(path=DOOR, fields=[t1.FIELD_ACTUATOR_TARGET])]))
        await stream.read()
        stream.cancel()
    await eventually(lambda: not any(broker._subscribers[f] for f in ("value", "target")))


async def test_v1_subscriber_queue_is_bounded_and_conflated(server: BrokerServer, broker: Broker) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stream = v1_grpc.VALStub(channel).Subscribe(v1.SubscribeRequest(entries=[
            v1.SubscribeEntry(path=SPEED, fields=[t1.FIELD_VALUE])]))
        await stream.read()
        (sub,) = broker._subscribers["value"][SPEED]
        for i in range(20_000):  # the client does not read
            broker.publish({SPEED: float(i)})
            if i % 1000 == 0:
                await asyncio.sleep(0)
        assert sub.pending() <= broker.config.queue_batches
        assert sub.conflated > 0
        stream.cancel()


def test_empty_scope_pattern_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="empty path pattern"):
        parse_scope("read:Vehicle.Cabin provide:")


def test_expired_permissions() -> None:
    Permissions(expires_s=time.time() + 60).check_fresh()
    with pytest.raises(UnauthenticatedError, match="expired"):
        Permissions(expires_s=time.time() - 1).check_fresh()


def _keys(tmp_path: Path) -> tuple[bytes, Path]:
    key = rsa.generate_private_key(65537, 2048)
    public = tmp_path / "jwt.pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()), public


def _token(private: bytes, scope: str, exp_s: float) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "t", "iss": "t", "aud": ["kuksa.val"], "iat": now, "exp": now + exp_s,
                       "scope": scope}, private, algorithm="RS256")


async def test_stream_ends_when_its_token_expires(broker: Broker, tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    srv = BrokerServer(broker, ServerConfig(address="127.0.0.1:0", jwt_public_key=public))
    srv.access.verifier = TokenVerifier(public.read_text(), leeway_s=0)
    await srv.start()
    try:
        async with grpc.aio.insecure_channel(srv.address) as channel:
            metadata = (("authorization", f"Bearer {_token(private, 'read', 2)}"),)
            stream = v2_grpc.VALStub(channel).Subscribe(v2.SubscribeRequest(signal_paths=[SPEED]), metadata=metadata)
            await stream.read()
            broker.publish({SPEED: 1.0})
            await stream.read()
            await asyncio.sleep(2.5)
            broker.publish({SPEED: 2.0})
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stream.read()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await srv.stop(0)


async def test_read_only_target_subscriber_is_not_a_provider(broker: Broker, tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    srv = BrokerServer(broker, ServerConfig(address="127.0.0.1:0", jwt_public_key=public))
    await srv.start()
    try:
        async with grpc.aio.insecure_channel(srv.address) as channel:
            metadata = (("authorization", f"Bearer {_token(private, 'read', 600)}"),)
            stream = v1_grpc.VALStub(channel).Subscribe(v1.SubscribeRequest(entries=[
                v1.SubscribeEntry(path=DOOR, fields=[t1.FIELD_ACTUATOR_TARGET])]), metadata=metadata)
            await stream.read()
            with pytest.raises(UnavailableError, match="no provider"):
                await broker.actuate({DOOR: True})
            stream.cancel()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async with grpc.aio.insecure_channel(srv.address) as channel:
                await v2_grpc.VALStub(channel).GetServerInfo(v2.GetServerInfoRequest())
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await srv.stop(0)


async def test_publish_errors_name_the_right_signal(stub: v2_grpc.VALStub, broker: Broker) -> None:
    speed_id = broker.catalog.get(SPEED).id
    call = stub.OpenProviderStream(iter([v2.OpenProviderStreamRequest(publish_values_request=v2.PublishValuesRequest(
        request_id=3, data_points={speed_id: t2.Datapoint()}))]))
    response = await asyncio.wait_for(call.read(), 2)
    assert list(response.publish_values_response.status) == [speed_id]
    assert "no value" in response.publish_values_response.status[speed_id].message
    call.cancel()


async def test_v1_set_lists_every_failure(server: BrokerServer) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        response = await v1_grpc.VALStub(channel).Set(v1.SetRequest(updates=[
            v1.EntryUpdate(entry=t1.DataEntry(path=path, value=t1.Datapoint(float=value)), fields=[t1.FIELD_VALUE])
            for path, value in ((SPEED, 1.0), ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 200.0),
                                ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed", -5.0))]))
    assert [e.path.rsplit(".", 1)[-1] for e in response.errors] == ["Current", "Displayed"]


async def test_malformed_provider_message_ends_the_stream(stub: v2_grpc.VALStub, broker: Broker) -> None:
    stream = stub.OpenProviderStream(iter([
        v2.OpenProviderStreamRequest(provide_actuation_request=v2.ProvideActuationRequest(
            actuator_identifiers=[t2.SignalID(path=DOOR)])),
        v2.OpenProviderStreamRequest(provider_error_indication=v2.ProviderErrorIndication(provider_error=99)),
        v2.OpenProviderStreamRequest(publish_values_request=v2.PublishValuesRequest(
            request_id=1, data_points={broker.catalog.get(SPEED).id: t2.Datapoint(value=t2.Value(float=5.0))})),
    ]))
    assert (await stream.read()).HasField("provide_actuation_response")
    await eventually(lambda: broker.get(SPEED).value == 5.0)  # an unknown error code is logged, not fatal
    stream.cancel()


async def test_a_provider_that_does_not_read_is_dropped(broker: Broker) -> None:
    session = _ProviderSession(ValV2Servicer(broker, Access()), ALLOW_ALL, answers=False)
    session._on_provide_actuation_request(v2.ProvideActuationRequest(actuator_identifiers=[t2.SignalID(path=DOOR)]))
    for _ in range(OUTBOX_MESSAGES - 1):  # the claim's answer and these fill its outbox
        await broker.actuate({DOOR: True})
    with pytest.raises(UnavailableError, match="does not read its stream"):  # the request that overflows it
        await broker.actuate({DOOR: True})
    assert session.ending is not None and "does not read" in str(session.ending)
    assert broker.provider_of(DOOR) is None


def test_bad_key_and_tls_files_fail_at_start(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(InvalidArgumentError, match=r"junk\.pem"):
        TokenVerifier.from_file(junk)
    env = {**os.environ, "COLUMNS": "250"}
    result = subprocess.run([sys.executable, "-m", "evos", "broker", "--address", "127.0.0.1:0",
                             "--jwt-public-key", str(junk)], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1 and "not a PEM public key" in result.stderr
    result = subprocess.run([sys.executable, "-m", "evos", "broker", "--address", "127.0.0.1:0",
                             "--tls-cert", str(junk), "--tls-key", str(junk)], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 1 and "junk.pem: not a usable PEM file" in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run([sys.executable, "-m", "evos", "up", "--address", "127.0.0.1:0"], capture_output=True,
                            text=True, timeout=60, env={**env, "EVOS_DATA_DIR": str(blocker / "car")})
    assert result.returncode == 1 and "cannot be used" in result.stderr

"""KUKSA-compatible JWT authorization (RS256 tokens with scopes) and TLS, through the real server."""

from __future__ import annotations

import datetime as dt
import ipaddress
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc
from kuksa_client.grpc import Datapoint
from kuksa_client.grpc.aio import VSSClient

from evos.broker import Broker, BrokerServer, RemotePort, ServerConfig
from evos.broker._auth import parse_scope
from evos.errors import InvalidArgumentError, NotPermittedError
from helpers import accept

SPEED = "Vehicle.Speed"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


def _pem_private(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 2048)


def token(key: rsa.RSAPrivateKey, scope: str, exp_s: float = 3600, aud: list[str] | None = None) -> str:
    now = int(time.time())
    claims = {"sub": "test", "iss": "evos-tests", "aud": aud or ["kuksa.val"], "iat": now,
              "exp": now + exp_s, "scope": scope}
    return jwt.encode(claims, _pem_private(key), algorithm="RS256")


@pytest.fixture
async def secured(keys: tuple, broker: Broker, tmp_path: Path) -> AsyncIterator[BrokerServer]:
    public = tmp_path / "jwt.pub.pem"
    public.write_bytes(keys[0].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    srv = BrokerServer(broker, ServerConfig(address="127.0.0.1:0", jwt_public_key=public))
    await srv.start()
    yield srv
    await srv.stop(0)


def meta(tok: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tok}"),)


async def test_tokens_are_required_and_checked(secured: BrokerServer, keys: tuple) -> None:
    good, other = keys
    async with grpc.aio.insecure_channel(secured.address) as channel:
        stub = v2_grpc.VALStub(channel)
        request = v2.GetValueRequest(signal_id=t2.SignalID(path=SPEED))
        for metadata, message in [
            ((), "authorization required"),
            ((("authorization", "Basic abc"),), "expected 'Bearer <JWT>'"),
            (meta("not.a.jwt"), "invalid token"),
            (meta(token(other, "read")), "invalid token"),  # signed by another key
            (meta(token(good, "read", exp_s=-3600)), "token expired"),
            (meta(token(good, "read", aud=["someone.else"])), "invalid token"),
            (meta(token(good, "fly:Vehicle")), "unknown action 'fly'"),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetValue(request, metadata=metadata)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert message in (info.value.details() or "")
        response = await stub.GetValue(request, metadata=meta(token(good, "read")))
        assert not response.data_point.value.WhichOneof("typed_value")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await v1_grpc.VALStub(channel).GetServerInfo(v1.GetServerInfoRequest())
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_scopes_grant_read_actuate_provide_by_path(secured: BrokerServer, broker: Broker, keys: tuple) -> None:
    key = keys[0]
    broker.provide([DOOR, TEMP], accept)
    reader = token(key, "read:Vehicle.Speed")
    cabin = token(key, "actuate:Vehicle.Cabin.HVAC.Station.Row1.Driver.*")
    provider = token(key, "provide:Vehicle.Speed")
    async with RemotePort(secured.address, token=reader) as client:
        assert (await client.get_many([SPEED]))[SPEED].value is None
        with pytest.raises(NotPermittedError, match=f"{DOOR}: permission denied"):
            await client.get_many([DOOR])
        with pytest.raises(NotPermittedError, match="'provide'"):
            await client.publish({SPEED: 1.0}, wait=True)
    async with RemotePort(secured.address, token=cabin) as client:
        await client.actuate({TEMP: 22.0})
        assert (await client.get_many([TEMP]))[TEMP].value is None  # actuate implies read
        with pytest.raises(NotPermittedError, match="'actuate'"):
            await client.actuate({DOOR: True})
    async with RemotePort(secured.address, token=provider) as client:
        await client.publish({SPEED: 30.0}, wait=True)
    assert broker.get(SPEED).value == 30.0
    assert broker.get_target(TEMP).value == 22.0
    assert broker.get_target(DOOR).value is None


async def test_kuksa_sdk_with_token(secured: BrokerServer, broker: Broker, keys: tuple) -> None:
    async with VSSClient("127.0.0.1", secured.port, token=token(keys[0], "read provide:Vehicle.Speed")) as client:
        await client.set_current_values({SPEED: Datapoint(12.0)})
        assert (await client.get_current_values([SPEED]))[SPEED].value == 12.0
    async with grpc.aio.insecure_channel(secured.address) as channel:
        response = await v1_grpc.VALStub(channel).Set(v1.SetRequest(updates=[v1.EntryUpdate(
            entry=t1.DataEntry(path="Vehicle.WidthExcludingMirrors", value=t1.Datapoint(uint32=2000)),
            fields=[t1.FIELD_VALUE])]), metadata=meta(token(keys[0], "read provide:Vehicle.Speed")))
        assert [e.error.code for e in response.errors] == [403]
    assert broker.get("Vehicle.WidthExcludingMirrors").value == 0  # still the catalog default


def test_scope_grammar() -> None:
    grants = parse_scope("read:Vehicle.Cabin.* actuate provide:Vehicle.**.IsOpen create")
    assert grants["read"][0]("Vehicle.Cabin.RearShade.Switch") is False  # direct children only
    assert grants["read"][0]("Vehicle.Cabin.IsWindowChildLockEngaged") is True
    assert grants["actuate"][0]("Anything.At.All")
    assert grants["provide"][0](DOOR)
    with pytest.raises(InvalidArgumentError, match="unknown action"):
        parse_scope("write:Vehicle")
    with pytest.raises(InvalidArgumentError, match="malformed pattern"):
        parse_scope("read:Vehicle..Speed")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "server.pem", tmp_path / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_private(key))
    return cert_path, key_path


async def test_tls(broker: Broker, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    srv = BrokerServer(broker, ServerConfig(address="127.0.0.1:0", tls_cert=cert, tls_key=key))
    await srv.start()
    try:
        async with RemotePort(srv.address, root_cert=cert) as client:
            await client.publish({SPEED: 44.0}, wait=True)
            assert (await client.get_many([SPEED]))[SPEED].value == 44.0
        with pytest.raises(Exception, match="UNAVAILABLE"):  # a plaintext client cannot talk to it
            async with RemotePort(srv.address, timeout_s=1.0) as client:
                await client.get_many([SPEED])
    finally:
        await srv.stop(0)


def test_tls_config_needs_both_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="both a certificate and a key"):
        ServerConfig(tls_cert=tmp_path / "cert.pem")
    with pytest.raises(InvalidArgumentError, match="HOST:PORT"):
        ServerConfig(address="localhost")


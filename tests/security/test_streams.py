"""Broker streams end when their token expires (issue 12, item 4), idle or not: a subscription that receives
nothing, a provider stream that is asked nothing, and client streams that send nothing are ended with
UNAUTHENTICATED at the expiry, not left open until their next message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from evos.broker import Broker, BrokerServer, ServerConfig
from evos.broker._auth import LEEWAY_S
from evos.errors import UnavailableError

T = TypeVar("T")

SPEED = "Vehicle.Speed"
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
LIVES_S = 2.0  # the token's remaining life (past its exp, within the clock-skew leeway)
ENDED_WITHIN_S = 8.0  # the call's own deadline: an expiry later than this shows as DEADLINE_EXCEEDED


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def short_lived(key: rsa.RSAPrivateKey) -> list[tuple[str, str]]:
    now = time.time()
    claims = {"sub": "attacker", "iss": "evos-tests", "aud": ["kuksa.val"], "iat": int(now) - 120,
              "exp": int(now - LEEWAY_S + LIVES_S), "scope": "read actuate provide"}
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return [("authorization", f"Bearer {jwt.encode(claims, pem, algorithm='RS256')}")]


@pytest.fixture
async def address(key: rsa.RSAPrivateKey, broker: Broker, tmp_path: Path) -> AsyncIterator[str]:
    public = tmp_path / "jwt.pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    server = BrokerServer(broker, ServerConfig(address="127.0.0.1:0", jwt_public_key=public))
    await server.start()
    try:
        yield server.address
    finally:
        await server.stop(0)


async def idle(stop: asyncio.Event, *first: T) -> AsyncIterator[T]:
    """A client's side of a stream: the messages ``first``, then nothing until ``stop`` is set."""
    for message in first:
        yield message
    await stop.wait()


async def ended_by_expiry(call: grpc.aio.Call) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:  # type: ignore[attr-defined]
            pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value
    assert "expired" in str(caught.value.details())


async def test_an_idle_v2_subscription_ends_at_expiry(address: str, key: rsa.RSAPrivateKey) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        call = v2_grpc.VALStub(channel).Subscribe(v2.SubscribeRequest(signal_paths=[SPEED]),
                                                  metadata=short_lived(key), timeout=ENDED_WITHIN_S)
        await ended_by_expiry(call)


async def test_an_idle_v1_subscription_ends_at_expiry(address: str, key: rsa.RSAPrivateKey) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        call = v1_grpc.VALStub(channel).Subscribe(v1.SubscribeRequest(entries=[v1.SubscribeEntry(
            path=SPEED, view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE])]), metadata=short_lived(key),
            timeout=ENDED_WITHIN_S)
        await ended_by_expiry(call)


async def test_an_idle_provider_stream_ends_at_expiry_and_frees_its_actuators(
        address: str, key: rsa.RSAPrivateKey, broker: Broker) -> None:
    temp_id = broker.catalog.get(TEMP).id
    stop = asyncio.Event()
    claim = v2.OpenProviderStreamRequest(provide_actuation_request=v2.ProvideActuationRequest(
        actuator_identifiers=[t2.SignalID(id=temp_id)]))
    async with grpc.aio.insecure_channel(address) as channel:
        call = v2_grpc.VALStub(channel).OpenProviderStream(idle(stop, claim), metadata=short_lived(key),
                                                             timeout=ENDED_WITHIN_S)
        try:
            await ended_by_expiry(call)
        finally:
            stop.set()
    await asyncio.sleep(0.2)  # the server's side of the stream winds down
    with pytest.raises(UnavailableError, match="no provider"):  # the claim ended with the stream
        await broker.actuate({TEMP: 21.0})


async def test_an_idle_actuate_stream_ends_at_expiry(address: str, key: rsa.RSAPrivateKey) -> None:
    stop = asyncio.Event()
    async with grpc.aio.insecure_channel(address) as channel:
        call = v2_grpc.VALStub(channel).ActuateStream(idle(stop), metadata=short_lived(key), timeout=ENDED_WITHIN_S)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
        finally:
            stop.set()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value


async def test_an_idle_v1_streamed_update_ends_at_expiry(address: str, key: rsa.RSAPrivateKey) -> None:
    stop = asyncio.Event()
    async with grpc.aio.insecure_channel(address) as channel:
        call = v1_grpc.VALStub(channel).StreamedUpdate(idle(stop), metadata=short_lived(key), timeout=ENDED_WITHIN_S)
        try:
            await ended_by_expiry(call)
        finally:
            stop.set()

"""Tokens from the wrong issuer are refused (issue 12, item 5): with ``--jwt-issuer`` the broker takes only tokens
naming it, and the apps' Unix socket only those its supervisor minted, even when signed by the right key."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from evos.broker import APP_ISSUER, Broker, BrokerServer, ServerConfig
from evos.broker._auth import TokenVerifier
from evos.errors import InvalidArgumentError, UnauthenticatedError

ISSUER = "https://login.example-fleet.com"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    now = int(time.time())
    body = {"sub": "someone", "aud": ["kuksa.val"], "iat": now, "exp": now + 600, "scope": "read", **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        algorithm="RS256")


@pytest.fixture
async def address(key: rsa.RSAPrivateKey, broker: Broker, tmp_path: Path) -> AsyncIterator[str]:
    public = tmp_path / "jwt.pub.pem"
    public.write_text(public_pem(key))
    server = BrokerServer(broker, ServerConfig(address="127.0.0.1:0", jwt_public_key=public, jwt_issuer=ISSUER))
    await server.start()
    try:
        yield server.address
    finally:
        await server.stop(0)


async def get_speed(address: str, bearer: str) -> tuple[grpc.StatusCode, str]:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await v2_grpc.VALStub(channel).GetValue(v2.GetValueRequest(signal_id=t2.SignalID(path="Vehicle.Speed")),
                                                    metadata=[("authorization", f"Bearer {bearer}")], timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def test_a_broker_with_an_issuer_takes_only_its_tokens(address: str, key: rsa.RSAPrivateKey) -> None:
    assert await get_speed(address, token(key, iss=ISSUER)) == (grpc.StatusCode.OK, "")
    for issuer in ("https://attacker.example", None):  # another issuer, or none at all
        code, details = await get_speed(address, token(key, iss=issuer))
        assert code == grpc.StatusCode.UNAUTHENTICATED and "iss" in details, (code, details)


def test_the_apps_socket_takes_only_the_supervisors_tokens(key: rsa.RSAPrivateKey) -> None:
    apps = TokenVerifier(public_pem(key), issuer=APP_ISSUER)
    assert apps.verify(f"Bearer {token(key, iss=APP_ISSUER)}").subject == "someone"
    for issuer in ("evos-tests", None):
        with pytest.raises(UnauthenticatedError, match="invalid token"):
            apps.verify(f"Bearer {token(key, iss=issuer)}")


def test_an_issuer_without_a_key_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgumentError, match=r"--jwt-issuer.*--jwt-public-key"):
        ServerConfig(jwt_issuer=ISSUER)

"""The gRPC server: KUKSA ``kuksa.val.v1`` and ``kuksa.val.v2`` services and ``sdv.databroker.v1`` (Velocitas apps)
over one broker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from evos.broker._access import Access, Guard
from evos.broker._auth import APP_ISSUER, TokenVerifier
from evos.broker._core import Broker
from evos.broker._grpc_sdv import SdvBrokerServicer, SdvCollectorServicer
from evos.broker._grpc_v1 import ValV1Servicer
from evos.broker._grpc_v2 import ValV2Servicer
from evos.broker._journal import Journal
from evos.broker._wire import DEFAULT_ADDRESS, MAX_MESSAGE_BYTES, SERVER_KEEPALIVE, check_address, keep_grpc_running
from evos.broker.sdv_v1 import broker_pb2_grpc as sdv_broker_grpc
from evos.broker.sdv_v1 import collector_pb2_grpc as sdv_collector_grpc
from evos.errors import InvalidArgumentError, UnavailableError

IN_USE = "the address is in use (another evos or KUKSA databroker?) or not on this machine"


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the broker listens.

    ``jwt_public_key``: PEM file of the RS256 key that signs client tokens; None turns authorization off.
    ``jwt_issuer``: with it, a client token must name this issuer (``iss``).
    ``tls_cert``/``tls_key``: PEM server certificate and key; None serves plaintext.
    ``app_socket``: also listen on this Unix socket (plaintext); with ``app_key`` (PEM text of an RS256 public
    key) calls there must carry a token it signed: the apps of ``evos up``, each with its own token.
    ``audit_journal``: write every actuation from outside the apps' socket to this file before carrying it out
    (``evos.broker._journal``); None keeps no journal.
    """

    address: str = DEFAULT_ADDRESS
    jwt_public_key: Path | None = None
    jwt_issuer: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    app_socket: Path | None = None
    app_key: str | None = None
    audit_journal: Path | None = None

    def __post_init__(self) -> None:
        check_address(self.address)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidArgumentError("TLS needs both a certificate and a key (--tls-cert and --tls-key)")
        if self.jwt_issuer is not None and self.jwt_public_key is None:
            raise InvalidArgumentError("a JWT issuer (--jwt-issuer) needs the key that signs the tokens "
                                       "(--jwt-public-key)")
        if self.app_key is not None and self.app_socket is None:
            raise InvalidArgumentError("an app key needs the app socket it guards")


def _read_tls(cert_path: Path, key_path: Path) -> tuple[bytes, bytes]:
    """(key, certificate) PEM bytes, checked; InvalidArgumentError names the file that is wrong."""
    pems = []
    for path, load in ((key_path, lambda b: serialization.load_pem_private_key(b, password=None)),
                       (cert_path, x509.load_pem_x509_certificate)):
        try:
            data = Path(path).read_bytes()
            load(data)
        except (OSError, ValueError, TypeError) as exc:
            raise InvalidArgumentError(f"{path}: not a usable PEM file: {exc}") from exc
        pems.append(data)
    return pems[0], pems[1]


class BrokerServer:
    """Serves a Broker over gRPC. ``await start()``, then ``await stop()``; ``port`` is the bound port.
    ``guard`` refuses what may not come in over gRPC from outside the apps' socket (``Access``)."""

    def __init__(self, broker: Broker, config: ServerConfig | None = None, guard: Guard | None = None) -> None:
        self.broker = broker
        self.config = config or ServerConfig()
        verifier = (TokenVerifier.from_file(self.config.jwt_public_key, self.config.jwt_issuer)
                    if self.config.jwt_public_key else None)
        apps = TokenVerifier(self.config.app_key, issuer=APP_ISSUER) if self.config.app_key else None
        self.journal = Journal(self.config.audit_journal) if self.config.audit_journal else None
        self.access = Access(verifier, apps, self.journal, guard)
        tls = self.config.tls_cert, self.config.tls_key
        self._tls = _read_tls(tls[0], tls[1]) if tls[0] and tls[1] else None
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        host = self.config.address.rpartition(":")[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving. Raises UnavailableError if the address cannot be bound."""
        keep_grpc_running()
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            *SERVER_KEEPALIVE,
        ])
        v1_grpc.add_VALServicer_to_server(ValV1Servicer(self.broker, self.access), server)
        v2_grpc.add_VALServicer_to_server(ValV2Servicer(self.broker, self.access), server)
        sdv_broker_grpc.add_BrokerServicer_to_server(SdvBrokerServicer(self.broker, self.access), server)
        sdv_collector_grpc.add_CollectorServicer_to_server(SdvCollectorServicer(self.broker, self.access), server)
        try:
            if self._tls is not None:
                credentials = grpc.ssl_server_credentials([self._tls])
                port = server.add_secure_port(self.config.address, credentials)
            else:
                port = server.add_insecure_port(self.config.address)
        except (OSError, RuntimeError) as exc:  # gRPC's own text only points at GRPC_VERBOSITY
            raise UnavailableError(f"cannot listen on {self.config.address}: {IN_USE}") from exc
        if not port:
            raise UnavailableError(f"cannot listen on {self.config.address}: {IN_USE}")
        if self.config.app_socket is not None and not server.add_insecure_port(f"unix:{self.config.app_socket}"):
            raise UnavailableError(f"cannot listen on the Unix socket {self.config.app_socket}")
        self.port = port
        await server.start()
        self._server = server

    async def stop(self, grace_s: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close)

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

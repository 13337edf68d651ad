"""The wire conventions shared by the broker's server and its client port: addresses, keepalive, the evos
extension header of provider streams."""

from __future__ import annotations

import functools

import grpc

from evos.errors import InvalidArgumentError

DEFAULT_ADDRESS = "127.0.0.1:55555"  # the KUKSA databroker's default
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Entries (signals, ids, updates) in one request: several times the whole catalog (VSS 6.0 has 1,263 signals), so
# a request for every signal passes and one of a million ids is refused before any work (it once ran 23 s).
MAX_ENTRIES = 10_000
# Request metadata of a provider stream whose provider answers every actuation (see evos.broker._remote).
ACK_HEADER = "evos-actuation-ack"
# HTTP/2 keepalive: a client pings every 10 s and gives up on a peer silent for 5 s more; the server pings its
# clients too, so a frozen provider (SIGSTOPped, or a machine gone) is dropped and its actuators freed. Since gRPC
# core's ping rework (grpc/grpc#34647) the wait for a ping's answer is ``grpc.http2.ping_timeout_ms`` (default
# 60 s: a frozen provider held its actuators for 70 s, tests/security/test_stopped_provider.py), so it is set too.
KEEPALIVE_MS = 10_000
KEEPALIVE_TIMEOUT_MS = 5_000
CLIENT_KEEPALIVE = (
    ("grpc.keepalive_time_ms", KEEPALIVE_MS), ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.http2.ping_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0),
)
SERVER_KEEPALIVE = (
    *CLIENT_KEEPALIVE,
    # accept clients' pings as often as every 5 s (gRPC's default of 5 min would answer ours with GOAWAY)
    ("grpc.http2.min_recv_ping_interval_without_data_ms", KEEPALIVE_MS // 2), ("grpc.http2.max_ping_strikes", 0),
)


@functools.cache
def keep_grpc_running() -> None:
    """Keep gRPC's asyncio runtime up for the rest of the process, once a channel or server is made. grpc.aio shuts
    it down when its last channel or server object is freed, and the garbage collector may free one on any thread:
    then the runtime's wake-up socket is closed under the event loop reading it ("Bad file descriptor" from
    ``PollerCompletionQueue._handle_events`` as an app stopped, once in a CI run). A process that stops ends with it.
    Call from the event loop's thread."""
    grpc.aio.init_grpc_aio()  # one reference of grpc.aio's own count, never given back


def check_address(address: str) -> None:
    """InvalidArgumentError unless ``address`` is HOST:PORT (port 0 to 65535) or ``unix:/absolute/path``."""
    if address.startswith("unix:"):
        if not address[5:].startswith("/"):
            raise InvalidArgumentError(f"address {address!r}: a Unix socket address is unix:/absolute/path")
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgumentError(f"address {address!r} is not HOST:PORT, e.g. {DEFAULT_ADDRESS}")


def check_entries(count: int, what: str) -> None:
    """InvalidArgumentError when a request holds more than ``MAX_ENTRIES`` ``what`` (signal ids, updates ...)."""
    if count > MAX_ENTRIES:
        raise InvalidArgumentError(f"{count:,} {what} in one request: at most {MAX_ENTRIES:,}")

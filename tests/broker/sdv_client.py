"""What the ``sdv.databroker.v1`` tests share (tests/broker/test_sdv_v1.py, tests/security/test_sdv_v1_attacks.py):
the two services' stubs over one channel, Datapoint builders, a reader that turns a Datapoint into ``(field,
value)``, and bounded reads of a Subscribe stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from evos.broker import Broker
from evos.broker.sdv_v1 import broker_pb2, broker_pb2_grpc, collector_pb2_grpc, types_pb2

READ_S = 5.0  # the longest a test waits for one reply of a stream (a reply that should come comes in milliseconds)
CALL_S = 10.0  # every unary call's deadline
NOT_AVAILABLE = ("failure_value", "NOT_AVAILABLE")
UNKNOWN = ("failure_value", "UNKNOWN_DATAPOINT")
DENIED = ("failure_value", "ACCESS_DENIED")

Typed = tuple[str | None, Any]


@dataclass
class Sdv:
    """The Broker and Collector stubs on one channel, and the metadata each call carries (a token)."""

    broker: broker_pb2_grpc.BrokerStub
    collector: collector_pb2_grpc.CollectorStub
    metadata: tuple[tuple[str, str], ...] = ()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@contextlib.asynccontextmanager
async def sdv_channel(address: str, token: str | None = None) -> AsyncIterator[Sdv]:
    async with grpc.aio.insecure_channel(address) as channel:
        yield Sdv(broker_pb2_grpc.BrokerStub(channel), collector_pb2_grpc.CollectorStub(channel),
                  bearer(token) if token else ())


# ---- values ----------------------------------------------------------------------------------------------------

_ARRAYS = {
    "string_array": types_pb2.StringArray, "bool_array": types_pb2.BoolArray, "int32_array": types_pb2.Int32Array,
    "int64_array": types_pb2.Int64Array, "uint32_array": types_pb2.Uint32Array, "uint64_array": types_pb2.Uint64Array,
    "float_array": types_pb2.FloatArray, "double_array": types_pb2.DoubleArray,
}


def dp(field: str | None = None, value: Any = None) -> types_pb2.Datapoint:
    """A Datapoint holding ``value`` in ``field`` (``"uint32_value"``, ``"float_array"``, ``"failure_value"`` ...);
    no field: a Datapoint without a value."""
    if field is None:
        return types_pb2.Datapoint()
    if field in _ARRAYS:
        return types_pb2.Datapoint(**{field: _ARRAYS[field](values=list(value))})
    if field == "failure_value" and isinstance(value, str):
        value = types_pb2.Datapoint.Failure.Value(value)
    return types_pb2.Datapoint(**{field: value})


def typed(datapoint: types_pb2.Datapoint) -> Typed:
    """``(field, value)`` of a Datapoint: ``("float_value", 12.5)``, ``("string_array", ["a"])``,
    ``("failure_value", "NOT_AVAILABLE")``; ``(None, None)`` when it holds nothing."""
    field = datapoint.WhichOneof("value")
    if field is None:
        return None, None
    if field == "failure_value":
        return field, types_pb2.Datapoint.Failure.Name(datapoint.failure_value)
    value = getattr(datapoint, field)
    if field in _ARRAYS:
        return field, list(value.values)
    return field, value


def seconds(datapoint: types_pb2.Datapoint) -> float:
    return datapoint.timestamp.seconds + datapoint.timestamp.nanos / 1e9


def error_names(errors: Any) -> dict[Any, str]:
    """A reply's ``errors`` map as ``{key: "INVALID_TYPE"}``."""
    return {key: types_pb2.DatapointError.Name(code) for key, code in errors.items()}


# ---- streams ---------------------------------------------------------------------------------------------------

def subscribe(sdv: Sdv, query: str) -> Any:
    return sdv.broker.Subscribe(broker_pb2.SubscribeRequest(query=query), metadata=sdv.metadata)


async def next_raw(call: Any, timeout_s: float = READ_S) -> broker_pb2.SubscribeReply:
    """The stream's next reply; fails the test when none comes within ``timeout_s`` or the stream ends."""
    try:
        reply = await asyncio.wait_for(call.read(), timeout_s)
    except TimeoutError:
        pytest.fail(f"no reply within {timeout_s} s")
    assert reply is not grpc.aio.EOF, "the stream ended"
    return reply  # type: ignore[no-any-return]


async def next_reply(call: Any, timeout_s: float = READ_S) -> dict[str, Typed]:
    """The stream's next reply as ``{field name: (field, value)}``."""
    reply = await next_raw(call, timeout_s)
    return {name: typed(datapoint) for name, datapoint in reply.fields.items()}


async def refused(call: Any) -> grpc.aio.AioRpcError:
    """The error a Subscribe (or another stream) ends with before any reply; fails the test if it replies."""
    try:
        reply = await asyncio.wait_for(call.read(), READ_S)
    except grpc.aio.AioRpcError as error:
        return error
    except TimeoutError:
        pytest.fail(f"the stream neither replied nor failed within {READ_S} s")
    pytest.fail(f"the stream was served: {reply}")


async def subscribed(sdv: Sdv, broker: Broker, query: str, path: str) -> Any:
    """Subscribe to ``query``, which names ``path``, and wait (at most 2 s) until the broker feeds the subscription
    changes of ``path``: use it before changing a signal where a subscription that must stay silent has no first
    reply to wait for. Only a help to catch a reply sent too early: a test must pass without it."""
    def count() -> int:
        return len(broker._subscribers["value"].get(path, ()))

    before = count()
    call = subscribe(sdv, query)
    for _ in range(400):  # 2 s
        if count() > before:
            break
        await asyncio.sleep(0.005)
    return call


def close(calls: Iterable[Any]) -> None:
    for call in calls:
        call.cancel()

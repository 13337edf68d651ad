"""``BrokerClient``: an asyncio client of a running broker over ``kuksa.val.v2``.

Used by the CLI and by evos parts that run as separate processes (as providers). It learns signal
metadata with ListMetadata, so values are checked and converted with the same ``evos.vss`` rules as
in the broker. gRPC errors become evos errors in one place (``_translate``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from evos import errors
from evos.broker._convert import (
    V2_DATATYPE,
    V2_ENTRY_TYPE,
    datapoint_to_v2,
    timestamp_from,
    value_from_v2,
    value_to_v2,
)
from evos.broker._core import Datapoint
from evos.broker._server import DEFAULT_ADDRESS, check_address
from evos.vss import EntryType, Signal, Value, validate

_DATATYPE = {code: dt for dt, code in V2_DATATYPE.items()}
_ENTRY_TYPE = {code: et for et, code in V2_ENTRY_TYPE.items()}
_ERRORS: dict[grpc.StatusCode, type[errors.EvosError]] = {
    grpc.StatusCode.NOT_FOUND: errors.UnknownSignalError,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgumentError,
    grpc.StatusCode.PERMISSION_DENIED: errors.NotPermittedError,
    grpc.StatusCode.UNAUTHENTICATED: errors.UnauthenticatedError,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyProvidedError,
}


def _translate(exc: grpc.RpcError, address: str) -> errors.EvosError:
    code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else grpc.StatusCode.UNKNOWN
    details = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
    if code in _ERRORS:
        return _ERRORS[code](details or code.name)
    if code == grpc.StatusCode.UNAVAILABLE and details and "no provider" in details:
        return errors.NoProviderError(details)
    return errors.BrokerUnreachableError(f"broker at {address}: {code.name}: {details}")


def signal_from_v2(meta: t2.Metadata) -> Signal:
    """A ``Signal`` from v2 metadata (the server's description of one leaf)."""
    datatype = _DATATYPE[meta.data_type]

    def number(value: t2.Value) -> int | float | None:
        return value_from_v2(value, meta.path) if value.WhichOneof("typed_value") else None

    allowed = meta.allowed_values
    return Signal(
        path=meta.path, id=meta.id, entry_type=_ENTRY_TYPE.get(meta.entry_type, EntryType.SENSOR),
        datatype=datatype, unit=meta.unit or None,
        min=number(meta.min) if meta.HasField("min") else None,
        max=number(meta.max) if meta.HasField("max") else None,
        allowed=tuple(value_from_v2(allowed, meta.path)) if allowed.WhichOneof("typed_value") else None,
        description=meta.description, comment=meta.comment, deprecation=meta.deprecation,
    )


class BrokerClient:
    """A connection to a broker. Use ``async with BrokerClient(address) as client: ...``.

    ``token`` is a JWT sent as ``authorization: Bearer``; ``root_cert`` a PEM file that switches to TLS.
    Methods raise evos errors: UnknownSignalError, InvalidArgumentError/InvalidValueError,
    NotPermittedError, UnauthenticatedError, NoProviderError, BrokerUnreachableError.
    """

    def __init__(
        self, address: str = DEFAULT_ADDRESS, token: str | None = None, root_cert: Path | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        check_address(address)
        self.address = address
        self.timeout_s = timeout_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._root_cert = Path(root_cert).read_bytes() if root_cert is not None else None
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._signals: dict[str, Signal] = {}

    async def __aenter__(self) -> BrokerClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the channel and check the broker answers (GetServerInfo)."""
        if self._root_cert is not None:
            creds = grpc.ssl_channel_credentials(self._root_cert)
            self._channel = grpc.aio.secure_channel(self.address, creds)
        else:
            self._channel = grpc.aio.insecure_channel(self.address)
        self._stub = v2_grpc.VALStub(self._channel)
        await self.server_info()

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _call(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._stub, method)(request, metadata=self._metadata, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise _translate(exc, self.address) from exc

    async def server_info(self) -> tuple[str, str]:
        """(name, version) of the broker."""
        info = await self._call("GetServerInfo", v2.GetServerInfoRequest())
        return info.name, info.version

    async def signals(self, pattern: str = "") -> list[Signal]:
        """Metadata of the signals a pattern matches (all by default); cached for value conversion."""
        response = await self._call("ListMetadata", v2.ListMetadataRequest(root=pattern))
        found = [signal_from_v2(meta) for meta in response.metadata]
        self._signals.update((s.path, s) for s in found)
        return found

    async def signal(self, path: str) -> Signal:
        if path not in self._signals:
            found = await self.signals(path)
            if not any(s.path == path for s in found):
                raise errors.UnknownSignalError(f"{path!r} is a branch or pattern, not a signal", path=path)
        return self._signals[path]

    async def get(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        """Current values; ``Datapoint.value`` is None for signals never set."""
        paths = list(paths)
        signals = [await self.signal(p) for p in paths]
        response = await self._call("GetValues", v2.GetValuesRequest(
            signal_ids=[t2.SignalID(path=p) for p in paths]))
        return {s.path: _datapoint(s, dp) for s, dp in zip(signals, response.data_points, strict=True)}

    async def publish(self, values: Mapping[str, Any]) -> None:
        """Publish current values (one PublishValue per signal; needs the `provide` permission)."""
        for path, value in values.items():
            signal = await self.signal(path)
            checked = validate(signal, value)
            await self._call("PublishValue", v2.PublishValueRequest(
                signal_id=t2.SignalID(path=path),
                data_point=datapoint_to_v2(signal.datatype, Datapoint(checked, time.time()))))

    async def actuate(self, targets: Mapping[str, Any]) -> None:
        """Request actuator targets in one BatchActuate (all or nothing)."""
        requests = []
        for path, value in targets.items():
            signal = await self.signal(path)
            requests.append(v2.ActuateRequest(signal_id=t2.SignalID(path=path),
                                              value=value_to_v2(signal.datatype, validate(signal, value))))
        await self._call("BatchActuate", v2.BatchActuateRequest(actuate_requests=requests))

    async def subscribe(self, paths: Iterable[str]) -> AsyncIterator[dict[str, Datapoint]]:
        """Batches of changed values; the first one holds the current value of every path."""
        paths = list(paths)
        signals = {p: await self.signal(p) for p in paths}
        stream = self._stub.Subscribe(v2.SubscribeRequest(signal_paths=paths), metadata=self._metadata)
        try:
            async for response in stream:
                yield {path: _datapoint(signals[path], dp) for path, dp in response.entries.items()}
        except grpc.RpcError as exc:
            raise _translate(exc, self.address) from exc
        finally:
            stream.cancel()

    @asynccontextmanager
    async def provide(
        self, actuators: Iterable[str] = (), on_actuate: Callable[[dict[str, Value]], None] | None = None,
        publishes: Iterable[str] = (),
    ) -> AsyncIterator[ProviderStream]:
        """Open a provider stream claiming ``actuators``; ``on_actuate(batch)`` gets each request.

        Inside the context, ``stream.publish(values)`` sends values of the ``publishes`` signals (and
        the actuators) many at a time in one message.
        """
        for path in publishes:
            await self.signal(path)
        signals = {p: await self.signal(p) for p in actuators}
        provider = ProviderStream(self, signals, on_actuate)
        await provider.open()
        try:
            yield provider
        finally:
            await provider.close()


class ProviderStream:
    """An open ``OpenProviderStream``: claimed actuators and batched publishing by signal id."""

    def __init__(self, client: BrokerClient, actuators: dict[str, Signal],
                 on_actuate: Callable[[dict[str, Value]], None] | None) -> None:
        self._client = client
        self._actuators = actuators
        self._by_id = {s.id: s for s in actuators.values()}
        self._on_actuate = on_actuate
        self._outbox: asyncio.Queue[v2.OpenProviderStreamRequest | None] = asyncio.Queue()
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._claimed = asyncio.get_running_loop().create_future()
        self._request_id = 0
        self.errors: list[str] = []  # messages of publish failures the broker reported

    async def _requests(self) -> AsyncIterator[v2.OpenProviderStreamRequest]:
        while (item := await self._outbox.get()) is not None:
            yield item

    async def open(self) -> None:
        self._call = self._client._stub.OpenProviderStream(self._requests(), metadata=self._client._metadata)
        self._reader = asyncio.create_task(self._read())
        if self._actuators:
            self._outbox.put_nowait(v2.OpenProviderStreamRequest(provide_actuation_request=v2.ProvideActuationRequest(
                actuator_identifiers=[t2.SignalID(id=s.id) for s in self._actuators.values()])))
            await asyncio.wait_for(self._claimed, self._client.timeout_s)

    async def _read(self) -> None:
        try:
            async for response in self._call:
                action = response.WhichOneof("action")
                if action == "provide_actuation_response" and not self._claimed.done():
                    self._claimed.set_result(None)
                elif action == "batch_actuate_stream_request":
                    batch = {}
                    for req in response.batch_actuate_stream_request.actuate_requests:
                        signal = self._by_id[req.signal_id.id]
                        batch[signal.path] = validate(signal, value_from_v2(req.value, signal.path))
                    if self._on_actuate is not None:
                        self._on_actuate(batch)
                elif action == "publish_values_response":
                    self.errors.extend(e.message for e in response.publish_values_response.status.values())
        except grpc.RpcError as exc:
            error = _translate(exc, self._client.address)
            if not self._claimed.done():
                self._claimed.set_exception(error)
            elif exc.code() != grpc.StatusCode.CANCELLED:
                self.errors.append(str(error))

    def publish(self, values: Mapping[str, Any], timestamp_s: float | None = None) -> None:
        """Queue one PublishValuesRequest with many values (checked here first)."""
        stamp = time.time() if timestamp_s is None else timestamp_s
        points = {}
        for path, value in values.items():
            signal = self._client._signals.get(path)
            if signal is None:
                raise errors.InvalidArgumentError(f"{path}: not declared in provide(publishes=...)", path=path)
            points[signal.id] = datapoint_to_v2(signal.datatype, Datapoint(validate(signal, value), stamp))
        self._request_id += 1
        self._outbox.put_nowait(v2.OpenProviderStreamRequest(publish_values_request=v2.PublishValuesRequest(
            request_id=self._request_id, data_points=points)))

    async def close(self) -> None:
        self._outbox.put_nowait(None)
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()


def _datapoint(signal: Signal, dp: t2.Datapoint) -> Datapoint:
    if not dp.value.WhichOneof("typed_value"):
        return Datapoint(None, None)
    value = value_from_v2(dp.value, signal.path)
    return Datapoint(tuple(value) if signal.datatype.is_array else value, timestamp_from(dp, signal.path))



"""``RemotePort``: the vehicle-data port over KUKSA ``kuksa.val.v2``, to a running broker (evos or KUKSA's).

Every app of ``evos up`` runs on one (in its own process), and so does every CLI command that talks to
a car. It learns signal metadata with ListMetadata, so values are checked and converted with the same
``evos.vss`` rules as in the broker. gRPC errors become evos errors in one place (``_translate``).

Publishing and providing share one ``OpenProviderStream`` per port, opened on first use. The port asks
the broker (request metadata ``evos-actuation-ack: 1``, an evos extension) to wait for its answer to
each actuation: it answers every ``batch_actuate_stream_request`` with one ``batch_actuate_stream_response``
(``ERROR_CODE_OK`` naming the request's first signal, or the refusal's code and message naming the refused
signal), by which the broker matches answers to requests (a handler that waits may answer out of order). A
KUKSA broker ignores the header and the answers. Reading targets (``subscribe(..., field="target")``) uses
``kuksa.val.v1`` Subscribe, since v2 has no targets. When the provider stream ends or fails, the error
goes to ``failure`` and later publishes raise it: nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from evos import errors
from evos.broker._convert import (
    V2_DATATYPE,
    V2_ENTRY_TYPE,
    datapoint_to_v2,
    timestamp_from,
    value_from_v1,
    value_from_v2,
    value_to_v2,
)
from evos.broker._core import Datapoint, Field
from evos.broker._port import ActuationHandler, Batch
from evos.broker._wire import ACK_HEADER, CLIENT_KEEPALIVE, DEFAULT_ADDRESS, check_address, keep_grpc_running
from evos.vss import Catalog, EntryType, Signal, Value, validate

log = logging.getLogger("evos.broker")
_DATATYPE = {code: dt for dt, code in V2_DATATYPE.items()}
_ENTRY_TYPE = {code: et for et, code in V2_ENTRY_TYPE.items()}
_ERRORS: dict[grpc.StatusCode, type[errors.EvosError]] = {
    grpc.StatusCode.NOT_FOUND: errors.UnknownSignalError,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgumentError,
    grpc.StatusCode.PERMISSION_DENIED: errors.NotPermittedError,
    grpc.StatusCode.UNAUTHENTICATED: errors.UnauthenticatedError,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyProvidedError,
    grpc.StatusCode.INTERNAL: errors.InternalError,
}
# a refusal on the provider stream: evos error -> v2 ErrorCode (anything else travels as UNSPECIFIED + message)
_REFUSAL_CODES: tuple[tuple[type[errors.EvosError], int], ...] = (
    (errors.UnknownSignalError, t2.ERROR_CODE_NOT_FOUND),
    (errors.InvalidArgumentError, t2.ERROR_CODE_INVALID_ARGUMENT),
    (errors.NotPermittedError, t2.ERROR_CODE_PERMISSION_DENIED),
)
OUTBOX_MESSAGES = 1024  # provider-stream messages queued before publish() waits for the broker to take them


def _translate(exc: grpc.RpcError, address: str) -> errors.EvosError:
    code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else grpc.StatusCode.UNKNOWN
    details = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
    if code in _ERRORS:
        return _ERRORS[code](details or code.name)
    if code == grpc.StatusCode.UNAVAILABLE and details and "provider" in details:
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


def refusal_response(path_id: int, exc: errors.EvosError) -> v2.BatchActuateStreamResponse:
    """The provider's answer refusing an actuation with ``exc`` (``path_id``: the refused signal's id)."""
    code = next((c for cls, c in _REFUSAL_CODES if isinstance(exc, cls)), t2.ERROR_CODE_UNSPECIFIED)
    return v2.BatchActuateStreamResponse(signal_id=t2.SignalID(id=path_id), error=t2.Error(code=code, message=str(exc)))


class RemotePort:
    """A connection to a broker. ``async with RemotePort(address) as port: ...``.

    ``address`` is ``HOST:PORT`` or ``unix:/path``; ``token`` a JWT sent as ``authorization: Bearer``;
    ``root_cert`` a PEM file that switches to TLS. Methods raise evos errors: UnknownSignalError,
    InvalidArgumentError/InvalidValueError, NotPermittedError, UnauthenticatedError, NoProviderError,
    BrokerUnreachableError, and a provider's refusal.
    """

    def __init__(
        self, address: str = DEFAULT_ADDRESS, token: str | None = None, root_cert: Path | None = None,
        timeout_s: float = 5.0, name: str = "client",
    ) -> None:
        check_address(address)
        self.address = address
        self.name = name
        self.timeout_s = timeout_s
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self._root_cert = Path(root_cert).read_bytes() if root_cert is not None else None
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._v1: Any = None
        self._signals: dict[str, Signal] = {}
        self._catalog: Catalog | None = None  # the broker's whole catalog, once asked for
        self._stream: _ProviderStream | None = None
        self.failure: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def __aenter__(self) -> RemotePort:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the channel and check the broker answers (GetServerInfo)."""
        keep_grpc_running()
        if self._root_cert is not None:
            creds = grpc.ssl_channel_credentials(self._root_cert)
            self._channel = grpc.aio.secure_channel(self.address, creds, options=CLIENT_KEEPALIVE)
        else:
            self._channel = grpc.aio.insecure_channel(self.address, options=CLIENT_KEEPALIVE)
        self._stub = v2_grpc.VALStub(self._channel)
        self._v1 = v1_grpc.VALStub(self._channel)
        await self.server_info()

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
            self._stream = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        if not self.failure.done():
            self.failure.cancel()

    async def _call(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._stub, method)(request, metadata=self._metadata, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise _translate(exc, self.address) from exc

    # ---- metadata ------------------------------------------------------------------------------
    async def server_info(self) -> tuple[str, str]:
        """(name, version) of the broker."""
        info = await self._call("GetServerInfo", v2.GetServerInfoRequest())
        return info.name, info.version

    async def signals(self, pattern: str = "") -> list[Signal]:
        """Metadata of the signals a pattern matches (all by default); cached for value conversion. Once all were
        asked for, every pattern is matched here, as the broker would (its catalog does not change while it runs)."""
        if self._catalog is not None:
            return self._catalog.match(pattern)
        response = await self._call("ListMetadata", v2.ListMetadataRequest(root=pattern))
        if pattern:
            found = [signal_from_v2(meta) for meta in response.metadata]
        else:  # the whole catalog: a thousand signals take a fifth of a second to read, off the event loop
            found = await asyncio.to_thread(lambda: [signal_from_v2(meta) for meta in response.metadata])
            self._catalog = Catalog({s.path: s for s in found})
        self._signals.update((s.path, s) for s in found)
        return found

    async def signal(self, path: str) -> Signal:
        if path not in self._signals:
            found = await self.signals(path)
            if not any(s.path == path for s in found):
                raise errors.UnknownSignalError(f"{path!r} is a branch or pattern, not a signal", path=path)
        return self._signals[path]

    async def _known(self, paths: Iterable[str]) -> list[Signal]:
        return [await self.signal(p) for p in paths]

    # ---- reading -------------------------------------------------------------------------------
    async def get(self, path: str) -> Datapoint:
        return (await self.get_many([path]))[path]

    async def get_many(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        """Current values; ``Datapoint.value`` is None for signals never set."""
        signals = await self._known(paths)
        if not signals:
            return {}
        response = await self._call("GetValues", v2.GetValuesRequest(
            signal_ids=[t2.SignalID(path=s.path) for s in signals]))
        return {s.path: _datapoint(s, dp) for s, dp in zip(signals, response.data_points, strict=True)}

    async def get_targets(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        """Last requested targets, with ``kuksa.val.v1`` Get (v2 has no targets)."""
        signals = await self._known(paths)
        if not signals:
            return {}
        request = v1.GetRequest(entries=[v1.EntryRequest(path=s.path, view=t1.VIEW_TARGET_VALUE) for s in signals])
        try:
            response = await self._v1.Get(request, metadata=self._metadata, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise _translate(exc, self.address) from exc
        if response.errors:
            raise errors.InvalidArgumentError(f"{response.errors[0].path}: {response.errors[0].error.message}")
        by_path = {s.path: s for s in signals}
        return {e.path: _v1_target(by_path[e.path], e) for e in response.entries}

    @asynccontextmanager
    async def subscribe(self, paths: Iterable[str], field: Field = "value", min_interval_s: float = 0.0
                        ) -> AsyncIterator[AsyncIterator[Batch]]:
        signals = {s.path: s for s in await self._known(paths)}
        if field == "target":
            if min_interval_s > 0:
                raise errors.InvalidArgumentError("a subscription to targets (KUKSA v1) takes no min_interval_s")
            entries = [v1.SubscribeEntry(path=p, view=t1.VIEW_FIELDS, fields=[t1.FIELD_ACTUATOR_TARGET])
                       for p in signals]
            call = self._v1.Subscribe(v1.SubscribeRequest(entries=entries), metadata=self._metadata)
        else:
            request = v2.SubscribeRequest(signal_paths=list(signals))
            if min_interval_s > 0:
                request.filter.min_sample_interval.interval_ms = round(min_interval_s * 1e3)
            call = self._stub.Subscribe(request, metadata=self._metadata)
        try:
            yield self._batches(call, signals, field)
        finally:
            call.cancel()

    async def _batches(self, call: Any, signals: dict[str, Signal], field: Field) -> AsyncIterator[Batch]:
        try:
            async for response in call:
                if field == "target":
                    yield {u.entry.path: _v1_target(signals[u.entry.path], u.entry) for u in response.updates}
                else:
                    yield {path: _datapoint(signals[path], dp) for path, dp in response.entries.items()}
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise _translate(exc, self.address) from exc
        raise errors.BrokerUnreachableError(f"broker at {self.address} ended the subscription")

    # ---- writing -------------------------------------------------------------------------------
    async def publish(self, values: Mapping[str, Any], timestamp_s: float | None = None, wait: bool = False) -> None:
        """Publish current values (needs `provide`), checked here first.

        By default in one message of the port's provider stream, which the broker answers only when it refuses
        (a refusal then breaks the port: ``failure``); ``wait=True`` sends each value with PublishValue and
        raises the broker's refusal (one-off publishes, such as ``evos set``).
        """
        for path in values:
            await self.signal(path)  # metadata, once
        points = self._points(values, timestamp_s)
        if wait:
            for signal_id, point in points.items():
                await self._call("PublishValue", v2.PublishValueRequest(signal_id=t2.SignalID(id=signal_id),
                                                                        data_point=point))
            return
        stream = await self._provider_stream()
        await stream.publish(points)

    def publish_nowait(self, values: Mapping[str, Any], timestamp_s: float | None = None) -> None:
        """``publish`` on the provider stream without waiting; the signals' metadata must be loaded (``signals``,
        which ``evos.app`` does for every app). Raises UnavailableError when the broker stopped taking messages."""
        points = self._points(values, timestamp_s)
        if self._stream is None:
            self._check_failure()
            self._stream = _ProviderStream(self)
            self._stream.open()
        self._stream.publish_nowait(points)

    def _points(self, values: Mapping[str, Any], timestamp_s: float | None) -> dict[int, t2.Datapoint]:
        """The checked values as v2 Datapoints by signal id (from cached metadata)."""
        stamp = time.time() if timestamp_s is None else timestamp_s
        points: dict[int, t2.Datapoint] = {}
        for path, value in values.items():
            signal = self._signals.get(path)
            if signal is None:
                raise errors.InvalidArgumentError(f"{path}: metadata not loaded; await port.signals() first", path=path)
            points[signal.id] = datapoint_to_v2(signal.datatype, Datapoint(validate(signal, value), stamp))
        if not points:
            raise errors.InvalidArgumentError("nothing to publish: the request holds no values")
        return points

    async def check(self, targets: Mapping[str, Any]) -> dict[str, Value]:
        checked = {}
        for path, value in targets.items():
            signal = await self.signal(path)
            if signal.entry_type is not EntryType.ACTUATOR:
                raise errors.InvalidArgumentError(f"{path}: is a {signal.entry_type.value}, not an actuator; only "
                                                  "actuators take target values", path=path)
            checked[path] = validate(signal, value)
        return checked

    async def actuate(self, targets: Mapping[str, Any]) -> None:
        """Request actuator targets in one BatchActuate (all or nothing; waits for the providers' answers)."""
        checked = await self.check(targets)
        requests = [v2.ActuateRequest(signal_id=t2.SignalID(path=path),
                                      value=value_to_v2(self._signals[path].datatype, value))
                    for path, value in checked.items()]
        await self._call("BatchActuate", v2.BatchActuateRequest(actuate_requests=requests))

    async def provide(self, actuators: Iterable[str], handler: ActuationHandler) -> None:
        """Claim ``actuators`` on the port's provider stream; ``handler(batch)`` carries out each request."""
        signals = await self._known(actuators)
        stream = await self._provider_stream()
        await stream.claim(signals, handler)

    def _check_failure(self) -> None:
        if self.failure.done() and not self.failure.cancelled():
            raise self.failure.exception()  # type: ignore[misc]

    async def _provider_stream(self) -> _ProviderStream:
        self._check_failure()
        if self._stream is None:
            self._stream = _ProviderStream(self)
            self._stream.open()
        return self._stream

    def _fail(self, exc: errors.EvosError) -> None:
        if not self.failure.done():
            self.failure.set_exception(exc)


class _ProviderStream:
    """The port's open ``OpenProviderStream``: claimed actuators, their handlers, and queued publishes."""

    def __init__(self, port: RemotePort) -> None:
        self._port = port
        self._outbox: asyncio.Queue[v2.OpenProviderStreamRequest | None] = asyncio.Queue(OUTBOX_MESSAGES)
        self._handlers: dict[int, tuple[Signal, ActuationHandler]] = {}  # signal id -> (signal, handler)
        self._claims: deque[asyncio.Future[None]] = deque()
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._request_id = 0
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()  # actuations being carried out

    async def _requests(self) -> AsyncIterator[v2.OpenProviderStreamRequest]:
        while (item := await self._outbox.get()) is not None:
            yield item

    def open(self) -> None:
        metadata = (*self._port._metadata, (ACK_HEADER, "1"))
        self._call = self._port._stub.OpenProviderStream(self._requests(), metadata=metadata)
        self._reader = asyncio.create_task(self._read(), name=f"provider stream of {self._port.name}")

    async def claim(self, signals: list[Signal], handler: ActuationHandler) -> None:
        claimed = asyncio.get_running_loop().create_future()
        self._claims.append(claimed)
        for signal in signals:
            self._handlers[signal.id] = (signal, handler)
        await self._outbox.put(v2.OpenProviderStreamRequest(provide_actuation_request=v2.ProvideActuationRequest(
            actuator_identifiers=[t2.SignalID(id=s.id) for s in signals])))
        await asyncio.wait_for(claimed, self._port.timeout_s)

    def _message(self, points: dict[int, t2.Datapoint]) -> v2.OpenProviderStreamRequest:
        self._request_id += 1
        return v2.OpenProviderStreamRequest(publish_values_request=v2.PublishValuesRequest(
            request_id=self._request_id, data_points=points))

    async def publish(self, points: dict[int, t2.Datapoint]) -> None:
        await self._outbox.put(self._message(points))

    def publish_nowait(self, points: dict[int, t2.Datapoint]) -> None:
        try:
            self._outbox.put_nowait(self._message(points))
        except asyncio.QueueFull:
            raise errors.UnavailableError(f"the broker at {self._port.address} does not take the messages of "
                                          f"{self._port.name}: {OUTBOX_MESSAGES} waiting") from None

    async def _read(self) -> None:
        try:
            async for response in self._call:
                action = response.WhichOneof("action")
                if action == "provide_actuation_response" and self._claims:
                    self._claims.popleft().set_result(None)
                elif action == "batch_actuate_stream_request":  # carried out beside the reading (it may wait)
                    task = asyncio.create_task(self._answer(response.batch_actuate_stream_request))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif action == "publish_values_response":  # sent only when the broker refused a value
                    refused = "; ".join(e.message for e in response.publish_values_response.status.values())
                    log.error("%s: the broker refused published values: %s", self._port.name, refused)
                    self._port._fail(errors.NotPermittedError(f"the broker refused published values: {refused}"))
            if not self._closing:
                self._end(errors.BrokerUnreachableError(f"broker at {self._port.address} ended the provider stream"))
        except grpc.RpcError as exc:
            if not self._closing:
                self._end(_translate(exc, self._port.address))

    async def _answer(self, request: v2.BatchActuateStreamRequest) -> None:
        """Carry one actuation out and answer it (after what its handler published: it was queued first)."""
        answer = await self._carry_out(request)
        await self._outbox.put(v2.OpenProviderStreamRequest(batch_actuate_stream_response=answer))

    async def _carry_out(self, request: v2.BatchActuateStreamRequest) -> v2.BatchActuateStreamResponse:
        """Hand one actuation to its handler(s): OK, or the first refusal (changing nothing of that handler's part).
        The answer names a signal of the request (the refused one), by which the broker matches it."""
        parts: dict[ActuationHandler, dict[str, Value]] = {}
        first_id = 0
        try:
            for req in request.actuate_requests:
                signal, handler = self._handlers[req.signal_id.id]
                first_id = first_id or signal.id
                parts.setdefault(handler, {})[signal.path] = validate(signal, value_from_v2(req.value, signal.path))
            for handler, batch in parts.items():
                first_id = self._port._signals[next(iter(batch))].id
                result = handler(batch)
                if result is not None:
                    await result
        except errors.EvosError as exc:
            return refusal_response(first_id, exc)
        except Exception as exc:  # a bug in the handler: say so (the broker reports it), keep the stream
            log.exception("%s: actuation handler failed", self._port.name)
            return refusal_response(first_id, errors.InternalError(f"{type(exc).__name__}: {exc}"))
        return v2.BatchActuateStreamResponse(signal_id=t2.SignalID(id=first_id),
                                             error=t2.Error(code=t2.ERROR_CODE_OK))

    def _end(self, error: errors.EvosError) -> None:
        for claimed in self._claims:
            if not claimed.done():
                claimed.set_exception(error)
        self._claims.clear()
        self._port._fail(error)

    async def close(self) -> None:
        self._closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(None)
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for task in list(self._tasks):
            task.cancel()


def _datapoint(signal: Signal, dp: t2.Datapoint) -> Datapoint:
    if not dp.value.WhichOneof("typed_value"):
        return Datapoint(None, None)
    value = value_from_v2(dp.value, signal.path)
    return Datapoint(tuple(value) if signal.datatype.is_array else value, timestamp_from(dp, signal.path))


def _v1_target(signal: Signal, entry: t1.DataEntry) -> Datapoint:
    target = entry.actuator_target
    if not target.WhichOneof("value"):
        return Datapoint(None, None)
    value = value_from_v1(target, signal.path)
    return Datapoint(tuple(value) if signal.datatype.is_array else value, timestamp_from(target, signal.path))


__all__ = ["RemotePort", "refusal_response", "signal_from_v2"]

"""``kuksa.val.v2.VAL`` on top of the broker core (the messages are kuksa-client's generated modules)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

import evos
from evos.broker._access import Access
from evos.broker._convert import datapoint_to_v2, metadata_to_v2, timestamp_from, value_from_v2, value_to_v2
from evos.broker._core import Broker, Provision
from evos.broker._status import classify, log, permissions_or_abort, streaming, unary
from evos.broker._wire import ACK_HEADER, check_entries
from evos.errors import (
    AlreadyProvidedError,
    EvosError,
    InternalError,
    InvalidArgumentError,
    NotPermittedError,
    UnavailableError,
    UnknownSignalError,
)
from evos.vss import Signal, Value

_SERVER_NAME = "evos-databroker"
OUTBOX_MESSAGES = 1024  # messages waiting for a provider before its stream is ended as not reading
MAX_BUFFER_SIZE = 1000  # batches a v2 subscriber may ask to buffer, KUKSA's limit
ANSWER_TIMEOUT_S = 2.0  # how long an actuation waits for a provider that answers (ACK_HEADER) before giving up
# a provider's refusal (v2 ErrorCode) -> the evos error the actuating caller gets
_REFUSALS: dict[int, type[EvosError]] = {
    t2.ERROR_CODE_INVALID_ARGUMENT: InvalidArgumentError,
    t2.ERROR_CODE_NOT_FOUND: UnknownSignalError,
    t2.ERROR_CODE_PERMISSION_DENIED: NotPermittedError,
}


class ValV2Servicer(v2_grpc.VALServicer):
    """Serves the KUKSA v2 API: reads, subscriptions, actuation and provider streams."""

    def __init__(self, broker: Broker, access: Access) -> None:
        self._broker = broker
        self._catalog = broker.catalog
        self._access = access
        self.signal_owners: dict[int, _ProviderSession] = {}  # signal id -> session that claimed it

    def _signal(self, signal_id: t2.SignalID) -> Signal:
        which = signal_id.WhichOneof("signal")
        if which == "path":
            return self._catalog.get(signal_id.path)
        if which == "id":
            return self._catalog.by_signal_id(signal_id.id)
        raise InvalidArgumentError("signal_id has neither a path nor an id")

    # ---- reading -------------------------------------------------------------------------------
    @unary
    async def GetValue(self, request: v2.GetValueRequest, context: Any) -> v2.GetValueResponse:
        perms = self._access.permissions(context)
        signal = self._signal(request.signal_id)
        perms.check("read", signal.path)
        return v2.GetValueResponse(data_point=datapoint_to_v2(signal.datatype, self._broker.get(signal.path)))

    @unary
    async def GetValues(self, request: v2.GetValuesRequest, context: Any) -> v2.GetValuesResponse:
        perms = self._access.permissions(context)
        check_entries(len(request.signal_ids), "signal ids")
        signals = [self._signal(sid) for sid in request.signal_ids]
        for signal in signals:
            perms.check("read", signal.path)
        return v2.GetValuesResponse(
            data_points=[datapoint_to_v2(s.datatype, self._broker.get(s.path)) for s in signals]
        )

    @unary
    async def ListMetadata(self, request: v2.ListMetadataRequest, context: Any) -> v2.ListMetadataResponse:
        self._access.permissions(context)  # metadata is public to any authenticated caller, as in KUKSA
        return v2.ListMetadataResponse(metadata=[metadata_to_v2(s) for s in self._catalog.match(request.root)])

    @unary
    async def GetServerInfo(self, request: v2.GetServerInfoRequest, context: Any) -> v2.GetServerInfoResponse:
        self._access.permissions(context)
        return v2.GetServerInfoResponse(name=_SERVER_NAME, version=evos.__version__, commit_hash="")

    # ---- subscriptions -------------------------------------------------------------------------
    @streaming
    async def Subscribe(self, request: v2.SubscribeRequest, context: Any) -> AsyncIterator[v2.SubscribeResponse]:
        perms = self._access.permissions(context)
        check_entries(len(request.signal_paths), "signal paths")
        signals = [self._catalog.get(path) for path in request.signal_paths]
        async for batch in self._feed(signals, perms, request.buffer_size, request.filter):
            yield v2.SubscribeResponse(entries=batch)

    @streaming
    async def SubscribeById(
        self, request: v2.SubscribeByIdRequest, context: Any
    ) -> AsyncIterator[v2.SubscribeByIdResponse]:
        perms = self._access.permissions(context)
        check_entries(len(request.signal_ids), "signal ids")
        signals = [self._catalog.by_signal_id(i) for i in request.signal_ids]
        ids = {s.path: s.id for s in signals}
        async for batch in self._feed(signals, perms, request.buffer_size, request.filter):
            yield v2.SubscribeByIdResponse(entries={ids[path]: dp for path, dp in batch.items()})

    async def _feed(
        self, signals: list[Signal], perms: Any, buffer_size: int, filter_: t2.Filter
    ) -> AsyncIterator[dict[str, t2.Datapoint]]:
        if not signals:
            raise InvalidArgumentError("subscribe needs at least one signal")
        if buffer_size > MAX_BUFFER_SIZE:
            raise InvalidArgumentError(f"buffer_size {buffer_size} is above the maximum of {MAX_BUFFER_SIZE}")
        for signal in signals:
            perms.check("read", signal.path)
        datatypes = {s.path: s.datatype for s in signals}
        interval_s = filter_.min_sample_interval.interval_ms / 1000.0 if filter_ is not None else 0.0
        with self._broker.subscribe_paths(tuple(datatypes), "value", buffer_size or None) as sub:
            async for batch in perms.expiring(sub.throttled(interval_s)):
                yield {path: datapoint_to_v2(datatypes[path], dp) for path, dp in batch.items()}

    # ---- actuation -----------------------------------------------------------------------------
    def _targets(self, requests: Sequence[v2.ActuateRequest], perms: Any) -> dict[str, Any]:
        check_entries(len(requests), "actuations")
        targets: dict[str, Any] = {}
        for req in requests:
            signal = self._signal(req.signal_id)
            perms.check("actuate", signal.path)
            targets[signal.path] = value_from_v2(req.value, signal.path)
        return targets

    @unary
    async def Actuate(self, request: v2.ActuateRequest, context: Any) -> v2.ActuateResponse:
        perms = self._access.permissions(context)
        await self._access.actuate(self._broker, context, perms, self._targets([request], perms))
        return v2.ActuateResponse()

    @unary
    async def BatchActuate(self, request: v2.BatchActuateRequest, context: Any) -> v2.BatchActuateResponse:
        perms = self._access.permissions(context)
        await self._access.actuate(self._broker, context, perms, self._targets(request.actuate_requests, perms))
        return v2.BatchActuateResponse()

    async def ActuateStream(
        self, request_iterator: AsyncIterator[v2.ActuateRequest], context: Any
    ) -> v2.ActuateResponse:
        try:
            perms = self._access.permissions(context)
            async for request in perms.expiring(request_iterator):
                await self._access.actuate(self._broker, context, perms, self._targets([request], perms))
        except EvosError as exc:
            await context.abort(classify(exc)[0], str(exc))
        return v2.ActuateResponse()

    # ---- providers -----------------------------------------------------------------------------
    @unary
    async def PublishValue(self, request: v2.PublishValueRequest, context: Any) -> v2.PublishValueResponse:
        perms = self._access.permissions(context)
        signal = self._signal(request.signal_id)
        perms.check("provide", signal.path)
        self._broker.publish(*_values_of([(signal.path, request.data_point)]))
        return v2.PublishValueResponse()

    async def OpenProviderStream(
        self, request_iterator: AsyncIterator[v2.OpenProviderStreamRequest], context: Any
    ) -> AsyncIterator[v2.OpenProviderStreamResponse]:
        perms = await permissions_or_abort(self._access, context)
        answers = any(key == ACK_HEADER and value == "1" for key, value in context.invocation_metadata() or ())
        session = _ProviderSession(self, perms, answers)
        reader = asyncio.create_task(session.read(request_iterator))
        try:
            # The stream (and the provider's claims) lives until the client cancels it or an error
            # ends it, even after the client half-closes its side (kuksa-client does so at once).
            while True:
                try:
                    item = await perms.until_expiry(session.outbox.get())
                except EvosError as exc:
                    item = exc
                if isinstance(item, EvosError) or session.ending is not None:
                    error = item if isinstance(item, EvosError) else session.ending
                    await context.abort(classify(error)[0], str(error))  # type: ignore[arg-type]
                yield item
        finally:
            reader.cancel()
            session.close()


class _ProviderSession:
    """One provider's stream: the actuators it claimed and the messages waiting to go out to it."""

    def __init__(self, servicer: ValV2Servicer, perms: Any, answers: bool) -> None:
        self._servicer = servicer
        self._broker = servicer._broker
        self._catalog = servicer._catalog
        self._perms = perms
        self._provisions: list[Provision] = []
        self.outbox: asyncio.Queue[v2.OpenProviderStreamResponse | EvosError] = asyncio.Queue(OUTBOX_MESSAGES)
        self.ending: EvosError | None = None
        self._answers = answers  # the provider answers each actuation (ACK_HEADER): wait for it
        # actuations sent whose answers are still to come: (their signal ids, the answer), oldest first
        self._waiting: deque[tuple[frozenset[int], asyncio.Future[t2.Error]]] = deque()

    async def read(self, requests: AsyncIterator[v2.OpenProviderStreamRequest]) -> None:
        try:
            async for request in requests:
                self._perms.check_fresh()
                action = request.WhichOneof("action")
                handler = getattr(self, f"_on_{action}", None)
                if handler is not None:
                    handler(getattr(request, action))
        except EvosError as exc:
            self._end(exc)
        except grpc.RpcError:
            pass
        except Exception as exc:  # a malformed message must end the stream, not leave it half alive
            log.exception("provider stream failed")
            self._end(InternalError(f"provider stream failed: {type(exc).__name__}: {exc}"))

    def _send(self, message: v2.OpenProviderStreamResponse) -> None:
        try:
            self.outbox.put_nowait(message)
        except asyncio.QueueFull:
            self._end(UnavailableError(
                f"provider does not read its stream: more than {OUTBOX_MESSAGES} messages waiting"))

    def _end(self, error: EvosError) -> None:
        """End the stream with ``error``: release the claims now, report once the outbox drains."""
        self.close()
        self.ending = error
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(error)

    def _on_provide_actuation_request(self, req: v2.ProvideActuationRequest) -> None:
        signals = [self._servicer._signal(sid) for sid in req.actuator_identifiers]
        for signal in signals:
            self._perms.check("actuate", signal.path)  # KUKSA: claiming actuators needs `actuate`
        self._provisions.append(self._broker.provide((s.path for s in signals), self._deliver))
        self._send(v2.OpenProviderStreamResponse(provide_actuation_response=v2.ProvideActuationResponse()))

    def _on_provide_signal_request(self, req: v2.ProvideSignalRequest) -> None:
        owners = self._servicer.signal_owners
        ids = list(req.signals_sample_intervals)
        for signal_id in ids:
            signal = self._catalog.by_signal_id(signal_id)
            self._perms.check("provide", signal.path)
            if owners.get(signal_id, self) is not self:
                raise AlreadyProvidedError(f"{signal.path}: already provided by another provider", path=signal.path)
        for signal_id in ids:
            owners[signal_id] = self
        self._send(v2.OpenProviderStreamResponse(provide_signal_response=v2.ProvideSignalResponse()))

    def _on_publish_values_request(self, req: v2.PublishValuesRequest) -> None:
        by_id = self._catalog.by_id
        owners = self._servicer.signal_owners
        allows = self._perms.allows
        entries: list[tuple[str, t2.Datapoint]] = []
        status: dict[int, t2.Error] = {}
        check_entries(len(req.data_points), "values")
        for signal_id, dp in req.data_points.items():
            signal = by_id.get(signal_id)
            if signal is None:
                status[signal_id] = t2.Error(code=t2.ERROR_CODE_NOT_FOUND, message=f"unknown signal id {signal_id}")
            elif owners and owners.get(signal_id, self) is not self:
                raise AlreadyProvidedError(f"{signal.path}: provided by another provider", path=signal.path)
            elif not allows("provide", signal.path):
                status[signal_id] = t2.Error(
                    code=t2.ERROR_CODE_PERMISSION_DENIED, message=f"{signal.path}: permission denied (provide)")
            else:
                entries.append((signal.path, dp))
        if not status and not entries:
            return  # an empty publish changes nothing
        if not status:
            try:
                self._broker.publish(*_values_of(entries))
            except EvosError as exc:
                failed = self._catalog.signals.get(exc.path or "")
                status[failed.id if failed else 0] = t2.Error(
                    code=_V2_ERROR.get(classify(exc)[0], t2.ERROR_CODE_INVALID_ARGUMENT), message=str(exc))
        if status:
            self._send(v2.OpenProviderStreamResponse(
                publish_values_response=v2.PublishValuesResponse(request_id=req.request_id, status=status)))

    def _on_batch_actuate_stream_response(self, resp: v2.BatchActuateStreamResponse) -> None:
        if self._answers:
            # an answer names a signal of its request: the oldest request still waiting that holds it (a provider
            # may answer actuations out of order, when one waits for other actuations of its own)
            signal_id = resp.signal_id.id if resp.signal_id.WhichOneof("signal") == "id" else None
            for i, (ids, answer) in enumerate(self._waiting):
                if signal_id is None or signal_id in ids:
                    del self._waiting[i]
                    if not answer.done():
                        answer.set_result(resp.error)
                    break
            return
        if resp.HasField("error") and resp.error.code not in (t2.ERROR_CODE_OK, t2.ERROR_CODE_UNSPECIFIED):
            log.warning("provider reported actuation error for %s: %s", resp.signal_id, resp.error.message)

    def _on_provider_error_indication(self, ind: v2.ProviderErrorIndication) -> None:
        code = ind.provider_error
        log.warning("provider reported error %s",
                    t2.ProviderError.Name(code) if code in t2.ProviderError.values() else code)

    async def _deliver(self, batch: dict[str, Value]) -> None:
        """Send one actuation to the provider; if it answers, wait (bounded) for its answer and raise a refusal."""
        if self.ending is not None:
            raise UnavailableError(f"the provider of {', '.join(batch)} has gone")
        signals = self._catalog.signals
        self._send(v2.OpenProviderStreamResponse(
            batch_actuate_stream_request=v2.BatchActuateStreamRequest(actuate_requests=[
                v2.ActuateRequest(signal_id=t2.SignalID(id=signals[path].id),
                                  value=value_to_v2(signals[path].datatype, value))
                for path, value in batch.items()
            ])))
        if self.ending is not None:  # the provider stopped reading: _send ended its stream
            raise UnavailableError(f"the provider of {', '.join(batch)} does not read its stream")
        if not self._answers:
            return
        answer: asyncio.Future[t2.Error] = asyncio.get_running_loop().create_future()
        entry = (frozenset(signals[path].id for path in batch), answer)
        self._waiting.append(entry)
        try:
            error = await asyncio.wait_for(asyncio.shield(answer), ANSWER_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ValueError):
                self._waiting.remove(entry)
            raise UnavailableError(f"the provider of {', '.join(batch)} did not answer within "
                                   f"{ANSWER_TIMEOUT_S:g} s") from None
        if error.code not in (t2.ERROR_CODE_OK, t2.ERROR_CODE_UNSPECIFIED) or (
                error.code == t2.ERROR_CODE_UNSPECIFIED and error.message):
            raise _REFUSALS.get(error.code, InternalError)(error.message or "refused by the provider")

    def close(self) -> None:
        for provision in self._provisions:
            provision.close()
        self._provisions.clear()
        while self._waiting:  # actuations still waiting for an answer get none now
            _, waiting = self._waiting.popleft()
            if not waiting.done():
                waiting.set_exception(UnavailableError("the provider's stream ended before it answered"))
        owners = self._servicer.signal_owners
        for signal_id in [i for i, owner in owners.items() if owner is self]:
            del owners[signal_id]


_V2_ERROR = {
    grpc.StatusCode.NOT_FOUND: t2.ERROR_CODE_NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: t2.ERROR_CODE_INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED: t2.ERROR_CODE_PERMISSION_DENIED,
}


def _values_of(entries: Iterable[tuple[str, t2.Datapoint]]) -> tuple[dict[str, Any], None, dict[str, float]]:
    """``Broker.publish`` arguments (values, timestamp, source timestamps) from published Datapoints."""
    values: dict[str, Any] = {}
    stamps: dict[str, float] = {}
    for path, dp in entries:
        values[path] = value_from_v2(dp.value, path)
        if dp.HasField("timestamp"):
            stamps[path] = timestamp_from(dp, path)  # type: ignore[assignment]
    return values, None, stamps

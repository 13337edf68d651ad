"""``sdv.databroker.v1`` (``Broker`` and ``Collector``) on top of the broker core: the API of the KUKSA databroker
before 0.7, which Eclipse Velocitas apps speak. docs/sdv-databroker-v1.md says what it does and where it differs
from the KUKSA databroker 0.6.1 on purpose (SetDatapoints actuates, all or nothing; Register only knows the
catalog; BETWEEN works).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from evos.broker._access import Access
from evos.broker._auth import Permissions
from evos.broker._convert import WIRE_FIELD, _as_kind, _stamp, timestamp_from, unwrap
from evos.broker._core import Broker
from evos.broker._query import compile_query
from evos.broker._status import streaming, unary
from evos.broker._wire import check_entries
from evos.broker.sdv_v1 import broker_pb2 as b
from evos.broker.sdv_v1 import broker_pb2_grpc as b_grpc
from evos.broker.sdv_v1 import collector_pb2 as c
from evos.broker.sdv_v1 import collector_pb2_grpc as c_grpc
from evos.broker.sdv_v1 import types_pb2 as t
from evos.errors import EvosError, InvalidArgumentError, InvalidValueError, NotPermittedError
from evos.vss import Datatype, EntryType, Signal, Value, validate

_ARRAYS = {
    "string_array": t.StringArray, "bool_array": t.BoolArray, "int32_array": t.Int32Array,
    "int64_array": t.Int64Array, "uint32_array": t.Uint32Array, "uint64_array": t.Uint64Array,
    "float_array": t.FloatArray, "double_array": t.DoubleArray,
}
_DATATYPE = {dt: t.DataType.Value(dt.name.replace("BOOLEAN", "BOOL")) for dt in Datatype}
_ENTRY_TYPE = {et: t.EntryType.Value("ENTRY_TYPE_" + et.name) for et in EntryType}
_ALLOWED = {"string": "string_values", "int32": "int32_values", "int64": "int64_values",
            "uint32": "uint32_values", "uint64": "uint64_values", "float": "float_values", "double": "double_values"}


def _field(datatype: Datatype) -> str:
    """The ``Datapoint`` oneof field that carries values of ``datatype`` (``int32_value``, ``float_array`` ...)."""
    wire = WIRE_FIELD[datatype]
    return wire if datatype.is_array else f"{wire}_value"


def _datapoint(datatype: Datatype, value: Value | None, timestamp_s: float) -> t.Datapoint:
    """A Datapoint of ``value``; None is ``failure_value: NOT_AVAILABLE``."""
    stamp = _stamp(timestamp_s)
    if value is None:
        return t.Datapoint(timestamp=stamp, failure_value=t.Datapoint.NOT_AVAILABLE)
    field = _field(datatype)
    carried: dict[str, Any] = {field: _ARRAYS[field](values=value) if datatype.is_array else value}
    return t.Datapoint(timestamp=stamp, **carried)


class _Refused(Exception):
    """One entry of a request is wrong; ``code`` is its ``DatapointError``."""

    def __init__(self, code: int) -> None:
        self.code = code


def _value(signal: Signal, datapoint: t.Datapoint) -> Value:
    """The checked value a Datapoint carries for ``signal``; _Refused(INVALID_TYPE / OUT_OF_BOUNDS) if wrong."""
    if datapoint.WhichOneof("value") != _field(signal.datatype):
        raise _Refused(t.INVALID_TYPE)
    try:
        return validate(signal, unwrap(datapoint, "value", signal.path))
    except InvalidValueError as exc:
        raise _Refused(t.OUT_OF_BOUNDS) from exc


def _metadata(signal: Signal) -> t.Metadata:
    change = t.STATIC if signal.entry_type is EntryType.ATTRIBUTE else t.ON_CHANGE
    meta = t.Metadata(id=signal.id, entry_type=_ENTRY_TYPE[signal.entry_type], name=signal.path,
                      data_type=_DATATYPE[signal.datatype], change_type=change, description=signal.description)
    element = signal.datatype.element
    wire = WIRE_FIELD[element]
    for key, bound in (("min", signal.min), ("max", signal.max)):
        if bound is not None:
            restriction: dict[str, Any] = {wire: _as_kind(element, bound)}
            getattr(meta, key).CopyFrom(t.ValueRestriction(**restriction))
    if signal.allowed is not None and wire in _ALLOWED:
        holder = _ARRAYS[f"{wire}_array"](values=signal.allowed)
        meta.allowed.CopyFrom(t.Allowed(**{_ALLOWED[wire]: holder}))
    return meta


class SdvBrokerServicer(b_grpc.BrokerServicer):
    """The consumer side: read, actuate, subscribe with a query, metadata."""

    def __init__(self, broker: Broker, access: Access) -> None:
        self._broker = broker
        self._access = access
        self._catalog = broker.catalog

    @unary
    async def GetDatapoints(self, request: b.GetDatapointsRequest, context: Any) -> b.GetDatapointsReply:
        perms = self._access.permissions(context)
        if not request.datapoints:
            raise InvalidArgumentError("No datapoints requested")
        check_entries(len(request.datapoints), "datapoints")
        now_s = time.time()
        reply = b.GetDatapointsReply()
        for path in request.datapoints:
            signal = self._catalog.signals.get(path)
            if signal is None:
                reply.datapoints[path].failure_value = t.Datapoint.UNKNOWN_DATAPOINT
            elif not perms.allows("read", path):
                reply.datapoints[path].failure_value = t.Datapoint.ACCESS_DENIED
            else:
                current = self._broker.get(path)
                reply.datapoints[path].CopyFrom(
                    _datapoint(signal.datatype, current.value, current.timestamp_s or now_s))
        return reply

    @unary
    async def SetDatapoints(self, request: b.SetDatapointsRequest, context: Any) -> b.SetDatapointsReply:
        perms = self._access.permissions(context)
        if not request.datapoints:
            raise InvalidArgumentError("nothing to set: the request holds no datapoints")
        check_entries(len(request.datapoints), "datapoints")
        errors: dict[str, Any] = {}  # path -> DatapointError
        targets: dict[str, Value] = {}
        for path, datapoint in request.datapoints.items():
            signal = self._catalog.signals.get(path)
            try:
                if signal is None:
                    raise _Refused(t.UNKNOWN_DATAPOINT)
                if signal.entry_type is not EntryType.ACTUATOR or not perms.allows("actuate", path):
                    raise _Refused(t.ACCESS_DENIED)
                targets[path] = _value(signal, datapoint)
            except _Refused as refused:
                errors[path] = refused.code
        if errors:
            return b.SetDatapointsReply(errors=errors)
        try:
            caller = await self._access.admit(context, perms, targets)
        except NotPermittedError as exc:  # the car's guard: what opens it takes a signed command
            return b.SetDatapointsReply(errors=dict.fromkeys([exc.path] if exc.path in targets else targets,
                                                             t.ACCESS_DENIED))
        await self._access.carry_out(self._broker, caller, targets)  # a provider's refusal: its gRPC status
        return b.SetDatapointsReply()

    @streaming
    async def Subscribe(self, request: b.SubscribeRequest, context: Any) -> AsyncIterator[b.SubscribeReply]:
        perms = self._access.permissions(context)
        query = compile_query(request.query, lambda name: self._catalog.get(name).datatype)
        for name in query.names:
            perms.check("read", name)
        values: dict[str, Value | None] = {}
        lags: dict[str, Value | None] = {}
        with self._broker.subscribe_paths(tuple(query.names), "value") as sub:
            async for batch in perms.expiring(sub):  # the first batch holds every path: the first reply
                changed = False
                for path, datapoint in batch.items():
                    if path in values and datapoint.value == values[path]:
                        continue  # published again unchanged
                    if path in values:
                        lags[path] = values[path]
                    values[path] = datapoint.value
                    changed = True
                fields = query.reply(values, lags) if changed else None
                if fields is not None:
                    now_s = time.time()
                    yield b.SubscribeReply(fields={name: _datapoint(datatype, value, now_s)
                                                   for name, (datatype, value) in fields.items()})

    @unary
    async def GetMetadata(self, request: b.GetMetadataRequest, context: Any) -> b.GetMetadataReply:
        self._access.permissions(context)  # metadata is public to any authenticated caller, as in KUKSA
        check_entries(len(request.names), "names")
        signals = self._catalog.signals
        chosen = signals.values() if not request.names else [signals[n] for n in request.names if n in signals]
        return b.GetMetadataReply(list=[_metadata(s) for s in chosen])


class SdvCollectorServicer(c_grpc.CollectorServicer):
    """The feeder side: find the ids of signals, then set their current values by id."""

    def __init__(self, broker: Broker, access: Access) -> None:
        self._broker = broker
        self._access = access
        self._catalog = broker.catalog

    @unary
    async def RegisterDatapoints(self, request: c.RegisterDatapointsRequest, context: Any
                                 ) -> c.RegisterDatapointsReply:
        perms = self._access.permissions(context)
        check_entries(len(request.list), "datapoints")
        results: dict[str, int] = {}
        for item in request.list:
            if item.data_type not in t.DataType.values() or item.change_type not in t.ChangeType.values():
                raise InvalidArgumentError(f"{item.name}: unknown data_type {item.data_type} or change_type "
                                           f"{item.change_type}")
            signal = self._catalog.signals.get(item.name)
            if signal is None:
                raise InvalidArgumentError(
                    f"{item.name!r} is not in the car's catalog; evos does not create signals at run time (add it "
                    f"with an overlay: evos up --overlay FILE)")
            perms.check("provide", item.name)
            results[item.name] = signal.id
        return c.RegisterDatapointsReply(results=results)

    def _update(self, datapoints: Mapping[int, t.Datapoint], perms: Permissions) -> dict[int, Any]:
        """Set the values of one request as one batch; the errors by id (and then nothing is set)."""
        check_entries(len(datapoints), "datapoints")
        errors: dict[int, Any] = {}  # signal id -> DatapointError
        values: dict[str, Value] = {}
        stamps: dict[str, float] = {}
        for signal_id, datapoint in datapoints.items():
            signal = self._catalog.by_id.get(signal_id)
            try:
                if signal is None:
                    raise _Refused(t.UNKNOWN_DATAPOINT)
                if not perms.allows("provide", signal.path):
                    raise _Refused(t.ACCESS_DENIED)
                values[signal.path] = _value(signal, datapoint)
                stamp = timestamp_from(datapoint, signal.path)
                if stamp is not None:
                    stamps[signal.path] = stamp
            except _Refused as refused:
                errors[signal_id] = refused.code
            except EvosError:  # a timestamp outside what protobuf can carry
                errors[signal_id] = t.OUT_OF_BOUNDS
        if not errors and values:
            self._broker.publish(values, source_timestamps=stamps)
        return errors

    @unary
    async def UpdateDatapoints(self, request: c.UpdateDatapointsRequest, context: Any) -> c.UpdateDatapointsReply:
        perms = self._access.permissions(context)
        return c.UpdateDatapointsReply(errors=self._update(request.datapoints, perms))

    @streaming
    async def StreamDatapoints(self, request_iterator: AsyncIterator[c.StreamDatapointsRequest], context: Any
                               ) -> AsyncIterator[c.StreamDatapointsReply]:
        perms = self._access.permissions(context)
        async for request in perms.expiring(request_iterator):
            errors = self._update(request.datapoints, perms)
            if errors:
                yield c.StreamDatapointsReply(errors=errors)

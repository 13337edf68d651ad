"""``kuksa.val.v1.VAL`` on top of the broker core, for clients (like the kuksa-client SDK) that still use it.

Differences from the KUKSA databroker 0.6, on purpose:
- ``Set`` is all-or-nothing: if one update fails, none is applied and every failing update is listed.
- Setting an actuator target reaches the actuator's v2 provider (KUKSA stores it only); with no
  provider and no v1 target subscriber it fails with 503 "no provider", as v2 Actuate does. A request
  with values and targets publishes the values once the providers accepted the targets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc

import evos
from evos.broker._access import Access
from evos.broker._auth import Permissions
from evos.broker._convert import datapoint_to_v1, metadata_to_v1, value_from_v1
from evos.broker._core import Broker, Datapoint
from evos.broker._status import classify, permissions_or_abort, streaming, unary
from evos.broker._wire import check_entries
from evos.errors import EvosError, InvalidArgumentError
from evos.vss import Signal, validate

_VALUE, _TARGET, _METADATA = "value", "target", "metadata"
_VIEW_FIELDS = {
    t1.VIEW_UNSPECIFIED: {_VALUE},
    t1.VIEW_CURRENT_VALUE: {_VALUE},
    t1.VIEW_TARGET_VALUE: {_TARGET},
    t1.VIEW_METADATA: {_METADATA},
    t1.VIEW_FIELDS: set(),
    t1.VIEW_ALL: {_VALUE, _TARGET, _METADATA},
}
_FIELD_PARTS = {
    t1.FIELD_VALUE: _VALUE,
    t1.FIELD_ACTUATOR_TARGET: _TARGET,
    **dict.fromkeys(
        (t1.FIELD_METADATA, t1.FIELD_METADATA_DATA_TYPE, t1.FIELD_METADATA_DESCRIPTION,
         t1.FIELD_METADATA_ENTRY_TYPE, t1.FIELD_METADATA_COMMENT, t1.FIELD_METADATA_DEPRECATION,
         t1.FIELD_METADATA_UNIT, t1.FIELD_METADATA_VALUE_RESTRICTION, t1.FIELD_METADATA_ACTUATOR,
         t1.FIELD_METADATA_SENSOR, t1.FIELD_METADATA_ATTRIBUTE),
        _METADATA,
    ),
}


def _parts(view: int, fields: Any) -> set[str]:
    if view not in _VIEW_FIELDS:
        raise InvalidArgumentError(f"invalid view {view}")
    parts = set(_VIEW_FIELDS[view])
    parts.update(_FIELD_PARTS[f] for f in fields if f in _FIELD_PARTS)
    return parts


def _error(exc: EvosError) -> t1.Error:
    _status, code, reason = classify(exc)
    return t1.Error(code=code, reason=reason, message=str(exc))


class ValV1Servicer(v1_grpc.VALServicer):
    """Serves the KUKSA v1 API: Get, Set, StreamedUpdate, Subscribe, GetServerInfo."""

    def __init__(self, broker: Broker, access: Access) -> None:
        self._broker = broker
        self._catalog = broker.catalog
        self._access = access

    def _entry(self, signal: Signal, parts: set[str]) -> t1.DataEntry:
        entry = t1.DataEntry(path=signal.path)
        if _VALUE in parts:
            entry.value.CopyFrom(datapoint_to_v1(signal.datatype, self._broker.get(signal.path)))
        if _TARGET in parts:
            entry.actuator_target.CopyFrom(datapoint_to_v1(signal.datatype, self._broker.get_target(signal.path)))
        if _METADATA in parts:
            entry.metadata.CopyFrom(metadata_to_v1(signal))
        return entry

    @unary
    async def Get(self, request: v1.GetRequest, context: Any) -> v1.GetResponse:
        perms = self._access.permissions(context)
        if not request.entries:
            raise InvalidArgumentError("no datapoints requested")
        check_entries(len(request.entries), "entries")
        entries: list[t1.DataEntry] = []
        errors: list[t1.DataEntryError] = []
        for req in request.entries:
            parts = _parts(req.view, req.fields)
            try:
                signals = self._catalog.match(req.path)
                if parts & {_VALUE, _TARGET}:  # metadata is public to any authenticated caller
                    for signal in signals:
                        perms.check("read", signal.path)
            except EvosError as exc:
                errors.append(t1.DataEntryError(path=req.path, error=_error(exc)))
                continue
            if parts:
                entries.extend(self._entry(signal, parts) for signal in signals)
        response = v1.GetResponse(entries=entries, errors=errors)
        if errors:
            response.error.CopyFrom(errors[0].error)
        return response

    async def _apply(self, updates: Any, perms: Permissions, context: Any) -> list[t1.DataEntryError]:
        """Apply v1 EntryUpdates all-or-nothing; returns every entry's error (empty on success)."""
        values: dict[str, Any] = {}
        targets: dict[str, Any] = {}
        errors: list[t1.DataEntryError] = []
        for update in updates:
            path = update.entry.path
            try:
                signal = self._catalog.get(path)
                fields = set(update.fields)
                if t1.FIELD_VALUE not in fields and t1.FIELD_ACTUATOR_TARGET not in fields:
                    raise InvalidArgumentError(
                        f"{path}: nothing to set: give FIELD_VALUE or FIELD_ACTUATOR_TARGET", path=path)
                if t1.FIELD_VALUE in fields:
                    perms.check("provide", path)
                    values[path] = validate(signal, value_from_v1(update.entry.value, path))
                if t1.FIELD_ACTUATOR_TARGET in fields:
                    perms.check("actuate", path)
                    targets[path] = self._broker.check_target(
                        path, value_from_v1(update.entry.actuator_target, path))
            except EvosError as exc:
                errors.append(t1.DataEntryError(path=path, error=_error(exc)))
        if not errors:
            try:  # a provider may still refuse its targets: then the values are not published either
                if targets:
                    await self._access.actuate(self._broker, context, perms, targets)
                if values:
                    self._broker.publish(values)
            except EvosError as exc:
                errors.append(t1.DataEntryError(path=exc.path or "", error=_error(exc)))
        return errors

    @unary
    async def Set(self, request: v1.SetRequest, context: Any) -> v1.SetResponse:
        perms = self._access.permissions(context)
        if not request.updates:
            raise InvalidArgumentError("no updates given")
        check_entries(len(request.updates), "updates")
        return v1.SetResponse(errors=await self._apply(request.updates, perms, context))

    async def StreamedUpdate(
        self, request_iterator: AsyncIterator[v1.StreamedUpdateRequest], context: Any
    ) -> AsyncIterator[v1.StreamedUpdateResponse]:
        perms = await permissions_or_abort(self._access, context)
        requests = aiter(perms.expiring(request_iterator))
        while True:
            try:
                request = await anext(requests)
                check_entries(len(request.updates), "updates")
            except StopAsyncIteration:
                return
            except EvosError as exc:
                await context.abort(classify(exc)[0], str(exc))
            errors = await self._apply(request.updates, perms, context) if request.updates else []
            response = v1.StreamedUpdateResponse(errors=errors)
            if errors:
                response.error.CopyFrom(errors[0].error)
            yield response

    @streaming
    async def Subscribe(self, request: v1.SubscribeRequest, context: Any) -> AsyncIterator[v1.SubscribeResponse]:
        perms = self._access.permissions(context)
        if not request.entries:
            raise InvalidArgumentError("a subscription needs at least one entry")
        check_entries(len(request.entries), "entries")
        value_paths: dict[str, None] = {}
        target_paths: dict[str, None] = {}
        for entry in request.entries:
            parts = _parts(t1.VIEW_FIELDS, entry.fields) or _parts(entry.view, ())
            for signal in self._catalog.match(entry.path):
                perms.check("read", signal.path)
                if _VALUE in parts:
                    value_paths[signal.path] = None
                if _TARGET in parts:
                    target_paths[signal.path] = None
        if not value_paths and not target_paths:
            raise InvalidArgumentError("subscribe to FIELD_VALUE or FIELD_ACTUATOR_TARGET")
        # a v1 client that subscribes to targets with the right to actuate is a provider of them
        provides = all(perms.allows("actuate", path) for path in target_paths)
        subs = []
        waiting: dict[asyncio.Future[dict[str, Datapoint]], Any] = {}
        try:
            if value_paths:
                subs.append(self._broker.subscribe_paths(tuple(value_paths), "value"))
            if target_paths:
                subs.append(self._broker.subscribe_paths(tuple(target_paths), "target", provides=provides))
            signals = self._catalog.signals
            # the first response carries the current state of every subscribed entry
            first: dict[str, t1.DataEntry] = {}
            for sub in subs:
                for path, dp in (sub.get_nowait() or {}).items():
                    _fill(first.setdefault(path, t1.DataEntry(path=path)), sub.field, signals[path], dp)
            yield _response(first, value_paths, target_paths)
            # then whichever subscription has a batch next; each keeps its own bounded, conflating queue
            waiting.update((asyncio.ensure_future(sub.get()), sub) for sub in subs)
            while waiting:
                done, _ = await perms.until_expiry(asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED))
                for task in done:
                    sub = waiting.pop(task)
                    batch = task.result()
                    field = t1.FIELD_VALUE if sub.field == "value" else t1.FIELD_ACTUATOR_TARGET
                    entries = []
                    for path, dp in batch.items():
                        entry = t1.DataEntry(path=path)
                        _fill(entry, sub.field, signals[path], dp)
                        entries.append(v1.EntryUpdate(entry=entry, fields=[field]))
                    yield v1.SubscribeResponse(updates=entries)
                    waiting[asyncio.ensure_future(sub.get())] = sub
        finally:
            for task in waiting:
                task.cancel()
            for sub in subs:
                sub.close()

    @unary
    async def GetServerInfo(self, request: v1.GetServerInfoRequest, context: Any) -> v1.GetServerInfoResponse:
        self._access.permissions(context)
        return v1.GetServerInfoResponse(name="evos-databroker", version=evos.__version__)


def _fill(entry: t1.DataEntry, field: str, signal: Signal, dp: Datapoint) -> None:
    target = entry.value if field == "value" else entry.actuator_target
    target.CopyFrom(datapoint_to_v1(signal.datatype, dp))


def _response(entries: dict[str, t1.DataEntry], value_paths: dict[str, None],
              target_paths: dict[str, None]) -> v1.SubscribeResponse:
    updates = []
    for path, entry in entries.items():
        fields = ([t1.FIELD_VALUE] if path in value_paths else []) + (
            [t1.FIELD_ACTUATOR_TARGET] if path in target_paths else [])
        updates.append(v1.EntryUpdate(entry=entry, fields=fields))
    return v1.SubscribeResponse(updates=updates)

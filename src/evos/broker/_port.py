"""The vehicle-data port: the one async interface every app of the car is written against.

Two implementations behave alike: ``LocalPort`` on an in-process ``Broker`` (the tests, the assistant's
parked car) and ``RemotePort`` (``_remote``), a KUKSA ``kuksa.val.v2`` client of any compatible broker
(each app of ``evos up`` in its own process). An app reads (``get``, ``get_many``, ``subscribe``, or a
``Mirror`` of the values it reads often), publishes what it measures (``publish``), asks other apps'
actuators for targets (``actuate``) and serves its own (``provide``). A port carries one identity: a
``LocalPort`` checks the same ``Permissions`` a token would grant over gRPC.

A provider's ``handler(batch)`` runs on the app's event loop for each actuation of its actuators: it
carries the batch out (publishing the new actual values with ``publish_nowait``, which reach the broker
before the handler's answer does) or raises an EvosError to refuse it, changing nothing; it must not
block. A handler that must wait (the cabin entering a scene actuates other apps' actuators) returns an
awaitable: the actuation is answered once it is done, and other actuations are served meanwhile.
``failure`` completes with the error once the port is broken (a remote stream ended): the app should stop
then (``evos.app.run_app`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from evos.broker._auth import ALLOW_ALL, Action, Permissions
from evos.broker._core import NOT_AVAILABLE, Broker, Datapoint, Field, Provision, Subscription
from evos.errors import EvosError
from evos.vss import Signal, Value

log = logging.getLogger("evos.broker")
# Carries a batch out, or raises an EvosError to refuse it; it may return an awaitable, awaited before the answer.
ActuationHandler = Callable[[dict[str, Value]], Awaitable[None] | None]
Batch = dict[str, Datapoint]


class VehiclePort(Protocol):
    """What an app may do with the car's signals (see the module docstring)."""

    name: str
    failure: asyncio.Future[None]

    async def signals(self, pattern: str = "") -> list[Signal]:
        """Metadata of the signals a pattern matches (UnknownSignalError if none)."""

    async def get(self, path: str) -> Datapoint: ...

    async def get_many(self, paths: Iterable[str]) -> dict[str, Datapoint]: ...

    async def get_targets(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        """The last requested targets of actuators (``NOT_AVAILABLE`` where none was requested)."""

    async def publish(self, values: Mapping[str, Any], timestamp_s: float | None = None) -> None:
        """Publish current values (all or nothing; checked against the catalog)."""

    def publish_nowait(self, values: Mapping[str, Any], timestamp_s: float | None = None) -> None:
        """``publish`` without waiting, for code that cannot await (an actuation handler, a control step): the
        values go out before anything the app sends later (its answer to the actuation)."""

    async def actuate(self, targets: Mapping[str, Any]) -> None:
        """Ask the providers for targets; raises what the broker or a provider refused."""

    async def check(self, targets: Mapping[str, Any]) -> dict[str, Value]:
        """The checked targets, or the error ``actuate`` would raise before reaching a provider."""

    def subscribe(self, paths: Iterable[str], field: Field = "value", min_interval_s: float = 0.0
                  ) -> AbstractAsyncContextManager[AsyncIterator[Batch]]:
        """``async with port.subscribe(paths) as updates: async for batch in updates`` — the first batch holds
        every path's current value (or target, ``field="target"``), later ones what changed; with
        ``min_interval_s``, at most one (merged) batch per interval, which is what a display or a log needs of a
        signal published at 10 Hz (values only on a remote port: KUKSA's ``Filter.min_sample_interval``)."""

    async def provide(self, actuators: Iterable[str], handler: ActuationHandler) -> None:
        """Claim actuators for as long as the port is open; their actuations go to ``handler``."""

    async def close(self) -> None: ...


class LocalPort:
    """A ``VehiclePort`` on an in-process broker, for one app with ``permissions`` (all by default)."""

    def __init__(self, broker: Broker, name: str = "app", permissions: Permissions = ALLOW_ALL) -> None:
        self.broker = broker
        self.name = name
        self.permissions = permissions
        self.failure: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._provisions: list[Provision] = []
        self._subscriptions: set[Subscription] = set()

    def _check(self, action: Action, paths: Iterable[str]) -> None:
        for path in paths:
            self.permissions.check(action, path)

    async def signals(self, pattern: str = "") -> list[Signal]:
        return self.broker.catalog.match(pattern)

    async def get(self, path: str) -> Datapoint:
        self._check("read", (path,))
        return self.broker.get(path)

    async def get_many(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        paths = list(paths)
        self._check("read", paths)
        return self.broker.get_many(paths)

    async def get_targets(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        paths = list(paths)
        self._check("read", paths)
        return {path: self.broker.get_target(path) for path in paths}

    async def publish(self, values: Mapping[str, Any], timestamp_s: float | None = None) -> None:
        self.publish_nowait(values, timestamp_s)

    def publish_nowait(self, values: Mapping[str, Any], timestamp_s: float | None = None) -> None:
        self._check("provide", values)
        self.broker.publish(values, timestamp_s)

    async def actuate(self, targets: Mapping[str, Any]) -> None:
        self._check("actuate", targets)
        await self.broker.actuate(targets)

    async def check(self, targets: Mapping[str, Any]) -> dict[str, Value]:
        self._check("actuate", targets)
        return {path: self.broker.check_target(path, value) for path, value in targets.items()}

    @asynccontextmanager
    async def subscribe(self, paths: Iterable[str], field: Field = "value", min_interval_s: float = 0.0
                        ) -> AsyncIterator[AsyncIterator[Batch]]:
        paths = tuple(paths)
        self._check("read", paths)
        sub = self.broker.subscribe_paths(paths, field)
        self._subscriptions.add(sub)
        try:
            yield sub.throttled(min_interval_s) if min_interval_s > 0 else sub
        finally:
            sub.close()
            self._subscriptions.discard(sub)

    async def provide(self, actuators: Iterable[str], handler: ActuationHandler) -> None:
        actuators = tuple(actuators)
        self._check("actuate", actuators)

        async def carry_out(batch: dict[str, Value]) -> None:
            result = handler(batch)
            if result is not None:
                await result

        self._provisions.append(self.broker.provide(actuators, carry_out))

    async def close(self) -> None:
        for provision in self._provisions:
            provision.close()
        self._provisions.clear()
        for sub in list(self._subscriptions):
            sub.close()


class Mirror:
    """The latest values of some signals, kept by a subscription: for apps that read them often (a control
    loop, a web page), so that a read is a dictionary lookup and not a request to the broker.

    ``async with Mirror(port, paths) as mirror`` waits for the first values (``min_interval_s``: at most one
    update per interval, for a comfort app that shows or logs a signal and need not wake at its rate);
    ``version`` counts the batches received and ``changed(since=version)`` waits for a newer one. If the
    subscription fails, the error goes to the port's ``failure`` (the app stops) and ``changed()`` raises it.
    """

    def __init__(self, port: VehiclePort, paths: Iterable[str], min_interval_s: float = 0.0) -> None:
        self.port = port
        self.paths = tuple(dict.fromkeys(paths))
        self.min_interval_s = min_interval_s
        self.version = 0
        self._values: dict[str, Datapoint] = {}
        self._event = asyncio.Event()
        self._first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._listeners: list[Callable[[Batch], None]] = []

    async def start(self) -> Mirror:
        self._task = asyncio.create_task(self._follow(), name=f"mirror of {len(self.paths)} signals")
        await asyncio.shield(self._first)
        return self

    async def __aenter__(self) -> Mirror:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def on_change(self, listener: Callable[[Batch], None]) -> Callable[[], None]:
        """Call ``listener(batch)`` with every batch received (after the mirror took it in); returns the function
        that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def _follow(self) -> None:
        try:
            async with self.port.subscribe(self.paths, min_interval_s=self.min_interval_s) as updates:
                async for batch in updates:
                    self._values.update(batch)
                    self.version += 1
                    self._event.set()
                    if not self._first.done():
                        self._first.set_result(None)
                    for listener in self._listeners:
                        listener(batch)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the broker is gone or refused: the app must know, not read stale values
            self._error = exc
            self._event.set()
            if not self._first.done():
                self._first.set_exception(exc)
            if not self.port.failure.done():
                self.port.failure.set_exception(exc if isinstance(exc, Exception) else EvosError(str(exc)))

    def datapoint(self, path: str) -> Datapoint:
        return self._values.get(path, NOT_AVAILABLE)

    def value(self, path: str) -> Value | None:
        return self._values.get(path, NOT_AVAILABLE).value

    def values(self, paths: Iterable[str] | None = None) -> dict[str, Value | None]:
        wanted = self.paths if paths is None else paths
        return {path: self._values.get(path, NOT_AVAILABLE).value for path in wanted}

    async def changed(self, since: int | None = None) -> int:
        """Wait until a batch newer than ``since`` (a ``version`` read before; default: now) has come in, and
        return the new version. Raises the subscription's error once it failed."""
        since = self.version if since is None else since
        while self.version <= since and self._error is None:
            self._event.clear()
            await self._event.wait()
        if self._error is not None:
            raise self._error
        return self.version


__all__ = ["ActuationHandler", "LocalPort", "Mirror", "VehiclePort"]

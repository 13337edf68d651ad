"""The vehicle data broker core: one store of VSS signal values, subscriptions and actuator providers.

Everything here runs on one asyncio event loop (the broker never blocks and never awaits); servers
and in-process apps call it directly. Operations are all-or-nothing: a batch with one bad entry raises
and changes nothing.

Slow subscribers: each subscription holds a bounded queue of batches (``BrokerConfig.queue_batches``).
When it is full, a new batch is merged into the newest queued one (latest value per signal wins) and
``Subscription.conflated`` counts it. The broker and other subscribers never wait; a slow subscriber
skips intermediate values but always ends up with the latest value of every signal.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from evos.errors import AlreadyProvidedError, InvalidArgumentError, NoProviderError
from evos.vss import Catalog, EntryType, Signal, Value, validate

Field = Literal["value", "target"]
ActuationHandler = Callable[[dict[str, Value]], None]
ActuationCheck = Callable[[dict[str, Value]], None]


class Datapoint(NamedTuple):
    """A signal's value and when it was produced (seconds since the Unix epoch).

    ``value is None`` means *not available*: the signal has never been set.
    """

    value: Value | None
    timestamp_s: float | None = None

    @property
    def available(self) -> bool:
        return self.value is not None


NOT_AVAILABLE = Datapoint(None, None)


@dataclass(frozen=True)
class BrokerConfig:
    """Tunables of the broker core."""

    queue_batches: int = 256  # batches a subscriber may lag behind before updates are conflated

    def __post_init__(self) -> None:
        if self.queue_batches < 1:
            raise ValueError(f"queue_batches must be >= 1, got {self.queue_batches}")


class Subscription:
    """A live feed of batches ``{path: Datapoint}`` for a fixed set of signals.

    The first batch holds the current value of every subscribed signal (``NOT_AVAILABLE`` for those
    never set); later batches hold what one update call changed. Iterate with ``async for``; ``close()``
    ends the iteration.
    """

    def __init__(self, broker: Broker, paths: tuple[str, ...], field: Field, max_batches: int,
                 provides: bool = False) -> None:
        self.paths = paths
        self.field = field
        self.provides = provides
        self.conflated = 0
        self._broker = broker
        self._max_batches = max_batches
        self._queue: deque[dict[str, Datapoint]] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def _push(self, batch: dict[str, Datapoint]) -> None:
        queue = self._queue
        if len(queue) >= self._max_batches:
            queue[-1].update(batch)
            self.conflated += 1
        else:
            queue.append(batch)
        self._ready.set()

    def pending(self) -> int:
        """Batches queued and not yet taken."""
        return len(self._queue)

    def get_nowait(self) -> dict[str, Datapoint] | None:
        """The next batch if one is queued, else None."""
        return self._queue.popleft() if self._queue else None

    async def get(self) -> dict[str, Datapoint]:
        """Wait for the next batch. Raises StopAsyncIteration once the subscription is closed and drained."""
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._broker._unsubscribe(self)
            self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Datapoint]:
        return await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Provision:
    """A provider's claim on actuators: actuation requests for them go to ``handler``."""

    def __init__(self, broker: Broker, paths: frozenset[str], handler: ActuationHandler,
                 check: ActuationCheck | None = None) -> None:
        self.paths = paths
        self.handler = handler
        self.check = check
        self._broker = broker

    def close(self) -> None:
        """Release the claim; later actuations of these signals fail with 'no provider'."""
        self._broker._release(self)


class Broker:
    """Holds the current (and target) values of every signal in a catalog.

    Methods raise UnknownSignalError (path not in catalog), InvalidValueError (value does not fit the
    signal's metadata), InvalidArgumentError (wrong operation for the entry type, malformed pattern),
    NoProviderError (actuator nobody provides) and AlreadyProvidedError (actuator claimed twice).
    """

    def __init__(self, catalog: Catalog, config: BrokerConfig | None = None) -> None:
        self.catalog = catalog
        self.config = config or BrokerConfig()
        start_s = time.time()
        # As in KUKSA, a signal with a catalog `default` starts with it: it is part of the definition.
        self._values: dict[str, Datapoint] = {
            s.path: Datapoint(s.default, start_s) for s in catalog if s.default is not None
        }
        self._targets: dict[str, Datapoint] = {}
        self._subscribers: dict[Field, dict[str, list[Subscription]]] = {"value": {}, "target": {}}
        self._providers: dict[str, Provision] = {}

    # ---- reading -------------------------------------------------------------------------------
    def get(self, path: str) -> Datapoint:
        """Current value of a signal (``NOT_AVAILABLE`` if never set)."""
        self.catalog.get(path)
        return self._values.get(path, NOT_AVAILABLE)

    def get_many(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        """Current values of several signals; fails whole if one path is unknown."""
        paths = list(paths)
        for path in paths:
            self.catalog.get(path)
        values = self._values
        return {path: values.get(path, NOT_AVAILABLE) for path in paths}

    def get_target(self, path: str) -> Datapoint:
        """Last requested target value of an actuator (``NOT_AVAILABLE`` if none was requested)."""
        self.catalog.get(path)
        return self._targets.get(path, NOT_AVAILABLE)

    def provider_of(self, path: str) -> Provision | None:
        return self._providers.get(path)

    # ---- writing ------------------------------------------------------------------------------
    def set(self, path: str, value: Any, timestamp_s: float | None = None) -> None:
        """Publish the current value of one signal."""
        self.apply(values={path: value}, timestamp_s=timestamp_s)

    def set_many(self, updates: Mapping[str, Any], timestamp_s: float | None = None) -> None:
        """Publish current values of many signals at once, delivered to each subscriber as one batch."""
        self.apply(values=updates, timestamp_s=timestamp_s)

    def actuate(self, path: str, value: Any) -> None:
        """Ask the provider of an actuator to move it to ``value``."""
        self.apply(targets={path: value})

    def batch_actuate(self, requests: Mapping[str, Any]) -> None:
        """Send target values to the providers of several actuators; all or nothing."""
        self.apply(targets=requests)

    def apply(
        self,
        values: Mapping[str, Any] | None = None,
        targets: Mapping[str, Any] | None = None,
        timestamp_s: float | None = None,
        source_timestamps: Mapping[str, float] | None = None,
    ) -> None:
        """Publish current ``values`` and request actuator ``targets`` in one all-or-nothing step.

        Every entry is checked before anything changes. Values are stamped ``timestamp_s`` (default:
        now) unless ``source_timestamps`` gives a path its own time. Targets are recorded
        (``get_target``) and each provider receives one batch with its own actuators. Subscribers to
        an actuator's target (KUKSA v1-style providers) count as providers too; an actuator with
        neither raises NoProviderError.
        """
        signals = self.catalog.signals
        checked_values: list[tuple[str, Value]] = []
        for path, value in (values or {}).items():
            signal = signals.get(path)
            if signal is None:
                signal = self.catalog.get(path)  # raises with a suggestion
            checked_values.append((path, validate(signal, value)))
        checked_targets = [(path, self.check_target(path, value)) for path, value in (targets or {}).items()]
        if not checked_values and not checked_targets:
            raise InvalidArgumentError("nothing to set: the request holds no values")
        per_provider: dict[Provision, dict[str, Value]] = {}
        for path, value in checked_targets:
            provision = self._providers.get(path)
            if provision is not None:
                per_provider.setdefault(provision, {})[path] = value
        for provision, batch in per_provider.items():
            if provision.check is not None:
                provision.check(batch)  # the provider refuses what it cannot do, before anything changes
        now_s = time.time() if timestamp_s is None else timestamp_s
        if checked_values:
            stamps = source_timestamps or {}
            self._commit("value", self._values,
                         [(p, Datapoint(v, stamps.get(p, now_s))) for p, v in checked_values])
        if checked_targets:
            self._commit("target", self._targets, [(p, Datapoint(v, now_s)) for p, v in checked_targets])
            for provision, batch in per_provider.items():
                provision.handler(batch)

    def check_target(self, path: str, value: Any) -> Value:
        """The checked target value for an actuator, or the error an actuation would raise (nothing changes).

        Checks in KUKSA's order: unknown path, not an actuator, bad value, then no provider.
        """
        checked = validate(self._actuator(path), value)
        if path not in self._providers and not any(s.provides for s in self._subscribers["target"].get(path, ())):
            raise NoProviderError(f"{path}: no provider is registered for this actuator", path=path)
        return checked

    def provide(self, paths: Iterable[str], handler: ActuationHandler,
                check: ActuationCheck | None = None) -> Provision:
        """Claim actuators: their actuation requests go to ``handler(batch)``, which must not block.

        An in-process provider may also pass ``check(batch)``: it runs before anything changes and raises an
        EvosError (typically NotPermittedError) to refuse the whole request.

        Raises AlreadyProvidedError if another provider holds one of them.
        """
        claimed = frozenset(paths)
        if not claimed:
            raise InvalidArgumentError("a provider must claim at least one actuator")
        for path in claimed:
            self._actuator(path)
            if path in self._providers:
                raise AlreadyProvidedError(f"{path}: already provided by another provider", path=path)
        provision = Provision(self, claimed, handler, check)
        for path in claimed:
            self._providers[path] = provision
        return provision

    def _release(self, provision: Provision) -> None:
        for path in provision.paths:
            if self._providers.get(path) is provision:
                del self._providers[path]

    def _actuator(self, path: str) -> Signal:
        signal = self.catalog.get(path)
        if signal.entry_type is not EntryType.ACTUATOR:
            raise InvalidArgumentError(
                f"{path}: is {'an' if signal.entry_type is EntryType.ATTRIBUTE else 'a'} "
                f"{signal.entry_type.value}, not an actuator; only actuators take target values",
                path=path,
            )
        return signal

    # ---- subscriptions -------------------------------------------------------------------------
    def subscribe(
        self, patterns: Iterable[str], field: Field = "value", max_batches: int | None = None,
        provides: bool = False,
    ) -> Subscription:
        """Subscribe to the signals matched by ``patterns`` (paths, branches or wildcards).

        ``field="target"`` follows actuator target values instead of current values; with
        ``provides=True`` such a subscriber carries the actuations out (a KUKSA v1-style provider), so
        its actuators count as provided.
        """
        paths: dict[str, None] = {}
        for pattern in patterns:
            for signal in self.catalog.match(pattern):
                paths[signal.path] = None
        if not paths:
            raise InvalidArgumentError("subscribe needs at least one path or pattern")
        return self.subscribe_paths(tuple(paths), field, max_batches, provides)

    def subscribe_paths(
        self, paths: tuple[str, ...], field: Field = "value", max_batches: int | None = None,
        provides: bool = False,
    ) -> Subscription:
        """Subscribe to exact leaf paths (checked against the catalog); see ``subscribe``."""
        for path in paths:
            self.catalog.get(path)
        sub = Subscription(self, paths, field, max_batches or self.config.queue_batches, provides)
        store = self._values if field == "value" else self._targets
        sub._push({path: store.get(path, NOT_AVAILABLE) for path in paths})
        index = self._subscribers[field]
        for path in paths:
            index.setdefault(path, []).append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        index = self._subscribers[sub.field]
        for path in sub.paths:
            subs = index.get(path)
            if subs is not None and sub in subs:
                subs.remove(sub)
                if not subs:
                    del index[path]

    def _commit(self, field: Field, store: dict[str, Datapoint], items: list[tuple[str, Datapoint]]) -> None:
        index = self._subscribers[field]
        touched: dict[Subscription, dict[str, Datapoint]] = {}
        for path, datapoint in items:
            store[path] = datapoint
            subs = index.get(path)
            if subs:
                for sub in subs:
                    batch = touched.get(sub)
                    if batch is None:
                        touched[sub] = batch = {}
                    batch[path] = datapoint
        for sub, batch in touched.items():
            sub._push(batch)

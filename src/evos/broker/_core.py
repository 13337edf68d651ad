"""The vehicle data broker core: one store of VSS signal values, subscriptions and actuator providers.

Everything here runs on the asyncio event loop of the thread that created the broker: a call from
another thread raises RuntimeError (an error, not a race). Reading and publishing never block and never
await; an actuation awaits the providers' answers. Operations are all-or-nothing: a batch with one bad
entry raises and changes nothing.

Actuation: every target is checked first (unknown path, not an actuator, bad value, no provider); then
each provider receives its part in one batch and accepts it or refuses it by raising an EvosError
(the body hardware refuses to open a locked door). A refused part changes nothing; the targets of an
accepted part are recorded (``get_target``, target subscribers) at once. A request that spans several
providers goes to them one after the other and stops at the first refusal, whose error names the parts
already carried out. A provider that fails with anything but an EvosError has a bug: it is logged and
the caller gets InternalError, and nothing of that part is recorded.

Slow subscribers: each subscription holds a bounded queue of batches (``BrokerConfig.queue_batches``).
When it is full, a new batch is merged into the newest queued one (latest value per signal wins) and
``Subscription.conflated`` counts it. The broker and other subscribers never wait; a slow subscriber
skips intermediate values but always ends up with the latest value of every signal.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from evos.errors import AlreadyProvidedError, EvosError, InternalError, InvalidArgumentError, NoProviderError
from evos.vss import Catalog, EntryType, Signal, Value, validate

log = logging.getLogger("evos.broker")
Field = Literal["value", "target"]
# A provider's part of an actuation: carry it out, or raise an EvosError to refuse it (changing nothing).
ActuationHandler = Callable[[dict[str, Value]], Awaitable[None]]
_thread_id = threading.get_ident


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
    (or leaving ``with``/``async with``) ends the iteration.
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

    async def throttled(self, min_interval_s: float) -> AsyncIterator[dict[str, Datapoint]]:
        """The batches, at most one (merged) per ``min_interval_s`` (KUKSA v2's ``Filter.min_sample_interval``):
        a change after a quiet spell comes at once, a burst is merged into one batch at the interval's end."""
        if min_interval_s <= 0:
            async for batch in self:
                yield batch
            return
        next_s = 0.0
        async for batch in self:
            wait_s = next_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            while (more := self.get_nowait()) is not None:
                batch.update(more)
            next_s = time.monotonic() + min_interval_s
            yield batch

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

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Provision:
    """A provider's claim on actuators: actuation requests for them go to ``handler``."""

    def __init__(self, broker: Broker, paths: frozenset[str], handler: ActuationHandler) -> None:
        self.paths = paths
        self.handler = handler
        self._broker = broker

    def close(self) -> None:
        """Release the claim; later actuations of these signals fail with 'no provider'."""
        self._broker._release(self)


class Broker:
    """Holds the current (and target) values of every signal in a catalog.

    Methods raise UnknownSignalError (path not in catalog), InvalidValueError (value does not fit the
    signal's metadata), InvalidArgumentError (wrong operation for the entry type, malformed pattern),
    NoProviderError (actuator nobody provides), AlreadyProvidedError (actuator claimed twice) and a
    provider's own refusal; RuntimeError when called from a thread other than the one that created it.
    """

    def __init__(self, catalog: Catalog, config: BrokerConfig | None = None) -> None:
        self.catalog = catalog
        self.config = config or BrokerConfig()
        self._thread = _thread_id()
        start_s = time.time()
        # As in KUKSA, a signal with a catalog `default` starts with it: it is part of the definition.
        self._values: dict[str, Datapoint] = {
            s.path: Datapoint(s.default, start_s) for s in catalog if s.default is not None
        }
        self._targets: dict[str, Datapoint] = {}
        self._subscribers: dict[Field, dict[str, list[Subscription]]] = {"value": {}, "target": {}}
        self._providers: dict[str, Provision] = {}

    def _here(self) -> None:
        if _thread_id() != self._thread:
            raise RuntimeError("the in-process broker belongs to the thread (and event loop) that created it; "
                               "call it from there, or talk to it over gRPC from elsewhere")

    # ---- reading -------------------------------------------------------------------------------
    def get(self, path: str) -> Datapoint:
        """Current value of a signal (``NOT_AVAILABLE`` if never set)."""
        self._here()
        self.catalog.get(path)
        return self._values.get(path, NOT_AVAILABLE)

    def get_many(self, paths: Iterable[str]) -> dict[str, Datapoint]:
        """Current values of several signals; fails whole if one path is unknown."""
        self._here()
        paths = list(paths)
        for path in paths:
            self.catalog.get(path)
        values = self._values
        return {path: values.get(path, NOT_AVAILABLE) for path in paths}

    def get_target(self, path: str) -> Datapoint:
        """Last requested target value of an actuator (``NOT_AVAILABLE`` if none was requested)."""
        self._here()
        self.catalog.get(path)
        return self._targets.get(path, NOT_AVAILABLE)

    def provider_of(self, path: str) -> Provision | None:
        """The claim on an actuator, if one is held."""
        return self._providers.get(path)

    # ---- writing ------------------------------------------------------------------------------
    def publish(self, values: Mapping[str, Any], timestamp_s: float | None = None,
                source_timestamps: Mapping[str, float] | None = None) -> None:
        """Publish current values of many signals at once, delivered to each subscriber as one batch.

        Every entry is checked before anything changes. Values are stamped ``timestamp_s`` (default: now)
        unless ``source_timestamps`` gives a path its own time.
        """
        self._here()
        signals = self.catalog.signals
        checked: list[tuple[str, Value]] = []
        for path, value in values.items():
            signal = signals.get(path)
            if signal is None:
                signal = self.catalog.get(path)  # raises with a suggestion
            checked.append((path, validate(signal, value)))
        if not checked:
            raise InvalidArgumentError("nothing to publish: the request holds no values")
        now_s = time.time() if timestamp_s is None else timestamp_s
        stamps = source_timestamps or {}
        self._commit("value", self._values, [(p, Datapoint(v, stamps.get(p, now_s))) for p, v in checked])

    async def actuate(self, targets: Mapping[str, Any]) -> None:
        """Ask the providers of actuators to move them to ``targets`` (see the module's rules)."""
        checked = {path: self.check_target(path, value) for path, value in targets.items()}
        if not checked:
            raise InvalidArgumentError("nothing to actuate: the request holds no targets")
        parts: dict[Provision | None, dict[str, Value]] = {}
        for path, value in checked.items():
            parts.setdefault(self._providers.get(path), {})[path] = value
        done: list[str] = []
        for provision, batch in parts.items():
            if provision is not None:
                await self._deliver(provision, batch, done)
            now_s = time.time()
            self._commit("target", self._targets, [(p, Datapoint(v, now_s)) for p, v in batch.items()])
            done.extend(batch)

    async def _deliver(self, provision: Provision, batch: dict[str, Value], done: list[str]) -> None:
        try:
            await provision.handler(batch)
        except EvosError as exc:
            if not done:
                raise
            note = f" (the request's other actuators were already carried out: {', '.join(done)})"
            raise type(exc)(f"{exc}{note}", path=exc.path) from exc
        except Exception as exc:  # a provider's bug: contained and reported, never taken for success
            log.exception("provider of %s failed on an actuation", ", ".join(batch))
            raise InternalError(f"the provider of {', '.join(batch)} failed: {type(exc).__name__}: {exc}") from exc

    def check_target(self, path: str, value: Any) -> Value:
        """The checked target value for an actuator, or the error an actuation would raise (nothing changes;
        the provider's own refusal is not known here).

        Checks in KUKSA's order: unknown path, not an actuator, bad value, then no provider.
        """
        self._here()
        checked = validate(self._actuator(path), value)
        if path not in self._providers and not any(s.provides for s in self._subscribers["target"].get(path, ())):
            raise NoProviderError(f"{path}: no provider is registered for this actuator", path=path)
        return checked

    def provide(self, paths: Iterable[str], handler: ActuationHandler) -> Provision:
        """Claim actuators: their actuation requests go to ``await handler(batch)``, which carries the batch out
        or raises an EvosError to refuse it (changing nothing).

        Raises AlreadyProvidedError if another provider holds one of them.
        """
        self._here()
        claimed = frozenset(paths)
        if not claimed:
            raise InvalidArgumentError("a provider must claim at least one actuator")
        for path in claimed:
            self._actuator(path)
            if path in self._providers:
                raise AlreadyProvidedError(f"{path}: already provided by another provider", path=path)
        provision = Provision(self, claimed, handler)
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
        self._here()
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

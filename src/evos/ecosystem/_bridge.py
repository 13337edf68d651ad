"""The MQTT bridge: an app of the car that joins it to a home's MQTT server (aiomqtt).

It publishes the chosen signals on change (retained, at most one message per signal per interval), the views a
home wants (``_derived``) and Home Assistant's device discovery; it takes commands on ``.../set`` topics (QoS 1)
and carries them out on one path: the actuator must be on the configured command list; what opens the car
(``evos.openings``) is refused unless the owner opted in (``allow_opening``); every command is written to the
car's audit journal before it is carried out, and a refused one is written too. A command that is not carried
out gets one reply on ``<base>/error`` (``{"topic", "code", "message"}``) and changes nothing.

aiomqtt does not reconnect: the bridge does, with backoff (0.5 s doubling to 30 s), re-subscribing and
re-publishing everything retained on each connection. Its session is persistent (MQTT 5: kept
``SESSION_EXPIRY_S`` after a disconnect), so a command sent while the bridge is away — its server restarting —
is carried out once it is back, and one older than that is dropped by the server. A retained command is refused
and cleared: it would be replayed to the car at every reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from evos.app import App, AppEnv, Grants, everything, paths_in
from evos.broker import JOURNAL_NAME, Caller, Journal, VehiclePort
from evos.ecosystem._config import DEFAULT_COMMANDS, DEFAULT_PUBLISH, BridgeConfig, bridge_config
from evos.ecosystem._derived import CONTROLS, DOOR_LOCKS, VIEWS, Control
from evos.ecosystem._homeassistant import Device, device_id, device_topic, discovery
from evos.ecosystem._mqtt import stay_connected, tls_arguments
from evos.ecosystem._topics import SET, command_text, decode, encode, path_of, state_topic
from evos.errors import (
    EvosError,
    InvalidArgumentError,
    InvalidValueError,
    NotPermittedError,
    UnavailableError,
    UnknownSignalError,
)
from evos.openings import DRIVER_LOCK, can_open, depends_on_locks, refuse_opening
from evos.vss import EntryType, Signal, Value

log = logging.getLogger("evos.ecosystem")
STOP_WITHIN_S = 5.0  # a connection's tasks get this long to end
# paho leaves Nagle's algorithm on: each small message would wait for the server's delayed ACK (40 ms on Linux)
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
SESSION_EXPIRY_S = 300  # the server keeps the bridge's session (and its queued commands) this long
STATUS = "status"
SCENES = "Vehicle.Evos.Cabin.Scenes"
MODEL = "Vehicle.VehicleIdentification.Model"
# the error codes of <base>/error, by the error's class (the first that matches)
CODES: tuple[tuple[type[EvosError], str], ...] = (
    (UnknownSignalError, "unknown_signal"), (InvalidValueError, "invalid_value"),
    (InvalidArgumentError, "invalid_argument"), (NotPermittedError, "not_permitted"),
    (UnavailableError, "unavailable"))


def code_of(exc: EvosError) -> str:
    own = getattr(exc, "code", None)  # SignatureRequiredError's "signature_required"
    if isinstance(own, str):
        return own
    return next((code for kind, code in CODES if isinstance(exc, kind)), "internal")


class Bridge:
    """The bridge of one car (``port``) to one MQTT server (see the module docstring). ``journal``: the car's audit
    journal (None: no command is carried out, for there is nowhere to write it)."""

    def __init__(self, port: VehiclePort, config: BridgeConfig, journal: Journal | None) -> None:
        self.port = port
        self.config = config
        self.journal = journal
        self.base = config.base_topic
        self.caller = Caller("mqtt", f"MQTT {config.server} as {config.client_id}")
        self.signals: dict[str, Signal] = {}
        self.values: dict[str, Value | None] = {}
        self.connected = asyncio.Event()  # for the tests and the benchmark
        self._sent: dict[str, bytes] = {}  # topic -> payload the server has (retained) on this connection
        self._dirty = asyncio.Event()
        self._discovery: tuple[Any, tuple[str, bytes]] | None = None  # (its inputs, its message), made once per change
        self._controls = {control.topic: control for control in CONTROLS}
        self._momentary: dict[str, asyncio.TimerHandle] = {}
        self._offs: set[asyncio.Task[None]] = set()  # switching off what was on for a while
        self._closing = False
        self._published: dict[str, float] = {}  # path -> min interval, s
        self._commandable: Callable[[str], bool] = paths_in(*config.commands)

    # --- what is published --------------------------------------------------------------------------------
    async def start(self) -> list[asyncio.Task[None]]:
        """Read the catalog, resolve what is published, and follow those signals; the followers' tasks."""
        self.signals = {s.path: s for s in await self.port.signals()}
        for entry in self.config.publish:
            found = [p for p in self.signals if p == entry.path or p.startswith(entry.path + ".")]
            if not found and entry.path not in DEFAULT_PUBLISH:
                raise InvalidArgumentError(f"publish: {entry.path!r} names no signal of this car", path=entry.path)
            for path in found:  # what the home commands is confirmed at once: no rate limit (it changes when set)
                self._published.setdefault(path, 0.0 if self._commandable(path) else entry.min_interval_s)
        inputs = {p for view in VIEWS for p in view.inputs} | {SCENES, MODEL}
        for path in inputs & set(self.signals):
            self._published.setdefault(path, self.config.min_interval_s)
        by_interval: dict[float, list[str]] = {}
        for path, interval_s in self._published.items():
            by_interval.setdefault(interval_s, []).append(path)
        ready = [asyncio.Event() for _ in by_interval]
        tasks = [asyncio.create_task(self._follow(paths, interval_s, event), name=f"mqtt follows {interval_s} s")
                 for (interval_s, paths), event in zip(by_interval.items(), ready, strict=True)]
        everything_read: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*(e.wait() for e in ready)))
        await asyncio.wait([everything_read, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():  # a follower that failed to subscribe: its error
                everything_read.cancel()
                task.result()
        return tasks

    async def _follow(self, paths: list[str], interval_s: float, ready: asyncio.Event) -> None:
        async with self.port.subscribe(paths, min_interval_s=interval_s) as updates:
            async for batch in updates:
                for path, datapoint in batch.items():
                    self.values[path] = datapoint.value
                self._dirty.set()
                ready.set()

    def messages(self) -> dict[str, bytes]:
        """Every retained message the bridge keeps on the server now (topic -> payload)."""
        out: dict[str, bytes] = {}
        for path in self._published:
            value = self.values.get(path)
            if value is not None and path in self.signals:
                out[state_topic(self.base, path)] = encode(value)
        for view in VIEWS:
            if all(p in self.signals for p in view.inputs):
                text = view.render(self.values)
                if text is not None:
                    out[f"{self.base}/{view.topic}"] = text.encode()
        if self.config.home_assistant:
            inputs = (self.values.get(MODEL), self.values.get(SCENES))
            if self._discovery is None or self._discovery[0] != inputs:  # not rebuilt for every signal's change
                topic, payload = self.discovery()
                self._discovery = (inputs, (topic, json.dumps(payload, sort_keys=True).encode()))
            where, message = self._discovery[1]
            out[where] = message
        return out

    def discovery(self) -> tuple[str, dict[str, Any]]:
        """Home Assistant's discovery message for this car (its topic and payload)."""
        model = self.values.get(MODEL)
        device = Device(device_id(self.base), f"evos {model}" if model else "evos car",
                        str(model) if model else None)
        scenes = self.values.get(SCENES)
        available = [p for p in self.signals if p in self._published or self._commandable(p)]
        return discovery(self.base, self.config.discovery_prefix, device, available,
                         [str(s) for s in scenes] if isinstance(scenes, tuple) else ())

    # --- the connection -----------------------------------------------------------------------------------
    def _mqtt_client(self) -> aiomqtt.Client:
        c = self.config
        tls = tls_arguments(c)
        will = aiomqtt.Will(f"{self.base}/{STATUS}", b"offline", qos=1, retain=True)
        session: dict[str, Any] = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": False}
        if c.mqtt5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            session = {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": False, "properties": properties}
        client = aiomqtt.Client(c.host, c.port, username=c.username, password=c.password, identifier=c.client_id,
                                will=will, keepalive=c.keepalive_s, timeout=10, socket_options=NO_DELAY, **session,
                                **tls)
        client.pending_calls_threshold = 10_000  # the sender publishes a whole batch at once, on purpose
        return client

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop`` (reconnecting with backoff); say ``offline`` on the way out."""

        async def session(client: aiomqtt.Client) -> None:
            await self._session(client, stop)
            await client.publish(f"{self.base}/{STATUS}", b"offline", qos=1, retain=True)

        def closed() -> None:
            self.connected.clear()
            self._sent.clear()

        await stay_connected(self.config, self._mqtt_client, session, stop, closed)

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """One connection: subscribe, publish everything retained, then send changes and take commands until
        ``stop`` (returns) or the connection fails (raises MqttError)."""
        commands = f"{self.base}/#"
        if self.config.mqtt5:  # not our own messages back; a retained command seen as one
            await client.subscribe(commands, options=SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True))
        else:
            await client.subscribe(commands, qos=1)
        if self.config.home_assistant:
            await client.subscribe(f"{self.config.discovery_prefix}/status", qos=1)
        await client.publish(f"{self.base}/{STATUS}", b"online", qos=1, retain=True)
        self._dirty.set()
        self.connected.set()
        tasks = [asyncio.create_task(self._send(client), name="mqtt sends"),
                 asyncio.create_task(self._receive(client), name="mqtt commands"),
                 asyncio.create_task(stop.wait(), name="mqtt stop")]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a failed connection: its MqttError
        finally:
            self._closing = True  # aiomqtt's publish can swallow a cancellation: the sender also looks here
            self._dirty.set()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=STOP_WITHIN_S)

    async def _send(self, client: aiomqtt.Client) -> None:
        self._closing = False
        while not self._closing:
            await self._dirty.wait()
            self._dirty.clear()
            changed = [(t, p) for t, p in self.messages().items() if self._sent.get(t) != p]
            if self._closing:
                return
            # together, not one acknowledgement after another (paho keeps at most 20 in flight, queues the rest)
            await asyncio.gather(*(client.publish(topic, payload, qos=1, retain=True) for topic, payload in changed))
            self._sent.update(changed)

    async def _receive(self, client: aiomqtt.Client) -> None:
        birth = f"{self.config.discovery_prefix}/status"
        async for message in client.messages:
            topic = str(message.topic)
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            if topic == birth:
                if payload == b"online":  # Home Assistant (re)started: it needs the discovery again
                    self._sent = {t: p for t, p in self._sent.items() if not t.startswith(
                        f"{self.config.discovery_prefix}/")}
                    self._dirty.set()
            elif topic.endswith((SET, "/")):  # a command, or a malformed one (told why, not ignored)
                await self.command(client, topic, payload, bool(message.retain))

    # --- commands -----------------------------------------------------------------------------------------
    def _targets(self, topic: str, payload: bytes) -> tuple[dict[str, Any], Control | None]:
        """The actuator targets a command asks for (unchecked), and the control it went to (None: a signal's)."""
        control = self._controls.get(topic[len(self.base) + 1:-len(SET)]) if topic.startswith(
            self.base + "/") else None
        if control is not None:
            targets = control.targets(command_text(topic, payload, "true or false, or a number"))
        else:
            path = path_of(self.base, topic)
            signal = self.signals.get(path)
            if signal is None:
                if any(p.startswith(path + ".") for p in self.signals):
                    raise UnknownSignalError(f"{path} is a branch, not a signal: a command names one actuator",
                                             path=path)
                raise UnknownSignalError(f"{path}: the car has no such signal", path=path)
            if signal.entry_type is not EntryType.ACTUATOR:
                raise InvalidArgumentError(f"{path} is a {signal.entry_type.value}, not an actuator: it cannot be "
                                           "set", path=path)
            if not self._commandable(path):
                raise _not_listed(path)
            targets = {path: decode(signal, payload)}
        refused = next((p for p in targets if not self._commandable(p)), None)
        if refused is not None:
            raise _not_listed(refused)
        return targets, control

    async def command(self, client: aiomqtt.Client, topic: str, payload: bytes, retained: bool) -> None:
        """Carry out one command, or reply on ``<base>/error`` why not (see the module docstring)."""
        asked: dict[str, Any] = {"topic": topic, "payload": payload[:200].decode("utf-8", "replace")}
        try:
            if retained:
                await client.publish(topic, b"", qos=1, retain=True)  # cleared, so it is not replayed again
                raise InvalidArgumentError(f"{topic}: a retained command is not carried out (it would be replayed "
                                           "at every reconnect); the bridge cleared it")
            targets, control = self._targets(topic, payload)
            checked = await self.port.check(targets)
            if self.journal is None:
                raise UnavailableError("the bridge has no audit journal (no data directory): it carries out no "
                                       "command")
            if not self.config.allow_opening:
                locked = (await self.port.get(DRIVER_LOCK)).value is True if depends_on_locks(checked) else False
                refuse_opening(checked, locked, "the MQTT bridge (without 'allow_opening' in its configuration)")
        except EvosError as exc:
            if self.journal is not None:
                with contextlib.suppress(EvosError):
                    await self.journal.refused(self.caller, asked, exc)
            await self._reply_error(client, topic, exc)
            return
        try:
            await self.journal.audited(self.caller, checked, lambda: self.port.actuate(checked))
        except EvosError as exc:
            await self._reply_error(client, topic, exc)
            return
        if control is not None and control.momentary_s > 0:
            self._switch_off_later(list(checked), control.momentary_s)

    async def _reply_error(self, client: aiomqtt.Client, topic: str, exc: EvosError) -> None:
        log.info("mqtt: %s refused: %s", topic, exc)
        body = {"topic": topic, "code": code_of(exc), "message": str(exc), "at": time.time()}
        await client.publish(f"{self.base}/error", json.dumps(body).encode(), qos=1)

    def _switch_off_later(self, paths: list[str], after_s: float) -> None:
        for path in paths:
            previous = self._momentary.pop(path, None)
            if previous is not None:
                previous.cancel()
            self._momentary[path] = asyncio.get_running_loop().call_later(after_s, self._off_soon, path)

    def _off_soon(self, path: str) -> None:
        task = asyncio.ensure_future(self._switch_off(path))
        self._offs.add(task)
        task.add_done_callback(self._offs.discard)

    async def _switch_off(self, path: str) -> None:
        self._momentary.pop(path, None)
        try:
            await self.port.actuate({path: False})
        except EvosError as exc:
            log.warning("mqtt: %s could not be switched off again: %s", path, exc)

    async def close(self) -> None:
        """Switch off at once what is on for a while only (the hazards of "flash")."""
        for path, handle in list(self._momentary.items()):
            handle.cancel()
            await self._switch_off(path)


async def _main(port: VehiclePort, env: AppEnv) -> None:
    s = env.settings
    config = bridge_config(Path(s.mqtt_config) if s.mqtt_config else None, s.mqtt)
    journal = Journal(env.data_dir / JOURNAL_NAME) if env.data_dir is not None else None
    bridge = Bridge(port, config, journal)
    env.instance = bridge
    followers = await bridge.start()
    env.ready()
    try:
        await bridge.run(env.stop)
    finally:
        for task in followers:
            task.cancel()
        await bridge.close()
        if journal is not None:
            await asyncio.to_thread(journal.close)


def _not_listed(path: str) -> NotPermittedError:
    opening = "; it can open the car, which also takes 'allow_opening: true'" if can_open(path) else ""
    return NotPermittedError(f"{path}: the bridge takes no commands for it (its 'commands' setting){opening}",
                             path=path)


def _may_actuate(path: str) -> bool:
    """What the bridge's token may actuate: the default command list and the controls' actuators (a file's
    ``commands`` chooses among them); never driving, steering or driver assistance."""
    return paths_in(*DEFAULT_COMMANDS, *DOOR_LOCKS)(path)


MQTT_APP = App(
    name="mqtt", summary="the MQTT bridge: the car in the home (Home Assistant, evcc)", partition="comfort",
    main=_main, grants=Grants(read=everything, actuate=_may_actuate),
)


async def forget(config: BridgeConfig, settle_s: float = 1.0) -> list[str]:
    """Remove the car from the home: clear (empty retained payload) Home Assistant's device discovery and every
    retained topic under the bridge's base; the topics cleared. The server's retained messages arrive right after
    subscribing: those seen within ``settle_s`` of quiet are cleared."""
    found = {device_topic(config.discovery_prefix, config.base_topic)}
    client = aiomqtt.Client(config.host, config.port, username=config.username, password=config.password,
                            identifier=f"{config.client_id}-forget", timeout=10,
                            **tls_arguments(config))
    async with client:
        await client.subscribe(f"{config.base_topic}/#", qos=1)
        with contextlib.suppress(TimeoutError):
            while True:
                message = await asyncio.wait_for(anext(client.messages), settle_s)
                if message.retain and message.payload:
                    found.add(str(message.topic))
        for topic in sorted(found):
            await client.publish(topic, b"", qos=1, retain=True)
    return sorted(found)

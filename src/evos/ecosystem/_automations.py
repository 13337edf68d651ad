"""The car's ``automations`` app: the rules of ``evos up --automations FILE`` run on the vehicle-data port and the
home's MQTT server (docs/automations.md). The engine (``_engine``) decides; this shell feeds it the car's values,
the home's messages and the time, carries the firings out in order and logs each (``FiringLog``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiomqtt

from evos.app import App, AppEnv, CarSettings, Grants, paths_in
from evos.broker import VehiclePort
from evos.ecosystem._config import BridgeConfig, bridge_config
from evos.ecosystem._engine import Engine, Firing
from evos.ecosystem._mqtt import stay_connected, tls_arguments
from evos.ecosystem._rules import Notify, Publish, Rules, load_rules
from evos.errors import EvosError, InvalidArgumentError, UnavailableError
from evos.vss import Catalog

log = logging.getLogger("evos.automations")
LOG_NAME = "automations.sqlite"
TICK_S = 1.0
_TRUE, _FALSE = ("true", "on", "1", "yes"), ("false", "off", "0", "no")


class FiringLog:
    """Every firing, in a SQLite file: its row is committed before the actions run and completed after."""

    def __init__(self, path: Path) -> None:
        # used from worker threads (asyncio.to_thread), one statement at a time
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS firings (id INTEGER PRIMARY KEY, time_s REAL NOT NULL, "
                        "rule TEXT NOT NULL, trigger TEXT NOT NULL, actions TEXT NOT NULL, outcomes TEXT)")

    def begin(self, firing: Firing, time_s: float) -> int:
        actions = json.dumps([_described(a) for a in firing.actions])
        with self._lock:
            cursor = self.db.execute("INSERT INTO firings (time_s, rule, trigger, actions) VALUES (?, ?, ?, ?)",
                                     (time_s, firing.rule, firing.trigger, actions))
            return int(cursor.lastrowid or 0)

    def finish(self, row: int, outcomes: list[str]) -> None:
        with self._lock:
            self.db.execute("UPDATE firings SET outcomes = ? WHERE id = ?", (json.dumps(outcomes), row))

    def close(self) -> None:
        with self._lock:
            self.db.close()


def read_log(path: Path, rule: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The firings logged in ``path``, newest first (``rule``: of that rule only)."""
    if not path.is_file():
        raise InvalidArgumentError(f"{path}: no automations log (the car has not run automations here)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        query = "SELECT id, time_s, rule, trigger, actions, outcomes FROM firings"
        rows = db.execute(query + (" WHERE rule = ?" if rule else "") + " ORDER BY id DESC LIMIT ?",
                          (rule, limit) if rule else (limit,)).fetchall()
    finally:
        db.close()
    return [{"id": r[0], "time_s": r[1], "rule": r[2], "trigger": r[3], "actions": json.loads(r[4]),
             "outcomes": json.loads(r[5]) if r[5] is not None else None} for r in rows]


def _described(action: Any) -> dict[str, Any]:
    return {"kind": type(action).__name__.lower(), **{k: (dict(v) if isinstance(v, Mapping) else v)
                                                      for k, v in dataclasses.asdict(action).items()}}


def home_value(kind: str, payload: bytes, key: str | None) -> Any:
    """A home value from an MQTT payload; None when it does not read as ``kind``."""
    try:
        text = payload.decode("utf-8").strip()
        if key is not None:
            found = json.loads(text)
            if not isinstance(found, dict) or key not in found:
                return None
            value = found[key]
            text = str(value).lower() if isinstance(value, bool) else str(value)
        if kind == "string":
            return text
        if kind == "bool":
            lowered = text.lower()
            return True if lowered in _TRUE else False if lowered in _FALSE else None
        number = float(text) if kind == "float" else int(text)
    except (UnicodeDecodeError, ValueError):
        return None
    return None if isinstance(number, float) and not math.isfinite(number) else number


class Automations:
    """The rules of one car on its ``port`` (and the home's MQTT server, when the rules use it)."""

    def __init__(self, port: VehiclePort, rules: Rules, firing_log: FiringLog | None) -> None:
        self.port = port
        self.rules = rules
        self.log = firing_log
        self.engine: Engine | None = None
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._firings: asyncio.Queue[Firing] = asyncio.Queue()
        self.uses_mqtt = bool(rules.home) or any(isinstance(a, Publish | Notify) for r in rules.rules
                                                 for a in r.actions)
        self._topics = {value.topic: name for name, value in rules.home.items()}

    def _fired(self, firings: list[Firing]) -> None:
        for firing in firings:
            self._firings.put_nowait(firing)

    async def run(self, env: AppEnv) -> None:
        stop = env.stop
        tasks = [asyncio.create_task(self._carry_out(), name="automations: actions")]
        try:
            if self.rules.reads:
                async with self.port.subscribe(self.rules.reads) as updates:
                    first = await anext(aiter(updates))
                    self.engine = Engine(self.rules, {p: d.value for p, d in first.items()}, _now())
                    tasks.append(asyncio.create_task(self._follow(updates), name="automations: car"))
                    await self._run(env, tasks)
            else:
                self.engine = Engine(self.rules, {}, _now())
                await self._run(env, tasks)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, env: AppEnv, tasks: list[asyncio.Task[None]]) -> None:
        tasks.append(asyncio.create_task(self._tick(env.stop), name="automations: clock"))
        if self.uses_mqtt and self.rules.mqtt is not None:
            tasks.append(asyncio.create_task(self._home(self.rules.mqtt, env.stop), name="automations: home"))
        env.ready()
        waiting = asyncio.create_task(env.stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, waiting], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            waiting.cancel()

    async def _follow(self, updates: Any) -> None:
        assert self.engine is not None
        async for batch in updates:
            self._fired(self.engine.update(_now(), {p: d.value for p, d in batch.items()}))

    async def _tick(self, stop: asyncio.Event) -> None:
        assert self.engine is not None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)
            self._fired(self.engine.tick(_now()))

    async def _home(self, config: BridgeConfig, stop: asyncio.Event) -> None:
        def client() -> aiomqtt.Client:
            return aiomqtt.Client(config.host, config.port, username=config.username, password=config.password,
                                  identifier=config.client_id, keepalive=config.keepalive_s, timeout=10,
                                  **tls_arguments(config))

        async def session(connected: aiomqtt.Client) -> None:
            for topic in self._topics:
                await connected.subscribe(topic, qos=1)
            self._client = connected
            self._connected.set()
            receiving = asyncio.create_task(self._receive(connected))
            stopping = asyncio.create_task(stop.wait())
            try:
                done, _ = await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                receiving.cancel()
                stopping.cancel()

        def closed() -> None:
            self._client = None
            self._connected.clear()

        await stay_connected(config, client, session, stop, closed)

    async def _receive(self, client: aiomqtt.Client) -> None:
        assert self.engine is not None
        async for message in client.messages:
            name = self._topics.get(str(message.topic))
            if name is None or not isinstance(message.payload, bytes | bytearray):
                continue
            spec = self.rules.home[name]
            value = home_value(spec.type, bytes(message.payload), spec.json)
            if value is None:
                log.warning("automations: home.%s: %r from %s does not read as %s; unknown until it does", name,
                            bytes(message.payload)[:80], message.topic, spec.type)
            self._fired(self.engine.update(_now(), {f"home.{name}": value}))

    async def _carry_out(self) -> None:
        """Each firing in a task of its own: one whose publish waits for the home's server holds back no other."""
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                firing = await self._firings.get()
                # logged in firing order, before its actions run
                row = await asyncio.to_thread(self.log.begin, firing, time.time()) if self.log else 0
                task = asyncio.create_task(self._carry(firing, row), name=f"automations: {firing.rule}")
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _carry(self, firing: Firing, row: int) -> None:
        outcomes = [await self._act(firing, action) for action in firing.actions]
        log.info("automations: %s (%s): %s", firing.rule, firing.trigger, "; ".join(outcomes))
        if self.log:
            await asyncio.to_thread(self.log.finish, row, outcomes)

    async def _home_client(self) -> aiomqtt.Client:
        """The connected client, waiting for it up to the rules' ``publish_wait_s``; UnavailableError after."""
        wait_s = self.rules.publish_wait_s
        try:
            await asyncio.wait_for(self._connected.wait(), wait_s)
        except TimeoutError:
            raise UnavailableError(f"the MQTT server was not connected within {wait_s:g} s") from None
        assert self._client is not None
        return self._client

    async def _act(self, firing: Firing, action: Any) -> str:
        try:
            if isinstance(action, Publish | Notify):
                client = await self._home_client()
                if isinstance(action, Publish):
                    await client.publish(action.topic, action.payload, qos=action.qos, retain=action.retain)
                else:
                    body = {"rule": firing.rule, "message": action.message,
                            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
                    await client.publish(self.rules.notify_topic, json.dumps(body), qos=1)
            else:
                await self.port.actuate(action.targets)
        except (EvosError, aiomqtt.MqttError) as exc:
            return f"{type(action).__name__.lower()} failed: {exc}"
        return f"{type(action).__name__.lower()} done"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def car_server(settings: CarSettings) -> BridgeConfig | None:
    """The MQTT server the car was given (``evos up --mqtt`` / ``--mqtt-config``), as the automations' client."""
    if not settings.bridged:
        return None
    given = bridge_config(Path(settings.mqtt_config) if settings.mqtt_config else None, settings.mqtt)
    return dataclasses.replace(given, client_id="evos-automations")


def rules_of(settings: CarSettings, catalog: Catalog) -> Rules:
    """The rules of ``evos up --automations FILE``, checked against the car's catalog."""
    if settings.automations is None:
        raise InvalidArgumentError("the automations app needs its rules: evos up --automations FILE")
    return load_rules(Path(settings.automations), catalog, car_server(settings))


def _grants(settings: CarSettings, catalog: Catalog) -> Grants:
    """Exactly what the rules read and set."""
    rules = rules_of(settings, catalog)
    return Grants(read=paths_in(*rules.reads), actuate=paths_in(*rules.actuates))


async def _main(port: VehiclePort, env: AppEnv) -> None:
    catalog = Catalog({s.path: s for s in await port.signals()})
    rules = rules_of(env.settings, catalog)
    firing_log = await asyncio.to_thread(FiringLog, env.data_dir / LOG_NAME) if env.data_dir else None
    automations = Automations(port, rules, firing_log)
    env.instance = automations
    try:
        await automations.run(env)
    finally:
        if firing_log is not None:
            await asyncio.to_thread(firing_log.close)


AUTOMATIONS_APP = App(
    name="automations", summary="the owner's rules on the car's and the home's signals (evos up --automations)",
    partition="comfort", main=_main, grants=Grants(), grants_of=_grants,
)

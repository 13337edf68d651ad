"""``evos up``'s supervisor: the broker in this process, every app in a process of its own.

It serves the broker on the car's TCP address (for outside tools) and on a Unix socket for the apps, mints each
app a token of exactly its grants (signed by a key made at start, which only the Unix socket trusts), starts the
apps in order, restarts a crashed or hung one with exponential backoff (0.5 s doubling to 30 s, reset after a
minute of running), and stops them in the reverse order on SIGINT/SIGTERM, comfort apps first, the body after the
cabin (which restores the cabin), the twin last. Comfort apps run at a lower CPU priority (nice), so a loaded cabin
or phone app cannot take the processor from driver assistance. Each app's state (STARTING, RUNNING, FAILED,
STOPPED), restarts, CPU and memory are published as ``Vehicle.Evos.Apps.<App>.*`` (and the broker's own as
``Vehicle.Evos.Apps.Broker.*``).

A child says it is ready, and then that it is alive once a second, on a pipe (``EVOS_NOTIFY_FD``, as systemd's
sd_notify): one silent for ``HANG_AFTER_S`` is killed and restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from evos.app import App, CarSettings
from evos.broker import APP_ISSUER, Broker
from evos.vss import Catalog

log = logging.getLogger("evos.car")
NOTIFY_ENV = "EVOS_NOTIFY_FD"
READY, ALIVE = b"READY\n", b"ALIVE\n"
HANG_AFTER_S = 10.0  # a running app whose loop said nothing this long is stuck: killed and restarted
START_WITHIN_S = 60.0  # an app not ready this long after its start is stuck too (a loaded 2-core machine: < 15 s)
BACKOFF_S = (0.5, 30.0)  # first restart delay, the most it doubles to
STABLE_AFTER_S = 60.0  # an app that ran this long starts again from the first delay
STOP_GRACE_S = 0.5  # each stage of the shutdown waits this long before killing what is left
SAMPLE_EVERY_S = 2.0  # CPU and memory of every process
COMFORT_NICE = 10  # comfort apps yield the CPU to the safety partition and the vehicle's apps
TOKEN_LIFETIME_S = 365 * 24 * 3600.0  # an app's token lives as long as the car runs (its key dies with it)
APPS = "Vehicle.Evos.Apps"
STATES = ("STARTING", "RUNNING", "FAILED", "STOPPED")
# the order apps stop in, by stage: comfort first, then driver assistance, then the hardware the others use
STOP_STAGES = (("mqtt", "companion", "cabin", "media"), ("adas",), ("body",), ("twin",))


def apps_overlay(names: Iterable[str]) -> dict[str, Any]:
    """The signals of the apps' states (``Vehicle.Evos.Apps.<App>.*``) for these app branch names."""
    overlay: dict[str, Any] = {}
    for name in names:
        branch = f"{APPS}.{name}"
        overlay[f"{branch}.State"] = {"type": "sensor", "datatype": "string", "allowed": list(STATES),
                                      "description": "The app's process: STARTING, RUNNING, FAILED (restarting) or "
                                                     "STOPPED."}
        overlay[f"{branch}.Restarts"] = {"type": "sensor", "datatype": "uint32",
                                         "description": "Times the supervisor restarted the app since the car started."}
        overlay[f"{branch}.CpuUsage"] = {"type": "sensor", "datatype": "float", "unit": "percent",
                                         "description": "CPU used by the app's process, percent of one core."}
        overlay[f"{branch}.MemoryUsage"] = {"type": "sensor", "datatype": "float", "unit": "MiB",
                                            "description": "Resident memory of the app's process."}
        overlay[f"{branch}.LastError"] = {"type": "sensor", "datatype": "string",
                                          "description": "Why the app last stopped on its own (empty if it never did)."}
    return overlay


@dataclass(frozen=True)
class AppKeys:
    """The key that signs the apps' tokens (made at start, never written down) and its public half."""

    private: rsa.RSAPrivateKey
    public_pem: str

    @classmethod
    def generate(cls) -> AppKeys:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls(key, pem)

    def token(self, app: App, catalog: Catalog, settings: CarSettings) -> str:
        """A token with exactly ``app``'s grants on ``catalog`` (in a car started with ``settings``)."""
        now = time.time()
        scope = app.grants_for(settings, catalog).scope(catalog)
        return jwt.encode({"sub": f"app:{app.name}", "iss": APP_ISSUER, "aud": "kuksa.val", "iat": int(now),
                           "exp": int(now + TOKEN_LIFETIME_S), "scope": scope},
                          self.private, algorithm="RS256")


def app_socket() -> Path:
    """A Unix socket path in a directory only this user can enter (short: a socket path holds 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix="evos-")) / "broker.sock"


@dataclass
class Child:
    """One app's process as the supervisor keeps it."""

    app: App
    token: str
    process: asyncio.subprocess.Process | None = None
    state: str = "STOPPED"
    restarts: int = 0
    failures_in_a_row: int = 0
    started_at: float = 0.0
    last_error: str = ""
    alive_at: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stats: psutil.Process | None = None
    listener: asyncio.Task[None] | None = None  # follows the notify pipe


class Supervisor:
    """Runs ``apps`` as child processes of the car whose broker is ``broker`` (see the module docstring)."""

    def __init__(self, broker: Broker, apps: Sequence[App], address: str, tokens: dict[str, str],
                 settings: CarSettings, data_dir: Path) -> None:
        self.broker = broker
        self.address = address  # the apps' broker address (unix:/...)
        self.settings = settings
        self.data_dir = data_dir
        self.children = {app.name: Child(app, tokens[app.name]) for app in apps}
        self._stopping = False
        self._self = psutil.Process()
        self._self.cpu_percent(None)

    def _argv(self, app: App) -> list[str]:
        s = self.settings
        argv = [sys.executable, "-m", "evos", "app", "run", app.name, "--address", self.address,
                "--data-dir", str(self.data_dir), "--vehicle", s.vehicle, "--charger-kw", str(s.charger_kw),
                "--ambient", str(s.ambient_c), "--http", s.http]
        if s.plugged_in:
            argv.append("--plugged-in")
        if s.database_url:
            argv += ["--database-url", s.database_url]
        if s.mqtt_config:
            argv += ["--mqtt-config", s.mqtt_config]
        if s.automations:
            argv += ["--automations", s.automations]
        return argv

    async def _start(self, child: Child) -> None:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "EVOS_TOKEN": child.token, NOTIFY_ENV: str(write_fd), "EVOS_SUPERVISED": "1"}
        if self.settings.mqtt:  # in the environment, not the command line: the URL may hold a password
            env["EVOS_MQTT"] = self.settings.mqtt
        nice = COMFORT_NICE if child.app.partition == "comfort" else 0
        child.ready.clear()
        child.state = "STARTING"
        self._publish(child)
        try:
            child.process = await asyncio.create_subprocess_exec(
                *self._argv(child.app), env=env, pass_fds=(write_fd,), stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=(lambda: os.nice(nice)) if nice else None)
        finally:
            os.close(write_fd)
        child.started_at = child.alive_at = time.monotonic()
        child.stats = psutil.Process(child.process.pid)
        child.stats.cpu_percent(None)
        child.listener = asyncio.create_task(self._listen(child, read_fd), name=f"notify {child.app.name}")

    async def _listen(self, child: Child, read_fd: int) -> None:
        """Follow the child's notify pipe: READY once, then ALIVE (until the pipe closes with the process)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                    os.fdopen(read_fd, "rb", buffering=0))
        try:
            while line := await reader.readline():
                child.alive_at = time.monotonic()
                if line == READY:
                    child.state = "RUNNING"
                    child.ready.set()
                    self._publish(child)
        finally:
            transport.close()

    async def _watch(self, child: Child, stop: asyncio.Event) -> None:
        """Keep one app running until ``stop``: restart it (with backoff) when it exits or hangs."""
        while not stop.is_set():
            await self._start(child)
            assert child.process is not None
            code = await self._wait_or_hang(child, stop)
            if stop.is_set() or self._stopping:
                break
            ran_s = time.monotonic() - child.started_at
            child.failures_in_a_row = 1 if ran_s >= STABLE_AFTER_S else child.failures_in_a_row + 1
            child.last_error = (f"exited with code {code}" if code is not None else f"hung ({HANG_AFTER_S:g} s silent)"
                                if child.ready.is_set() else f"not ready within {START_WITHIN_S:g} s")
            child.state = "FAILED"
            child.restarts += 1
            self._publish(child)
            delay_s = min(BACKOFF_S[0] * 2 ** (child.failures_in_a_row - 1), BACKOFF_S[1])
            log.error("app %s %s; restarting in %.1f s", child.app.name, child.last_error, delay_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay_s)

    async def _wait_or_hang(self, child: Child, stop: asyncio.Event) -> int | None:
        """The child's exit code, or None once it hung (then it is killed)."""
        assert child.process is not None
        exited = asyncio.create_task(child.process.wait())
        try:
            while True:
                done, _ = await asyncio.wait({exited}, timeout=1.0)
                if done:
                    return exited.result()
                now = time.monotonic()
                stuck = (now - child.alive_at > HANG_AFTER_S if child.ready.is_set()
                         else now - child.started_at > START_WITHIN_S)
                if not stop.is_set() and stuck:
                    child.process.kill()
                    await exited
                    return None
        finally:
            exited.cancel()

    def _publish(self, child: Child) -> None:
        branch = f"{APPS}.{child.app.signal_name}"
        self.broker.publish({f"{branch}.State": child.state, f"{branch}.Restarts": child.restarts,
                             f"{branch}.LastError": child.last_error})

    def _sample(self) -> None:
        """Publish every process's CPU and memory."""
        values: dict[str, Any] = {}
        processes = [("Broker", self._self)] + [(c.app.signal_name, c.stats) for c in self.children.values()
                                               if c.stats is not None and c.state in ("STARTING", "RUNNING")]
        for name, process in processes:
            with contextlib.suppress(psutil.Error):
                values[f"{APPS}.{name}.CpuUsage"] = round(process.cpu_percent(None), 1)
                values[f"{APPS}.{name}.MemoryUsage"] = round(process.memory_info().rss / 2**20, 1)
        if values:
            self.broker.publish(values)

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        """Start the apps, keep them running until ``stop``, then stop them in order. ``started`` is set once every
        app said it is ready (or a bound of 30 s passed; the apps' states tell which is not)."""
        self.broker.publish({f"{APPS}.Broker.State": "RUNNING", f"{APPS}.Broker.Restarts": 0,
                             f"{APPS}.Broker.LastError": ""})
        watchers = [asyncio.create_task(self._watch(c, stop), name=f"supervise {name}")
                    for name, c in self.children.items()]
        sampler = asyncio.create_task(self._sample_until(stop))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in self.children.values())), 30)
        if started is not None:
            started.set()
        await stop.wait()
        self._stopping = True
        await self._stop_all()
        for task in (*watchers, sampler):
            task.cancel()
        await asyncio.gather(*watchers, sampler, return_exceptions=True)

    async def _sample_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)

    async def _stop_all(self) -> None:
        """SIGTERM the apps stage by stage (``STOP_STAGES``; apps not named there first), killing what outlives its
        stage's grace."""
        named = {name for stage in STOP_STAGES for name in stage}
        stages = [tuple(n for n in self.children if n not in named), *STOP_STAGES]
        for stage in stages:
            running = [c for name in stage if (c := self.children.get(name)) is not None and c.process is not None
                       and c.process.returncode is None]
            for child in running:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            waits = [asyncio.create_task(c.process.wait()) for c in running]  # type: ignore[union-attr]
            if waits:
                await asyncio.wait(waits, timeout=STOP_GRACE_S)
                for child in running:
                    if child.process is not None and child.process.returncode is None:
                        log.warning("app %s did not stop within %.1f s: killed", child.app.name, STOP_GRACE_S)
                        with contextlib.suppress(ProcessLookupError):
                            child.process.kill()
                await asyncio.gather(*waits, return_exceptions=True)
            for child in running:
                child.state = "STOPPED"
                self._publish(child)


def notify(message: bytes) -> None:
    """Tell the supervisor (if this process has one) ``READY`` or ``ALIVE``."""
    fd = os.environ.get(NOTIFY_ENV)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(int(fd), message)

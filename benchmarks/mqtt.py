"""The MQTT bridge (`evos up --mqtt`, the bridge its own process) on Debian's mosquitto: state messages per second it
delivers (what the car changes, and its capacity when the car changes more than it carries), the command round trip
from a home's client, and the bridge's CPU.

    python benchmarks/mqtt.py           # full run (about 2 minutes), figures for docs/benchmarks.md
    python benchmarks/mqtt.py --quick   # about 40 s, to check the benchmark still runs

The car is `evos up` with every app, its bridge on a fresh mosquitto (127.0.0.1, no persistence) that this process
starts. Two bridge configurations: the default (the signals a home wants, at most one message per signal per
second; what the home commands confirmed at once) and everything (`publish: [Vehicle]`, `min_interval_s: 0`: every
change of every signal); the second also on a server with `set_tcp_nodelay true` (mosquitto's default leaves
Nagle's algorithm on: a small message to a client can wait for its delayed ACK, 40 ms on Linux). Phases: parked
(the twin stepping at 10 Hz); for the "everything" bridges, parked with a client changing 100 sensors of an overlay
as fast as it can (kuksa.val.v1 Set, all 100 in each request: more than the bridge carries), the bridge's
capacity; then ACC cruising at 100 km/h in real time. A home's client (aiomqtt, in this process)
subscribes to `evos/car/#` and counts what arrives; while driving it sends commands one at a time — the driver's set
point, 21.0 and 21.5 °C in turn, on `.../Temperature/set` (QoS 1) — and takes the time until the state topic shows
the new value: the home's command, the server, the bridge's checks and audit journal row (SQLite, committed), the
broker, the twin applying it and the bridge publishing the confirmed value. Target (issue 14): p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import grpc
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import val_pb2_grpc as v2_grpc
from rich.console import Console
from rich.table import Table

from car import Car, Probe, cruise_at_100, running_car, usage
from companion import _free_port, percentile
from evos.ecosystem._bridge import NO_DELAY
from evos.ecosystem._topics import state_topic

console = Console()
BASE = "evos/car"
SETPOINT_TOPIC = state_topic(BASE, "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature")
EVERYTHING = "publish: [Vehicle]\nmin_interval_s: 0\n"
# column -> (the bridge's configuration, mosquitto's set_tcp_nodelay)
CONFIGS = {"default": ("", False), "everything": (EVERYTHING, False), "everything, no Nagle": (EVERYTHING, True)}
# the capacity phase: sensors of an overlay that no app provides, changed as fast as one client can (kuksa.val.v1 Set,
# all of them in each request), parked; only the "everything" bridges publish them
FLOOD = [f"Vehicle.Bench.Load.S{i:03d}" for i in range(100)]
FLOOD_OVERLAY = "".join(f"{path}:\n  type: sensor\n  datatype: float\n" for path in FLOOD)
FLOOD_TOPIC = state_topic(BASE, "Vehicle.Bench") + "/"


@contextlib.contextmanager
def mosquitto_server(directory: Path, no_delay: bool) -> Iterator[int]:
    """Debian's mosquitto on 127.0.0.1 and a free port (anonymous, in memory; ``no_delay``: set_tcp_nodelay);
    its port."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    (directory / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                                              f"persistence false\nset_tcp_nodelay {str(no_delay).lower()}\n")
    with (directory / "mosquitto.log").open("ab") as log:
        proc = subprocess.Popen([binary, "-c", str(directory / "mosquitto.conf")], stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Home:
    """A home's client: messages counted (not retained ones), and the latest state per topic."""

    client: aiomqtt.Client
    received: int = 0
    flooded: int = 0
    latest: dict[str, bytes] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def listen(self) -> None:
        async for message in self.client.messages:
            if not message.retain:
                self.received += 1
                if str(message.topic).startswith(FLOOD_TOPIC):
                    self.flooded += 1
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            self.latest[str(message.topic)] = payload
            if str(message.topic) == SETPOINT_TOPIC:
                self.changed.set()

    async def rate(self, seconds: float) -> float:
        """Messages per second over ``seconds``."""
        first, start = self.received, time.perf_counter()
        await asyncio.sleep(seconds)
        return (self.received - first) / (time.perf_counter() - start)

    async def round_trips(self, count: int) -> list[float]:
        """Seconds from sending a set point to seeing it on its state topic, ``count`` commands one at a time."""
        took = []
        for i in range(count):
            wanted = b"21.5" if self.latest.get(SETPOINT_TOPIC) != b"21.5" else b"21.0"
            self.changed.clear()
            start = time.perf_counter()
            await self.client.publish(SETPOINT_TOPIC + "/set", wanted, qos=1)
            async with asyncio.timeout(5):
                while self.latest.get(SETPOINT_TOPIC) != wanted:
                    await self.changed.wait()
                    self.changed.clear()
            took.append(time.perf_counter() - start)
            await asyncio.sleep(0.02 if i % 2 else 0.01)  # one at a time, as a home sends them
        return sorted(took)


@contextlib.asynccontextmanager
async def home_on(port: int) -> AsyncIterator[Home]:
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-home", socket_options=NO_DELAY) as client:
        home = Home(client)
        await client.subscribe(f"{BASE}/#", qos=0)
        task = asyncio.create_task(home.listen())
        try:
            yield home
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def flood(address: str, seconds: float) -> tuple[int, dict[str, float]]:
    """Change every FLOOD sensor, one request for all of them after another, for ``seconds``; the changes sent and
    the last value of each sensor."""
    sent = 0
    value = 0.0
    deadline = time.perf_counter() + seconds
    async with grpc.aio.insecure_channel(address) as channel:
        stub = v1_grpc.VALStub(channel)
        while time.perf_counter() < deadline:
            value = float(sent % 100_000)
            updates = [v1.EntryUpdate(entry=t1.DataEntry(path=path, value=t1.Datapoint(float=value + i)),
                                      fields=[t1.FIELD_VALUE]) for i, path in enumerate(FLOOD)]
            reply = await stub.Set(v1.SetRequest(updates=updates))
            if reply.errors or reply.HasField("error"):
                raise RuntimeError(f"the flood's Set was refused: {reply}")
            sent += len(FLOOD)
    return sent, {path: value + i for i, path in enumerate(FLOOD)} if sent else {}


async def capacity(car: Car, home: Home, seconds: float) -> dict[str, float]:
    """What the bridge delivers when the car changes more than it can carry: offered and delivered per second."""
    first = home.flooded
    start = time.perf_counter()
    (sent, last), (cpu, all_cpu) = await asyncio.gather(flood(car.address, seconds),
                                                        asyncio.to_thread(bridge_cpu, car, seconds))
    elapsed_s = time.perf_counter() - start
    await asyncio.sleep(1.0)  # what the bridge still had in hand
    delivered = (home.flooded - first) / (time.perf_counter() - start)
    # the bridge may skip values it cannot keep up with, never the last: the home ends with the car's state
    final = sum(1 for path, value in last.items() if float(home.latest.get(state_topic(BASE, path), "nan")) == value)
    return {"offered": sent / elapsed_s, "delivered": delivered, "final": final, "flood_cpu": cpu,
            "flood_all_cpu": all_cpu}


def bridge_cpu(car: Car, seconds: float) -> tuple[float, float]:
    """(the bridge's CPU %, all processes' CPU %) of one core over ``seconds``."""
    figures = usage(car, seconds)
    return figures.each["mqtt"][0], figures.cpu_pct


async def measure(bridge: str, port: int, tmp: Path, phase_s: float, commands: int) -> dict[str, object]:
    config_file = tmp / "bridge.yaml"
    config_file.write_text(f"server: mqtt://127.0.0.1:{port}\n" + bridge)
    overlay = tmp / "bench.vspec"
    overlay.write_text(FLOOD_OVERLAY)
    async with (running_car(0, "--mqtt-config", str(config_file), "--overlay", str(overlay)) as car,
                home_on(port) as home):
        await asyncio.sleep(3.0)  # the apps settle, the retained states arrive
        parked_rate, (parked_cpu, _) = await asyncio.gather(home.rate(phase_s),
                                                            asyncio.to_thread(bridge_cpu, car, phase_s))
        flooded = await capacity(car, home, phase_s) if bridge else {}
        async with grpc.aio.insecure_channel(car.address) as channel:
            stub = v2_grpc.VALStub(channel)
            await cruise_at_100(stub, Probe(stub))
            rate, (cpu, all_cpu) = await asyncio.gather(home.rate(phase_s),
                                                        asyncio.to_thread(bridge_cpu, car, phase_s))
            took = await home.round_trips(commands)
    return {**flooded, "parked_rate": parked_rate, "parked_cpu": parked_cpu, "rate": rate, "cpu": cpu,
            "all_cpu": all_cpu,
            "p50": percentile(took, 0.5), "p99": percentile(took, 0.99), "max": took[-1] * 1e3,
            "topics": len(home.latest)}


async def main(quick: bool) -> None:
    phase_s = 5.0 if quick else 20.0
    commands = 20 if quick else 300
    console.print(f"evos MQTT bridge benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}"
                  f"{' (quick)' if quick else ''}: `evos up --mqtt-config`, Debian's mosquitto")
    results = {}
    for column, (bridge, no_delay) in CONFIGS.items():
        with tempfile.TemporaryDirectory(prefix="evos-bench-mqtt-") as tmp, mosquitto_server(Path(tmp),
                                                                                             no_delay) as port:
            results[column] = await measure(bridge, port, Path(tmp), phase_s, commands)
    table = Table(title="evos MQTT bridge")
    for column in ("measure", *CONFIGS, "target (issue 14)"):
        table.add_column(column)

    def row(title: str, cell: str, target: str = "", flood: bool = False) -> None:
        """One measure of every configuration (``flood``: of the capacity phase, which the default has not)."""
        table.add_row(title, *(cell.format(**figures) if "offered" in figures or not flood else "—"
                               for figures in results.values()), target)

    row("topics the home sees", "{topics}")
    row(f"parked: messages/s to the home ({phase_s:.0f} s)", "{parked_rate:,.1f}")
    row("  the bridge's CPU", "{parked_cpu:.1f} % of a core")
    row(f"capacity, parked: changes/s offered to the broker ({len(FLOOD)} sensors, {phase_s:.0f} s)",
        "{offered:,.0f}", flood=True)
    row("  messages/s the home receives of them", "{delivered:,.0f}", flood=True)
    row("  sensors whose last value the home has, 1 s after", f"{{final}} of {len(FLOOD)}", flood=True)
    row("  the bridge's CPU (all the car's processes)", "{flood_cpu:.0f} % ({flood_all_cpu:.0f} %) of a core",
        flood=True)
    row(f"ACC at 100 km/h: messages/s to the home ({phase_s:.0f} s)", "{rate:,.1f}")
    row("  the bridge's CPU (all the car's processes)", "{cpu:.1f} % ({all_cpu:.0f} %) of a core")
    row(f"command round trip while driving ({commands}, one at a time)",
        "p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max:.1f} ms", "p99 ≤ 50 ms")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter phases and fewer commands, to check it runs")
    asyncio.run(main(parser.parse_args().quick))

"""Companion benchmark: state reads per second with their latency, and the command round trip, against `evos up`.

    python benchmarks/companion.py            # full run (about a minute), figures for docs/benchmarks.md
    python benchmarks/companion.py --quick    # a few seconds, to check the benchmark still runs

The car is `evos up` in its own process (broker, twin, body hardware, cabin, companion on free ports), with its
default settings. This process is the load generator: keep-alive HTTP/1.1 connections on uvloop, written on raw
asyncio streams so that the client is not what is measured (httpx tops out near 1,500 requests/s on one core here).

Reads: `GET /api/v1/vehicle/state` in a closed loop on `--connections` connections. Commands: one at a time, each
`POST /api/v1/vehicle/commands/{name}` returning once the car reports the new value (the HTTP command, the broker
actuation, the twin or the body hardware applying it, the confirmed value read back, and the audit entry committed
to SQLite). The API limits each token to 10 requests/s (bursts of 30), as a phone or app would stay under, so the
load is spread over many third-party app tokens, created in the car's database before it starts; every request is
still authenticated and rate limited. Targets (issue 5): ≥ 2,000 reads/s, command round trip p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from evos.companion import CompanionConfig
from evos.companion._accounts import add_user, create_app_token
from evos.companion._db import Database

console = Console()
STATE = "/api/v1/vehicle/state"
TOKENS_PER_CONNECTION = 128  # 8 connections then stay under the limit of 10 requests/s per token up to 10,240/s
COMMAND_TOKENS = 16
# (command, args) pairs sent in turn: the twin applies the first two, the body hardware the others
COMMANDS = (("set_temperature", {"temperature_c": 21.0}), ("set_temperature", {"temperature_c": 21.5}),
            ("seat_heating", {"seat": "row1_driver", "level_pct": 30}),
            ("seat_heating", {"seat": "row1_driver", "level_pct": 60}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_tokens(data_dir: Path, count: int) -> list[str]:
    """An owner and ``count`` app tokens (vehicle data and commands) in the car's database, made before it runs."""
    config = CompanionConfig.for_data_dir(data_dir)
    now_s = time.time()

    def create(session: Session) -> list[str]:
        user_id = add_user(session, "owner", "benchmark password", now_s).id
        return [create_app_token(session, user_id, f"bench{i}", ["vehicle_data", "vehicle_cmds"], now_s,
                                 config)["access_token"] for i in range(count)]

    db = Database(config.database_url)
    try:
        return db.call(create)
    finally:
        db.close()


class Connection:
    """One keep-alive HTTP/1.1 connection (responses must carry Content-Length, as uvicorn's JSON ones do)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int, source: str | None = None) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0) if source else None)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, f"{host}:{port}")

    async def request(self, method: str, path: str, token: str, body: bytes = b"",
                      content_type: str = "application/json") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        status_line, *headers = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = next(int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:"))
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Car:
    host: str
    port: int
    tokens: list[str]


@asynccontextmanager
async def running_car(tokens: int) -> AsyncIterator[Car]:
    """`evos up` in a subprocess on free ports with a fresh data directory holding ``tokens`` app tokens."""
    with tempfile.TemporaryDirectory(prefix="evos-bench-") as tmp, tempfile.TemporaryFile() as log:
        data_dir = Path(tmp)
        made = app_tokens(data_dir, tokens)
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "evos", "up", "--data-dir", str(data_dir), "--address",
            f"127.0.0.1:{_free_port()}", "--http", f"127.0.0.1:{port}",
            stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while True:  # until the companion answers
                try:
                    conn = await Connection.open("127.0.0.1", port)
                    status, _ = await conn.request("GET", STATE, made[0])
                    conn.close()
                    if status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or proc.returncode is not None:
                    log.seek(0)
                    raise RuntimeError(f"evos up did not serve the companion:\n{log.read().decode(errors='replace')}")
                await asyncio.sleep(0.2)
            yield Car("127.0.0.1", port, made)
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)


def percentile(sorted_s: list[float], q: float) -> float:
    return sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))] * 1e3


async def reads(car: Car, connections: int, duration_s: float) -> tuple[float, float, float, int]:
    """(reads/s, p50 ms, p99 ms, non-200 answers) of state reads in a closed loop on ``connections`` connections."""
    conns = [await Connection.open(car.host, car.port) for _ in range(connections)]
    latencies: list[float] = []
    errors = 0

    async def worker(conn: Connection, tokens: Iterator[str], end: float) -> None:
        nonlocal errors
        while (start := time.perf_counter()) < end:
            status, _ = await conn.request("GET", STATE, next(tokens))
            latencies.append(time.perf_counter() - start)
            errors += status != 200

    per = TOKENS_PER_CONNECTION
    shares = [car.tokens[i * per:(i + 1) * per] for i in range(connections)]
    for conn, tokens in zip(conns, shares, strict=True):  # warm up: each token once
        for token in tokens:
            await conn.request("GET", STATE, token)
    latencies.clear()
    start = time.perf_counter()
    await asyncio.gather(*(worker(c, itertools.cycle(t), start + duration_s) for c, t in zip(conns, shares,
                                                                                            strict=True)))
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    latencies.sort()
    return len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99), errors


async def round_trips(car: Car, count: int) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, max ms, answers not 'completed') of ``count`` commands sent one after another."""
    conn = await Connection.open(car.host, car.port)
    tokens = itertools.cycle(car.tokens[-COMMAND_TOKENS:])  # not used by the reads: their buckets are full
    latencies: list[float] = []
    failed = 0
    for (name, args), _ in zip(itertools.cycle(COMMANDS), range(count), strict=False):
        body = json.dumps({"args": args}).encode()
        start = time.perf_counter()
        status, answer = await conn.request("POST", f"/api/v1/vehicle/commands/{name}", next(tokens), body)
        latencies.append(time.perf_counter() - start)
        failed += status != 200 or json.loads(answer)["result"] != "completed"
        await asyncio.sleep(0.01)  # a phone sends commands one at a time, not back to back
    conn.close()
    latencies.sort()
    return percentile(latencies, 0.5), percentile(latencies, 0.99), latencies[-1] * 1e3, failed


async def main(quick: bool, connections: int) -> None:
    duration_s = 1.0 if quick else 10.0
    commands = 20 if quick else 500
    console.print(f"evos companion benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}"
                  f"{' (quick)' if quick else ''}: `evos up` in a subprocess, {connections} keep-alive connections")
    rows: list[tuple[str, str, str]] = []
    async with running_car(connections * TOKENS_PER_CONNECTION + COMMAND_TOKENS) as car:
        rate, p50, p99, errors = await reads(car, connections, duration_s)
        rows.append((f"GET {STATE}, {connections} connections", f"{rate:,.0f} reads/s", "≥ 2,000 reads/s"))
        rows.append(("  its latency", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms", ""))
        if errors:
            rows.append(("  answers other than 200", f"{errors}", "0"))
        p50, p99, worst, failed = await round_trips(car, commands)
        rows.append((f"command round trip ({commands} commands, one at a time)",
                     f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms", "p99 ≤ 50 ms"))
        if failed:
            rows.append(("  commands not completed", f"{failed}", "0"))
    table = Table(title="evos companion")
    for column in ("measure", "evos", "target (issue 5)"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, to check the benchmark runs")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections reading the state")
    options = parser.parse_args()
    import uvloop  # the same event loop as `evos up`

    uvloop.run(main(options.quick, options.connections))

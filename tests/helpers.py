"""Helpers shared by the tests (importable thanks to ``pythonpath = ["tests"]``)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_file(relative: str) -> Path:
    """A file of ../shared, or skip the test when the checkout has none (a user's clone)."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is only in the developers' and CI's checkouts)")
    return path


def collect(into: list[dict[str, Any]]) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """An in-process provider's handler that accepts every actuation and keeps its batches in ``into``."""

    async def handler(batch: dict[str, Any]) -> None:
        into.append(batch)

    return handler


async def accept(_batch: dict[str, Any]) -> None:
    """An in-process provider's handler that accepts every actuation and does nothing."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(predicate: Callable[[], object], timeout_s: float = 2.0) -> None:
    """Wait (bounded) until ``predicate()`` is true; fail the test if it never becomes true."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not reached within {timeout_s} s")
        await asyncio.sleep(0.01)


# `evos up` in tests serves its web app on an ephemeral port unless a test names one (never 8000); every process
# runs its event loop in asyncio's debug mode, which logs each callback slower than 100 ms (`stop` fails on one)
ENV = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "EVOS_HTTP_ADDRESS": "127.0.0.1:0", "EVOS_LOOP_DEBUG": "1"}
SLOW_CALLBACK = re.compile(r"slow callback: .* used (\d+\.\d+) s of CPU")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """Debian's Chromium for browser tests. Skips when it is not installed (``apt install chromium``), except where
    ``EVOS_REQUIRE_BROWSER=1`` (CI) makes a missing browser a failure."""
    if not CHROMIUM.exists():
        message = f"browser tests need Debian's chromium at {CHROMIUM} (apt install chromium)"
        if os.environ.get("EVOS_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return str(CHROMIUM)


def evos(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evos", *args], capture_output=True, text=True,
                          timeout=timeout_s, env=ENV)


def wait_listening(proc: subprocess.Popen[str], address: str) -> None:
    """Wait (bounded) until the broker at ``address`` answers and, for a car (``evos up``), every app runs."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early: {proc.stdout.read() if proc.stdout else ''}")
        if evos("get", "Vehicle.Speed", "--address", address).returncode == 0:
            break
        time.sleep(0.2)
    else:
        pytest.fail("server did not come up")
    while time.monotonic() < deadline:
        apps = evos("apps", "--json", "--address", address)
        if apps.returncode != 0:  # a broker alone: no apps to wait for
            return
        states = {name: app.get("State") for name, app in json.loads(apps.stdout).items()}
        if all(state in ("RUNNING", None) for state in states.values()):  # None: an app `--apps` left out
            return
        if proc.poll() is not None:
            pytest.fail(f"the car exited early: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.3)
    pytest.fail(f"the car's apps did not all start: {states}")


def app_process(car_pid: int, name: str) -> Any:
    """The process (``psutil.Process``) of app ``name`` (``evos app run NAME``) under the car ``evos up`` with
    process id ``car_pid``."""
    import psutil

    found = [p for p in psutil.Process(car_pid).children() if p.cmdline()[3:6] == ["app", "run", name]]
    assert len(found) == 1, [p.cmdline() for p in psutil.Process(car_pid).children()]
    return found[0]


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "evos", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV)


def stop(proc: subprocess.Popen[str]) -> str:
    """Stop a server started with ``start`` (SIGTERM); its output. Fails the test if any of its event loops held a
    callback longer than 100 ms (asyncio's debug mode logged it)."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    slow = SLOW_CALLBACK.findall(out)
    if slow:
        worst_s = max(map(float, slow))
        pytest.fail(f"an event loop of the car ran a callback for {worst_s:.3f} s of CPU (> 0.1 s):\n{out}")
    return out


# A minimal valid vehicle file (TOML).
GOOD_VEHICLE_TOML = """
name = "Test"
[body]
curb_mass_kg = 1800
drag_coefficient = 0.25
frontal_area_m2 = 2.3
[[motors]]
peak_power_kw = 150
peak_torque_nm = 300
[battery]
chemistry = "NMC"
gross_kwh = 60
"""

EPA_HEADER = ("Represented Test Veh Make,Represented Test Veh Model,Test Vehicle ID,Test Veh Configuration #,"
          "Vehicle Type,Drive System Code,Rated Horsepower,# of Gears,N/V Ratio,Equivalent Test Weight (lbs.),"
          "Target Coef A (lbf),Target Coef B (lbf/mph),Target Coef C (lbf/mph**2),Set Coef A (lbf),"
          "Set Coef B (lbf/mph),Set Coef C (lbf/mph**2),udds_kwh_100mi,hwy_kwh_100mi")
# Three rows of the EPA 2022 Test Car List (public domain), as in ../shared/data/epa.
EPA_ROWS = [
    'Tesla,Model Y Long Range AWD,YD222-231326,0,Truck,A,390,1,108.0,4750,34.260,0.31910,0.014200,'
    '7.72,-0.03870,0.013560,20.45,22.16',
    'KIA,EV6,NKMXV00.0NU1,0,Car,R,225,1,126.3,4500,23.313,0.11939,0.022206,5.2,0.1,0.02,17.10,22.70',
    'Ford,Mach-E RWD,MMA00001,0,Truck,R,266,1,109.4,4750,31.430,0.12790,0.021520,7.0,0.05,0.02,21.41,24.62',
]

"""`evos up`'s supervisor on real processes: each app's token holds only its grants on the Unix socket, a killed
app is restarted and says why it stopped, and SIGTERM takes the whole car down with no process left behind."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import grpc
import psutil
import pytest
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from helpers import app_process, evos, free_port, start, stop, wait_listening

LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
SHADE = "Vehicle.Cabin.Sunroof.Shade.IsOpen"
CRUISE = "Vehicle.ADAS.CruiseControl.IsActive"


def apps(address: str) -> dict[str, dict[str, object]]:
    result = evos("apps", "--json", "--address", address)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def actuate(socket_address: str, token: str | None, path: str, value: t2.Value) -> grpc.StatusCode:
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(socket_address) as channel:
        try:
            v2_grpc.VALStub(channel).Actuate(v2.ActuateRequest(signal_id=t2.SignalID(path=path), value=value),
                                              metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def eventually(predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not reached within {timeout_s} s")
        time.sleep(0.2)


def test_tokens_restarts_and_stop_on_real_processes(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    proc = start("up", "--apps", "twin,body,cabin", "--address", address, "--data-dir", str(tmp_path / "car"))
    try:
        wait_listening(proc, address)
        car = psutil.Process(proc.pid)
        cabin = app_process(proc.pid, "cabin")
        socket_address = cabin.cmdline()[cabin.cmdline().index("--address") + 1]
        assert socket_address.startswith("unix:")
        token = cabin.environ()["EVOS_TOKEN"]
        # the cabin's own token, on the apps' socket: the shade yes, the locks and driver assistance no
        assert actuate(socket_address, token, SHADE, t2.Value(bool=True)) == grpc.StatusCode.OK
        assert actuate(socket_address, token, LOCK, t2.Value(bool=False)) == grpc.StatusCode.PERMISSION_DENIED
        assert actuate(socket_address, token, CRUISE, t2.Value(bool=True)) == grpc.StatusCode.PERMISSION_DENIED
        assert actuate(socket_address, None, SHADE, t2.Value(bool=False)) == grpc.StatusCode.UNAUTHENTICATED
        assert (Path(socket_address.removeprefix("unix:")).parent.stat().st_mode & 0o077) == 0  # only this user

        os.kill(cabin.pid, signal.SIGKILL)  # a crash
        eventually(lambda: apps(address)["Cabin"]["Restarts"] == 1 and apps(address)["Cabin"]["State"] == "RUNNING")
        state = apps(address)["Cabin"]
        assert "-9" in str(state["LastError"]), state
        assert app_process(proc.pid, "cabin").pid != cabin.pid
        others = {name: (app["State"], app["Restarts"]) for name, app in apps(address).items()
                  if name not in ("Cabin", "Broker")}
        assert others == {"Twin": ("RUNNING", 0), "Body": ("RUNNING", 0), "Adas": (None, None),
                          "Media": (None, None), "Companion": (None, None)}  # the others ran on; unchosen: not run
        everyone = [car, *car.children(recursive=True)]
    finally:
        out = stop(proc)
    _, alive = psutil.wait_procs(everyone, timeout=5)
    assert alive == [], [p.cmdline() for p in alive]
    assert "app cabin exited with code -9; restarting" in out, out

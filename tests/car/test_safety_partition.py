"""The safety partition on real processes: while ACC cruises, a loaded centre screen, a crashing app and a
subscriber that does not read change neither ACC's state nor its control loop (no period missed)."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from helpers import app_process, free_port, start, stop, wait_listening

CC = "Vehicle.ADAS.CruiseControl"
ADAS = "Vehicle.Evos.ADAS"
SET_SPEED_KMH = 40.0


def read(stub: v2_grpc.VALStub, *paths: str) -> list[object]:
    answer = stub.GetValues(v2.GetValuesRequest(signal_ids=[t2.SignalID(path=p) for p in paths]), timeout=10)
    return [getattr(dp.value, dp.value.WhichOneof("typed_value")) if dp.value.WhichOneof("typed_value") else None
            for dp in answer.data_points]


def test_load_a_crash_and_a_stuck_subscriber_leave_acc_alone(tmp_path: Path) -> None:
    address, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proc = start("up", "--apps", "twin,adas,cabin,companion", "--address", address, "--http", http,
                 "--data-dir", str(tmp_path / "car"))
    done = threading.Event()
    try:
        wait_listening(proc, address)
        with grpc.insecure_channel(address) as channel:
            stub = v2_grpc.VALStub(channel)
            for path, value in ((f"{CC}.IsEnabled", t2.Value(bool=True)),
                                (f"{CC}.SpeedSet", t2.Value(float=SET_SPEED_KMH)),
                                (f"{CC}.IsActive", t2.Value(bool=True))):
                stub.Actuate(v2.ActuateRequest(signal_id=t2.SignalID(path=path), value=value), timeout=10)
            deadline = time.monotonic() + 30
            while float(read(stub, "Vehicle.Speed")[0] or 0) < SET_SPEED_KMH - 1:  # type: ignore[arg-type]
                assert time.monotonic() < deadline, read(stub, "Vehicle.Speed", f"{ADAS}.State")
                time.sleep(0.3)
            misses_before = read(stub, f"{ADAS}.DeadlineMisses")[0]

            # the load: the centre screen's forecast asked back to back, a subscriber of every signal that never
            # reads, and the cabin killed -9
            forecasts = [0]
            failures: list[str] = []

            def ask_forecasts() -> None:
                while not done.is_set():
                    try:
                        with urllib.request.urlopen(f"http://{http}/cabin/api/forecast/camp", timeout=30) as answer:
                            forecasts[0] += answer.status == 200
                    except OSError as exc:  # once the car stops, the last request fails: that is not a finding
                        if not done.is_set():
                            failures.append(repr(exc))
                        return

            askers = [threading.Thread(target=ask_forecasts, daemon=True) for _ in range(2)]
            for asker in askers:
                asker.start()
            paths = [m.path for m in stub.ListMetadata(v2.ListMetadataRequest(root="Vehicle.**")).metadata]
            stuck = stub.Subscribe(v2.SubscribeRequest(signal_paths=paths))  # never read past its first message
            next(stuck)
            cabin = app_process(proc.pid, "cabin")
            os.kill(cabin.pid, signal.SIGKILL)

            states, speeds = set(), []
            end = time.monotonic() + 12
            while time.monotonic() < end:
                state, speed = read(stub, f"{ADAS}.State", "Vehicle.Speed")
                states.add(state)
                speeds.append(speed)
                time.sleep(0.25)
            misses_after, p99_ms = read(stub, f"{ADAS}.DeadlineMisses", f"{ADAS}.ControlPeriodP99")
            stuck.cancel()
    finally:
        done.set()
        out = stop(proc)
    for asker in askers:
        asker.join(timeout=30)
    assert forecasts[0] >= 2 and not failures, (forecasts, failures)  # the screen's forecasts loaded the car
    assert "app cabin exited with code -9" in out
    assert states == {"ACTIVE"}
    assert min(speeds) == pytest.approx(SET_SPEED_KMH, abs=1.0) and max(speeds) == pytest.approx(SET_SPEED_KMH, abs=1.0)
    assert misses_after == misses_before, f"ACC missed control periods under load (p99 {p99_ms} ms)"

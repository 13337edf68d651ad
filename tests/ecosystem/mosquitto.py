"""Debian's mosquitto for the bridge's tests (``apt install mosquitto``): one server per test on 127.0.0.1 and a
free port, its own config and persistence file in a temporary directory, stopped at the end (killed after a
bound). Without the binary the tests skip, except where ``EVOS_REQUIRE_MQTT=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import free_port

MOSQUITTO = "/usr/sbin/mosquitto"
START_TIMEOUT_S = 10.0


def mosquitto_binary() -> str:
    found = MOSQUITTO if Path(MOSQUITTO).exists() else shutil.which("mosquitto")
    if found is None:
        message = "the MQTT tests need Debian's mosquitto (apt install mosquitto)"
        if os.environ.get("EVOS_REQUIRE_MQTT") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


class Mosquitto:
    """A mosquitto server in ``directory``: ``start``, ``stop`` (and start again: its persistence file keeps the
    retained messages and the persistent sessions with their queued messages)."""

    def __init__(self, directory: Path, password_file: Path | None = None) -> None:
        self.binary = mosquitto_binary()
        self.directory = directory
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        lines = [f"listener {self.port} 127.0.0.1", "persistence true", f"persistence_location {directory}/",
                 "autosave_interval 1", "max_queued_messages 10000",
                 f"user {getpass.getuser()}"]  # as root, mosquitto would become user mosquitto, who cannot write here
        lines += [f"password_file {password_file}", "allow_anonymous false"] if password_file else [
            "allow_anonymous true"]
        (directory / "mosquitto.conf").write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.directory / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.directory / "mosquitto.conf")],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"mosquitto did not start on port {self.port}: {(self.directory / 'mosquitto.log').read_text()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@contextlib.contextmanager
def mosquitto(directory: Path, password_file: Path | None = None) -> Iterator[Mosquitto]:
    server = Mosquitto(directory, password_file)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fresh_server(tmp_path: Path) -> Iterator[Mosquitto]:
    """What a test's MQTT server fixture yields: a fresh server in ``tmp_path / "mqtt"``."""
    (tmp_path / "mqtt").mkdir()
    with mosquitto(tmp_path / "mqtt") as running:
        yield running

"""What the attack tests share: a fresh broker process per attack (an attack that gets through leaves its broker
busy), and reading the numbers a refusal states."""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator

import grpc
import pytest

from helpers import free_port, start, stop, wait_listening


@contextlib.contextmanager
def broker_channel(busy_with: str) -> Iterator[grpc.Channel]:
    """A fresh ``evos broker`` on 127.0.0.1 and a channel to it. Killed when the test fails; else stopped, and a
    broker that does not stop within 15 s of SIGTERM fails the test (its event loop is still busy with
    ``busy_with``)."""
    address = f"127.0.0.1:{free_port()}"
    proc = start("broker", "--address", address)
    try:
        wait_listening(proc, address)
        with grpc.insecure_channel(address) as channel:
            yield channel
    except BaseException:
        proc.kill()
        proc.communicate(timeout=15)
        raise
    try:
        stop(proc)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=15)
        pytest.fail(f"the broker did not stop within 15 s of SIGTERM: its event loop was still busy with {busy_with}")


def numbers(text: str) -> list[int]:
    """The whole numbers a message states (``10,000`` is one)."""
    return [int(re.sub(r"[,_ ]", "", n)) for n in re.findall(r"\d[\d,_]*", text)]

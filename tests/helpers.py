"""Helpers shared by the tests (importable thanks to ``pythonpath = ["tests"]``)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_file(relative: str) -> Path:
    """A file of ../shared, or skip the test when the checkout has none (a user's clone)."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is only in the developers' and CI's checkouts)")
    return path


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

"""Fixtures of the companion tests: a running car, an HTTP client to it, the owner's session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from companion.car import Car, bearer, sign_in, start_car


@pytest.fixture
async def car(tmp_path: Path) -> AsyncIterator[Car]:
    car = await start_car(tmp_path)
    try:
        yield car
    finally:
        await car.shutdown()


@pytest.fixture
async def client(car: Car) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=car.url, timeout=10) as http:
        yield http


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> dict[str, str]:
    """Authorization headers of the owner's session."""
    return bearer((await sign_in(client))["access_token"])

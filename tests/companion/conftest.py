"""Fixtures of the companion tests: a running car, an HTTP client to it, the owner's session, and its database:
SQLite by default, or a fresh database on a throw-away PostgreSQL server for tests marked ``BOTH_DATABASES``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from companion.car import Car, bearer, sign_in, start_car
from companion.postgres import PostgresServer, start_postgres
from evos.companion import CompanionConfig


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (started only if a test asks for it), stopped at the end."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The companion's database URL: SQLite in ``tmp_path``, or (param "postgresql") a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.new_database()
    return CompanionConfig.for_data_dir(tmp_path).database_url


@pytest.fixture
async def car(tmp_path: Path, database_url: str) -> AsyncIterator[Car]:
    car = await start_car(tmp_path, database_url=database_url)
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

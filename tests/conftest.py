"""Shared fixtures: the default catalog, a broker, and a real gRPC server on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from evos.broker import Broker, BrokerServer, ServerConfig
from evos.vss import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def broker(catalog: Catalog) -> Broker:
    return Broker(catalog)


@pytest.fixture
async def server(broker: Broker) -> AsyncIterator[BrokerServer]:
    srv = BrokerServer(broker, ServerConfig(address="127.0.0.1:0"))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop(0)

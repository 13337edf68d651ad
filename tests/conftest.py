"""Shared fixtures: the default catalog, a broker, and a real gRPC server on a free port; and the watch on every
event loop the tests run: asyncio's debug mode, and a test fails when a callback used over 100 ms of CPU."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from evos._console import SLOW_CALLBACK, quiet_debug_mode, watch_callbacks
from evos.broker import Broker, BrokerServer, ServerConfig
from evos.vss import Catalog, load_catalog

# pytest-asyncio runs every test's loop in debug mode (asyncio_debug in pyproject.toml); loops the tests make
# themselves read this: debug mode logs every callback slower than loop.slow_callback_duration (0.1 s)
os.environ["PYTHONASYNCIODEBUG"] = "1"


class _SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        # the test's own coroutine and its fixtures' (minting tokens, stepping a model by hand, an HTTP client) are
        # not the car's loop at work; the car's apps, servers and streams run in tasks of their own
        harness = " coro=<test_" in message or "pytest_asyncio" in message
        if message.startswith(SLOW_CALLBACK) and not harness:
            self.seen.append(message)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test during which an event loop ran a callback for more than 100 ms of CPU (the car's rule for its
    loops: no blocking work on them); asyncio's debug mode also warns of callbacks over 100 ms of wall time."""
    quiet_debug_mode()
    watch_callbacks()
    handler = _SlowCallbacks()
    logger = logging.getLogger("evos.loop")
    logger.addHandler(handler)
    try:
        outcome = yield
    finally:
        logger.removeHandler(handler)
    if handler.seen and outcome.excinfo is None:
        pytest.fail("an event loop ran a callback for more than 100 ms of CPU:\n" + "\n".join(handler.seen[:5]))



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

"""What the MQTT bridge and the automations share about their connection: aiomqtt's TLS arguments, and staying
connected (aiomqtt does not reconnect: this does, with backoff from 0.5 s doubling to 30 s)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from evos.ecosystem._config import BridgeConfig

log = logging.getLogger("evos.ecosystem")
BACKOFF_S = (0.5, 30.0)


def tls_arguments(config: BridgeConfig) -> dict[str, Any]:
    """aiomqtt's TLS arguments for ``config`` (none for mqtt://)."""
    if not config.tls:
        return {}
    if config.ca_file:
        return {"tls_params": aiomqtt.TLSParameters(ca_certs=str(config.ca_file))}
    return {"tls_context": ssl.create_default_context()}


async def stay_connected(config: BridgeConfig, client: Callable[[], aiomqtt.Client],
                         session: Callable[[aiomqtt.Client], Awaitable[None]], stop: asyncio.Event,
                         closed: Callable[[], None] = lambda: None) -> None:
    """Run ``session`` on a connected ``client()`` until ``stop``: ``session`` returns once ``stop`` is set, or
    raises MqttError when the connection fails, and then a new client connects after a backoff. ``closed`` runs
    after each connection ends."""
    delay_s = BACKOFF_S[0]
    while not stop.is_set():
        try:
            async with client() as connected:
                log.info("mqtt: connected to %s as %s", config.server, config.client_id)
                delay_s = BACKOFF_S[0]
                await session(connected)
                return
        except aiomqtt.MqttError as exc:
            log.warning("mqtt: %s: %s; connecting again in %.1f s", config.server, exc, delay_s)
        finally:
            closed()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay_s)
        delay_s = min(delay_s * 2, BACKOFF_S[1])

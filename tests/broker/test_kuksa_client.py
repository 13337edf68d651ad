"""The real kuksa-client SDK (``kuksa_client.grpc.aio.VSSClient``) and its command line against evos."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

import pytest
from kuksa_client.grpc import Datapoint, DataType, EntryType, VSSClientError
from kuksa_client.grpc.aio import VSSClient

from evos.broker import Broker, BrokerServer, RemotePort
from helpers import collect, eventually

SPEED = "Vehicle.Speed"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


async def test_get_set_and_not_available(server: BrokerServer, broker: Broker) -> None:
    async with VSSClient("127.0.0.1", server.port) as client:
        assert await client.get_current_values([SPEED]) == {SPEED: None}
        await client.set_current_values({SPEED: Datapoint(88.5), SOC: Datapoint(64.0)})
        values = await client.get_current_values([SPEED, SOC])
        assert (values[SPEED].value, values[SOC].value) == (88.5, 64.0)
        assert values[SPEED].timestamp is not None
    assert broker.get(SPEED).value == 88.5


async def test_metadata(server: BrokerServer) -> None:
    async with VSSClient("127.0.0.1", server.port) as client:
        meta = await client.get_metadata([SPEED, SOC, "Vehicle.LowVoltageSystemState"])
    assert (meta[SPEED].data_type, meta[SPEED].entry_type, meta[SPEED].unit) == (
        DataType.FLOAT, EntryType.SENSOR, "km/h")
    assert (meta[SOC].value_restriction.min, meta[SOC].value_restriction.max) == (0.0, 100.0)
    assert "ACC" in meta["Vehicle.LowVoltageSystemState"].value_restriction.allowed_values


async def test_wildcard_get_expands(server: BrokerServer) -> None:
    async with VSSClient("127.0.0.1", server.port) as client:
        values = await client.get_current_values(["Vehicle.Cabin.Sunroof.*"])
    assert set(values) == {"Vehicle.Cabin.Sunroof.Position", "Vehicle.Cabin.Sunroof.Switch"}


async def test_subscribe_current_values(server: BrokerServer, broker: Broker) -> None:
    broker.publish({SPEED: 1.0})
    async with VSSClient("127.0.0.1", server.port) as client:
        updates = client.subscribe_current_values([SPEED, SOC])
        first = await anext(updates)
        assert first[SPEED].value == 1.0 and first[SOC].value is None
        broker.publish({SPEED: 2.0, SOC: 55.0})
        second = await asyncio.wait_for(anext(updates), 2)
        assert (second[SPEED].value, second[SOC].value) == (2.0, 55.0)
        await updates.aclose()


async def test_subscribe_branch_is_expanded_by_the_sdk(server: BrokerServer, broker: Broker) -> None:
    async with VSSClient("127.0.0.1", server.port) as client:
        updates = client.subscribe_current_values(["Vehicle.Powertrain.TractionBattery.StateOfCharge"])
        first = await anext(updates)
        assert SOC in first and len(first) == 3
        broker.publish({SOC: 12.0})
        assert (await asyncio.wait_for(anext(updates), 2))[SOC].value == 12.0
        await updates.aclose()


async def test_set_target_reaches_an_evos_provider(server: BrokerServer, broker: Broker) -> None:
    received: list[dict] = []
    broker.provide([DOOR, TEMP], collect(received))
    async with VSSClient("127.0.0.1", server.port) as client:
        await client.set_target_values({TEMP: Datapoint(21.5)})
        targets = await client.get_target_values([TEMP])
    assert received == [{TEMP: 21.5}]
    assert targets[TEMP].value == 21.5


async def test_sdk_provider_receives_actuation_from_evos_client(server: BrokerServer) -> None:
    async with VSSClient("127.0.0.1", server.port) as sdk, RemotePort(server.address) as evos_client:
        requests = sdk.subscribe_target_values([DOOR])
        first = asyncio.ensure_future(anext(requests))
        for _ in range(100):  # wait until the SDK's claim is registered
            try:
                await evos_client.actuate({DOOR: True})
                break
            except Exception:
                await asyncio.sleep(0.02)
        update = await asyncio.wait_for(first, 2)
        assert update[DOOR].value is True
        await requests.aclose()


async def test_evos_provider_stream_publishes_and_serves(server: BrokerServer, broker: Broker) -> None:
    got: list[dict] = []
    async with RemotePort(server.address) as client:
        await client.provide([TEMP], got.append)
        await client.publish({SPEED: 33.0, SOC: 70.0})
        async with VSSClient("127.0.0.1", server.port) as sdk:
            await eventually(lambda: broker.get(SOC).available)
            assert (await sdk.get_current_values([SOC]))[SOC].value == 70.0
            await sdk.set_target_values({TEMP: Datapoint(19.0)})
        await eventually(lambda: got)
    assert got == [{TEMP: 19.0}]
    await eventually(lambda: broker.provider_of(TEMP) is None)  # the claim ends with the stream


async def test_sdk_errors(server: BrokerServer, broker: Broker) -> None:
    async with VSSClient("127.0.0.1", server.port) as client:
        with pytest.raises(VSSClientError) as info:
            await client.get_current_values(["Vehicle.Nope"])
        assert info.value.error["code"] == 404
        with pytest.raises(VSSClientError) as info:
            await client.set_current_values({SOC: Datapoint(120.0)})
        assert "above the maximum 100" in str(info.value.error)
        with pytest.raises(VSSClientError) as info:
            await client.set_target_values({DOOR: Datapoint(True)})
        assert info.value.errors[0]["error"]["code"] == 503
    assert not broker.get(SOC).available


def _kuksa_cli() -> str:
    exe = shutil.which("kuksa-client") or str(Path(sys.executable).parent / "kuksa-client")
    if not Path(exe).exists():
        pytest.fail("kuksa-client command line not installed")
    return exe


async def test_kuksa_client_command_line(server: BrokerServer, broker: Broker, tmp_path: Path) -> None:
    broker.publish({SOC: 77.0})
    script = (
        f"setValue {SPEED} 42\ngetValue {SPEED}\ngetValue {SOC}\ngetMetaData {SPEED}\n"
        f"setValue {SOC} 101\ngetValue Vehicle.Sped\nquit\n"
    )
    proc = await asyncio.create_subprocess_exec(
        _kuksa_cli(), f"grpc://127.0.0.1:{server.port}", cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(script.encode()), 60)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.decode())
    assert '"value": 42.0' in text
    assert '"value": 77.0' in text
    assert '"unit": "km/h"' in text
    assert "above the maximum 100" in text
    assert '"code": 404' in text and "did you mean Vehicle.Speed" in text
    assert broker.get(SPEED).value == 42.0
    assert broker.get(SOC).value == 77.0

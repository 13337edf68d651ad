"""The in-process broker: values, batches, subscriptions, slow subscribers, providers."""

from __future__ import annotations

import asyncio

import pytest

from evos.broker import NOT_AVAILABLE, Broker, BrokerConfig
from evos.errors import (
    AlreadyProvidedError,
    InvalidArgumentError,
    InvalidValueError,
    NoProviderError,
    UnknownSignalError,
)
from evos.vss import Catalog
from helpers import accept, collect

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


def test_never_set_reads_not_available(broker: Broker) -> None:
    assert broker.get(SPEED) is NOT_AVAILABLE
    assert not broker.get(SPEED).available
    assert broker.get_target(DOOR) is NOT_AVAILABLE


def test_set_get_with_timestamp(broker: Broker) -> None:
    broker.publish({SPEED: 0.0}, timestamp_s=1000.5)
    dp = broker.get(SPEED)
    assert (dp.value, dp.timestamp_s, dp.available) == (0.0, 1000.5, True)  # 0 is a value, not "missing"


def test_catalog_defaults_are_initial_values(broker: Broker, catalog: Catalog) -> None:
    with_default = [s for s in catalog if s.default is not None]
    assert with_default
    for signal in with_default:
        assert broker.get(signal.path).value == signal.default
    assert broker.get("Vehicle.Cabin.Sunroof.Position").value is None


def test_set_many_is_all_or_nothing(broker: Broker) -> None:
    broker.publish({SPEED: 10.0, SOC: 50.0})
    with pytest.raises(InvalidValueError, match=r"StateOfCharge\.Current: value 150"):
        broker.publish({SPEED: 20.0, SOC: 150})
    with pytest.raises(UnknownSignalError):
        broker.publish({SPEED: 20.0, "Vehicle.Nope": 1})
    assert broker.get_many([SPEED, SOC]) == {SPEED: broker.get(SPEED), SOC: broker.get(SOC)}
    assert (broker.get(SPEED).value, broker.get(SOC).value) == (10.0, 50.0)


async def test_subscription_gets_current_then_consistent_batches(broker: Broker) -> None:
    broker.publish({SPEED: 5.0})
    with broker.subscribe(["Vehicle.Speed", "Vehicle.Powertrain.TractionBattery.StateOfCharge"]) as sub:
        first = await sub.get()
        assert first[SPEED].value == 5.0
        assert first[SOC] is NOT_AVAILABLE
        assert len(first) == 1 + 3  # Speed and the three StateOfCharge leaves
        broker.publish({SPEED: 6.0, SOC: 40.0, TEMP: 21.0})  # TEMP is not subscribed
        batch = await sub.get()
        assert {p: dp.value for p, dp in batch.items()} == {SPEED: 6.0, SOC: 40.0}
        assert batch[SPEED].timestamp_s == batch[SOC].timestamp_s


async def test_wildcard_subscription(broker: Broker) -> None:
    with broker.subscribe(["Vehicle.Cabin.**"]) as sub:
        first = await sub.get()
        assert DOOR in first and TEMP in first and SPEED not in first
        broker.publish({SPEED: 1.0})
        broker.publish({TEMP: 22.0})
        assert (await sub.get()) == {TEMP: broker.get(TEMP)}


async def test_slow_subscriber_is_conflated_and_never_stalls_others() -> None:
    from evos.vss import load_catalog

    broker = Broker(load_catalog(), BrokerConfig(queue_batches=4))
    slow = broker.subscribe([SPEED])
    fast = broker.subscribe([SPEED])
    await slow.get()
    await fast.get()
    received = []
    for i in range(100):
        broker.publish({SPEED: float(i)})
        received.append((await fast.get())[SPEED].value)  # the fast one sees every value
    assert received == [float(i) for i in range(100)]
    assert slow.pending() == 4
    assert slow.conflated == 96
    last = None
    while (batch := slow.get_nowait()) is not None:
        last = batch
    assert last is not None and last[SPEED].value == 99.0  # the latest value always arrives


async def test_closed_subscription_ends_iteration(broker: Broker) -> None:
    sub = broker.subscribe([SPEED])
    sub.close()
    got = [batch async for batch in sub]
    assert len(got) == 1  # the queued initial batch, then the end
    broker.publish({SPEED: 3.0})  # no longer delivered, no error


async def test_actuate_needs_a_provider(broker: Broker) -> None:
    with pytest.raises(NoProviderError, match=f"{DOOR}: no provider"):
        await broker.actuate({DOOR: True})
    assert broker.get_target(DOOR) is NOT_AVAILABLE


async def test_provider_receives_its_batch(broker: Broker) -> None:
    doors: list[dict] = []
    climate: list[dict] = []
    broker.provide([DOOR], collect(doors))
    broker.provide([TEMP], collect(climate))
    await broker.actuate({DOOR: True, TEMP: 21.5})
    assert doors == [{DOOR: True}]
    assert climate == [{TEMP: 21.5}]
    assert broker.get_target(TEMP).value == 21.5
    assert broker.get(TEMP) is NOT_AVAILABLE  # actuation asks; the provider reports the actual value


async def test_batch_actuate_all_or_nothing(broker: Broker) -> None:
    got: list[dict] = []
    broker.provide([DOOR], collect(got))
    with pytest.raises(NoProviderError):
        await broker.actuate({DOOR: True, TEMP: 21.0})
    with pytest.raises(InvalidValueError):
        await broker.actuate({DOOR: "yes"})
    assert got == []
    assert broker.get_target(DOOR) is NOT_AVAILABLE


async def test_only_actuators_take_targets(broker: Broker) -> None:
    with pytest.raises(InvalidArgumentError, match="is a sensor, not an actuator"):
        await broker.actuate({SPEED: 1.0})
    with pytest.raises(InvalidArgumentError, match="is an attribute, not an actuator"):
        await broker.actuate({"Vehicle.VehicleIdentification.VIN": "X"})
    with pytest.raises(InvalidArgumentError, match="not an actuator"):
        broker.provide([SPEED], print)


async def test_second_provider_refused_until_first_leaves(broker: Broker) -> None:
    first = broker.provide([DOOR], accept)
    with pytest.raises(AlreadyProvidedError, match=DOOR):
        broker.provide([DOOR, TEMP], accept)
    assert broker.provider_of(TEMP) is None  # the refused claim took nothing
    first.close()
    with pytest.raises(NoProviderError):
        await broker.actuate({DOOR: True})
    broker.provide([DOOR], accept)


async def test_target_subscriber_acts_as_v1_provider(broker: Broker) -> None:
    with broker.subscribe([DOOR], field="target"), pytest.raises(NoProviderError):  # a watcher is no provider
        await broker.actuate({DOOR: True})
    with broker.subscribe([DOOR], field="target", provides=True) as sub:
        assert (await sub.get())[DOOR] is NOT_AVAILABLE
        await broker.actuate({DOOR: True})
        assert (await asyncio.wait_for(sub.get(), 1))[DOOR].value is True


def test_config_checked() -> None:
    with pytest.raises(ValueError, match="queue_batches"):
        BrokerConfig(queue_batches=0)

"""Attack: unbounded requests to the broker's gRPC API (issue 12, item 11).

One gRPC message may list any number of signals: ``GetValues`` with 1,000,000 signal ids, ``BatchActuate`` with
100,000 actuations, a kuksa.val.v1 ``Get`` with 100,000 entries. A broker that resolves, checks and answers every
one of them spends seconds of its event loop's CPU and hundreds of megabytes on one call from one client, while the
car's apps wait; a few such calls in parallel exhaust the machine.

A fixed broker refuses such a request promptly (every call here has a gRPC deadline of 5 s), as a whole, with
INVALID_ARGUMENT naming the cap (a number below the request's count), and keeps serving; a request of ordinary size
(100 signal ids) still works. The streaming calls that take lists (v2 ``Subscribe``/``SubscribeById``, v1
``Subscribe``, v1 ``Set``) are held to the same cap.

Each test runs its own ``evos broker`` process on 127.0.0.1 (an attack that gets through may leave its broker busy,
and must not slow the next test), stopped at the end; stopping also fails the test when the broker's event loop ran
a callback for over 100 ms of CPU (``helpers.stop``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from security.attacks import broker_channel, numbers

DEADLINE_S = 5.0
SPEED = "Vehicle.Speed"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"  # an actuator
NAMES_A_CAP = re.compile(r"at most|limit|maximum|max\b|cap\b|exceed|too many|more than", re.IGNORECASE)


# --- the broker under attack ------------------------------------------------------------------------------------


class Stubs:
    def __init__(self, channel: grpc.Channel) -> None:
        self.v1 = v1_grpc.VALStub(channel)
        self.v2 = v2_grpc.VALStub(channel)

    def id_of(self, path: str) -> int:
        return int(self.v2.ListMetadata(v2.ListMetadataRequest(root=path), timeout=DEADLINE_S).metadata[0].id)


@contextlib.contextmanager
def running_broker() -> Iterator[Stubs]:
    """A fresh ``evos broker`` on 127.0.0.1 and its stubs; stopped (or killed) at the end."""
    with broker_channel("the request") as channel:
        yield Stubs(channel)


def assert_refused_naming_the_cap(call: Callable[[], Any], what: str, count: int) -> None:
    """``call`` fails at once with INVALID_ARGUMENT whose message states a cap below ``count``."""
    try:
        result = call()
    except grpc.RpcError as refused:
        code, details = refused.code(), refused.details() or ""
    else:
        pytest.fail(f"{what} with {count:,} items was served: {str(result)[:200]}")
    assert code != grpc.StatusCode.DEADLINE_EXCEEDED, \
        f"{what} with {count:,} items was not refused within {DEADLINE_S} s: the broker processed it"
    assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{what} with {count:,} items: {code} {details[:300]}"
    assert NAMES_A_CAP.search(details) and any(0 < n < count for n in numbers(details)), \
        f"{what}: the refusal does not name the cap: {details[:300]}"


def assert_still_serving(stubs: Stubs) -> None:
    try:
        stubs.v2.GetServerInfo(v2.GetServerInfoRequest(), timeout=DEADLINE_S)
        stubs.v2.GetValues(v2.GetValuesRequest(signal_ids=[t2.SignalID(path=SPEED)]), timeout=DEADLINE_S)
    except grpc.RpcError as error:
        pytest.fail(f"after the attack the broker no longer answers within {DEADLINE_S} s: {error.code()} "
                    f"{error.details()}")


def first_of(stream: Any) -> Any:
    try:
        return next(stream)
    finally:
        stream.cancel()


# --- the attacks --------------------------------------------------------------------------------------------------


def test_get_values_with_a_million_ids_is_refused_naming_the_cap() -> None:
    with running_broker() as stubs:
        speed = stubs.id_of(SPEED)
        request = v2.GetValuesRequest(signal_ids=[t2.SignalID(id=speed)] * 1_000_000)
        assert_refused_naming_the_cap(lambda: stubs.v2.GetValues(request, timeout=DEADLINE_S),
                                      "v2 GetValues", 1_000_000)
        assert_still_serving(stubs)


def test_batch_actuate_with_100000_entries_is_refused_naming_the_cap() -> None:
    one = v2.ActuateRequest(signal_id=t2.SignalID(path=DOOR), value=t2.Value(bool=True))
    with running_broker() as stubs:
        request = v2.BatchActuateRequest(actuate_requests=[one] * 100_000)
        assert_refused_naming_the_cap(lambda: stubs.v2.BatchActuate(request, timeout=DEADLINE_S),
                                      "v2 BatchActuate", 100_000)
        # a batch of ordinary size gets past the cap to the usual answer: no provider serves the door here
        with pytest.raises(grpc.RpcError) as small:
            stubs.v2.BatchActuate(v2.BatchActuateRequest(actuate_requests=[one] * 2), timeout=DEADLINE_S)
        assert small.value.code() == grpc.StatusCode.UNAVAILABLE, small.value.details()
        assert_still_serving(stubs)


def test_v1_get_with_100000_entries_is_refused_naming_the_cap() -> None:
    entry = v1.EntryRequest(path=SPEED, view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE])
    with running_broker() as stubs:
        request = v1.GetRequest(entries=[entry] * 100_000)
        assert_refused_naming_the_cap(lambda: stubs.v1.Get(request, timeout=DEADLINE_S), "v1 Get", 100_000)
        assert_still_serving(stubs)


def test_the_streaming_calls_are_capped_too() -> None:
    """The other calls that take a list: v2 Subscribe (paths), SubscribeById, v1 Subscribe and v1 Set."""
    count = 100_000
    with running_broker() as stubs:
        speed = stubs.id_of(SPEED)
        calls: dict[str, Callable[[], Any]] = {
            "v2 Subscribe": lambda: first_of(stubs.v2.Subscribe(
                v2.SubscribeRequest(signal_paths=[SPEED] * count), timeout=DEADLINE_S)),
            "v2 SubscribeById": lambda: first_of(stubs.v2.SubscribeById(
                v2.SubscribeByIdRequest(signal_ids=[speed] * count), timeout=DEADLINE_S)),
            "v1 Subscribe": lambda: first_of(stubs.v1.Subscribe(v1.SubscribeRequest(entries=[v1.SubscribeEntry(
                path=SPEED, view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE])] * count), timeout=DEADLINE_S)),
            "v1 Set": lambda: stubs.v1.Set(v1.SetRequest(updates=[v1.EntryUpdate(
                entry=t1.DataEntry(path=SPEED, value=t1.Datapoint(float=1.0)), fields=[t1.FIELD_VALUE])] * count),
                timeout=DEADLINE_S),
        }
        for what, call in calls.items():
            assert_refused_naming_the_cap(call, what, count)
        assert_still_serving(stubs)


def test_requests_of_ordinary_size_still_work() -> None:
    with running_broker() as stubs:
        signals = [m for m in stubs.v2.ListMetadata(v2.ListMetadataRequest(), timeout=DEADLINE_S).metadata
                   if m.entry_type in (t2.ENTRY_TYPE_SENSOR, t2.ENTRY_TYPE_ACTUATOR, t2.ENTRY_TYPE_ATTRIBUTE)][:100]
        assert len(signals) == 100
        response = stubs.v2.GetValues(v2.GetValuesRequest(signal_ids=[t2.SignalID(id=m.id) for m in signals]),
                                      timeout=DEADLINE_S)
        assert len(response.data_points) == 100

        by_path = stubs.v2.GetValues(v2.GetValuesRequest(signal_ids=[t2.SignalID(path=m.path) for m in signals]),
                                     timeout=DEADLINE_S)
        assert len(by_path.data_points) == 100

        got = stubs.v1.Get(v1.GetRequest(entries=[
            v1.EntryRequest(path=m.path, view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE]) for m in signals]),
            timeout=DEADLINE_S)
        assert [entry.path for entry in got.entries] == [m.path for m in signals] and not got.errors

        first = first_of(stubs.v2.SubscribeById(v2.SubscribeByIdRequest(signal_ids=[m.id for m in signals]),
                                                timeout=DEADLINE_S))
        assert set(first.entries) == {m.id for m in signals}

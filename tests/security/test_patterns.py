"""Attack: pattern ReDoS on the broker's gRPC API (issue 12, item 10).

Any client that reaches the broker's port can send a path pattern (ListMetadata's root, a kuksa.val.v1 Get or
Subscribe path): with no token when authorization is off, the default, and with any token that may read when it is
on. A pattern made of many ``**`` segments that matches nothing (``Vehicle.**.**.**.**.**.**.**.**.IsOpen.Nope``)
makes a backtracking matcher try every way of splitting every path of the catalog among the wildcards: the time grows
exponentially with the number of ``**``, and while the broker's event loop matches, it serves nobody: the twin, the
body, ADAS and the phone all stall. A very long pattern costs in proportion to its length on every path.

A fixed broker answers such a pattern at once, even from four clients at the same time (every call here has a gRPC
deadline of 2 s, so a slow match fails as DEADLINE_EXCEEDED): with nothing found (an empty answer or NOT_FOUND), or
INVALID_ARGUMENT naming the pattern as too long or as having too many wildcards; it keeps serving other clients right
after; a pattern over 1,000 characters is INVALID_ARGUMENT naming the limit; and ordinary patterns still match what
they did. (kuksa.val.v2 Subscribe takes signal paths, not patterns: a pattern there is an unknown signal.)

Each test runs its own ``evos broker`` process on 127.0.0.1 (an attack that gets through leaves its broker busy, and
must not slow the next test), stopped at the end; stopping also fails the test when the broker's event loop ran a
callback for over 100 ms of CPU (``helpers.stop``), which is what a slow match is.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import grpc
import pytest
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from security.attacks import broker_channel, numbers

DEADLINE_S = 2.0

# patterns that match nothing, but only after a backtracking matcher has tried every split of every path
REDOS = {
    "8 x **": "Vehicle." + "**." * 8 + "IsOpen.Nope",
    "12 x **": "Vehicle." + "**." * 12 + "IsOpen.Nope",
}
# the attack comes from a few clients at once (each call with its own 2 s deadline): a broker that matches in time
# linear in the pattern answers them all at once; one that backtracks makes the later ones wait for the earlier
ATTACKERS = 4

DOOR_PATTERN = "Vehicle.Cabin.Door.*.*.IsOpen"
DOORS = {f"Vehicle.Cabin.Door.{row}.{side}.IsOpen" for row in ("Row1", "Row2")
         for side in ("DriverSide", "PassengerSide")}

# a pattern of 1,509 characters with one wildcard (and no digits of its own, so a number in the answer is the limit)
LONG_PATTERN = "Vehicle.*." + ".".join(["Long"] * 300)

# how a refusal names the pattern as too long or too wild
NAMES_THE_PATTERN_LIMIT = re.compile(
    r"wildcard|too many|too long|longer than|at most|limit|exceed|maximum|complex", re.IGNORECASE)
NAMES_A_LENGTH_LIMIT = re.compile(r"too long|longer than|at most|limit|exceed|maximum|characters", re.IGNORECASE)


# --- the broker under attack ------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_broker() -> Iterator[tuple[v1_grpc.VALStub, v2_grpc.VALStub]]:
    """A fresh ``evos broker`` on 127.0.0.1 and its v1 and v2 stubs; stopped (or killed) at the end."""
    with broker_channel("the pattern") as channel:
        yield v1_grpc.VALStub(channel), v2_grpc.VALStub(channel)


def names_length_limit(message: str, length: int) -> bool:
    """The message says the pattern is too long and states a limit (a number below the pattern's length)."""
    return bool(NAMES_A_LENGTH_LIMIT.search(message)) and any(0 < n < length for n in numbers(message))


def slow(rpc: str, pattern: str) -> str:
    return (f"{rpc}({pattern!r}) was not answered within {DEADLINE_S} s (DEADLINE_EXCEEDED): the broker's pattern "
            "matching backtracks (ReDoS)")


def assert_refused_or_nothing(error: grpc.RpcError, rpc: str, pattern: str) -> None:
    """A gRPC error that is an acceptable answer to a pathological pattern: NOT_FOUND, or INVALID_ARGUMENT naming the
    pattern's limit; DEADLINE_EXCEEDED is the attack getting through."""
    code, details = error.code(), error.details() or ""
    assert code != grpc.StatusCode.DEADLINE_EXCEEDED, slow(rpc, pattern)
    assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), f"{rpc}: {code} {details}"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert NAMES_THE_PATTERN_LIMIT.search(details), f"{rpc}: INVALID_ARGUMENT not naming the limit: {details}"


def assert_stream_refused(stream: Iterator[object], rpc: str, pattern: str) -> None:
    """A subscription to a pathological pattern ends with an acceptable error (``assert_refused_or_nothing``) before
    its first message: a pattern that matches nothing streams nothing."""
    try:
        first = next(stream)
    except grpc.RpcError as error:
        assert_refused_or_nothing(error, rpc, pattern)
    else:
        pytest.fail(f"{rpc}({pattern!r}) matches nothing, yet streams: {first}")


def assert_still_serving(s1: v1_grpc.VALStub, s2: v2_grpc.VALStub) -> None:
    """Right after the attack, the broker answers other calls at once, and ordinary patterns still match."""
    try:
        s2.GetServerInfo(v2.GetServerInfoRequest(), timeout=DEADLINE_S)
        doors = s2.ListMetadata(v2.ListMetadataRequest(root=DOOR_PATTERN), timeout=DEADLINE_S).metadata
    except grpc.RpcError as error:
        pytest.fail(f"after the attack the broker no longer answers within {DEADLINE_S} s: {error.code()} "
                    f"{error.details()} (its event loop is still matching the pattern)")
    assert {m.path for m in doors} == DOORS


def v1_metadata_get(path: str) -> v1.GetRequest:
    return v1.GetRequest(entries=[v1.EntryRequest(path=path, view=t1.VIEW_METADATA, fields=[t1.FIELD_METADATA])])


# --- the attacks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", REDOS.values(), ids=REDOS.keys())
def test_list_metadata_with_a_redos_pattern_is_answered_at_once(pattern: str) -> None:
    with running_broker() as (s1, s2):
        calls = [s2.ListMetadata.future(v2.ListMetadataRequest(root=pattern), timeout=DEADLINE_S)
                 for _ in range(ATTACKERS)]
        for call in calls:
            try:
                response = call.result()
            except grpc.RpcError as error:
                assert_refused_or_nothing(error, "ListMetadata", pattern)
            else:
                assert not response.metadata, f"{pattern!r} cannot match anything, yet: {response.metadata[:3]}"
        assert_still_serving(s1, s2)


@pytest.mark.parametrize("pattern", REDOS.values(), ids=REDOS.keys())
def test_v1_get_with_a_redos_pattern_is_answered_at_once(pattern: str) -> None:
    with running_broker() as (s1, s2):
        calls = [s1.Get.future(v1_metadata_get(pattern), timeout=DEADLINE_S) for _ in range(ATTACKERS)]
        for call in calls:
            try:
                response = call.result()
            except grpc.RpcError as error:
                assert_refused_or_nothing(error, "v1 Get", pattern)
                continue
            # kuksa.val.v1 reports a bad entry in the answer: an error per path, no entries
            assert not response.entries, f"{pattern!r} cannot match anything, yet: {response.entries[:3]}"
            errors = [e.error for e in response.errors] + ([response.error] if response.error.code else [])
            assert errors, f"v1 Get({pattern!r}): neither entries nor an error"
            for entry_error in errors:
                assert entry_error.code in (400, 404), f"v1 Get({pattern!r}): {entry_error}"
                if entry_error.code == 400:
                    assert NAMES_THE_PATTERN_LIMIT.search(entry_error.message), \
                        f"400 not naming the limit: {entry_error}"
        assert_still_serving(s1, s2)


@pytest.mark.parametrize("pattern", REDOS.values(), ids=REDOS.keys())
def test_v1_subscribe_with_a_redos_pattern_is_answered_at_once(pattern: str) -> None:
    request = v1.SubscribeRequest(entries=[
        v1.SubscribeEntry(path=pattern, view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE])])
    with running_broker() as (s1, s2):
        streams = [s1.Subscribe(request, timeout=DEADLINE_S) for _ in range(ATTACKERS)]
        try:
            for stream in streams:
                assert_stream_refused(stream, "v1 Subscribe", pattern)
        finally:
            for stream in streams:
                stream.cancel()
        assert_still_serving(s1, s2)


def test_v2_subscribe_with_a_redos_pattern_is_answered_at_once() -> None:
    """kuksa.val.v2 Subscribe takes signal paths, not patterns: a pattern is an unknown signal, answered at once."""
    pattern = REDOS["12 x **"]
    with running_broker() as (s1, s2):
        stream = s2.Subscribe(v2.SubscribeRequest(signal_paths=[pattern]), timeout=DEADLINE_S)
        try:
            assert_stream_refused(stream, "v2 Subscribe", pattern)
        finally:
            stream.cancel()
        assert_still_serving(s1, s2)


def test_a_pattern_over_1000_characters_is_refused_naming_the_limit() -> None:
    assert len(LONG_PATTERN) > 1500
    with running_broker() as (s1, s2):
        with pytest.raises(grpc.RpcError) as refused:
            s2.ListMetadata(v2.ListMetadataRequest(root=LONG_PATTERN), timeout=DEADLINE_S)
        code, details = refused.value.code(), refused.value.details() or ""
        assert code != grpc.StatusCode.DEADLINE_EXCEEDED, slow("ListMetadata", LONG_PATTERN[:40] + "...")
        assert code == grpc.StatusCode.INVALID_ARGUMENT, f"ListMetadata of a {len(LONG_PATTERN)}-character " \
            f"pattern: {code} {details[:300]}"
        assert names_length_limit(details, len(LONG_PATTERN)), f"the refusal does not name the limit: {details}"

        # v1: refused as a call, or as the entry's error (kuksa.val.v1's way), naming the limit
        try:
            response = s1.Get(v1_metadata_get(LONG_PATTERN), timeout=DEADLINE_S)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            assert code == grpc.StatusCode.INVALID_ARGUMENT, f"v1 Get of a long pattern: {code} {details[:300]}"
            assert names_length_limit(details, len(LONG_PATTERN)), f"the refusal does not name the limit: {details}"
        else:
            assert not response.entries
            errors = [e.error for e in response.errors]
            assert errors, f"v1 Get of a long pattern: no error: {response.error}"
            assert all(e.code == 400 and names_length_limit(e.message, len(LONG_PATTERN)) for e in errors), \
                f"v1 Get of a long pattern is not refused as too long (400 naming the limit): {errors[0]}"
        assert_still_serving(s1, s2)


def test_ordinary_patterns_still_match() -> None:
    """The fix does not just break patterns: one-segment and any-depth wildcards match what they always did."""
    with running_broker() as (s1, s2):
        doors = s2.ListMetadata(v2.ListMetadataRequest(root=DOOR_PATTERN), timeout=DEADLINE_S).metadata
        assert {m.path for m in doors} == DOORS
        deep = {m.path for m in s2.ListMetadata(v2.ListMetadataRequest(root="Vehicle.**.IsOpen"),
                                                timeout=DEADLINE_S).metadata}
        assert deep >= DOORS and all(path.endswith(".IsOpen") for path in deep)
        sunroof = s2.ListMetadata(v2.ListMetadataRequest(root="Vehicle.Cabin.Sunroof.*"), timeout=DEADLINE_S)
        assert {m.path for m in sunroof.metadata} == {"Vehicle.Cabin.Sunroof.Position", "Vehicle.Cabin.Sunroof.Switch"}

        v1_doors = s1.Get(v1_metadata_get(DOOR_PATTERN), timeout=DEADLINE_S)
        assert {entry.path for entry in v1_doors.entries} == DOORS and not v1_doors.errors

        stream = s1.Subscribe(v1.SubscribeRequest(entries=[
            v1.SubscribeEntry(path=DOOR_PATTERN, view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE])]),
            timeout=DEADLINE_S)
        try:
            first = next(stream)
        finally:
            stream.cancel()
        assert {update.entry.path for update in first.updates} == DOORS

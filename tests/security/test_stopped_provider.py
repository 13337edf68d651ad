"""Attack: a frozen provider holds the car (issue 12, item 4).

A provider is a process of its own holding a kuksa.val.v2 ``OpenProviderStream`` on which it has claimed actuators
(``provide_actuation_request``); while it holds the claim no other provider may serve them. Freeze that process with
SIGSTOP (a hung app, a debugger, a process the kernel stopped) and its TCP connection stays open, but it reads
nothing and answers nothing, not even HTTP/2 pings. A broker that waits for the connection to close holds the claim
for ever: every actuation of those actuators goes into a stream nobody reads, the caller is never told, and no
replacement provider can take over (ALREADY_EXISTS).

A fixed broker notices by gRPC keepalive (docs/security.md: a ping every 10 s, a peer that does not answer within
5 s is dropped) and releases the frozen provider's claims: within 20 s of the SIGSTOP an Actuate of its actuator fails
with UNAVAILABLE "no provider" naming the path, no Actuate hangs meanwhile, the broker keeps serving other clients
(PublishValue and GetValue from another client answer promptly the whole time), and a new provider can claim the
actuator and receives its actuations. Before the freeze the test shows that actuations reach the live provider, so
"no provider" cannot come from a claim that never held; and the frozen process is checked to be alive and stopped
when the claim is released, so the release cannot come from a provider that died.

The broker is an ``evos broker`` process of its own on 127.0.0.1, stopped at the end (which also fails the test when
its event loop ran a callback for over 100 ms of CPU, ``helpers.stop``); each provider is a small kuksa-client
process. Every process is killed in ``finally``, a frozen one included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psutil
import pytest
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from helpers import eventually, free_port, start, stop, wait_listening

TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"  # the provider's actuator (float)
SPEED = "Vehicle.Speed"  # what another client publishes and reads meanwhile (float)

KEEPALIVE_S = 10.0  # the broker pings a quiet peer this often (docs/security.md, issue 12 item 4)
KEEPALIVE_TIMEOUT_S = 5.0  # ... and drops it when the ping is not answered within this
RELEASED_WITHIN_S = KEEPALIVE_S + KEEPALIVE_TIMEOUT_S + 5.0  # a ping, its timeout, and room for a loaded machine
CALL_S = 3.0  # every gRPC call's own deadline: an Actuate or GetValue slower than this hangs
PROMPT_S = 1.0  # how fast another client's PublishValue + GetValue must be answered while the provider is frozen
POLL_S = 0.5  # between two rounds of calls while waiting for the release
LINE_S = 20.0  # a provider process's next line (a fresh Python importing grpc, on a busy 2-core machine)

# A kuksa.val.v2 provider: claims the actuator argv[2] on the broker at argv[1] and prints one JSON line for the
# claim's answer, one for each actuation it is asked to carry out, and one when its stream ends. Like most KUKSA
# providers it does not answer actuations (no BatchActuateStreamResponse, no evos acknowledgement header).
PROVIDER = r"""
import json, os, queue, sys
import grpc
from kuksa.val.v2 import types_pb2 as t2, val_pb2 as v2, val_pb2_grpc as v2_grpc

def say(**event):
    print(json.dumps(event), flush=True)

address, path = sys.argv[1:3]
outgoing = queue.Queue()
outgoing.put(v2.OpenProviderStreamRequest(provide_actuation_request=v2.ProvideActuationRequest(
    actuator_identifiers=[t2.SignalID(path=path)])))

def requests():
    while True:
        yield outgoing.get()

with grpc.insecure_channel(address) as channel:
    try:
        for response in v2_grpc.VALStub(channel).OpenProviderStream(requests()):
            if response.HasField("provide_actuation_response"):
                say(event="providing")
            for request in response.batch_actuate_stream_request.actuate_requests:
                kind = request.value.WhichOneof("typed_value")
                say(event="actuated", id=request.signal_id.id, path=request.signal_id.path,
                    value=getattr(request.value, kind) if kind else None)
        say(event="ended", code="OK", details="")
    except grpc.RpcError as error:
        say(event="ended", code=error.code().name, details=error.details())
os._exit(0)
"""


@contextlib.asynccontextmanager
async def broker_address() -> AsyncIterator[str]:
    """A fresh ``evos broker`` on 127.0.0.1 and its address (as ``security.attacks.broker_channel``, for aio
    clients). Killed when the test fails; else stopped, and one that does not stop within 15 s of SIGTERM fails."""
    address = f"127.0.0.1:{free_port()}"
    proc = start("broker", "--address", address)
    try:
        await asyncio.to_thread(wait_listening, proc, address)
        yield address
    except BaseException:
        proc.kill()
        proc.communicate(timeout=15)
        raise
    try:
        await asyncio.to_thread(stop, proc)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=15)
        pytest.fail("the broker did not stop within 15 s of SIGTERM: its event loop was still busy with a frozen "
                    "provider")


class Provider:
    """A provider process (``PROVIDER``) and the lines it prints."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[dict[str, Any]] = []
        self.other: list[str] = []

    @classmethod
    async def start(cls, address: str, path: str) -> Provider:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", PROVIDER, address, path,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        return cls(proc)

    async def next_event(self, within_s: float = LINE_S) -> dict[str, Any]:
        """The provider's next JSON line; other lines (gRPC's own log, a traceback) are kept for the failure."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(within_s):
                while True:
                    line = await self.proc.stdout.readline()
                    if not line:
                        pytest.fail(f"the provider exited ({await self.proc.wait()}) after {self.seen}:\n"
                                    + "".join(self.other))
                    try:
                        event = json.loads(line)
                        break
                    except json.JSONDecodeError:
                        self.other.append(line.decode(errors="replace"))
        except TimeoutError:
            pytest.fail(f"the provider printed nothing within {within_s} s (so far: {self.seen})")
        self.seen.append(event)
        return dict(event)

    async def expect(self, event: str) -> dict[str, Any]:
        got = await self.next_event()
        assert got["event"] == event, f"expected {event!r} from the provider, got {got} (so far: {self.seen})"
        return got

    def state(self) -> str:
        return psutil.Process(self.proc.pid).status()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()  # SIGKILL ends a stopped process too
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 15)


def float_value(x: float) -> t2.Value:
    return t2.Value(float=x)


async def actuate(stub: v2_grpc.VALStub, value: float) -> None:
    async with asyncio.timeout(CALL_S + 1):
        await stub.Actuate(v2.ActuateRequest(signal_id=t2.SignalID(path=TEMP), value=float_value(value)),
                           timeout=CALL_S)


async def publish_and_read(stub: v2_grpc.VALStub, value: float) -> float:
    """Another client's PublishValue and GetValue of ``SPEED``; the seconds both took."""
    begun = asyncio.get_running_loop().time()
    async with asyncio.timeout(2 * CALL_S + 1):
        await stub.PublishValue(v2.PublishValueRequest(signal_id=t2.SignalID(path=SPEED),
                                                       data_point=t2.Datapoint(value=float_value(value))),
                                timeout=CALL_S)
        answer = await stub.GetValue(v2.GetValueRequest(signal_id=t2.SignalID(path=SPEED)), timeout=CALL_S)
    took_s = asyncio.get_running_loop().time() - begun
    assert answer.data_point.value.float == pytest.approx(value), answer
    return took_s


def no_provider(error: grpc.aio.AioRpcError) -> bool:
    return error.code() == grpc.StatusCode.UNAVAILABLE and "no provider" in str(error.details())


class Watch:
    """What the rounds of calls saw while the provider was frozen, in seconds after its SIGSTOP."""

    def __init__(self, frozen_at: float) -> None:
        self.frozen_at = frozen_at
        self.actuates: list[tuple[float, str, float]] = []  # (when, outcome, how long it took)
        self.slow_reads: list[str] = []
        self.released_s: float | None = None
        self.released: grpc.aio.AioRpcError | None = None

    def since(self) -> float:
        return asyncio.get_running_loop().time() - self.frozen_at

    def hung(self) -> list[float]:
        return [at for at, outcome, _ in self.actuates if outcome == "DEADLINE_EXCEEDED"]

    def summary(self) -> str:
        """Runs of the same outcome: ``OK x40 at 0.0-19.9 s (each within 0.01 s)``."""
        runs: list[list[tuple[float, str, float]]] = []
        for entry in self.actuates:
            if runs and runs[-1][0][1] == entry[1]:
                runs[-1].append(entry)
            else:
                runs.append([entry])
        return "; ".join(f"{run[0][1]} x{len(run)} at {run[0][0]:.1f}-{run[-1][0]:.1f} s (each within "
                         f"{max(took for _, _, took in run):.2f} s)" for run in runs)


async def wait_for_release(driver: v2_grpc.VALStub, other: v2_grpc.VALStub, watch: Watch) -> None:
    """Actuate the frozen provider's actuator every ``POLL_S`` until the broker answers "no provider" or
    ``RELEASED_WITHIN_S`` have passed since the SIGSTOP; before each Actuate another client publishes and reads."""
    loop = asyncio.get_running_loop()
    round_ = 0
    while (since := watch.since()) < RELEASED_WITHIN_S:
        round_ += 1
        took_s = await publish_and_read(other, float(round_ + 1))
        if took_s > PROMPT_S:
            watch.slow_reads.append(f"{since:.1f} s: {took_s:.2f} s")
        at, begun = watch.since(), loop.time()
        try:
            await actuate(driver, 22.0)
        except grpc.aio.AioRpcError as error:
            outcome = error.code().name if not no_provider(error) else f"{error.code().name} {error.details()!r}"
            watch.actuates.append((at, outcome, loop.time() - begun))
            if no_provider(error):
                watch.released_s, watch.released = watch.since(), error
                return
        else:
            watch.actuates.append((at, "OK", loop.time() - begun))
        await asyncio.sleep(POLL_S)


async def claim_and_show_it_works(address: str, driver: v2_grpc.VALStub, providers: list[Provider]) -> Provider:
    """A provider that holds ``TEMP`` and carries out its actuations; a second one is refused meanwhile."""
    async with asyncio.timeout(CALL_S + 1):
        metadata = await driver.ListMetadata(v2.ListMetadataRequest(root=TEMP), timeout=CALL_S)
    temp_id = metadata.metadata[0].id

    # no provider yet: the answer waited for later, so it is known to be that error
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await actuate(driver, 20.0)
    assert no_provider(caught.value) and TEMP in str(caught.value.details()), caught.value

    provider = await Provider.start(address, TEMP)
    providers.append(provider)
    await provider.expect("providing")
    await actuate(driver, 21.5)
    reached = await provider.expect("actuated")
    assert reached["id"] == temp_id or reached["path"] == TEMP, reached
    assert reached["value"] == pytest.approx(21.5), reached

    intruder = await Provider.start(address, TEMP)
    providers.append(intruder)
    refused = await intruder.expect("ended")
    assert refused["code"] == "ALREADY_EXISTS", refused
    return provider


async def test_a_frozen_provider_is_dropped_and_its_actuators_freed() -> None:
    providers: list[Provider] = []
    async with broker_address() as address, grpc.aio.insecure_channel(address) as driver_channel, \
            grpc.aio.insecure_channel(address) as other_channel:
        try:  # the providers are killed before the broker is stopped
            driver = v2_grpc.VALStub(driver_channel)  # the client that actuates (the phone, the cabin)
            other = v2_grpc.VALStub(other_channel)  # another client of the car (the twin publishing, a reader)
            frozen = await claim_and_show_it_works(address, driver, providers)
            await publish_and_read(other, 1.0)  # the other client's channel is connected before the freeze

            # freeze the provider: its connection stays open, it reads and answers nothing
            frozen.proc.send_signal(signal.SIGSTOP)
            watch = Watch(asyncio.get_running_loop().time())
            await eventually(lambda: frozen.state() == psutil.STATUS_STOPPED, 5)
            await wait_for_release(driver, other, watch)

            assert watch.released is not None and watch.released_s is not None, (
                f"{RELEASED_WITHIN_S:.0f} s after the provider was frozen the broker still held its claim on {TEMP}: "
                f"Actuates (after the SIGSTOP): {watch.summary()}")
            assert TEMP in str(watch.released.details()), watch.released
            # the release came from the freeze, not from a provider that died
            assert frozen.proc.returncode is None and frozen.state() == psutil.STATUS_STOPPED
            assert not watch.hung(), (f"Actuates hung (no answer within {CALL_S} s) while the provider was "
                                      f"frozen: {watch.summary()}")
            assert not watch.slow_reads, (f"another client's PublishValue + GetValue took over {PROMPT_S} s while "
                                          f"the provider was frozen: {watch.slow_reads}")
            print(f"released {watch.released_s:.1f} s after SIGSTOP; Actuates: {watch.summary()}")

            # the car is not held: a new provider claims the actuator and carries out its actuations
            replacement = await Provider.start(address, TEMP)
            providers.append(replacement)
            await replacement.expect("providing")
            await actuate(driver, 23.0)
            reached = await replacement.expect("actuated")
            assert reached["value"] == pytest.approx(23.0), reached

            # woken up, the frozen provider finds its stream ended (after whatever was already in its socket)
            frozen.proc.send_signal(signal.SIGCONT)
            while (event := await frozen.next_event())["event"] == "actuated":
                pass
            assert event["event"] == "ended" and event["code"] != "OK", frozen.seen
            print(f"the frozen provider, woken, after {len(frozen.seen) - 3} late actuations: {event}")
        finally:
            for provider in providers:
                await provider.kill()

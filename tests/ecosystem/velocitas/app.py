"""A real Eclipse Velocitas vehicle app on the car's broker (sdv.databroker.v1), written the way Velocitas'
vehicle-app-python-template writes one (app/src/main.py): a ``VehicleApp`` with the generated vehicle model
(``from vehicle import Vehicle, vehicle``), subscriptions in ``on_start`` and by ``@subscribe_data_points``, MQTT
through the SDK's native middleware. It runs in the Velocitas venv (scripts/velocitas_venv.sh), never in evos' own:

    SDV_MIDDLEWARE_TYPE=native SDV_VEHICLEDATABROKER_ADDRESS=grpc://127.0.0.1:55555 \\
        SDV_MQTT_ADDRESS=mqtt://127.0.0.1:1883 .peers/velocitas/bin/python tests/ecosystem/velocitas/app.py

What it does, each step on its own (one failing does not stop the others):
- ``await self.Vehicle.Speed.get()`` and ``await self.Vehicle.Evos.Cabin.Scenes.get()`` (GetDatapoints; the second
  is the cabin's scene list, an evos overlay signal, in the model because it is made from ``evos catalog export``);
- ``await self.Vehicle.Speed.subscribe(...)`` (Subscribe ``SELECT Vehicle.Speed``), each reply published on MQTT
  ``evos-velocitas-app/currentSpeed`` as the template's app does;
- ``@subscribe_data_points("Vehicle.Speed", "Vehicle.Speed > FAST")`` (``SELECT Vehicle.Speed WHERE ...``);
- ``await ...Seat.Row1.DriverSide.HeatingCooling.set(HEATING)`` (SetDatapoints: the driver's seat heater, which
  the car's body serves);
- publishes ``{"event": "started"}`` on MQTT ``evos-velocitas-app/status``.

It reports what it saw as JSON lines, to the file ``$EVOS_VELOCITAS_REPORT`` (else stdout), one object each:
``{"event": "started", "broker": ..., "mqtt": ...}``; ``{"event": "mqtt", "topic": ..., "published": bool}``;
``{"event": "read", "path", "value", "timestamp_s"}``; ``{"event": "set", "path", "value", "ok": true}``;
``{"event": "reply", "query", "path", "value", "field"}`` (``field``: which ``Datapoint`` value the broker sent,
e.g. ``float_value`` or ``failure_value``, then ``failure``: its name); a failed step is its event with
``"error": {"type", "code", "details"}`` (``code``: the gRPC status, e.g. ``UNIMPLEMENTED``), a subscription's
failure is ``{"event": "subscription_error", "query", "error"}`` (once per distinct error: the SDK retries every
2.5 s); last ``{"event": "done", "complete": bool, "reason": ...}``.

It stops by itself (the SDK's ``run()`` never returns): once it has read, set, and seen a speed over FAST in both
subscriptions (exit 0, ``complete``); as soon as every step has either done that or failed for good (exit 1); after
``$EVOS_VELOCITAS_TIMEOUT_S`` (default 60 s) or on SIGTERM/SIGINT (exit 1 unless complete). Settings:
``EVOS_VELOCITAS_FAST_KMH`` (default 10), ``EVOS_VELOCITAS_HEATING`` (percent, default 30), ``LOGLEVEL`` (default
INFO; the SDK's own log goes to stderr).
"""

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from typing import Any

import grpc
from vehicle import Vehicle, vehicle  # type: ignore[import-not-found]
from velocitas_sdk.util.log import (  # type: ignore[import-not-found]
    get_opentelemetry_log_factory,
    get_opentelemetry_log_format,
)
from velocitas_sdk.vdb.reply import DataPointReply  # type: ignore[import-not-found]
from velocitas_sdk.vehicle_app import VehicleApp, subscribe_data_points  # type: ignore[import-not-found]

logging.setLogRecordFactory(get_opentelemetry_log_factory())
logging.basicConfig(format=get_opentelemetry_log_format())
logging.getLogger().setLevel(os.environ.get("LOGLEVEL", "INFO").upper())
logger = logging.getLogger(__name__)

FAST_KMH = float(os.environ.get("EVOS_VELOCITAS_FAST_KMH", "10"))
HEATING = int(os.environ.get("EVOS_VELOCITAS_HEATING", "30"))
TIMEOUT_S = float(os.environ.get("EVOS_VELOCITAS_TIMEOUT_S", "60"))
REPORT = os.environ.get("EVOS_VELOCITAS_REPORT")

STATUS_TOPIC = "evos-velocitas-app/status"
SPEED_TOPIC = "evos-velocitas-app/currentSpeed"
SPEED = "Vehicle.Speed"
ALL_QUERY = f"SELECT {SPEED}"
FAST_QUERY = f"SELECT {SPEED} WHERE {SPEED} > {FAST_KMH}"
RETRIED = ("UNAVAILABLE", "DEADLINE_EXCEEDED")  # the SDK resubscribes; may pass later (the car starting, ...)


def report(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, **fields}, default=str)
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    else:
        print(line, flush=True)


def describe(error: BaseException) -> dict[str, Any]:
    if isinstance(error, grpc.aio.AioRpcError):
        return {"type": type(error).__name__, "code": error.code().name, "details": error.details()}
    return {"type": type(error).__name__, "code": None, "details": str(error)}


class _SubscriptionErrors(logging.Handler):
    """The SDK logs a subscription's failure (``logger.exception``) and retries; nothing reaches the app's
    callback. This handler sees those records, inside the subscription's task, whose name is its query."""

    def __init__(self, app: "EvosSpeedApp") -> None:
        super().__init__(logging.ERROR)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        self.app.subscription_failed(task.get_name() if task else "?", error)


class EvosSpeedApp(VehicleApp):
    """Reads, follows and sets signals of the evos car, and says what it saw."""

    def __init__(self, vehicle_client: Vehicle):
        super().__init__()
        self.Vehicle = vehicle_client
        self.finished = asyncio.Event()
        self.reason = ""
        self.read: bool | None = None  # None: not yet; True: done; False: failed
        self.set_ok: bool | None = None
        self.fast_seen = {ALL_QUERY: False, FAST_QUERY: False}
        self.failed_queries: set[str] = set()
        self._errors_seen: set[tuple[str, str, str]] = set()

    async def on_start(self):
        """Run when the vehicle app starts (the SDK calls it once MQTT is connected)."""
        report("started", broker=os.environ.get("SDV_VEHICLEDATABROKER_ADDRESS"),
               mqtt=os.environ.get("SDV_MQTT_ADDRESS"), fast_query=FAST_QUERY)
        await self.publish_status()
        await self.Vehicle.Speed.subscribe(self.on_speed_change)
        self.read = True
        for datapoint in (self.Vehicle.Speed, self.Vehicle.Evos.Cabin.Scenes):
            try:
                reply = await datapoint.get()
            except Exception as error:
                self.read = False
                report("read", path=datapoint.get_path(), error=describe(error))
            else:
                value = list(reply.value) if datapoint is self.Vehicle.Evos.Cabin.Scenes else reply.value
                report("read", path=datapoint.get_path(), value=value, timestamp_s=reply.timestamp.ToSeconds())
        heater = self.Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling
        try:
            await heater.set(HEATING)
        except Exception as error:
            self.set_ok = False
            report("set", path=heater.get_path(), value=HEATING, error=describe(error))
        else:
            self.set_ok = True
            report("set", path=heater.get_path(), value=HEATING, ok=True)
        self.check()

    async def publish_status(self) -> None:
        # the SDK's own publish_event returns nothing; its MQTT client's returns paho's MQTTMessageInfo
        info = await self.pubsub_client.publish_event(STATUS_TOPIC, json.dumps({"event": "started"}))
        with contextlib.suppress(RuntimeError, ValueError):  # not sent: rc says why
            await asyncio.to_thread(info.wait_for_publish, 5)  # paho's network thread sends it
        report("mqtt", topic=STATUS_TOPIC, published=info.is_published(), rc=int(info.rc))

    async def on_speed_change(self, data: DataPointReply):
        """Every reply of ``SELECT Vehicle.Speed``: reported, and published on MQTT as the template's app does."""
        speed = self.on_reply(ALL_QUERY, data)
        await self.publish_event(SPEED_TOPIC, json.dumps({"speed": speed}))

    @subscribe_data_points(SPEED, f"{SPEED} > {FAST_KMH}")
    async def on_fast(self, data: DataPointReply):
        """Every reply of ``SELECT Vehicle.Speed WHERE Vehicle.Speed > FAST``."""
        self.on_reply(FAST_QUERY, data)

    def on_reply(self, query: str, data: DataPointReply) -> float:
        speed = data.get(self.Vehicle.Speed).value
        raw = data.reply.fields[SPEED]
        field = raw.WhichOneof("value")
        extra = {"failure": type(raw).Failure.Name(raw.failure_value)} if field == "failure_value" else {}
        report("reply", query=query, path=SPEED, value=speed, field=field, **extra)
        if field == "float_value" and speed > FAST_KMH:
            self.fast_seen[query] = True
        self.check()
        return speed

    def subscription_failed(self, query: str, error: BaseException) -> None:
        described = describe(error)
        key = (query, str(described["code"]), str(described["details"]))
        if key not in self._errors_seen:
            self._errors_seen.add(key)
            report("subscription_error", query=query, error=described)
        if described["code"] not in RETRIED:
            self.failed_queries.add(query)
        self.check()

    def check(self) -> None:
        """Finish once it saw everything, or once every step has either done that or failed for good."""
        subscriptions = [self.fast_seen[q] or q in self.failed_queries for q in self.fast_seen]
        if self.read is None or self.set_ok is None or not all(subscriptions):
            return
        if self.read and self.set_ok and all(self.fast_seen.values()):
            self.finish("complete")
        else:
            self.finish("failed: " + ", ".join(
                [*(["read"] if not self.read else []), *(["set"] if not self.set_ok else []),
                 *sorted(q for q in self.failed_queries if not self.fast_seen[q])]))

    def finish(self, reason: str) -> None:
        if not self.finished.is_set():
            self.reason = reason
            self.finished.set()


async def main() -> int:
    """Run the app until it has finished, for at most TIMEOUT_S; then stop it cleanly."""
    logger.info("Starting EvosSpeedApp...")
    app = EvosSpeedApp(vehicle)
    logging.getLogger("velocitas_sdk.vdb.subscriptions").addHandler(_SubscriptionErrors(app))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, app.finish, signal.Signals(signum).name)
    running = asyncio.create_task(app.run())
    finished = asyncio.create_task(app.finished.wait())
    await asyncio.wait({running, finished}, timeout=TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    if running.done():  # run() returns or raises only when it could not start (no MQTT server, ...)
        error = running.exception()
        app.reason = f"run() ended: {describe(error)['details'] if error else 'returned'}"
        if error:
            report("error", step="run", error=describe(error))
    elif not app.finished.is_set():
        app.reason = f"timeout after {TIMEOUT_S} s"
    complete = app.reason == "complete"
    report("done", complete=complete, reason=app.reason,
           fast_seen=app.fast_seen, read=app.read, set=app.set_ok)
    finished.cancel()
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await running
    with contextlib.suppress(Exception):
        await app.stop()  # cancels the subscriptions, closes the gRPC channel
    for client in (app.pubsub_client._pub_client, app.pubsub_client._sub_client):
        with contextlib.suppress(Exception):
            client.disconnect()
            client.loop_stop()
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

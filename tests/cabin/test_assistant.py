"""The offline assistant: exact-action accuracy on a held-out labelled set, safety, and questions from signals."""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from pathlib import Path

import pytest

from evos.cabin import load_scenes
from evos.cabin._assistant import Assistant

DATA = Path(__file__).parent / "data"
S, D = "Vehicle.Cabin.HVAC.Station.Row1", "Vehicle.Cabin.Door"
SEAT, AMB = "Vehicle.Cabin.Seat.Row1", "Vehicle.Cabin.Light.AmbientLight.Row1"
WINDOWS = {"WFL": f"{D}.Row1.DriverSide.Window.Position", "WFR": f"{D}.Row1.PassengerSide.Window.Position",
           "WRL": f"{D}.Row2.DriverSide.Window.Position", "WRR": f"{D}.Row2.PassengerSide.Window.Position"}
KEYS: dict[str, tuple[str, ...]] = {
    "AC": ("Vehicle.Cabin.HVAC.IsAirConditioningActive",),
    "TD": (f"{S}.Driver.Temperature",), "TP": (f"{S}.Passenger.Temperature",),
    "FD": (f"{S}.Driver.FanSpeed",), "FP": (f"{S}.Passenger.FanSpeed",),
    "DEFF": ("Vehicle.Cabin.HVAC.IsFrontDefrosterActive",), "DEFR": ("Vehicle.Cabin.HVAC.IsRearDefrosterActive",),
    "RECIRC": ("Vehicle.Cabin.HVAC.IsRecirculationActive",),
    "SHD": (f"{SEAT}.DriverSide.HeatingCooling",), "SHP": (f"{SEAT}.PassengerSide.HeatingCooling",),
    "MSD": (f"{SEAT}.DriverSide.Massage.Level",), "MSP": (f"{SEAT}.PassengerSide.Massage.Level",),
    "RCD": (f"{SEAT}.DriverSide.Backrest.Recline",), "RCP": (f"{SEAT}.PassengerSide.Backrest.Recline",),
    **{k: (v,) for k, v in WINDOWS.items()}, "WIN": tuple(WINDOWS.values()),
    "ROOF": ("Vehicle.Cabin.Sunroof.Switch",), "SHADE": ("Vehicle.Cabin.Sunroof.Shade.IsOpen",),
    "LOCK": tuple(f"{D}.Row{r}.{s}.IsLocked" for r in (1, 2) for s in ("DriverSide", "PassengerSide")),
    "DOME": ("Vehicle.Cabin.Light.IsDomeOn",),
    "AMB": (f"{AMB}.DriverSide.IsLightOn", f"{AMB}.PassengerSide.IsLightOn"),
    "COLOR": (f"{AMB}.DriverSide.Color", f"{AMB}.PassengerSide.Color"),
    "BRIGHT": ("Vehicle.Cabin.Infotainment.HMI.Brightness",),
    "DAYNIGHT": ("Vehicle.Cabin.Infotainment.HMI.DayNightMode",),
    "ACT": ("Vehicle.Cabin.Infotainment.Media.Action",), "VOL": ("Vehicle.Cabin.Infotainment.Media.Volume",),
    "SCENE": ("Vehicle.Evos.Cabin.Scene",),
    "LIMIT": ("Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit",),
    "CHG": ("Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging",),
    "SPEED": ("Vehicle.ADAS.CruiseControl.SpeedSet",),
    "DND": ("Vehicle.Evos.Cabin.DoNotDisturb",), "HOT": ("Vehicle.Evos.Cabin.Hotspot.IsEnabled",),
}
# The state the labels assume (see the header of the data files).
STATE = {
    "Vehicle.Speed": 0.0, "Vehicle.Cabin.HVAC.IsAirConditioningActive": True,
    f"{S}.Driver.Temperature": 21.0, f"{S}.Passenger.Temperature": 21.0,
    f"{S}.Driver.FanSpeed": 40, f"{S}.Passenger.FanSpeed": 40,
    f"{SEAT}.DriverSide.Backrest.Recline": 20.0, f"{SEAT}.PassengerSide.Backrest.Recline": 20.0,
    "Vehicle.Cabin.Infotainment.Media.Volume": 30, "Vehicle.ADAS.CruiseControl.SpeedSet": 100.0,
    "Vehicle.Cabin.Infotainment.HMI.Brightness": 70.0,
    "Vehicle.Powertrain.Range": 480_000, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 76.0,
    "Vehicle.Evos.Twin.CabinTemperature": 19.5, "Vehicle.Exterior.AirTemperature": 8.0,
}


def _value(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text


def load_set(name: str) -> list[tuple[str, str, dict[str, object]]]:
    rows = []
    for line in (DATA / name).read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, intent, actions = line.split("\t")
        expected: dict[str, object] = {}
        if actions != "-":
            for item in actions.split():
                key, _, value = item.partition("=")
                expected.update(dict.fromkeys(KEYS[key], _value(value)))
        rows.append((text, intent, expected))
    return rows


def _same(got: dict[str, object], expected: dict[str, object]) -> bool:
    if set(got) != set(expected):
        return False
    for path, value in expected.items():
        other = got[path]
        if isinstance(value, float) and not isinstance(other, bool) and isinstance(other, int | float):
            if not math.isclose(value, other, abs_tol=1e-6):
                return False
        elif other != value:
            return False
    return True


@pytest.fixture(scope="module")
def assistant(catalog) -> Assistant:
    return Assistant(load_scenes(catalog))


def accuracy(assistant: Assistant, name: str) -> tuple[float, list[str]]:
    rows = load_set(name)
    misses = []
    for text, intent, expected in rows:
        answer = assistant.answer(text, STATE)
        got = {a["path"]: a["value"] for a in answer.actions}
        if answer.intent != intent or not _same(got, expected):
            misses.append(f"{text!r}: want {intent} {expected}, got {answer.intent} {got}")
    return 1 - len(misses) / len(rows), misses


def test_test_set_is_large_and_bilingual() -> None:
    rows = load_set("assistant_test_set.tsv")
    chinese = [r for r in rows if any("\u4e00" <= c <= "\u9fff" for c in r[0])]
    assert len(rows) >= 300 and len(chinese) >= 120 and len(rows) - len(chinese) >= 120
    assert len({r[1] for r in rows}) - 1 >= 40  # intents besides 'unknown'
    dev = [_plain(r[0]) for r in load_set("assistant_dev_set.tsv")]
    # the held-out set shares no utterance with the dev set, nor a near copy ("打开天窗" / "打开天窗吧" were both)
    near = [(text, other) for text in (_plain(r[0]) for r in rows) for other in dev
            if difflib.SequenceMatcher(None, text, other).ratio() >= NEAR_COPY]
    assert near == []


NEAR_COPY = 0.85  # similarity (difflib ratio) from which two utterances count as one


def _plain(text: str) -> str:
    """``text`` in lower case without punctuation, for comparing utterances."""
    return re.sub(r"[^\w%]+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


def test_exact_action_accuracy_on_the_held_out_set(assistant: Assistant) -> None:
    score, misses = accuracy(assistant, "assistant_test_set.tsv")
    print(f"assistant exact-action accuracy: {score:.1%} ({len(misses)} misses)\n" + "\n".join(misses))
    assert score >= 0.95, "\n".join(misses)


def test_dev_set_is_fully_understood(assistant: Assistant) -> None:
    score, misses = accuracy(assistant, "assistant_dev_set.tsv")
    assert score == 1.0, "\n".join(misses)


def test_unknown_requests_get_a_polite_no_and_no_action(assistant: Assistant) -> None:
    for text, reply in (("order me a pizza", "Sorry, I can't do that."), ("帮我订酒店", "抱歉，这个我做不到。")):
        answer = assistant.answer(text, STATE)
        assert (answer.intent, answer.actions, answer.reply) == ("unknown", [], reply)


def test_no_recline_and_no_parked_scene_while_driving(assistant: Assistant) -> None:
    driving = {**STATE, "Vehicle.Speed": 80.0}
    for text, intent, reason in (
        ("recline my seat", "seat_recline", "can't recline the seat while driving: the car is moving (80 km/h)"),
        ("座椅放倒", "seat_recline", "行驶中不能放倒座椅"),
        ("start cinema mode", "scene_enter", "Cinema mode needs the car parked: the car is moving (80 km/h)"),
        ("打开露营模式", "scene_enter", "露营模式需要先停车"),
    ):
        answer = assistant.answer(text, driving)
        assert answer.intent == intent and answer.actions == [] and reason in answer.reply
    assert assistant.answer("I'm cold", driving).actions  # climate is fine while driving
    in_gear = {**STATE, "Vehicle.Powertrain.Transmission.SelectedGear": 127}
    assert assistant.answer("recline my seat", in_gear).actions == []


def test_questions_are_answered_from_signals(assistant: Assistant) -> None:
    cases = {
        "how far can I go?": "You can drive about 480 km.",
        "还能开多远": "续航还有约480公里。",
        "can I make it 500 km": "You have 480 km of range, not enough for 500 km.",
        "how much battery do I have": "The battery is at 76 %.",
        "what is the temperature inside": "It is 19.5 °C inside.",
        "外面多少度": "车外温度8.0°C。",
        "what's the tire pressure": "Tyre pressures are not available right now.",
        "when will charging be done": "The car is not charging.",
    }
    for text, reply in cases.items():
        assert assistant.answer(text, STATE).reply == reply, text
    tyres = {f"Vehicle.Chassis.Axle.Row{r}.Wheel.{s}.Tire.Pressure": 250 for r in (1, 2) for s in ("Left", "Right")}
    assert assistant.answer("胎压正常吗", {**STATE, **tyres}).reply == \
        "胎压（kPa）：左前 250、右前 250、左后 250、右后 250，都正常。"
    tyres["Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure"] = 180
    assert assistant.answer("check the tyres", {**STATE, **tyres}).reply == \
        "Tyre pressures (kPa): front left 250, front right 250, rear left 180, rear right 250; the rear left is low, " \
        "please check."


# A sample of the replies in both languages: what a car's assistant says, never a VSS path or an intent id.
REPLIES = {
    "set 22 degrees on my side": "Setting the driver's side to 22 °C.",
    "主驾温度调到22度": "好的，主驾温度已调到22度。",
    "I'm cold": "Warming both sides up to 22 °C.",
    "我有点热": "好的，主副驾温度已调低到20度。",
    "turn the fan up": "Turning the fan up to 60 %.",
    "副驾风小一点": "好的，副驾风量已调小到20%。",
    "open the windows a little": "Opening the windows a little.",
    "车窗打开一点": "好的，车窗已打开一点。",
    "open the rear windows halfway": "Opening the rear windows halfway.",
    "副驾车窗打开百分之三十": "好的，副驾车窗已打开到30%。",
    "heat my seat on high": "Heating the driver's seat (high).",
    "打开副驾座椅加热": "好的，副驾座椅加热已打开（中档）。",
    "recline the passenger seat": "Reclining the passenger seat to 45°.",
    "make the ambient light blue": "Setting the ambient lights to blue.",
    "氛围灯调成红色": "好的，氛围灯已调成红色。",
    "charge to 80 %": "Charging to 80 %.",
    "充电到百分之九十": "好的，充电上限已设为90%。",
    "set cruise control to 110": "Setting the cruise speed to 110 km/h.",
    "turn the volume up": "Turning the volume up to 40 %.",
    "defrost the rear window": "Turning the rear defroster on.",
    "lock the car": "Locking the doors.",
    "解锁车门": "好的，车门已解锁。",
    # the reviewer's misses (screen brightness 70 %, cruise set speed 100 km/h)
    "dim the screen": "Dimming the screen to 50 %.",
    "屏幕调暗一点": "好的，屏幕已调暗到50%。",
    "slow down": "Lowering the cruise speed to 95 km/h.",
    "巡航加五": "好的，巡航车速已提高到105公里/小时。",
    "close the sunroof a bit": 'The sunroof only opens or closes all the way; say "close the sunroof" to close it.',
    "把车窗关上一半": "好的，车窗已关到一半。",
    "close the windows a little": "Closing the windows to 80 % open.",
    "set 22 on my side": "Setting the driver's side to 22 °C.",
}


def test_battery_warming_is_the_battery_not_the_cabin(assistant: Assistant) -> None:
    """Written with the battery-conditioning rules (so not part of the held-out set): the traction battery is
    warmed through VSS battery conditioning; warming the car or the cabin stays the climate's, and a question
    about the battery stays a question."""
    mode = "Vehicle.Powertrain.TractionBattery.BatteryConditioning.RequestedMode"
    for text, wanted in (("warm up the battery", "FAST_CHARGING_PREPARATION"),
                         ("precondition the battery for the supercharger", "FAST_CHARGING_PREPARATION"),
                         ("can you preheat the battery", "FAST_CHARGING_PREPARATION"),
                         ("给电池加热", "FAST_CHARGING_PREPARATION"),
                         ("stop warming the battery", "INACTIVE"), ("关闭电池预热", "INACTIVE")):
        assert assistant.answer(text, STATE).actions == [{"path": mode, "value": wanted}], text
    assert assistant.answer("warm up the battery", STATE).reply == "Warming the battery for fast charging."
    assert assistant.answer("关闭电池预热", STATE).reply == "好的，已停止电池预热。"
    assert assistant.answer("warm up the car", STATE).intent == "temp_up"
    assert assistant.answer("how much battery is left", STATE).intent == "ask_soc"


def test_replies_are_natural_in_both_languages(assistant: Assistant) -> None:
    for text, reply in REPLIES.items():
        assert assistant.answer(text, STATE).reply == reply, text


def test_no_reply_shows_a_path_or_an_intent_id(assistant: Assistant) -> None:
    for text, intent, _ in load_set("assistant_test_set.tsv"):
        reply = assistant.answer(text, {**STATE, "Vehicle.Evos.Cabin.Scene": "cinema"}).reply
        assert "Vehicle." not in reply and intent not in reply and "=" not in reply, (text, reply)
        chinese = re.compile("[\u4e00-\u9fff]")  # Chinese requests get Chinese replies, English ones English
        assert bool(chinese.search(reply)) == bool(chinese.search(text)), (text, reply)


def test_scene_replies_carry_the_forecast_and_refusals_their_reason(catalog) -> None:
    from evos.twin import load_vehicle

    assistant = Assistant(load_scenes(catalog), lambda: load_vehicle("xiaomi-su7"))
    en = assistant.answer("start cinema mode", STATE).reply
    zh = assistant.answer("打开影院模式", STATE).reply
    assert re.fullmatch(r"Starting cinema mode: about \d+ h \d+ min to 20 %\.", en), en
    assert re.fullmatch(r"好的，影院模式已开启，预计可用约\d+小时\d+分钟（到20%电量）。", zh), zh
    low = {**STATE, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 18.0}
    answer = assistant.answer("start camp mode", low)
    assert answer.actions == [] and answer.reply == \
        "I can't start camp mode: the battery is at 18 %, at or below the 20 % reserve."
    assert assistant.answer("打开露营模式", low).reply == "电量只剩18%，已到20%的保留电量，不能开启露营模式。"
    leaving = assistant.answer("exit cinema mode", {**STATE, "Vehicle.Evos.Cabin.Scene": "cinema"})
    assert leaving.reply == "Leaving cinema mode and restoring the cabin."


async def test_assistant_acts_on_a_running_car_over_grpc(car) -> None:
    from evos._connect import Connection
    from evos.broker import BrokerServer, ServerConfig
    from evos.cabin._cli import _assist
    from helpers import free_port

    remote = Connection(f"127.0.0.1:{free_port()}")
    server = BrokerServer(car.broker, ServerConfig(remote.address))
    await server.start()
    try:
        answer = await _assist("set the passenger temperature to 24 degrees", False, remote)
        # the assistant knows the car by its catalog: the set point asked, nothing more
        assert answer.actions == [{"path": "Vehicle.Cabin.HVAC.Station.Row1.Passenger.Temperature", "value": 24.0}]
        assert car.value("Vehicle.Cabin.HVAC.Station.Row1.Passenger.Temperature") == 24.0
        dry = await _assist("打开影院模式", True, remote)
        assert dry.actions == [{"path": "Vehicle.Evos.Cabin.Scene", "value": "cinema"}]
        assert car.value("Vehicle.Evos.Cabin.Scene") == "NONE"  # --dry-run changes nothing
        runtime = await _assist("how long can I stay in camp mode", False, remote)
        assert runtime.intent == "ask_scene_runtime" and "Camp mode can run for about" in runtime.reply
    finally:
        await server.stop()


def test_cli_json_from_a_fresh_in_process_car() -> None:
    from typer.testing import CliRunner

    from evos.cli import app as root  # the whole command line: it gives the cabin's commands a parked car

    result = CliRunner().invoke(root, ["assistant", "还剩多少电", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["intent"] == "ask_soc" and data["actions"] == [] and data["reply"].startswith("电量还有")
    result = CliRunner().invoke(root, ["cabin", "forecast", "cinema", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["text"].endswith("to 20 %")


# Requests found acting wrongly in review (each did the opposite or more than asked): the exact actions they must give.
REVIEW_CASES: dict[str, tuple[str, dict[str, object]]] = {
    "don't open the windows": ("unknown", {}),  # opened all four windows
    "do not turn on the AC": ("unknown", {}),
    "I'm not cold": ("unknown", {}),  # warmed the cabin
    "don't charge": ("unknown", {}),  # started charging
    "不要打开车窗": ("unknown", {}),
    "别开空调": ("unknown", {}),
    "我不冷": ("unknown", {}),
    "不要充电": ("unknown", {}),
    "别放了": ("media_pause", {"Vehicle.Cabin.Infotainment.Media.Action": "STOP"}),  # still a request to stop
    "别打扰我": ("dnd_on", {"Vehicle.Evos.Cabin.DoNotDisturb": True}),
    "turn off the fan": ("fan_set", {f"{S}.Driver.FanSpeed": 0, f"{S}.Passenger.FanSpeed": 0}),  # was fan up 60 %
    "关闭风扇": ("fan_set", {f"{S}.Driver.FanSpeed": 0, f"{S}.Passenger.FanSpeed": 0}),
    "风量调到最低": ("fan_set", {f"{S}.Driver.FanSpeed": 0, f"{S}.Passenger.FanSpeed": 0}),  # was 100 %
    "把风关小一点": ("fan_down", {f"{S}.Driver.FanSpeed": 20, f"{S}.Passenger.FanSpeed": 20}),
    "turn the volume to max": ("volume_set", {"Vehicle.Cabin.Infotainment.Media.Volume": 100}),  # was down to 20
    "音量调到最大": ("volume_set", {"Vehicle.Cabin.Infotainment.Media.Volume": 100}),
    "turn down the music": ("volume_down", {"Vehicle.Cabin.Infotainment.Media.Volume": 20}),  # was play
    "leave the dog in the car": ("scene_enter", {"Vehicle.Evos.Cabin.Scene": "pet"}),  # was leaving the scene
    "open the windows 200 %": ("window_open", dict.fromkeys(WINDOWS.values(), 100)),  # was 200: refused by the car
}


def test_negated_and_reversed_requests_act_as_said(assistant: Assistant) -> None:
    for text, (intent, actions) in REVIEW_CASES.items():
        answer = assistant.answer(text, STATE)
        assert (answer.intent, {a["path"]: a["value"] for a in answer.actions}) == (intent, actions), text
    assert assistant.answer("don't open the windows", STATE).reply == "OK, I'll leave it as it is."
    assert assistant.answer("别开空调", STATE).reply == "好的，保持不变。"


async def test_a_car_names_a_vehicle_the_forecast_can_load(caplog: pytest.LogCaptureFixture) -> None:
    from evos.app import CarSettings
    from evos.cabin import CABIN_APP
    from evos.car import local_car
    from evos.twin import BODY_APP, TWIN_APP, load_vehicle

    settings = CarSettings(vehicle="tesla-model-3-rwd-2022")  # its display name would not load: the preset must
    async with local_car([TWIN_APP, BODY_APP, CABIN_APP], settings=settings) as car:
        assert car.app("cabin").vehicle().name == load_vehicle("tesla-model-3-rwd-2022").name
    assert "cannot be loaded" not in caplog.text

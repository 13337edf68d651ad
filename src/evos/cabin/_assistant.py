"""The offline assistant: a request (English or Chinese) -> intent, VSS actions and a reply.

``Assistant.answer(text, values)`` is pure: ``values`` are the car's current signal values (for relative
changes such as "a bit warmer" and for questions); the caller carries the actions out (``act`` on a
vehicle-data port). An answer about runtime runs the energy forecast: call it off the event loop. What
each intent does is tabled in docs/cabin.md. Safety: no seat recline and no parked-only scene while the car
moves; the reply says why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from evos.broker import VehiclePort
from evos.cabin._engine import Conditions, not_parked_reason
from evos.cabin._forecast import _number, forecast
from evos.cabin._grounded import Request, is_wh, names_value, speech_act, target, truth
from evos.cabin._grounding import Entry, Grounding, Mentions, SignalIndex
from evos.cabin._nlu import Parse, normalize, understand
from evos.cabin._replies import answered, confirm, duration_text, not_understood, refused, said, value_text, which
from evos.cabin._scenes import Scene
from evos.errors import NoProviderError, RequestError
from evos.twin import Vehicle
from evos.vss import Catalog, Value

HVAC = "Vehicle.Cabin.HVAC"
STATION = f"{HVAC}.Station.Row1"
SEAT = "Vehicle.Cabin.Seat.Row1"
DOOR = "Vehicle.Cabin.Door"
LIGHT = "Vehicle.Cabin.Light"
MEDIA = "Vehicle.Cabin.Infotainment.Media"
HMI = "Vehicle.Cabin.Infotainment.HMI"
CHG = "Vehicle.Powertrain.TractionBattery.Charging"
CONDITIONING = "Vehicle.Powertrain.TractionBattery.BatteryConditioning.RequestedMode"
AC_ON = f"{HVAC}.IsAirConditioningActive"
SPEED_SET = "Vehicle.ADAS.CruiseControl.SpeedSet"
SCENE = "Vehicle.Evos.Cabin.Scene"
TIRES = tuple(f"Vehicle.Chassis.Axle.Row{r}.Wheel.{s}.Tire.Pressure" for r in (1, 2) for s in ("Left", "Right"))
READS = (
    "Vehicle.Speed", "Vehicle.Powertrain.Transmission.SelectedGear", "Vehicle.Powertrain.Range",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", "Vehicle.Evos.Twin.CabinTemperature",
    "Vehicle.Exterior.AirTemperature", f"{CHG}.IsCharging", f"{CHG}.TimeToComplete", f"{CHG}.ChargeLimit",
    *TIRES, f"{MEDIA}.Volume", SPEED_SET, SCENE, f"{HMI}.Brightness",
    *(f"{STATION}.{z}.{f}" for z in ("Driver", "Passenger") for f in ("Temperature", "FanSpeed")),
    *(f"{SEAT}.{s}.Backrest.Recline" for s in ("DriverSide", "PassengerSide")),
    *(f"{DOOR}.{w}.Window.Position" for w in ("Row1.DriverSide", "Row1.PassengerSide", "Row2.DriverSide",
                                              "Row2.PassengerSide")),
)
NOT_ASKED = ("Vehicle.Evos.Twin.", "Vehicle.Evos.Apps.", "Vehicle.Evos.Body.", "Vehicle.VersionVSS.",
             "Vehicle.ControlUnit.")  # the simulation's controls and the car's plumbing: not the owner's
# what opens the car: not while it moves
OPENINGS = re.compile(r"Vehicle\.(?:Cabin\.Door\.Row\d\.\w+|Body\.Trunk\.\w+|Body\.Hood)\.(?:IsOpen|Position|Switch)")
FORECAST_QUESTIONS = ("ask_scene_runtime", "ask_charge_time")
# intents that are more than one signal's value: scenes, battery warming...
BY_INTENT = ("scene_enter", "scene_exit", "battery_warm", "battery_warm_off", "dnd_on", "dnd_off", "hotspot_on",
             "hotspot_off")
# intents that name what they act on without naming a part of the car ("pause", "next", "mute")
UNNAMED = ("media_play", "media_pause", "media_next", "media_previous", "mute")
WARMTH = re.compile(r"\b(?:warm|warmer|cool|cooler|hot|hotter|cold|colder|chilly|freezing)\b|暖|冷|热|凉")
CLAUSE = re.compile(r"[,，;；]")
POLITE = re.compile(r"\bplease\b|\bpls\b|^请|麻烦")
VERTICAL = re.compile(r"\b(?:raise|lower|up|down|higher|high|low)\b|往上|往下|升|降")
SENTENCE = re.compile(r"(?<=[?？!！。;；])\s*|(?<=[a-z][.])\s+")
ASKED = {"ask_range": ("Vehicle.Powertrain.Range",),
         "ask_soc": ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",),
         "ask_cabin_temp": ("Vehicle.Evos.Twin.CabinTemperature",),
         "ask_outside_temp": ("Vehicle.Exterior.AirTemperature",),
         "ask_tire_pressure": TIRES, "ask_charge_time": (f"{CHG}.TimeToComplete",), "ask_scene_runtime": (SCENE,)}
STEP_C, STEP_FAN, STEP_VOLUME, STEP_KMH, STEP_RECLINE, STEP_BRIGHTNESS = 1.0, 20, 10, 5.0, 10.0, 20.0
MIN_DIMMED_PCT = 10.0  # "dim the screen" never blacks it out (assumed: a dark screen reads as a fault)
RECLINED_DEG, UPRIGHT_DEG = 45.0, 20.0  # 20° is the body hardware's driving posture
HEAT_DEFAULT, MASSAGE_DEFAULT, CRACK_PCT = 67, 50, 20
TIRE_LOW_KPA = 200.0  # below this a tyre is reported low (assumed: typical placards are 230-290 kPa)


@dataclass(frozen=True)
class Answer:
    """The assistant's answer: ``actions`` are the VSS requests (``{"path", "value"}``), ``reply`` what it says;
    ``error`` is the car's reason when it refused the requests (then ``actions`` is empty: nothing was done).
    ``kind`` is what the request was taken for: ``command``, ``question`` (answered from the signals ``asked``,
    ``truth`` the answer to a yes/no question), ``clarify`` (the assistant asks back), ``refused`` or ``none``."""

    intent: str
    actions: list[dict[str, Value]]
    reply: str
    slots: dict[str, Any] = field(default_factory=dict)
    lang: str = "en"
    error: str | None = None
    kind: str = "command"
    asked: tuple[str, ...] = ()
    truth: bool | None = None
    context: Context | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"intent": self.intent, "actions": self.actions, "reply": self.reply}
        return data if self.error is None else {**data, "error": self.error}

    def refused(self, reason: str) -> Answer:
        """This answer after the car refused its requests for ``reason``."""
        return replace(self, actions=[], reply=refused(reason, self.lang == "zh"), error=reason)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _stations(zone: str | None) -> tuple[str, ...]:
    return {"driver": ("Driver",), "passenger": ("Passenger",)}.get(zone or "", ("Driver", "Passenger"))


def _seat(zone: str | None) -> str:
    return "PassengerSide" if zone == "passenger" else "DriverSide"


def _windows(zone: str | None) -> tuple[str, ...]:
    return {"driver": ("Row1.DriverSide",), "passenger": ("Row1.PassengerSide",),
            "rear": ("Row2.DriverSide", "Row2.PassengerSide")}.get(
        zone or "", ("Row1.DriverSide", "Row1.PassengerSide", "Row2.DriverSide", "Row2.PassengerSide"))


def _celsius(slots: Mapping[str, Any]) -> float:
    value = float(slots["value"])
    if slots.get("unit") == "f":
        value = (value - 32) / 1.8
    return round(value * 2) / 2  # set points in half degrees


def _delta(slots: Mapping[str, Any], step: float) -> float:
    """The amount of a relative change: the number said ("2 degrees warmer"), else one step."""
    value = slots.get("value")
    return float(value) if value is not None and slots.get("unit") not in ("%",) and value > 0 else step


class Assistant:
    """Turns requests into actions and replies for a set of scenes (the car's, for scene names and forecasts)."""

    def __init__(self, scenes: Mapping[str, Scene], vehicle: Callable[[], Vehicle] | None = None,
                 reserve_soc_pct: float = 20.0, catalog: Catalog | None = None) -> None:
        self.scenes = dict(scenes)
        # every signal of the car, found by its names (none without a catalog: the intents below only)
        self.index = SignalIndex(catalog, (s.path for s in catalog if not s.path.startswith(NOT_ASKED))) \
            if catalog is not None else None
        # the signals it finds by their names: the values ``answer`` wants, besides ``READS``
        self.paths: tuple[str, ...] = tuple(e.path for e in self.index.entries) if self.index is not None else ()
        self.vehicle = vehicle
        self.reserve_soc_pct = reserve_soc_pct
        self.aliases: dict[str, str] = {}
        for scene in self.scenes.values():
            for word in (scene.name, *scene.aliases, scene.title.lower(), scene.title_zh):
                if word:
                    self.aliases.setdefault(word, scene.name)

    def conversation(self) -> Conversation:
        """A conversation with the assistant: what one turn said carries to the next."""
        return Conversation(self)

    def understand(self, text: str) -> Parse:
        return understand(text, self.aliases)

    def answer(self, text: str, values: Mapping[str, Value | None], context: Context | None = None) -> Answer:
        """Intent, actions and reply for ``text`` given the car's current ``values`` (every signal it may name);
        ``context``: what the conversation's last turn left (``Answer.context``)."""
        parse = self.understand(text)
        t = normalize(text)
        act_kind = speech_act(t)
        if act_kind in ("negation", "hypothetical", "reported"):
            return Answer("unknown", [], not_understood(act_kind == "negation", parse.lang == "zh"), parse.slots,
                          parse.lang, kind="none")
        if self.index is not None:
            grounded = self._grounded(t, parse, act_kind, values, context)
            if grounded is not None:
                return grounded
        if act_kind == "question" and not parse.intent.startswith("ask_"):
            return Answer("unknown", [], not_understood(False, parse.lang == "zh"), parse.slots, parse.lang,
                          kind="none")
        return self._by_intent(parse, values)

    def _grounded(self, t: str, parse: Parse, act_kind: str, values: Mapping[str, Value | None],
                  context: Context | None) -> Answer | None:
        """The answer from the signals ``t`` names, or None to answer by the intents."""
        assert self.index is not None
        zh = parse.lang == "zh"
        if act_kind == "question":
            if parse.intent in FORECAST_QUESTIONS or (parse.intent == "ask_range" and parse.slots.get("value")):
                return None
            t = _asked(t)
            return self._question(t, parse, Request.of(t), self.index.lexicon.scan(t), values)
        if parse.intent in BY_INTENT:
            return None
        request, mentions = self._main_clause(t)
        switched_on = request.empty and POLITE.search(t) is not None  # "high beams please": a switch, on

        def asked(entry: Entry, request: Request) -> Request:
            return replace(request, verb="on") if switched_on and entry.signal.datatype.value == "boolean" else request

        def fits(entry: Entry, request: Request) -> bool:
            if request.number is not None and request.unit != "level" and entry.signal.datatype.value in (
                    "boolean", "string"):
                return False  # a number said is a number's
            return _served(entry, values) and target(entry, asked(entry, request), values) is not None

        def grounded(mentions: Mentions, request: Request) -> Grounding:
            assert self.index is not None
            switch = request.verb in ("on", "off", "open", "close")  # the reading light's switch, not its brightness
            vertical = request.direction != 0 and VERTICAL.search(request.text) is not None  # the headrest's height
            by_own_name = bool(mentions.concepts)  # a value's own name ("up") picks a signal only of a part named
            return self.index.ground(mentions, actuators=True, wanted=lambda e: fits(e, request),
                                     named=lambda e: names_value(e, request, by_own_name),
                                     favour=lambda e: (switch and e.signal.datatype.value == "boolean") or (
                                         vertical and e.name == "Height"))

        if not mentions.concepts and parse.intent in UNNAMED:
            return None  # "mute", "pause": the media player's, by the intents
        # a value named with no part ("skip this one", "USB") is its signal's, whatever came before
        grounding = grounded(mentions, request) if not mentions.concepts else Grounding()
        if not grounding.entries:
            if context is not None and (context.pending or not mentions.concepts or request.empty):
                mentions, request = context.follow(mentions, request)
            elif not mentions.concepts and parse.intent in ("temp_up", "temp_down") and WARMTH.search(t):
                mentions = Mentions(frozenset({"temperature"}), mentions.zones, mentions.all)
                request = replace(request, direction=request.direction or (1 if parse.intent == "temp_up" else -1))
            grounding = grounded(mentions, request)
        if grounding.ambiguous and context is not None and not context.pending:
            # a function of the part the last turn was about ("再暗一点" after the ambient light)
            part = context.mentions.concepts & self.index.lexicon.parts
            if part and not mentions.concepts & self.index.lexicon.parts:
                narrowed = replace(mentions, concepts=mentions.concepts | part,
                                   zones=mentions.zones or context.mentions.zones)
                if (then := grounded(narrowed, request)).entries:
                    mentions, grounding = narrowed, then
        if not mentions.concepts and (grounding.ambiguous or not grounding.entries):  # no part, no value named
            if request.empty:
                return None
            return self._clarify(Grounding(), parse, mentions, request)  # "turn it up": what?
        if grounding.ambiguous:
            return self._clarify(grounding, parse, mentions, request)
        if not grounding.entries:
            if parse.intent in UNNAMED:
                return None
            options = self.index.choices(mentions, actuators=True, wanted=lambda e: _served(e, values))
            modes = [o for o in options if o.signal.allowed]
            if modes and not request.empty and request.number is None:  # "turn on the wipers": which mode?
                return self._clarify(Grounding(), parse, mentions, request, values_of=modes[0])
            if request.empty:  # a part named, nothing asked of it ("move the seat"): what of it?
                return self._clarify(Grounding(ambiguous="thing", options=tuple(options)), parse, mentions, request)
            return Answer("unknown", [], not_understood(False, zh), parse.slots, parse.lang, kind="none")
        actions = {e.path: target(e, asked(e, request), values) for e in grounding.entries}
        refusal = self._interlock(actions, values, zh)
        context = Context(mentions, request)
        if refusal:
            return Answer("refused", [], refusal, parse.slots, parse.lang, kind="refused", context=context)
        names = {e.path: self.index.lexicon.describe(e.path, zh, actions[e.path]) for e in grounding.entries}
        units = {e.path: e.signal.unit for e in grounding.entries}
        return Answer("set", [{"path": p, "value": v} for p, v in actions.items() if v is not None],
                      said(actions, names, units, zh), parse.slots, parse.lang, context=context)

    def _main_clause(self, text: str) -> tuple[Request, Mentions]:
        """The request and what it names, of the one clause that asks something of a part ("turn the fan down,
        it's kinda loud": the first; with the parts and zones the others name), else of the whole text."""
        assert self.index is not None
        clauses = [c for c in CLAUSE.split(text) if c.strip()]
        if len(clauses) > 1:
            asking = [(request, mentions) for c in clauses
                      if (mentions := self.index.lexicon.scan(c)).concepts and not (request := Request.of(c)).empty]
            if len(asking) == 1:  # the others may still name the part ("side mirrors are iced over, heat em up")
                request, mentions = asking[0]
                whole = self.index.lexicon.scan(text)
                return request, replace(whole, concepts=mentions.concepts | (whole.concepts & self.index.lexicon.parts))
        return Request.of(text), self.index.lexicon.scan(text)

    def _clarify(self, grounding: Grounding, parse: Parse, mentions: Mentions, request: Request,
                 values_of: Entry | None = None) -> Answer:
        """One question back: which of ``grounding``'s options, or which of the values of ``values_of``."""
        zh = parse.lang == "zh"
        assert self.index is not None
        zoned = grounding.ambiguous == "zone"
        options = [self.index.lexicon.describe(e.path, zh, zoned=zoned) for e in grounding.options]
        if len(set(options)) < len({e.key for e in grounding.options}):  # two parts of one name: name them whole
            options = [self.index.lexicon.describe(e.path, zh, zoned=zoned, whole=True) for e in grounding.options]
        if values_of is not None:
            skipped = ("INACTIVE", "UNDEFINED", "OFF" if request.verb == "on" else "")
            options = [value_text(values_of.path, v, None, zh) for v in values_of.signal.allowed or ()
                       if v not in skipped]
        return Answer("clarify", [], which(options, zh), parse.slots, parse.lang, kind="clarify",
                      context=Context(mentions, request, pending=True))

    def _question(self, t: str, parse: Parse, request: Request, mentions: Mentions,
                  values: Mapping[str, Value | None]) -> Answer | None:
        assert self.index is not None
        zh = parse.lang == "zh"
        wh = is_wh(t)  # "what's the cruise set to": a value, not a state; "is the window open": a state

        def answerable(entry: Entry, states: bool = not wh) -> bool:
            return _served(entry, values) and (states or entry.signal.datatype.value != "boolean")

        grounding = self.index.ground(mentions, actuators=False, wanted=answerable,
                                      favour=lambda e: e.signal.datatype.value == "boolean")
        if wh and not (grounding.entries or grounding.options):
            grounding = self.index.ground(mentions, actuators=False, wanted=lambda e: answerable(e, True))
        # a question that fits a few signals as well is answered with each ("is cruise control on": enabled, active)
        entries = grounding.entries or (grounding.options if grounding.ambiguous == "zone" or
                                        len({e.key for e in grounding.options}) <= 3 else ())
        if not entries:
            return None
        asked = tuple(e.path for e in entries)
        yes = None if wh else truth(entries, request, values)
        items = [(self.index.lexicon.describe(e.path, zh), value_text(e.path, values.get(e.path), e.signal.unit, zh))
                 for e in entries]
        return Answer("question", [], answered(items, yes, zh), parse.slots, parse.lang,
                      kind="question", asked=asked, truth=yes, context=Context(mentions, request))

    def _interlock(self, actions: Mapping[str, Value | None], values: Mapping[str, Value | None], zh: bool
                   ) -> str | None:
        """Why the car will not do this now (what opens a door, the trunk or the hood while it moves; a seat
        reclined while driving), or None."""
        moving = _moving(values)
        if moving is None:
            return None
        for path, value in actions.items():
            opens = OPENINGS.fullmatch(path) and value not in (False, 0, "CLOSE", "ONE_SHOT_CLOSE")
            if opens or (path.endswith("Backrest.Recline")):
                return ("车辆行驶中，不能这样做，请先停车。" if zh else
                        f"I can't do that while driving: {moving}. Please park first.")
        return None

    def _by_intent(self, parse: Parse, values: Mapping[str, Value | None]) -> Answer:
        """The answer by the intents of ``_nlu`` (scenes, their forecasts, and what no single signal says)."""
        zh = parse.lang == "zh"

        def says(actions: Mapping[str, Value], reply: str, kind: str = "command") -> Answer:
            return Answer(parse.intent, [{"path": p, "value": v} for p, v in actions.items()], reply, parse.slots,
                          parse.lang, kind=kind, asked=ASKED.get(parse.intent, ()) if kind == "question" else ())

        if parse.intent.startswith("ask_"):
            return says({}, self._reply_question(parse, values, zh), "question")
        if parse.intent == "unknown":
            return says({}, not_understood(bool(parse.slots.get("negated")), zh), "none")
        refusal = self._refusal(parse, values, zh)
        if refusal:
            return says({}, refusal, "refused")
        actions = self.actions(parse, values)
        return says(actions, confirm(parse.intent, actions, zh, self._scene_words(parse, values, zh)))

    def _title(self, name: str, zh: bool) -> str:
        """The scene's title as said inside a sentence ("cinema", "影院")."""
        scene = self.scenes.get(name)
        if scene is None:
            return name
        return (scene.title_zh or scene.title) if zh else scene.title[:1].lower() + scene.title[1:]

    def _scene_words(self, parse: Parse, values: Mapping[str, Value | None], zh: bool) -> dict[str, str]:
        """The scene and forecast words of the scene replies ("Starting cinema mode: about 6 h 20 min to 20 %")."""
        if parse.intent == "scene_exit":
            active = values.get(SCENE)
            if not isinstance(active, str) or active == "NONE" or active not in self.scenes:
                return {}
            return {"scene": f"{self._title(active, zh)}模式" if zh else f"{self._title(active, zh)} mode"}
        scene = self.scenes.get(parse.slots.get("scene", ""))
        if parse.intent != "scene_enter" or scene is None:
            return {}
        words = {"scene": self._title(scene.name, zh)}
        if self.vehicle is not None:
            reserve = self._reserve(scene)
            runtime = duration_text(forecast(self.vehicle(), scene, values, reserve).runtime_s, zh)
            words["forecast"] = (f"，预计可用约{runtime}（到{reserve:.0f}%电量）" if zh else
                                 f": about {runtime} to {reserve:.0f} %")
        return words

    def _reserve(self, scene: Scene) -> float:
        return scene.reserve_pct(self.reserve_soc_pct)

    def _refusal(self, parse: Parse, values: Mapping[str, Value | None], zh: bool) -> str | None:
        """Why the assistant will not do this (safety: parked-only requests while driving; a partial sunroof
        request the car cannot carry out), or None."""
        moving = _moving(values)
        scene = self.scenes.get(parse.slots.get("scene", ""))
        partly = any(parse.slots.get(k) for k in ("a_bit", "half")) or parse.slots.get("unit") == "%"
        if parse.intent.startswith("sunroof_") and partly:  # VSS 6.0's sunroof has a switch but no position to set
            return ("天窗只能全开或全关，要关闭请说“关闭天窗”。" if zh else
                    "The sunroof only opens or closes all the way; say \"close the sunroof\" to close it.")
        if moving is not None and parse.intent == "seat_recline":
            return ("行驶中不能放倒座椅，请先停车。" if zh else
                    f"I can't recline the seat while driving: {moving}. Please park first.")
        if parse.intent != "scene_enter" or scene is None:
            return None
        title = self._title(scene.name, zh)
        if moving is not None and scene.requires_parked:
            return f"{title}模式需要先停车。" if zh else f"{scene.title} mode needs the car parked: {moving}."
        soc = _number(values, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", math.nan)
        reserve = self._reserve(scene)
        if soc <= reserve:
            return (f"电量只剩{soc:.0f}%，已到{reserve:.0f}%的保留电量，不能开启{title}模式。" if zh else
                    f"I can't start {title} mode: the battery is at {soc:.0f} %, at or below the {reserve:.0f} % "
                    "reserve.")
        return None

    def actions(self, parse: Parse, values: Mapping[str, Value | None]) -> dict[str, Value]:
        """The VSS requests of an action intent (tabled in docs/cabin.md)."""
        s, i = parse.slots, parse.intent
        zone = s.get("zone")
        if i in ("climate_on", "climate_off"):
            return {AC_ON: i == "climate_on"}
        if i == "temp_set" and "value" in s:
            return {**{f"{STATION}.{z}.Temperature": _clamp(_celsius(s), 16, 30) for z in _stations(zone)},
                    AC_ON: True}
        if i in ("temp_up", "temp_down"):
            sign = 1 if i == "temp_up" else -1
            delta = _delta(s, STEP_C)
            return {**{f"{STATION}.{z}.Temperature":
                       _clamp(_number(values, f"{STATION}.{z}.Temperature", 21.0) + sign * delta, 16, 30)
                       for z in _stations(zone)}, AC_ON: True}
        if i in ("fan_set", "fan_up", "fan_down"):
            return {f"{STATION}.{z}.FanSpeed": self._fan(i, s, _number(values, f"{STATION}.{z}.FanSpeed", 0))
                    for z in _stations(zone)}
        if i in ("defrost_on", "defrost_off"):
            where = "Rear" if zone == "rear" or "rear" in parse.text.lower() or "后" in parse.text else "Front"
            return {f"{HVAC}.Is{where}DefrosterActive": i == "defrost_on"}
        if i in ("recirc_on", "recirc_off"):
            return {f"{HVAC}.IsRecirculationActive": i == "recirc_on"}
        if i in ("seat_heat_on", "seat_vent_on"):
            level = s.get("level") or HEAT_DEFAULT
            return {f"{SEAT}.{_seat(zone)}.HeatingCooling": level if i == "seat_heat_on" else -level}
        if i in ("seat_heat_off", "seat_vent_off"):
            return {f"{SEAT}.{_seat(zone)}.HeatingCooling": 0}
        if i in ("massage_on", "massage_off"):
            level = int(_clamp(s["value"], 0, 100)) if i == "massage_on" and s.get("unit") == "%" else MASSAGE_DEFAULT
            return {f"{SEAT}.{_seat(zone)}.Massage.Level": level if i == "massage_on" else 0}
        if i == "seat_recline":
            path = f"{SEAT}.{_seat(zone)}.Backrest.Recline"
            if "value" in s and s.get("unit") in ("c", ""):
                angle = float(s["value"])
            elif s.get("a_bit") or "more" in parse.text.lower() or "再" in parse.text:
                angle = _number(values, path, UPRIGHT_DEG) + STEP_RECLINE
            else:
                angle = RECLINED_DEG
            return {path: _clamp(angle, -10, 60)}
        if i == "seat_upright":
            return {f"{SEAT}.{_seat(zone)}.Backrest.Recline": UPRIGHT_DEG}
        if i == "window_open":
            pct = (int(_clamp(s["value"], 0, 100)) if s.get("unit") == "%" else 50 if s.get("half")
                   else CRACK_PCT if s.get("a_bit") else 100)
            return {f"{DOOR}.{w}.Window.Position": pct for w in _windows(zone)}
        if i == "window_close":  # "close halfway": half open; "close a bit": a crack less open than now
            paths = [f"{DOOR}.{w}.Window.Position" for w in _windows(zone)]
            if s.get("half"):
                return dict.fromkeys(paths, 50)
            if s.get("a_bit"):
                return {p: int(_clamp(_number(values, p, 100) - CRACK_PCT, 0, 100)) for p in paths}
            return dict.fromkeys(paths, 0)
        simple: dict[str, dict[str, Value]] = {
            "sunroof_open": {"Vehicle.Cabin.Sunroof.Switch": "OPEN"},
            "sunroof_close": {"Vehicle.Cabin.Sunroof.Switch": "CLOSE"},
            "sunshade_open": {"Vehicle.Cabin.Sunroof.Shade.IsOpen": True},
            "sunshade_close": {"Vehicle.Cabin.Sunroof.Shade.IsOpen": False},
            "lock": {f"{DOOR}.{w}.IsLocked": True for w in _windows(None)},
            "unlock": {f"{DOOR}.{w}.IsLocked": False for w in _windows(None)},
            "dome_on": {f"{LIGHT}.IsDomeOn": True}, "dome_off": {f"{LIGHT}.IsDomeOn": False},
            "ambient_on": {f"{LIGHT}.AmbientLight.Row1.{x}.IsLightOn": True for x in ("DriverSide", "PassengerSide")},
            "ambient_off": {f"{LIGHT}.AmbientLight.Row1.{x}.IsLightOn": False for x in ("DriverSide", "PassengerSide")},
            "screen_night": {f"{HMI}.DayNightMode": "NIGHT"}, "screen_day": {f"{HMI}.DayNightMode": "DAY"},
            "media_play": {f"{MEDIA}.Action": "PLAY"}, "media_pause": {f"{MEDIA}.Action": "STOP"},
            "media_next": {f"{MEDIA}.Action": "SKIP_FORWARD"}, "media_previous": {f"{MEDIA}.Action": "SKIP_BACKWARD"},
            "mute": {f"{MEDIA}.Volume": 0},
            "scene_exit": {SCENE: "NONE"},
            "charge_start": {f"{CHG}.StartStopCharging": "START"}, "charge_stop": {f"{CHG}.StartStopCharging": "STOP"},
            "battery_warm": {CONDITIONING: "FAST_CHARGING_PREPARATION"}, "battery_warm_off": {CONDITIONING: "INACTIVE"},
            "dnd_on": {"Vehicle.Evos.Cabin.DoNotDisturb": True}, "dnd_off": {"Vehicle.Evos.Cabin.DoNotDisturb": False},
            "hotspot_on": {"Vehicle.Evos.Cabin.Hotspot.IsEnabled": True},
            "hotspot_off": {"Vehicle.Evos.Cabin.Hotspot.IsEnabled": False},
        }
        if i in simple:
            return simple[i]
        if i == "ambient_color":
            return {**{f"{LIGHT}.AmbientLight.Row1.{x}.Color": s["colour"] for x in ("DriverSide", "PassengerSide")},
                    **simple["ambient_on"]}
        if i == "screen_brightness" and "value" in s:
            return {f"{HMI}.Brightness": _clamp(float(s["value"]), 0, 100)}
        if i in ("screen_dim", "screen_bright"):
            current = _number(values, f"{HMI}.Brightness", 70)
            step = STEP_BRIGHTNESS if i == "screen_bright" else -STEP_BRIGHTNESS
            return {f"{HMI}.Brightness": _clamp(current + step, MIN_DIMMED_PCT, 100)}
        if i in ("volume_set", "volume_up", "volume_down"):
            current = _number(values, f"{MEDIA}.Volume", 30)
            if i == "volume_set":
                target = float(s["value"]) if "value" in s else 0 if s.get("min") else 100  # "to the max"
            else:
                target = current + (STEP_VOLUME if i == "volume_up" else -STEP_VOLUME)
            return {f"{MEDIA}.Volume": int(_clamp(target, 0, 100))}
        if i == "scene_enter" and "scene" in s:
            return {SCENE: s["scene"]}
        if i == "charge_limit":
            limit = 100 if s.get("full") and "value" not in s else s.get("value", 100)
            return {f"{CHG}.ChargeLimit": int(_clamp(float(limit), 50, 100))}
        if i in ("cruise_set", "cruise_up", "cruise_down") and ("value" in s or i != "cruise_set"):
            return {SPEED_SET: self._cruise(i, s, values)}
        return {}

    @staticmethod
    def _fan(intent: str, slots: Mapping[str, Any], current: float) -> int:
        if intent == "fan_set":
            if "value" not in slots:  # "max" / "minimum" / 最小 / "turn the fan off"
                return 0 if slots.get("min") or (slots.get("off") and not slots.get("max")) else 100
            value = float(slots["value"])
            if slots.get("unit") == "level" or (slots.get("unit") != "%" and value <= 10):
                value *= 10  # ten fan levels
            return int(_clamp(value, 0, 100))
        return int(_clamp(current + (STEP_FAN if intent == "fan_up" else -STEP_FAN), 0, 100))

    @staticmethod
    def _cruise(intent: str, slots: Mapping[str, Any], values: Mapping[str, Value | None]) -> float:
        value = slots.get("value")
        kmh = float(value) * 1.609344 if value is not None and slots.get("unit") == "mph" else value
        if intent == "cruise_set":
            return float(round(_clamp(float(kmh or 0), 30, 180)))
        current = _number(values, SPEED_SET, _number(values, "Vehicle.Speed", 0))
        delta = float(kmh) if kmh else STEP_KMH
        return float(round(_clamp(current + (delta if intent == "cruise_up" else -delta), 30, 180)))

    def _reply_question(self, parse: Parse, values: Mapping[str, Value | None], zh: bool) -> str:
        i = parse.intent
        na = "暂时读不到这个数据。" if zh else "I can't read that right now."
        if i == "ask_range":
            range_m = values.get("Vehicle.Powertrain.Range")
            if not isinstance(range_m, int | float):
                return na
            km = float(range_m) / 1000
            if parse.slots.get("unit") == "kmh" or "make it" in parse.text.lower():
                wanted = float(parse.slots.get("value", 0))
                ok = km >= wanted
                return (f"续航还有{km:.0f}公里，{'够' if ok else '不够'}开{wanted:.0f}公里。" if zh else
                        f"You have {km:.0f} km of range, {'enough' if ok else 'not enough'} for {wanted:.0f} km.")
            return f"续航还有约{km:.0f}公里。" if zh else f"You can drive about {km:.0f} km."
        if i == "ask_soc":
            soc = _number(values, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", math.nan)
            return na if math.isnan(soc) else (f"电量还有{soc:.0f}%。" if zh else f"The battery is at {soc:.0f} %.")
        if i in ("ask_cabin_temp", "ask_outside_temp"):
            path = "Vehicle.Evos.Twin.CabinTemperature" if i == "ask_cabin_temp" else "Vehicle.Exterior.AirTemperature"
            temp = _number(values, path, math.nan)
            where = ("车内" if i == "ask_cabin_temp" else "车外") if zh else (
                "inside" if i == "ask_cabin_temp" else "outside")
            return na if math.isnan(temp) else (f"{where}温度{temp:.1f}°C。" if zh else f"It is {temp:.1f} °C {where}.")
        if i == "ask_tire_pressure":
            return _tyres(values, zh)
        if i == "ask_charge_time":
            if values.get(f"{CHG}.IsCharging") is not True:
                return "现在没有在充电。" if zh else "The car is not charging."
            left = duration_text(_number(values, f"{CHG}.TimeToComplete", 0), zh)
            return f"还需要{left}充到上限。" if zh else f"{left} to the charge limit."
        return self._reply_runtime(parse, values, zh, na)

    def _reply_runtime(self, parse: Parse, values: Mapping[str, Value | None], zh: bool, na: str) -> str:
        scene = self.scenes.get(parse.slots.get("scene", ""))
        if scene is None or self.vehicle is None:
            return na
        reserve = self._reserve(scene)
        duration = duration_text(forecast(self.vehicle(), scene, values, reserve).runtime_s, zh)
        title = (scene.title_zh or scene.title) if zh else scene.title
        return (f"{title}模式可以运行约{duration}（到{reserve:.0f}%电量）。" if zh else
                f"{title} mode can run for about {duration} (down to {reserve:.0f} %).")


@dataclass(frozen=True)
class Context:
    """What a turn leaves the next: the ``mentions`` and ``request`` it was, and whether the assistant asked back
    (``pending``)."""

    mentions: Mentions
    request: Request
    pending: bool = False

    def follow(self, mentions: Mentions, request: Request) -> tuple[Mentions, Request]:
        """A follow-up on this turn's: naming no part ("the passenger one", "a bit more", 副驾也开), or a part and
        nothing asked of it (the answer to "which one?"; "and the frunk")."""
        if mentions.concepts and not self.pending:
            merged = mentions  # another part, the same request
        else:  # the answer to "which one?" narrows what was asked; a follow-up's zones replace the last ones
            merged = self.mentions.merged(mentions, narrowed=self.pending)
        if self.pending or not (request.verb or request.direction or request.number is not None or
                                request.extreme):
            return merged, replace(self.request, **_said(request), text=f"{self.request.text}, {request.text}")
        if request.direction == 0 and re.search(r"\bmore\b|再|还", request.text) and self.request.verb == "open":
            request = replace(request, direction=1)
        return merged, request


def _said(request: Request) -> dict[str, Any]:
    """The fields a follow-up said itself (its verb, amount, number), to put on the request it completes."""
    fields: dict[str, Any] = {}
    if request.verb:
        fields["verb"] = request.verb
    if request.direction:
        fields["direction"] = request.direction
    if request.number is not None:
        fields["number"], fields["unit"] = request.number, request.unit
    if request.extreme:
        fields["extreme"] = request.extreme
    if request.a_bit:
        fields["a_bit"] = True
    if request.half:
        fields["half"] = True
    return fields


def _asked(text: str) -> str:
    """Of several sentences, the question ("is the back left door open? there's a warning light": the first)."""
    sentences = [s for s in SENTENCE.split(text) if s.strip()]
    return next((s for s in sentences if s.rstrip().endswith(("?", "？"))), text)


def _served(entry: Entry, values: Mapping[str, Value | None]) -> bool:
    """Whether the car has this signal: a value, and the seat it is of (see ``_fitted``)."""
    return values.get(entry.path) is not None and _fitted(entry, values)


def _fitted(entry: Entry, values: Mapping[str, Value | None]) -> bool:
    """Whether the car has the seat a signal is of, by its seats per row (``Vehicle.Cabin.SeatPosCount``: a
    car with two front seats has no front middle one, whatever the catalog serves)."""
    counts = values.get("Vehicle.Cabin.SeatPosCount")
    row = re.search(r"\.Seat\.Row(\d+)\.(\w+)", entry.path)
    if row is None or not isinstance(counts, list | tuple):
        return True
    index = int(row.group(1)) - 1
    if index >= len(counts):
        return False
    return row.group(2) != "Middle" or int(counts[index]) >= 3


def _moving(values: Mapping[str, Value | None]) -> str | None:
    """Why the car does not count as parked (moving, or in gear), from its values, or None."""
    speed, gear = values.get("Vehicle.Speed"), values.get("Vehicle.Powertrain.Transmission.SelectedGear")
    return not_parked_reason(Conditions(
        speed_kmh=float(speed) if isinstance(speed, int | float) else None,
        gear=int(gear) if isinstance(gear, int) and not isinstance(gear, bool) else None))


class Conversation:
    """Turns with the assistant, one after the other: a turn's context carries to the next (a clarifying
    question's answer completes the request; "a bit more" or "the passenger's too" follow the last one)."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.context: Context | None = None

    def answer(self, text: str, values: Mapping[str, Value | None]) -> Answer:
        answer = self.assistant.answer(text, values, self.context)
        if answer.context is not None or answer.kind != "question":
            self.context = answer.context
        return answer


TIRE_NAMES = (("front left", "左前"), ("front right", "右前"), ("rear left", "左后"), ("rear right", "右后"))


def _tyres(values: Mapping[str, Value | None], zh: bool) -> str:
    """The four tyre pressures, naming any below ``TIRE_LOW_KPA``."""
    pressures = [values.get(p) for p in TIRES]
    if not all(isinstance(p, int | float) for p in pressures):
        return "暂时读不到胎压。" if zh else "Tyre pressures are not available right now."
    kpa = [float(p) for p in pressures]  # type: ignore[arg-type]
    listed = ("、" if zh else ", ").join(f"{names[zh]} {p:.0f}" for names, p in zip(TIRE_NAMES, kpa, strict=True))
    low = [names[zh] for names, p in zip(TIRE_NAMES, kpa, strict=True) if p < TIRE_LOW_KPA]
    if zh:
        return f"胎压（kPa）：{listed}，{'、'.join(low) + '胎压偏低，请检查' if low else '都正常'}。"
    if not low:
        return f"Tyre pressures (kPa): {listed}; all fine."
    verb = "is" if len(low) == 1 else "are"
    return f"Tyre pressures (kPa): {listed}; the {' and '.join(low)} {verb} low, please check."


async def act(port: VehiclePort, answer: Answer) -> Answer:
    """Carry ``answer``'s actions out on the car (all or nothing); the answer as carried out (``Answer.refused``
    with the car's reason if the car refused)."""
    try:
        if answer.actions:
            await port.actuate({a["path"]: a["value"] for a in answer.actions})  # type: ignore[misc]
    except (RequestError, NoProviderError) as exc:
        return answer.refused(str(exc))
    return answer

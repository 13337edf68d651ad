"""What the assistant says after an action: one reply template per intent, in English and Chinese.

Pure. ``confirm(intent, actions, lang, extra)`` words the VSS requests an intent makes (``actions``) the way a
car's assistant speaks: "Setting the driver's side to 22 °C." / "好的，主驾温度已调到22度。". A reply never shows
VSS paths or intent ids. Templates take their fields from the requests themselves (the side, the value, the
amount), so the reply says exactly what was asked of the car; ``extra`` carries what the requests do not (the
scene's title and energy forecast, the scene being left).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evos.cabin._engine import format_duration
from evos.vss import Value

# intent -> (English, Chinese). Fields: {items} (see ITEMS), {where}, {seat}, {value}, {level}, {colour},
# {scene}, {forecast}. Chinese replies start with 好的 ("OK"), as Chinese car assistants do.
SENTENCES: dict[str, tuple[str, str]] = {
    "climate_on": ("Turning the air conditioning on.", "好的，空调已打开。"),
    "climate_off": ("Turning the air conditioning off.", "好的，空调已关闭。"),
    "temp_set": ("Setting {items}.", "好的，{items}。"),
    "temp_up": ("Warming {items}.", "好的，{items}。"),
    "temp_down": ("Cooling {items}.", "好的，{items}。"),
    "fan_set": ("Setting the fan to {items}.", "好的，{items}。"),
    "fan_up": ("Turning the fan up to {items}.", "好的，{items}。"),
    "fan_down": ("Turning the fan down to {items}.", "好的，{items}。"),
    "defrost_on": ("Turning the {where} defroster on.", "好的，{where}除雾已打开。"),
    "defrost_off": ("Turning the {where} defroster off.", "好的，{where}除雾已关闭。"),
    "recirc_on": ("Recirculating the cabin air.", "好的，已切换到内循环。"),
    "recirc_off": ("Bringing in fresh air from outside.", "好的，已切换到外循环。"),
    "seat_heat_on": ("Heating {seat} ({level}).", "好的，{seat}加热已打开（{level}）。"),
    "seat_heat_off": ("Turning the heating of {seat} off.", "好的，{seat}加热已关闭。"),
    "seat_vent_on": ("Ventilating {seat} ({level}).", "好的，{seat}通风已打开（{level}）。"),
    "seat_vent_off": ("Turning the ventilation of {seat} off.", "好的，{seat}通风已关闭。"),
    "massage_on": ("Starting the massage in {seat}.", "好的，{seat}按摩已开启。"),
    "massage_off": ("Stopping the massage in {seat}.", "好的，{seat}按摩已关闭。"),
    "seat_recline": ("Reclining {seat} to {value}.", "好的，{seat}靠背已调到{value}。"),
    "seat_upright": ("Bringing {seat} upright.", "好的，{seat}已调直。"),
    "window_open": ("Opening {where}{amount}.", "好的，{where}已打开{amount}。"),
    "window_close": ("Closing {where}.", "好的，{where}已关闭。"),
    "window_close_part": ("Closing {where} {part}.", "好的，{where}已关到{part}。"),  # "close halfway"
    "sunroof_open": ("Opening the sunroof.", "好的，天窗已打开。"),
    "sunroof_close": ("Closing the sunroof.", "好的，天窗已关闭。"),
    "sunshade_open": ("Opening the sunshade.", "好的，遮阳帘已打开。"),
    "sunshade_close": ("Closing the sunshade.", "好的，遮阳帘已关闭。"),
    "lock": ("Locking the doors.", "好的，车门已上锁。"),
    "unlock": ("Unlocking the doors.", "好的，车门已解锁。"),
    "dome_on": ("Turning the dome light on.", "好的，顶灯已打开。"),
    "dome_off": ("Turning the dome light off.", "好的，顶灯已关闭。"),
    "ambient_on": ("Turning the ambient lights on.", "好的，氛围灯已打开。"),
    "ambient_off": ("Turning the ambient lights off.", "好的，氛围灯已关闭。"),
    "ambient_color": ("Setting the ambient lights to {colour}.", "好的，氛围灯已调成{colour}。"),
    "screen_brightness": ("Setting the screen brightness to {value}.", "好的，屏幕亮度已调到{value}。"),
    "screen_dim": ("Dimming the screen to {value}.", "好的，屏幕已调暗到{value}。"),
    "screen_bright": ("Brightening the screen to {value}.", "好的，屏幕已调亮到{value}。"),
    "screen_night": ("Switching the screen to night mode.", "好的，屏幕已切换到夜间模式。"),
    "screen_day": ("Switching the screen to day mode.", "好的，屏幕已切换到日间模式。"),
    "media_play": ("Playing your music.", "好的，开始播放。"),
    "media_pause": ("Pausing the music.", "好的，已暂停播放。"),
    "media_next": ("Skipping to the next track.", "好的，下一首。"),
    "media_previous": ("Going back to the previous track.", "好的，上一首。"),
    "volume_set": ("Setting the volume to {value}.", "好的，音量已调到{value}。"),
    "volume_up": ("Turning the volume up to {value}.", "好的，音量已调大到{value}。"),
    "volume_down": ("Turning the volume down to {value}.", "好的，音量已调小到{value}。"),
    "mute": ("Muting the sound.", "好的，已静音。"),
    "scene_enter": ("Starting {scene} mode{forecast}.", "好的，{scene}模式已开启{forecast}。"),
    "scene_exit": ("Leaving {scene} and restoring the cabin.", "好的，已退出{scene}，车内设置已恢复。"),
    "charge_limit": ("Charging to {value}.", "好的，充电上限已设为{value}。"),
    "charge_start": ("Starting to charge.", "好的，开始充电。"),
    "charge_stop": ("Stopping the charging.", "好的，已停止充电。"),
    "battery_warm": ("Warming the battery for fast charging.", "好的，开始为快充预热电池。"),
    "battery_warm_off": ("Stopping the battery warming.", "好的，已停止电池预热。"),
    "cruise_set": ("Setting the cruise speed to {value}.", "好的，巡航车速已设为{value}。"),
    "cruise_up": ("Raising the cruise speed to {value}.", "好的，巡航车速已提高到{value}。"),
    "cruise_down": ("Lowering the cruise speed to {value}.", "好的，巡航车速已降低到{value}。"),
    "dnd_on": ("Do not disturb is on: I'll hold your notifications.", "好的，勿扰模式已打开。"),
    "dnd_off": ("Do not disturb is off.", "好的，勿扰模式已关闭。"),
    "hotspot_on": ("Turning the Wi-Fi hotspot on.", "好的，热点已打开。"),
    "hotspot_off": ("Turning the Wi-Fi hotspot off.", "好的，热点已关闭。"),
}
# Intents whose requests may differ per climate zone ("warmer" from 21 °C on one side, 23 °C on the other):
# one {items} fragment per group of zones that get the same value.
ITEMS: dict[str, tuple[str, str]] = {
    "temp_set": ("{where} to {value}", "{where}温度已调到{value}"),
    "temp_up": ("{where} up to {value}", "{where}温度已调高到{value}"),
    "temp_down": ("{where} down to {value}", "{where}温度已调低到{value}"),
    "fan_set": ("{value}{where_suffix}", "{where}风量已调到{value}"),
    "fan_up": ("{value}{where_suffix}", "{where}风量已调大到{value}"),
    "fan_down": ("{value}{where_suffix}", "{where}风量已调小到{value}"),
}
UNITS = {  # request path ending -> (English, Chinese) format of its value
    "Temperature": ("{:g} °C", "{:g}度"), "FanSpeed": ("{:g} %", "{:g}%"), "Recline": ("{:g}°", "{:g}度"),
    "Brightness": ("{:g} %", "{:g}%"), "Volume": ("{:g} %", "{:g}%"), "ChargeLimit": ("{:g} %", "{:g}%"),
    "SpeedSet": ("{:g} km/h", "{:g}公里/小时"), "Position": ("{:g} %", "{:g}%"),
}
ZONES = {  # climate stations
    frozenset({"Driver"}): ("the driver's side", "主驾"), frozenset({"Passenger"}): ("the passenger side", "副驾"),
    frozenset({"Driver", "Passenger"}): ("both sides", "主副驾"),
}
SEATS = {"DriverSide": ("the driver's seat", "主驾座椅"), "PassengerSide": ("the passenger seat", "副驾座椅")}
WINDOWS = {
    frozenset({"Row1.DriverSide"}): ("the driver's window", "主驾车窗"),
    frozenset({"Row1.PassengerSide"}): ("the passenger window", "副驾车窗"),
    frozenset({"Row2.DriverSide", "Row2.PassengerSide"}): ("the rear windows", "后排车窗"),
}
LEVELS = {33: ("low", "低档"), 67: ("medium", "中档"), 100: ("high", "高档")}
COLOUR_NAMES = {
    "#FF0000": ("red", "红色"), "#0000FF": ("blue", "蓝色"), "#008000": ("green", "绿色"),
    "#800080": ("purple", "紫色"), "#FFFFFF": ("white", "白色"), "#FFA500": ("orange", "橙色"),
    "#FFFF00": ("yellow", "黄色"), "#FFC0CB": ("pink", "粉色"), "#00FFFF": ("cyan", "青色"),
    "#FFD700": ("gold", "金色"),
}
NO_VALUE = ("Sorry, I didn't catch the value.", "抱歉，我没听清具体数值。")
UNKNOWN = ("Sorry, I can't do that.", "抱歉，这个我做不到。")
NOT_DOING = ("OK, I'll leave it as it is.", "好的，保持不变。")  # a negated request: "don't open the windows"
REFUSED = ("Sorry, I can't do that: {reason}.", "抱歉，这个现在做不到：{reason}。")


def _pick(pair: tuple[str, str], zh: bool) -> str:
    return pair[1] if zh else pair[0]


def _value(path: str, value: Value, zh: bool) -> str:
    unit = UNITS.get(path.rsplit(".", 1)[-1])
    if unit is None or not isinstance(value, int | float):
        return str(value)
    return _pick(unit, zh).format(round(float(value), 1))


def _part(path: str, level: int) -> str:
    """The ``level``-th path element from the end: _part('A.B.C.D', 2) == 'C'."""
    return path.split(".")[-level]


def _items(intent: str, actions: Mapping[str, Value], zh: bool) -> str:
    """One fragment per group of climate zones that get the same value."""
    key = "Temperature" if intent.startswith("temp") else "FanSpeed"
    groups: dict[Value, set[str]] = {}
    for path, value in actions.items():
        if path.endswith(key):
            groups.setdefault(value, set()).add(_part(path, 2))
    fragments = []
    for value, zones in groups.items():
        where = _pick(ZONES[frozenset(zones)], zh)
        both_fans = key == "FanSpeed" and len(zones) == 2  # "the fan", not "both sides' fans"
        fragments.append(_pick(ITEMS[intent], zh).format(
            where="" if both_fans else where, value=_value(key, value, zh),
            where_suffix="" if len(zones) == 2 else f" on {where}"))
    return ("，" if zh else " and ").join(fragments)


def _window_fields(actions: Mapping[str, Value], zh: bool) -> dict[str, str]:
    windows = frozenset(".".join(p.split(".")[-4:-2]) for p in actions)
    where = _pick(WINDOWS.get(windows, ("the windows", "车窗")), zh)
    pct = next(iter(actions.values()))
    amounts = {20: ("a little", "一点"), 50: ("halfway", "一半"), 100: ("", "")}
    if isinstance(pct, int | float) and int(pct) in amounts:
        amount = _pick(amounts[int(pct)], zh)
    else:
        amount = f"到{pct}%" if zh else f"to {pct} %"
    part = _pick(("halfway", "一半"), zh) if pct == 50 else f"{pct}%" if zh else f"to {pct} % open"
    return {"where": where, "amount": f" {amount}" if amount and not zh else amount, "part": part}


def _fields(intent: str, actions: Mapping[str, Value], zh: bool, extra: Mapping[str, Any]) -> dict[str, str]:
    """The template fields of ``intent`` from its requests (``actions``) and ``extra``."""
    path, value = next(iter(actions.items()))
    fields: dict[str, str] = {"value": _value(path, value, zh)}
    if intent in ITEMS:
        fields["items"] = _items(intent, actions, zh)
    if intent.startswith("window_"):
        fields.update(_window_fields(actions, zh))
    if intent.startswith("defrost_"):
        fields["where"] = ("后窗" if zh else "rear") if "Rear" in path else ("前挡" if zh else "windscreen")
    if path.startswith("Vehicle.Cabin.Seat."):
        fields["seat"] = _pick(SEATS[_part(path, 3 if "Backrest" in path or "Massage" in path else 2)], zh)
        if isinstance(value, int | float):
            level = abs(int(value))
            fields["level"] = _pick(LEVELS[level], zh) if level in LEVELS else f"{level}%" if zh else f"{level} %"
    if intent == "ambient_color":
        fields["colour"] = _pick(COLOUR_NAMES.get(str(value).upper(), (str(value), str(value))), zh)
    if intent.startswith("scene_"):
        fields["scene"] = str(extra.get("scene") or ("当前模式" if zh else "the scene"))
        fields["forecast"] = str(extra.get("forecast") or "")
    return fields


def confirm(intent: str, actions: Mapping[str, Value], zh: bool, extra: Mapping[str, Any] | None = None) -> str:
    """The reply to an action intent whose VSS requests are ``actions`` (in Chinese if ``zh``)."""
    if not actions:
        return _pick(NO_VALUE, zh)
    partly_closed = intent == "window_close" and any(v != 0 for v in actions.values())
    template = _pick(SENTENCES["window_close_part" if partly_closed else intent], zh)
    return template.format(**_fields(intent, actions, zh, extra or {}))


def not_understood(negated: bool, zh: bool) -> str:
    """The reply to a request the assistant does not act on: unknown, or negated ("don't open the windows")."""
    return _pick(NOT_DOING if negated else UNKNOWN, zh)


def refused(reason: str, zh: bool) -> str:
    """The reply when the car refused the requests (``reason``: the car's message)."""
    return _pick(REFUSED, zh).format(reason=reason.rstrip("."))


def duration_text(seconds: float, zh: bool) -> str:
    """'6 h 20 min' / '6小时20分钟' (rounded down to the minute)."""
    if not zh:
        return format_duration(seconds)
    hours, minutes = divmod(int(max(seconds, 0) // 60), 60)
    return f"{hours}小时{minutes}分钟" if hours else f"{minutes}分钟"


# ---- replies about signals (the assistant grounded in the catalog) ------------------------------------------------
SIGNAL_UNITS = {"percent": " %", "celsius": " °C", "km/h": " km/h", "s": " s", "mm": " mm", "degrees": "°",
                "kwh": " kWh", "kw": " kW", "v": " V", "a": " A", "rpm": " rpm", "kg": " kg", "kpa": " kPa",
                "ms": " ms"}
BOOLEANS = {"IsOpen": (("closed", "open"), ("关闭", "打开")), "IsLocked": (("unlocked", "locked"), ("解锁", "锁上")),
            "IsFolded": (("unfolded", "folded"), ("展开", "折叠"))}


def value_text(path: str, value: Value | None, unit: str | None, zh: bool) -> str:
    """A signal's value as said: units named, metres as km, watts as kW, booleans as words."""
    if value is None:
        return "不知道" if zh else "unknown"
    if isinstance(value, bool):
        words = BOOLEANS.get(path.rsplit(".", 1)[-1], (("off", "on"), ("关", "开")))
        return words[zh][value]
    if isinstance(value, int | float):
        unit = (unit or "").lower()
        if unit == "m":
            return f"{value / 1000:.0f} km" if not zh else f"{value / 1000:.0f}公里"
        if unit == "w":
            return f"{value / 1000:.1f} kW"
        if unit == "s" and value >= 120:
            return duration_text(float(value), zh)
        return f"{value:g}{SIGNAL_UNITS.get(unit, '')}"
    return str(value).lower().replace("_", " ")


def said(actions: Mapping[str, Value | None], names: Mapping[str, str], units: Mapping[str, str | None],
         zh: bool) -> str:
    """The reply to actions on signals: "OK: front passenger window 100 %." (``names``: each path's name)."""
    items = [f"{names[p]}{'' if zh else ' '}{value_text(p, v, units.get(p), zh)}" for p, v in actions.items()
             if v is not None]
    if len(items) > 3 and len({names[p] for p in actions}) > 1:
        items = items[:3] + (["等"] if zh else ["..."])
    return f"好的，{'、'.join(items)}。" if zh else f"OK: {', '.join(items)}."


def which(options: list[str], zh: bool) -> str:
    """A clarifying question naming the ``options`` (at most four)."""
    shown = list(dict.fromkeys(options))[:4]
    if len(shown) < 2:
        return "哪一个？" if zh else "Which one?"
    return f"哪一个？{'、'.join(shown)}？" if zh else f"Which one: {', '.join(shown[:-1])} or {shown[-1]}?"


def answered(items: list[tuple[str, str]], truth: bool | None, zh: bool) -> str:
    """The answer to a question: yes or no when it is one, and the values (``items``: name and value text)."""
    listed = ("，" if zh else ", ").join(f"{name}{'' if zh else ': '}{value}" for name, value in items[:4])
    if truth is None:
        return f"{listed}。" if zh else f"{listed}."
    if zh:
        return f"{'是的' if truth else '不是'}，{listed}。"
    return f"{'Yes' if truth else 'No'}: {listed}."

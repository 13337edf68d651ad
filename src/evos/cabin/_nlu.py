"""Understanding a request, offline: English or Chinese text -> intent + slots, by rules over a lexicon.

Pure and deterministic. ``understand(text, scene_aliases)`` normalises the text (NFKC, lower case,
Chinese numerals and English number words to digits), extracts slots (number and unit, zone, level,
colour, relative amount, scene) and walks an ordered decision list of intents: the first rule whose
cues all match wins, so specific rules (a question, defrost, seat heating) come before general ones
(temperature, volume). Unknown text gives the intent ``unknown``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_NUM = re.compile(r"[零一二两三四五六七八九十百]+(?:点[零一二三四五六七八九]+)?")
_ZH_UNIT_AFTER = re.compile(r"^(?:度|档|级|公里|千米|%|摄氏|华氏|成|km)")
_EN_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
             "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
             "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
            "ninety": 90}
_EN_NUM = re.compile(rf"\b(?:({'|'.join(_EN_TENS)})(?:[- ]({'|'.join(list(_EN_UNITS)[1:10])}))?"
                     rf"|({'|'.join(_EN_UNITS)}))\b")

# Colours by name (CSS named colours), for the ambient light.
COLOURS = {
    "red": "#FF0000", "红": "#FF0000", "blue": "#0000FF", "蓝": "#0000FF", "green": "#008000", "绿": "#008000",
    "purple": "#800080", "紫": "#800080", "white": "#FFFFFF", "白": "#FFFFFF", "orange": "#FFA500",
    "橙": "#FFA500", "yellow": "#FFFF00", "黄": "#FFFF00", "pink": "#FFC0CB", "粉": "#FFC0CB", "cyan": "#00FFFF",
    "青": "#00FFFF", "gold": "#FFD700", "金": "#FFD700",
}


def _zh_number(text: str) -> float:
    """'二十二点五' -> 22.5, '一百' -> 100, '十' -> 10."""
    whole, _, frac = text.partition("点")
    total, current = 0, 0
    if len(whole) == 3 and whole[1] == "百" and whole[2] in _ZH_DIGITS:  # 一百二: colloquial 120
        whole += "十"
    for ch in whole:
        if ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            current = current * 10 + _ZH_DIGITS[ch] if current else _ZH_DIGITS[ch]
    value = float(total + current)
    if frac:
        value += float("0." + "".join(str(_ZH_DIGITS[c]) for c in frac))
    return value


def _zh_numerals_to_digits(text: str) -> str:
    def convert(match: re.Match[str]) -> str:
        run = match.group(0)
        after = text[match.end():]
        # "一点" is "a bit", "一会/一下/一条" are not amounts: convert only real numbers ("加五" is one: plus 5)
        step = text[:match.start()].endswith(("加", "减")) and after[:1] not in ("点", "些", "下", "会", "条")
        if len(run) < 2 and not _ZH_UNIT_AFTER.match(after) and not step:
            return run
        if run in ("一点", "两点") or (run.endswith("点") and not after[:1].isdigit()):
            return run
        value = _zh_number(run)
        return f"{value:g}"
    text = re.sub(r"百分之([零一二两三四五六七八九十百点]+|\d+(?:\.\d+)?)",
                  lambda m: f"{m.group(1)}%", text)
    return _ZH_NUM.sub(convert, text)


def _en_numbers_to_digits(text: str) -> str:
    def convert(match: re.Match[str]) -> str:
        if match.group(3):
            return str(_EN_UNITS[match.group(3)])
        return str(_EN_TENS[match.group(1)] + (_EN_UNITS[match.group(2)] if match.group(2) else 0))
    return _EN_NUM.sub(convert, text)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().strip()
    text = text.replace("’", "'").replace("percent", "%").replace("per cent", "%")
    return _en_numbers_to_digits(_zh_numerals_to_digits(text))


@dataclass(frozen=True)
class Parse:
    """What a request means: ``intent`` and its slots (value, unit, zone, level, colour, scene, relative)."""

    intent: str
    text: str
    lang: str
    slots: dict[str, Any] = field(default_factory=dict)


def _any(*words: str) -> re.Pattern[str]:
    """A pattern matching any of ``words``: ASCII ones on word boundaries, Chinese ones anywhere."""
    parts = [rf"\b{w}\b" if w[:1].isascii() else w for w in words]
    return re.compile("|".join(parts))


# ---- the lexicon ---------------------------------------------------------------------------------------------
ON = _any(r"turn(?:ed)? on", r"switch(?:ed)? on", "on", "start", "enable", "activate", "begin", "打开", "开启", "启动",
          "开一下", "开下", "打开一下")
OFF = _any(r"turn(?:ed)? off", r"switch(?:ed)? off", "off", "stop", "no more", "enough", "disable", "deactivate",
           "end", "关闭", "关掉", "关了", "关上", "停止", "取消", "不要", "关")
QUESTION = re.compile(r"\?|^(?:how|what|what's|whats|when|is|are|can|could|do|does|will)\b|多少|多远|多久|多长"
                      r"|几度|吗|呢|怎么样|是否")
# warming the traction battery (VSS battery conditioning), not the cabin: it names the battery or preconditioning
WARM_BATTERY = _any(r"pre-?condition(?:ing)?(?: the)?(?: battery)?", r"pre-?heat(?:ing)? the battery",
                    r"(?:warm|heat)(?:ing)?(?: up)? (?:the |my )?(?:battery|pack)",
                    r"battery (?:pre-?)?(?:heating|warming)",
                    "电池预热", "预热电池", "加热电池", "电池加热", "给电池加热", "电池保温")
HOW_LONG = _any("how long", "how much longer", "when will", "until", "多久", "多长时间", "多长")
CHARGE = _any("charge", "charging", "charged", "charger", "充电", "充", "充满")
RANGE = _any("how far", "range", r"(?:kilometers?|km|miles?) (?:are |is )?left", "make it", "续航", "多远", "里程",
             "还能开")
SOC = _any("battery", "state of charge", "soc", "charge level", "how much charge", r"charge (?:is )?left", "电量",
          "多少电", "剩多少电")
TIRE = _any("tire", "tires", "tyre", "tyres", "tire pressure", "胎压", "轮胎")
OUTSIDE = _any("outside", "outdoors", "out there", "外面", "室外", "车外", "户外")
INSIDE = _any("inside", "cabin", "in here", "in the car", "车内", "车里", "室内")
TEMP_WORD = _any("temperature", "temp", "warm", "cold", "hot", "degrees", "温度", "几度", "多少度", "冷", "热")
SCENE_WORD = _any("mode", "scene", "模式", "场景")
SCENE_EXIT = _any("exit", "leave", "stop", "end", "quit", "turn off", "退出", "关闭", "结束", "离开")
BACK_TO_NORMAL = _any("back to normal", "normal mode", "恢复正常", "正常模式", r"关闭当前模式", "current mode")
DND = _any("do not disturb", "don't disturb", "dont disturb", "dnd", "勿扰", "别打扰", "不要打扰")
HOTSPOT = _any("hotspot", "hot spot", "热点")
SCREEN = _any("screen", "display", "屏幕", "显示屏", "中控屏")
BRIGHTNESS = _any("brightness", "bright", "亮度")
DIMMER = _any("dim", "dimmer", "darker", "less bright", "too bright", "调暗", "暗一点", "暗一些", "暗点", "太亮")
BRIGHTER = _any("brighter", "more bright", "too dark", "调亮", "亮一点", "亮一些", "亮点", "太暗")
NIGHT = _any("night mode", "dark mode", "夜间模式", "深色模式", "黑夜模式", "暗色模式")
DAY = _any("day mode", "light mode", "daytime mode", "白天模式", "日间模式", "浅色模式")
UNLOCK = _any("unlock", "解锁", "开锁")
LOCK = _any("lock", "锁车", "锁上", "上锁", "锁门", "锁住")
SHADE = _any("sunshade", "sun shade", "shade", "sunblind", "blind", "遮阳帘", "遮阳板", "遮阳")
ROOF = _any("sunroof", "moonroof", "roof", "天窗")
OPEN = _any("open", "retract", r"roll(?:ed)? down", "lower", "crack", "拉开", "打开", "开", "降下", "开启")
CLOSE = _any("close", "shut", "draw", r"roll(?:ed)? up", "raise", "拉上", "关闭", "关上", "关", "升起", "合上")
WINDOW = _any("window", "windows", "车窗", "窗户", "窗")
DEFROST = _any("defrost", "defroster", "defrosting", "defog", "demist", "fogged", "fog", "foggy", "misted", "除雾",
               "除霜", "起雾", "雾")
RECIRC = _any("recirculation", "recirculate", "recirc", "内循环")
OUTSIDE_AIR = _any("outside air", "fresh air", "外循环", "新风")
MASSAGE = _any("massage", "按摩")
VENT = _any("ventilation", "ventilate", "ventilated", "seat cooling", "cool my seat", "cool the seat", "cooled seat",
            "通风", "座椅制冷", "座椅降温")
SEAT = _any("seat", "seats", "butt", "bum", "backrest", "座椅", "座位", "屁股", "靠背")
HEAT = _any("heat", "heater", "heating", "heated", "warm", "warm up", "cold", "加热", "暖", "冷")
RECLINE = _any("recline", "reclined", "lean", "lie back", "lay back",
               r"(?:lay|put|tilt|push) (?:my |the )?seat back", "放倒", "放平", "往后", "躺")
UPRIGHT = _any("upright", "straight", "sit up", "sit me up", "调直", "调正", "坐直", "立起", "竖直")
DOME = _any("dome light", "reading light", "interior light", "interior lights", "cabin light", "cabin lights",
            "the lights", "lights", "light", "阅读灯", "顶灯", "车内灯", "室内灯", "灯")
AMBIENT = _any("ambient", "mood light", "mood lights", "mood lighting", "氛围灯", "气氛灯")
FAN = _any("fan", "air flow", "airflow", "blow", "blower", "more air", "less air", "风量", "风扇", "风速", "风")
VOLUME = _any("volume", "louder", "quieter", "softer", "音量", "声音")
MUTE = _any("mute", "silence", "静音", "关闭声音", "关掉声音")
NEXT = _any("next", "skip", "下一首", "切歌", "换一首", "下一曲", "换首歌", "换歌")
PREVIOUS = _any("previous", "last song", "last track", "go back", "上一首", "上一曲")
PAUSE = _any("pause", "stop the music", "stop playing", "stop the song", "暂停", "别放了", "停止播放", "停止音乐")
PLAY = _any("play", "resume", "continue", "music", "song", "播放", "放首", "放歌", "来点音乐", "听歌", "继续", "音乐")
CRUISE = _any("cruise", "cruise control", "set speed", "巡航", "定速")
CRUISE_UP = _any("plus", "add", r"加\s*\d", "提速")  # "巡航加五" (normalised "加5"): 5 km/h more
CRUISE_DOWN = _any("minus", r"减\s*\d", "降速")
# Without a device named, "slow down" / "开慢点" is the cruise set speed (the one speed the assistant may change)
DRIVE_SLOWER = _any("slow down", "slower", "slow it down", "开慢点", "开慢一点", "慢一点", "减速")
DRIVE_FASTER = _any("speed up", "faster", "开快点", "开快一点", "快一点", "加速")
# "set 22 on my side": a bare number said with a setting verb and no device is a temperature (see TEMP_RANGE_C)
SET_WORD = _any("set", "put", "make it", "调到", "设为", "设成", "设置为", "设到")
TEMP_RANGE_C = (16.0, 30.0)  # the set points the climate takes (see Assistant.actions)
AC = _any("air conditioning", "air conditioner", "air con", "aircon", "a/c", "ac", "climate", "climate control",
          "hvac", "空调")
TEMPERATURE = _any("temperature", "temp", "degrees", "degree", "温度", "度")
WARMER = _any("warmer", "heat up", "heat it up", "warm it up", "warm up",
              "turn up the heat", "raise the temperature", "increase the temperature",
              "cold", "freezing", "chilly", "暖和", "冷", "调高", "高一点", "升高", "提高")
COOLER = _any("cooler", "cool it", "cool down", "hot", "too warm", "warm in here", "lower the temperature",
              "reduce the temperature", "decrease the temperature", "热", "凉快", "凉爽", "调低", "低一点", "降低",
              "降温")
UP = _any("up", "more", "harder", "stronger", "increase", "raise", "higher", "faster", "speed up", "大一点", "大点",
          "加大", "调大", "加快", "提高", "快一点", "加速", "增加", "高一点")
DOWN = _any("down", "less", "lower", "decrease", "reduce", "slower", "slow", "quiet", "loud", "小一点", "小点", "调小",
            "减小", "降低", "慢一点", "减速", "吵", "低一点", "调低")
LOUDER = _any("louder", "can't hear", "cannot hear", "turn it up", "volume up", r"turn up the (?:music|sound|radio)",
              r"turn the (?:music|sound|radio) up", "大声", "听不清", "调大音量", "大一点",
              "大点")
QUIETER = _any("quieter", "softer", "turn it down", "volume down", "too loud", r"turn down the (?:music|sound|radio)",
               r"turn the (?:music|sound|radio) down", "小声", "小一点", "调低", "调小",
               "太吵", "低一点")
FULL = _any("full", "100%", "满")
A_BIT = _any("a bit", "a little", "slightly", "a crack", "crack", "一点", "一条缝", "缝", "一些", "稍微")
HALF = _any("half", "halfway", "一半")
MAX = _any("max", "maximum", "highest", "full", "最大", "最高")
MIN = _any("min", "minimum", "lowest", "最小", "最低")
# "Don't open the windows", "I'm not cold", "别开空调", "不要充电": a negated request is no request. Checked after
# do-not-disturb ("don't disturb me", "不要打扰"); "别放了" (stop playing) is a request to pause.
NEGATED = re.compile(r"\b(?:don't|dont|do not|never|no need to|not)\b"
                     r"|(?:不要|别|不用|不想|不需要|不必|无需)(?!放了|播了)|不(?:冷|热|用)")
# "Leave the dog in the car" asks for pet mode, not to leave a scene.
LEAVE_IN_CAR = _any(r"leave (?:the |my |our )?\w+ in the car", "留在车里", "留在车上", "留在车内")

ZONES = (
    ("driver", _any("driver", "driver's", "my side", "my seat", "my window", "my", "主驾", "主驾驶", "驾驶位",
                    "我这边", "我的", "左前")),
    ("passenger", _any("passenger", "passenger's", "co-driver", "副驾", "副驾驶", "右前")),
    ("rear", _any("rear", "back seat", "back seats", "back windows", "后排", "后面")),
)
LEVELS = (("high", 100, _any("high", "max", "maximum", "highest", "最高", "高档", "最大", "三档")),
          ("low", 33, _any("low", "lowest", "minimum", "最低", "低档", "一档")),
          ("medium", 67, _any("medium", "mid", "中档", "二档")))
_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?)\s*(%|°\s*f|°\s*c|℃|°|degrees?|fahrenheit|celsius|度|km/h|kph|kmh|km|"
                     r"kilometers?|公里|千米|mph|miles? per hour|档|级|level)?")


def _number(text: str) -> tuple[float | None, str]:
    """The first number in ``text`` and its unit ('' if none): 'c', 'f', '%', 'kmh', 'mph', 'level'."""
    level = re.search(r"(?:level|档位?)\s*(\d+)", text)
    if level:
        return float(level.group(1)), "level"
    match = _NUMBER.search(text)
    if match is None:
        return None, ""
    unit = (match.group(2) or "").replace(" ", "")
    if "华氏" in text or unit in ("°f", "fahrenheit"):
        kind = "f"
    elif unit in ("%",):
        kind = "%"
    elif unit in ("°c", "℃", "°", "degree", "degrees", "celsius", "度"):
        kind = "c"
    elif unit in ("km/h", "kph", "kmh", "km", "kilometer", "kilometers", "公里", "千米"):
        kind = "kmh"
    elif unit.startswith(("mph", "mile")):
        kind = "mph"
    elif unit in ("档", "级", "level"):
        kind = "level"
    else:
        kind = ""
    return float(match.group(1)), kind


def _zone(text: str) -> str | None:
    if _any("all", "every", "所有", "全部", "都").search(text):
        return "all"
    for name, pattern in ZONES:
        if pattern.search(text):
            return name
    return None


def _level(text: str) -> int | None:
    for _, value, pattern in LEVELS:
        if pattern.search(text):
            return value
    return None


def _colour(text: str) -> str | None:
    for name, hex_code in COLOURS.items():
        if (re.search(rf"\b{name}\b", text) if name.isascii() else name in text):
            return hex_code
    return None


def _scene(text: str, aliases: Mapping[str, str]) -> str | None:
    """The scene named in ``text`` (longest alias first), via ``aliases`` (alias -> scene name)."""
    for alias in sorted(aliases, key=len, reverse=True):
        if (re.search(rf"\b{re.escape(alias)}\b", text) if alias.isascii() else alias in text):
            return aliases[alias]
    return None


def _decide(t: str, scene: str | None) -> str:  # noqa: PLR0915 - one flat decision list reads best
    """The intent of normalised text ``t`` (first matching rule wins)."""
    has = lambda p: p.search(t) is not None  # noqa: E731
    off = has(OFF)
    question = has(QUESTION)
    if has(WARM_BATTERY):
        return "battery_warm_off" if off else "battery_warm"
    if question or has(HOW_LONG):
        if has(HOW_LONG) and scene and (has(SCENE_WORD) or has(_any("run", "stay", "能开", "能用"))):
            return "ask_scene_runtime"
        if has(HOW_LONG) and (has(CHARGE) or has(FULL)):
            return "ask_charge_time"
        if has(RANGE):
            return "ask_range"
        if has(TIRE):
            return "ask_tire_pressure"
        if has(SOC):
            return "ask_soc"
        if has(OUTSIDE) and has(TEMP_WORD):
            return "ask_outside_temp"
        if has(TEMP_WORD) and (has(INSIDE) or question):
            return "ask_cabin_temp"
    if has(TIRE):
        return "ask_tire_pressure"
    if has(_any("range", "续航", "剩余里程")):
        return "ask_range"
    if has(SOC) and question:
        return "ask_soc"
    if has(DND):
        return "dnd_off" if off and not t.startswith(("don't", "dont", "别", "不要")) else "dnd_on"
    if has(NEGATED):
        return "unknown"
    if has(HOTSPOT):
        return "hotspot_off" if off else "hotspot_on"
    if has(NIGHT):
        return "screen_night"
    if has(DAY):
        return "screen_day"
    if has(SCREEN) and _number(t)[0] is None:
        if has(DIMMER) or (has(BRIGHTNESS) and has(DOWN)):
            return "screen_dim"
        if has(BRIGHTER) or (has(BRIGHTNESS) and has(UP)):
            return "screen_bright"
    if has(SCREEN) and (has(BRIGHTNESS) or _number(t)[0] is not None):
        return "screen_brightness"
    if has(CHARGE) and not has(_any("charge level")):
        number, _ = _number(t)
        if number is not None or has(FULL):
            return "charge_limit"
        if has(_any("stop", "pause", "end", "停止", "暂停", "结束", "停")):
            return "charge_stop"
        return "charge_start"
    if has(CRUISE):
        if has(UP) or has(CRUISE_UP):
            return "cruise_up"
        if has(DOWN) or has(CRUISE_DOWN):
            return "cruise_down"
        return "cruise_set"
    if scene and has(SCENE_EXIT) and not has(ON) and not has(LEAVE_IN_CAR):
        return "scene_exit"
    if has(BACK_TO_NORMAL) or (has(SCENE_WORD) and has(SCENE_EXIT) and not scene) or \
            (has(_any("退出场景", "exit the scene", "leave the scene"))):
        return "scene_exit"
    if scene:
        return "scene_enter"
    if has(UNLOCK):
        return "unlock"
    if has(LOCK):
        return "lock"
    if has(DEFROST):
        return "defrost_off" if off else "defrost_on"
    if has(SHADE):
        return "sunshade_close" if has(CLOSE) or has(_any("too bright", "太晒", "晒")) else "sunshade_open"
    if has(ROOF):
        return "sunroof_close" if has(CLOSE) else "sunroof_open"
    if has(WINDOW):
        return "window_close" if has(CLOSE) and not has(_any("lower", "降下")) else "window_open"
    if has(RECIRC) or has(OUTSIDE_AIR):
        return "recirc_off" if off or has(OUTSIDE_AIR) else "recirc_on"
    if has(MASSAGE):
        return "massage_off" if off else "massage_on"
    if has(VENT):
        return "seat_vent_off" if off else "seat_vent_on"
    if has(SEAT) and has(HEAT):
        return "seat_heat_off" if off else "seat_heat_on"
    if has(UPRIGHT):
        return "seat_upright"
    if has(RECLINE):
        return "seat_recline"
    if has(AMBIENT) or (_colour(t) and has(DOME)):
        if _colour(t):
            return "ambient_color"
        return "ambient_off" if off else "ambient_on"
    if has(DOME):
        return "dome_off" if off else "dome_on"
    if has(MUTE):
        return "mute"
    # "大一点" / "too loud" mean volume only when no other device is named ("风大一点" is the fan)
    if has(VOLUME) or ((has(LOUDER) or has(QUIETER)) and not has(FAN) and not has(TEMPERATURE)):
        if has(MAX) or has(MIN):
            return "volume_set"
        if _number(t)[0] is not None and has(VOLUME) and not has(LOUDER) and not has(QUIETER):
            return "volume_set"
        if has(LOUDER) or (has(VOLUME) and has(UP)):
            return "volume_up"
        return "volume_down"
    if has(FAN):
        if _number(t)[0] is not None or has(MAX) or has(MIN) or (off and not has(UP) and not has(DOWN)):
            return "fan_set"  # "turn the fan off" is the fan at 0 %
        return "fan_down" if has(DOWN) else "fan_up"
    if has(PREVIOUS):
        return "media_previous"
    if has(NEXT):
        return "media_next"
    if has(PAUSE) or (has(PLAY) and off):
        return "media_pause"
    if has(AC) and not has(TEMPERATURE) and not has(WARMER) and not has(COOLER):
        return "climate_off" if off else "climate_on"
    if has(COOLER) and not has(_any("warmer")):
        return "temp_down"
    if has(WARMER):
        return "temp_up"
    if has(TEMPERATURE) and _number(t)[0] is not None:
        return "temp_set"
    if has(PLAY):
        return "media_play"
    if has(DRIVE_SLOWER):
        return "cruise_down"
    if has(DRIVE_FASTER):
        return "cruise_up"
    number, unit = _number(t)
    if number is not None and unit == "" and has(SET_WORD) and TEMP_RANGE_C[0] <= number <= TEMP_RANGE_C[1]:
        return "temp_set"
    return "unknown"


def understand(text: str, scene_aliases: Mapping[str, str] | None = None) -> Parse:
    """Intent and slots of ``text``. ``scene_aliases`` maps words (English or Chinese) to scene names."""
    t = normalize(text)
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", t) else "en"
    scene = _scene(t, scene_aliases or {})
    intent = _decide(t, scene)
    value, unit = _number(t)
    slots: dict[str, Any] = {"value": value, "unit": unit, "zone": _zone(t), "level": _level(t),
                             "colour": _colour(t), "scene": scene, "a_bit": bool(A_BIT.search(t)),
                             "half": bool(HALF.search(t)), "full": bool(FULL.search(t)), "max": bool(MAX.search(t)),
                             "min": bool(MIN.search(t)), "off": bool(OFF.search(t)),
                             "negated": intent == "unknown" and bool(NEGATED.search(t))}
    return Parse(intent, text, lang, {k: v for k, v in slots.items() if v not in (None, False, "")})

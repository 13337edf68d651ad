"""What a request asks of the signals it names: the speech act, then the value from the signal's datatype and the
verb. Pure.

``speech_act(text)`` tells a command from a question, a negation ("don't open the window"), a hypothetical ("what
would happen if I opened the sunroof") and reported speech ("my wife said to turn the heat up"): only a command
acts. ``Request.of(text)`` reads the verb and amount; ``target(entry, request, values)`` is the value it asks of a
signal (open/close, on/off, lock, set to N unit, up/down by N, max/min, a bit more), or None if it asks nothing of
that signal; ``truth(entries, request, values)`` answers a yes/no question.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from evos.cabin._grounding import Entry, value_words
from evos.cabin._nlu import A_BIT, HALF, _any, _number
from evos.cabin._nlu import _colour as colour
from evos.vss import Value

# ---- the speech act --------------------------------------------------------------------------------------------
_POLITE = re.compile(r"^(?:(?:hey|ok|okay|so|um|uh|and|also|please|pls)[, ]+)*(?:can|could|would|will) (?:you|u|ya|we)"
                     r"(?: please| pls| just)? (?!tell|check|see|let me know|confirm|remind)")
_ASK_EN = re.compile(r"^(?:(?:hey|ok|okay|so|um|uh|and|also|quick question|btw)[, ]+)*(?:is|are|was|were|did|"
                     r"do(?! not)|does|have|has|what|what's|whats|wat's|wats|how|how's|which|where|where's|when|"
                     r"who|why|am i|"
                     r"any idea|can you tell|could you tell|tell me|check (?:if|whether)|i wonder|do you know|"
                     r"is there)\b"
                     r"|\b(?:tell me|let me know|check) (?:if|whether|what|how)\b|\bhow (?:much|many|far|long|hot|"
                     r"cold|warm|fast)\b|\bwhat(?:'s| is) (?:the|my)\b|\bdid i (?:leave|forget)\b")
_ASK_ZH = re.compile(r"[吗嘛么呢][？?。！!]*$|没有?[？?。]*$|是不是|有没有|是否|多少|几度|几个|几点|什么|哪|"
                     r"多大|多强|谁|啥|怎么样|多久|多远|多快|多高|多热|多冷|(.)没\1|(.)不\2|了没|查一下|看看|"
                     r"告诉我")
_ZH_POLITE = re.compile(r"^(?:请|麻烦|能不能|能否|可不可以|可以|帮我|给我|你能|能)|帮我|帮忙")
_NEGATION = re.compile(r"\b(?:don't|dont|do not|never|no need to|not|no,|no no|nope|leave (?:the|it|them) \w+ "
                       r"(?:off|on|closed|open|alone)|never ?mind|forget it|cancel that)\b"
                       r"|不要|别(?!放了|播了)|不用|不想|不需要|不必|无需|先别|没必要|算了|不(?:冷|热)")
_DO_NOT_DISTURB = re.compile(r"do not disturb|don't disturb|dont disturb|不要打扰|别打扰")  # a mode, not a negation
_HYPOTHETICAL = re.compile(r"\b(?:what (?:would|will) happen|what happens|what if|if i|if we|if you|suppose|"
                           r"supposing|would it|would that|is it (?:bad|safe|ok|okay) to|should i|hypothetically|"
                           r"imagine|in case)\b|如果|假如|要是|万一|假设|会不会|会怎样|会怎么样|的话")
_REPORTED = re.compile(r"\b(?:said|says|told|tells|asked me|wants me|wanted me|keeps|keep begging|begging|nagging|"
                       r"pestering|once|yesterday|last time|used to)\b"
                       r"|(?:他|她|他们|同事|朋友|我妈|我爸|老婆|老公|儿子|女儿|妈妈|爸爸|师傅|别人|邻居)"
                       r"[^，。,]*?(?:说|让我|叫我|喜欢|老是|总是|老喜欢)|吵着要|闹着要|嚷着要|非要|昨天|上次|以前")


def speech_act(text: str) -> str:
    """``command``, ``question``, ``negation``, ``hypothetical`` or ``reported`` for normalised ``text``."""
    if _REPORTED.search(text):
        return "reported"
    if _HYPOTHETICAL.search(text):
        return "hypothetical"
    chinese = re.search(r"[\u4e00-\u9fff]", text) is not None
    if chinese:
        question = _ASK_ZH.search(text) is not None and not (
            _ZH_POLITE.search(text) and re.search(r"告诉我|看看|查一下|是不是|有没有|多少|几|什么", text) is None)
    else:
        question = _POLITE.search(text) is None and (_ASK_EN.search(text) is not None or text.rstrip().endswith("?"))
    if question:
        return "question"
    if _NEGATION.search(_DO_NOT_DISTURB.sub("", text)):
        return "negation"
    return "command"


# ---- the verb and the amount -----------------------------------------------------------------------------------
OPEN = _any("open", "opened", "pop", r"roll(?:ed)? down", "lower", "crack", "retract", "raise the spoiler",
            "put (?:\\w+ )*down", "down", "拉开", "打开", "开启", "降下", "开一下", "开下", "开到", "开")
CLOSE = _any("close", "closed", "shut", r"roll(?:ed)? up", "put (?:\\w+ )*up", "draw", "关上", "关闭", "合上",
             "升起", "拉上", "盖上", "关好", "关")
# a function named by its verb is switched on by it ("defrost the windshield", "heat my seat", 座椅加热)
ON = _any(r"turn(?:ed)? on", r"switch(?:ed)? on", r"on(?! (?:the|my|a|an|his|her|its|our|their|this|that|top|it)\b)",
          "start", "enable", "activate", "engage", "begin", "light up",
          "heat", "warm up", "defrost", "defog", "demist", "de-ice", "deice", "honk", "recirculate", "massage",
          "fogging up", "fogged up", "steamed up", "起雾", "有雾", "全是雾",
          "打开", "开启", "启动", "开一下", "开下", "开着", "开", "加热", "除霜", "除雾", "去雾", "除冰", "按摩",
          "鸣笛")
OFF = _any(r"turn(?:ed)? off", r"switch(?:ed)? off", "off", "stop", "disable", "deactivate", "disengage", "end",
           "kill", "fresh air", "outside air", "关闭", "关掉", "关了", "关上", "停止", "停掉", "外循环", "关")
LOCK = _any("lock", "locked", "锁车", "锁上", "上锁", "锁门", "锁住", "锁好", "锁了")
UNLOCK = _any("unlock", "unlocked", "解锁", "开锁")
FOLD = _any("fold", "folded", "tuck", "折叠", "收起", "折起", "折")
UNFOLD = _any("unfold", "展开")
COOL = _any("cool", "cooling", "ventilate", "ventilation", "ventilated", "通风", "制冷", "凉")
UP = _any("up", "higher", "raise", "increase", "more", "tighter", "tighten", "louder", "brighter", "warmer",
          "stronger", "faster", "further", "farther", "longer", "harder", "turn it up", "高", "大", "亮", "加", "增",
          "远", "快", "强", "暖", "往上", "多", "收紧")
DOWN = _any("down", "lower(?! back)", "decrease", "less", "looser", "loosen", "quieter", "softer", "dim", "dimmer",
            "darker", "cooler", "weaker", "slower", "closer", "shorter", "reduce", "turn it down", "低", "小", "暗",
            "减", "降", "近", "慢", "弱", "凉快", "凉爽", "往下", "少", "放松")
# a complaint asks for the other way ("too loud", 声音太大了): it says the direction, unless the request says one
TOO_MUCH = _any("too loud", "too high", "too bright", "too hot", "too warm", "too strong", "too fast", "too much",
                "so hot", "boiling", "太大", "太吵", "太响", "太高", "太亮", "太热", "太强", "太快", "太晃", "太刺眼",
                "好热", "热死", "很热", "真热", "热得")
TOO_LITTLE = _any("too quiet", "too low", "too dark", "too cold", "too soft", "too weak", "too slow", "so cold",
                  "太小", "太低", "太暗", "太冷", "太弱", "太慢", "好冷", "冷死", "很冷", "真冷", "有点冷")
MAX = _any("max", "maximum", "highest", "full", "all the way", "fully", "最大", "最高", "最亮", "开到底", "全开",
           "到底", "满")
MIN = _any("min", "minimum", "lowest", "最小", "最低", "最暗")
LEVELS = ((_any("high", "高档", "三档", "3档"), 100), (_any("medium", "mid", "中档", "二档", "2档"), 67),
          (_any("low", "低档", "一档", "1档"), 33))
STEPS = {"celsius": 1.0, "percent": 20.0, "km/h": 5.0, "s": 0.3, "degrees": 5.0, "mm": 20.0}
FAHRENHEIT_FROM = 50.0  # a cabin set to "75 degrees" is set in °F: no one asks for 50 °C (assumed)
VOLUME_STEP_PCT = 10.0  # a step of volume is finer than other steps (assumed: ten steps from silent to full)
LIMITS = {"celsius": (16.0, 30.0), "km/h": (30.0, 180.0)}  # set points the climate and cruise control take
OPEN_PCT, CRACK_PCT, HALF_PCT, HEAT_PCT = 100, 20, 50, 67


@dataclass(frozen=True)
class Request:
    """The verb and amount of a request: ``verb`` (open, close, on, off, lock, unlock, fold, unfold, cool, or
    ''), ``direction`` (+1 up, -1 down, 0), ``number`` and its ``unit`` ('c', 'f', '%', 'kmh', 'mph', 'level', ''),
    ``extreme`` ('max', 'min', ''), ``a_bit``, ``half``, and the ``text``."""

    text: str
    verb: str = ""
    direction: int = 0
    number: float | None = None
    unit: str = ""
    extreme: str = ""
    a_bit: bool = False
    half: bool = False

    @classmethod
    def of(cls, text: str) -> Request:
        has = lambda p: p.search(text) is not None  # noqa: E731
        verb = next((name for name, pattern in (("unlock", UNLOCK), ("lock", LOCK), ("unfold", UNFOLD),
                                                 ("fold", FOLD), ("close", CLOSE), ("off", OFF), ("open", OPEN),
                                                 ("on", ON)) if has(pattern)), "")
        if verb == "close" and has(OPEN) and not has(_any("close", "shut", "关上", "关闭", "合上", "拉上", "盖上")):
            verb = "open"
        plain = TOO_LITTLE.sub(" ", TOO_MUCH.sub(" ", text))
        up, down = UP.search(plain) is not None, DOWN.search(plain) is not None
        direction = 1 if up and not down else -1 if down and not up else 0
        if direction == 0 and not (up and down):
            direction = -1 if has(TOO_MUCH) else 1 if has(TOO_LITTLE) else 0
        number, unit = _number(text)
        if number == 1 and not unit and re.search(r"\b(?:the|that|this|which|a) (?:\w+(?:'s)? )?1\b", text):
            number = None  # "the passenger one" (normalised "the passenger 1") names, it does not count
        extreme = "max" if has(MAX) else "min" if has(MIN) else ""
        return cls(text, verb, direction, number, unit, extreme, has(A_BIT), has(HALF))

    @property
    def relative(self) -> bool:
        return self.direction != 0 and self.extreme == "" and not self.half and (self.number is None or self.by)

    @property
    def empty(self) -> bool:
        """Nothing asked but a part named ("the passenger one", 天窗的): a follow-up's."""
        return not (self.verb or self.direction or self.number is not None or self.extreme or self.a_bit or
                    self.half)

    @property
    def by(self) -> bool:
        """A number said as an amount of change ("two degrees warmer", "降两度", "by 5")."""
        return re.search(r"\bby \d|\d+(?:\.\d+)?\s*(?:degrees?|度|%)? (?:warmer|cooler|more|less|higher|lower)|"
                         r"[升降加减高低]\s*\d", self.text) is not None


def _number_in(signal_unit: str, request: Request) -> float | None:
    """The number said, in the signal's unit (Fahrenheit to Celsius, mph to km/h)."""
    if request.number is None or request.unit == "level":
        return None
    value = request.number
    if signal_unit == "celsius" and (request.unit == "f" or (request.unit in ("c", "") and value >= FAHRENHEIT_FROM)):
        return round((value - 32) / 1.8 * 2) / 2
    if signal_unit == "km/h" and request.unit == "mph":
        return round(value * 1.609344)
    if signal_unit == "celsius" and request.unit not in ("c", "f", ""):
        return None
    if signal_unit == "s" and re.search(r"\bmin(?:ute)?s?\b|分钟|分", request.text):
        return value * 60  # "three minutes in"
    if signal_unit == "percent" and request.unit not in ("%", "", "level"):
        return None
    return value


def _clamped(entry: Entry, value: float) -> float:
    signal, unit = entry.signal, entry.unit
    low, high = LIMITS.get(unit, (-math.inf, math.inf))
    low = signal.min if signal.min is not None else low
    high = signal.max if signal.max is not None else high
    if unit == "percent":
        low, high = max(low, -100 if signal.datatype.value.startswith("int") else 0), min(high, 100)
    return min(max(value, low), high)


def _typed(entry: Entry, value: float) -> Value:
    value = _clamped(entry, value)
    return round(value) if entry.signal.datatype.value.startswith(("int", "uint")) else float(value)


VERB_VALUES = ("OPEN", "CLOSE", "START", "STOP")  # values named by the verbs that every part takes
PLAIN_VALUES = ("UP", "DOWN", "ON", "OFF")  # values whose own names are words of any request ("turn it up")


def _named(entry: Entry, request: Request, own: bool = True) -> list[tuple[int, str]]:
    """The allowed values of ``entry`` that the request names by their words (the lexicon's, and their own if
    ``own``), each with the length of the word found."""
    words = value_words()
    found = []
    for value in (str(v) for v in entry.signal.allowed or ()):
        own_name = own and value not in PLAIN_VALUES
        for name in (*words.get(value, ()), *((value.lower().replace("_", " "),) if own_name else ())):
            if name and (re.search(rf"(?<![a-z]){re.escape(name)}(?![a-z])", request.text) if name.isascii()
                         else name in request.text):
                found.append((len(name), value))
    return found


def names_value(entry: Entry, request: Request, own: bool = True) -> bool:
    """Whether the request names one of the signal's values, other than by a verb ("auto", "bluetooth", a light's
    colour): by the lexicon's words for it, and by the value's own name if ``own``. Not when the request names no
    part, by a value's own name ("up", "off") or by one Chinese character (快 of 凉快)."""
    if entry.name == "Color" and not entry.signal.allowed:
        return own and colour(request.text) is not None
    return entry.signal.datatype.value == "string" and any(
        value not in VERB_VALUES and (own or length > 1) for length, value in _named(entry, request, own))


def _enum_value(entry: Entry, request: Request) -> str | None:
    """The allowed value of ``entry`` a request names (its own words, or the lexicon's for it)."""
    allowed = [str(v) for v in entry.signal.allowed or ()]
    found = _named(entry, request)
    if not found and {"OPEN", "CLOSE"} <= set(allowed) and request.verb in ("open", "close", "on", "off"):
        return "OPEN" if request.verb in ("open", "on") else "CLOSE"
    if not found and "OFF" in allowed and request.verb in ("off", "close"):
        return "OFF"
    for start, stop in (("START", "STOP"), ("PLAY", "STOP")):  # charging on; music on
        if not found and {start, stop} <= set(allowed) and request.verb in ("on", "off"):
            return start if request.verb == "on" else stop
    return max(found)[1] if found else None


def target(entry: Entry, request: Request, values: Mapping[str, Value | None]) -> Value | None:
    """The value ``request`` asks of ``entry``'s signal given the car's ``values``, or None if none."""
    signal = entry.signal
    name = entry.name
    datatype = signal.datatype.value
    if datatype == "boolean":
        if name == "IsLocked":
            return {"lock": True, "unlock": False}.get(request.verb)
        if name == "IsFolded":
            return {"fold": True, "unfold": False, "open": False}.get(request.verb)
        if not request.verb:
            return None  # a part named, nothing asked of it
        return request.verb not in ("off", "close", "unlock")
    if datatype == "string":
        if signal.allowed:
            return _enum_value(entry, request)
        return colour(request.text) if name == "Color" else None  # a light's colour, as #RRGGBB
    if datatype.endswith("[]"):
        return None
    return _numeric(entry, request, values)


_MORE_LESS = re.compile(r"\b(?:more|less|further)\b|再|还")
_BACKWARD = re.compile(r"(?<!my )(?<!lower )\bback(?:ward)?s?\b|后")  # not "my back is sweating"
_FORWARD = re.compile(r"\bforwards?\b|前")
_UPRIGHT = re.compile(r"\bupright\b|\bsit up\b|直")


def _direction(entry: Entry, request: Request) -> int:
    """Which way a request moves this signal: a mirror's dimming goes up as it gets darker; a seat goes back as
    its position grows (VSS: 0 is the frontmost position)."""
    if entry.name == "DimmingLevel":
        return -request.direction
    if entry.thing == "Seat" and entry.name in ("Position", "Recline"):  # the backrest reclines backward (VSS)
        back = _BACKWARD.search(request.text) or (entry.name == "Recline" and re.search(r"放|lean|lie", request.text))
        forward = _FORWARD.search(request.text) or (entry.name == "Recline" and _UPRIGHT.search(request.text))
        return 1 if back and not forward else -1 if forward and not back else request.direction
    return request.direction


def _numeric(entry: Entry, request: Request, values: Mapping[str, Value | None]) -> Value | None:
    signal, name, unit = entry.signal, entry.name, entry.unit
    current = values.get(signal.path)
    now = float(current) if isinstance(current, int | float) and not isinstance(current, bool) else None
    if name == "HeatingCooling":
        return _heating_cooling(entry, request, now)
    said = _number_in(unit, request)
    opening = name.endswith("Position") and unit == "percent"
    if opening and request.verb in ("fold", "unfold"):  # the spoiler folds away: it closes
        request = replace(request, verb="close" if request.verb == "fold" else "open")
    if opening and entry.thing == "Window" and request.verb not in ("open", "close"):
        up, down = re.search(r"\bup\b|升", request.text), re.search(r"\bdown\b|降", request.text)
        if up or down:  # a window goes up to close, down to open; "more" is more open
            request = replace(request, verb="close" if up else "open", direction=0)
    if opening and request.verb in ("open", "close") and not request.by and not _MORE_LESS.search(request.text):
        return _opened(entry, request, said, now)  # the verb says where it goes ("lower the window": open)
    request = replace(request, direction=_direction(entry, request))
    step = VOLUME_STEP_PCT if name == "Volume" else STEPS.get(unit, max(((signal.max or 100) - (signal.min or 0)) / 10,
                                                                    1.0))
    if request.relative and now is not None:
        amount = said if said is not None and request.by else step * (0.5 if request.a_bit and unit == "celsius"
                                                                       else 1)
        return _typed(entry, now + request.direction * amount)
    if request.extreme:
        limit = LIMITS.get(unit, (signal.min, signal.max))
        bound = limit[1] if request.extreme == "max" else limit[0]
        if bound is None:
            bound = 100.0 if unit == "percent" and request.extreme == "max" else 0.0
        return _typed(entry, bound)
    if said is not None and not request.by:
        return _typed(entry, said)
    if request.half and unit == "percent":
        return _typed(entry, HALF_PCT)
    level = _level(request)
    if level is not None and unit == "percent" and not opening:  # "massage on high"
        return _typed(entry, level)
    if opening or name in ("Level", "FanSpeed"):
        if request.verb in ("close", "off"):
            return _typed(entry, 0)
        if request.verb in ("open", "on"):
            return _typed(entry, CRACK_PCT if request.a_bit else HALF_PCT)
    return None


def _opened(entry: Entry, request: Request, said: float | None, now: float | None) -> Value:
    """How far an opening (a window, the trunk, the spoiler) goes when told to open or close: the number or half
    said, a crack from where it is, else all the way."""
    opening = request.verb == "open"
    if request.half:
        return _typed(entry, HALF_PCT)
    if said is not None:
        return _typed(entry, said)
    if request.a_bit:
        return _typed(entry, (now or 0) + CRACK_PCT if opening else (now or 0) - CRACK_PCT)
    return _typed(entry, OPEN_PCT if opening else 0)


def _level(request: Request) -> int | None:
    """The level said (high, medium, low: as a percentage), or None."""
    return next((value for pattern, value in LEVELS if pattern.search(request.text)), None)


def _heating_cooling(entry: Entry, request: Request, now: float | None) -> Value | None:
    """Seat heating (positive %) or cooling (negative %): a level said, high/medium/low, or medium; None when
    the request asks nothing of it ("move the seat")."""
    if request.verb in ("off", "close"):
        return 0
    if request.unit in ("c", "f"):
        return None  # "turn the heat up to 75 degrees": a set point's, not the seat's
    cooling = COOL.search(request.text) is not None
    if not (request.verb in ("on", "open") or cooling or request.direction or request.extreme or
            request.number is not None):
        return None
    if request.relative and now is not None and now != 0:
        sign = 1 if now > 0 else -1
        return _typed(entry, now + sign * request.direction * 33)
    level = _level(request)
    if level is None and request.a_bit:
        level = LEVELS[-1][1]  # "cool the seat a little": the lowest level
    if request.extreme == "max":
        level = 100
    elif request.number is not None and request.unit in ("%", "level", ""):
        level = int(request.number * (33 if request.unit == "level" or request.number <= 3 else 1))
    magnitude = min(level or HEAT_PCT, 100)
    return -magnitude if cooling else magnitude


# ---- questions ---------------------------------------------------------------------------------------------------
NEGATIVE = _any("closed", "shut", "off", "unlocked", "disconnected", "unplugged", "up", "关着", "关了", "关上", "关好",
                "关闭", "没开")
WH = re.compile(r"\b(?:what|what's|whats|how|which|where|when|who)\b|多少|几|什么|啥|哪|怎么样|多久|多远|多快|"
                r"多热|多冷")


def positive(entry: Entry, value: Value | None) -> bool | None:
    """Whether a signal's value means open / on / active (None if it has no value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value > 0 if entry.name != "HeatingCooling" else value != 0
    return value not in ("INACTIVE", "OFF", "CLOSE", "STOP", "NONE", "UNKNOWN", "")


def truth(entries: Sequence[Entry], request: Request, values: Mapping[str, Value | None]) -> bool | None:
    """The answer to a yes/no question about ``entries`` ("are the windows closed": all of them), or None. Signals
    of one part (a window's IsOpen and its Position) count as one: open if either says so."""
    parts: dict[str, list[bool | None]] = {}
    for e in entries:
        parts.setdefault(e.path.rsplit(".", 1)[0], []).append(positive(e, values.get(e.path)))
    if any(s is None for part in parts.values() for s in part):
        return None
    states = [any(part) for part in parts.values()]
    name = entries[0].name
    negative = NEGATIVE.search(request.text) is not None
    if name == "IsLocked":
        negative = UNLOCK.search(request.text) is not None
    if any_asked(request.text):
        result = any(states)
        return not result if negative else result
    return all(not s for s in states) if negative else all(states)


def any_asked(text: str) -> bool:
    return re.search(r"\b(?:any|anything)\b|有没有.*[开]着", text) is not None


def is_wh(text: str) -> bool:
    return WH.search(text) is not None

"""Understanding grounded in the car's catalog: which signals a request names, and what it asks of them.

Pure. ``Lexicon`` is ``data/lexicon.yaml`` (concept words, what each VSS path segment stands for, zone words, how
each part of the car with zones is meant when no zone is said). ``SignalIndex`` holds, for every signal the car has
a value for, the concepts and zones of its path. ``Lexicon.scan(text)`` finds the words of a request (longest
first); ``SignalIndex.ground(mentions)`` gives the signals whose concepts best cover them, as one group of the same
signal in its zones (``Grounding``), or the groups it could not tell apart. A segment the lexicon does not list
stands for its own CamelCase words, so an overlay's new signal is found by its own names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from evos.vss import Catalog, EntryType, Signal

LEXICON = Path(__file__).parent / "data" / "lexicon.yaml"
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z][a-z]+|[a-z]+|\d+")
_ROW = re.compile(r"Row(\d+)")
_SKIP_WORDS = {"is", "on", "active", "enabled", "engaged", "switch"}  # the shape of a segment name, not its concept
# words of segment names too common to pick a signal by ("SpeedSet" is found by "speed", not by "set")
_COMMON = {"set", "to", "open", "of", "the", "a", "at", "in", "for", "by", "off", "max", "min", "current", "level",
           "mode", "type", "count", "status", "state", "value", "actual", "target", "time", "unit", "position",
           "system", "any", "left", "right", "front", "rear", "row", "is", "id", "less", "more", "up", "down",
           "change", "request", "requested", "make", "turn", "use", "show", "keep", "get", "put", "give", "go",
           "stop", "start", "enable", "disable", "allow", "side", "support", "mute"}
_BUTTONS = re.compile(r"Is\w+Switch(?:Engaged|On)")  # a button's state (the seat's "warmer" switch), not a function


def _pairs(segments: list[str], zones: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """Each segment with the last one before it that is not one of ``zones`` ('' for the first)."""
    pairs, previous = [], ""
    for segment in segments:
        pairs.append((previous, segment))
        if segment not in zones:
            previous = segment
    return pairs


def camel_words(segment: str) -> list[str]:
    """'IsRecirculationActive' -> ['recirculation'] (the words of a segment that name something)."""
    return [w.lower() for w in _CAMEL.findall(segment) if w.lower() not in _SKIP_WORDS]


@dataclass(frozen=True)
class Mentions:
    """What a request names: ``concepts``, ``zones`` (each mention: the zone segments it may mean; ``own``: those
    of them the speaker's own words said, "my"), ``all`` ("all", "every", 全部), ``plural`` (the concepts named in
    the plural: "windows")."""

    concepts: frozenset[str] = frozenset()
    zones: tuple[frozenset[str], ...] = ()
    all: bool = False
    plural: frozenset[str] = frozenset()
    own: tuple[frozenset[str], ...] = ()

    def merged(self, other: Mentions, narrowed: bool = False) -> Mentions:
        """These mentions with ``other``'s (a follow-up completing a request): other's zones replace these, or
        add to them when ``narrowed`` (the rear window asked about, "the left one")."""
        zones = (*self.zones, *other.zones) if narrowed else other.zones or self.zones
        return Mentions(self.concepts | other.concepts, zones, self.all or other.all, self.plural | other.plural,
                        (*self.own, *other.own) if narrowed else other.own or self.own)

    def without_own(self) -> Mentions:
        """These mentions without the speaker's own zone words."""
        return replace(self, zones=tuple(z for z in self.zones if z not in self.own), own=())


@dataclass(frozen=True)
class Thing:
    """A part of the car with zones: which instance no zone means (``default``: zone segments, or ``ask`` or
    ``all``), per signal name too (``defaults``), and the signal an open or close request sets (``opens``)."""

    default: tuple[str, ...] | str = "ask"
    defaults: Mapping[str, tuple[str, ...] | str] = field(default_factory=dict)
    opens: str | None = None
    partial: str = "number"


def _zone_default(raw: Any) -> tuple[str, ...] | str:
    return raw if isinstance(raw, str) else tuple(raw)


class Lexicon:
    """The words of ``data/lexicon.yaml`` (see the module)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.segments: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in data["segments"].items()}
        self._first = {k: str(v[0]) for k, v in data["segments"].items() if v}  # a segment's name: its first concept
        self.zone_segments = frozenset(data["zones"])
        self.things = {name: Thing(_zone_default(spec.get("default", "ask")),
                                   {k: _zone_default(v) for k, v in spec.get("defaults", {}).items()},
                                   spec.get("opens"), spec.get("partial", "number"))
                       for name, spec in data["things"].items()}
        self.prefer: tuple[str, ...] = tuple(data.get("prefer", ()))
        self.signed: dict[str, tuple[str, str]] = {k: (v[0], v[1]) for k, v in data.get("signed", {}).items()}
        # a concept's or zone's name in replies: its first English and Chinese words
        self.names = {name: (str(words["en"][0]), str(words["zh"][0]))
                      for name, words in (*data["concepts"].items(), *data["zones"].items())}
        surfaces: dict[str, list[tuple[str, str]]] = {}
        sections = [("concept", data["concepts"].items()), ("zone", data["zones"].items()),
                    ("all", [("", data["all"])]), ("noise", [("", data.get("noise", {}))])]
        for kind, named in sections:
            for name, words in named:
                for word in (*(words.get("en") or ()), *(words.get("zh") or ())):
                    surfaces.setdefault(str(word).lower(), []).append((kind, name))
        self._surfaces = surfaces
        self._plural = {w for w in surfaces if w.isascii() and w.endswith("s") and w[:-1] in surfaces}
        self._own = frozenset(str(w) for w in data.get("own", ()))
        self._pattern: re.Pattern[str] | None = None

    @cached_property
    def parts(self) -> frozenset[str]:
        """The concepts that name a part of the car with zones (the seat, the mirrors, the ambient light)."""
        return frozenset(c for thing in self.things for c in self.concepts_of(thing))

    def learn(self, words: Iterable[str]) -> None:
        """Know ``words`` (a segment's own CamelCase words) as concepts of their own name."""
        for word in words:
            if word not in self._surfaces and word not in _COMMON and len(word) > 2:
                self._surfaces[word] = [("concept", word)]
                self._pattern = None

    def describe(self, path: str, zh: bool, value: Any = None, zoned: bool = True, whole: bool = False) -> str:
        """A signal's name in a reply: its zones (if ``zoned``), its part and what it is ("front passenger
        window"), or every named segment (if ``whole``: "media source", "projection source"); ``value``, the one
        set, names a signed segment by its sign (seat heating or cooling)."""
        segments = path.split(".")[1:]
        zones = [self.names[s][zh] for p, s in _pairs(segments, self.zone_segments)
                 if zoned and s in self.zone_segments and s in self.names and f"{p}.{s}" not in self.segments]
        named = [(p, s) for p, s in _pairs(segments, self.zone_segments) if self.segment_concepts(p, s)]
        thing = next(((p, s) for p, s in reversed(named) if s in self.things), None)
        parts = named[:-1] if whole else [thing] if thing and named[-1] != thing else []
        words = [*zones, *(self._name(p, s, zh, value) for p, s in [*parts, *named[-1:]])]
        return ("" if zh else " ").join(dict.fromkeys(words))

    def _name(self, previous: str, segment: str, zh: bool, value: Any = None) -> str:
        if segment in self.signed:
            positive, negative = self.signed[segment]
            chosen = negative if isinstance(value, int | float) and value < 0 else positive
            return self.names[chosen][zh]
        first = self._first.get(f"{previous}.{segment}", self._first.get(segment))
        known = [first] if first in self.names else sorted(
            c for c in self.segment_concepts(previous, segment) if c in self.names)
        return self.names[known[0]][zh] if known else " ".join(camel_words(segment))

    def segment_concepts(self, previous: str, segment: str) -> frozenset[str]:
        """What ``segment`` stands for after ``previous`` (a zone stands for nothing, but in "Parent.Segment")."""
        pair = self.segments.get(f"{previous}.{segment}")
        if pair is not None:
            return pair
        return frozenset() if segment in self.zone_segments else self.concepts_of(segment)

    def concepts_of(self, segment: str) -> frozenset[str]:
        if segment in self.segments:
            return self.segments[segment]
        return frozenset(camel_words(segment))

    def scan(self, text: str) -> Mentions:
        """The concepts, zones and "all" words of normalised ``text``, longest words first, none overlapping."""
        if self._pattern is None:
            words = sorted(self._surfaces, key=len, reverse=True)
            self._pattern = re.compile("|".join(
                rf"(?<![a-z0-9']){re.escape(w)}(?![a-z0-9])" if w[:1].isascii() else re.escape(w) for w in words))
        concepts: set[str] = set()
        plural: set[str] = set()
        zones: list[frozenset[str]] = []
        own: list[frozenset[str]] = []
        every = False
        for match in self._pattern.finditer(text):
            word = match.group(0)
            kinds = self._surfaces[word]
            named = {name for kind, name in kinds if kind == "concept"}
            concepts |= named
            if word in self._plural:
                plural |= named
            zone = frozenset(name for kind, name in kinds if kind == "zone")
            if zone:
                zones.append(zone)
                if word in self._own:
                    own.append(zone)
            every |= any(kind == "all" for kind, _ in kinds)
        return Mentions(frozenset(concepts), tuple(zones), every, frozenset(plural), tuple(own))


@cache
def _lexicon_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(LEXICON.read_text("utf-8"))
    return data


def lexicon() -> Lexicon:
    """A new lexicon of ``data/lexicon.yaml`` (it learns the names of a catalog's signals: one per index)."""
    return Lexicon(_lexicon_data())


@cache
def value_words() -> dict[str, tuple[str, ...]]:
    """The words that name allowed values (``values:`` in the lexicon: "intermittent" is ``INTERVAL``)."""
    return {k: tuple(v) for k, v in _lexicon_data().get("values", {}).items()}


@dataclass(frozen=True)
class Entry:
    """One signal as the assistant sees it: its ``concepts`` per named segment, ``zones``, ``key`` (the path with
    its zones as ``*``: one key for a signal in every zone), the ``thing`` with zones it belongs to and the
    concepts of the parts that hold it (``holders``: the sunroof of the sunroof's shade, which a request may name
    and need not)."""

    signal: Signal
    concepts: tuple[frozenset[str], ...]
    zones: frozenset[str]
    key: str
    thing: str | None
    holders: frozenset[str] = frozenset()

    @property
    def path(self) -> str:
        return self.signal.path

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def unit(self) -> str:
        """The signal's unit, lower case ("celsius"), '' if it has none."""
        return (self.signal.unit or "").lower()

    @cached_property
    def every_concept(self) -> frozenset[str]:
        return frozenset(c for group in self.concepts for c in group) | self.holders


@dataclass(frozen=True)
class Grounding:
    """The signals a request names: ``entries`` (one signal in the zones meant), or ``ambiguous``: ``zone`` when
    it is not said which one, ``thing`` when several signals fit as well (``options``: those that fit)."""

    entries: tuple[Entry, ...] = ()
    ambiguous: str | None = None
    options: tuple[Entry, ...] = ()


def _zones_of(lex: Lexicon, segments: list[str]) -> frozenset[str]:
    zones = {s for s in segments if s in lex.zone_segments}
    for segment in segments:  # a zone inside a name: IsRearDefrosterActive is the rear one
        zones |= {z for z in ("Front", "Rear") if segment.startswith(f"Is{z}")}
    return frozenset(zones)


class SignalIndex:
    """Every signal of ``catalog`` in ``paths`` (the signals the car has values for), for grounding."""

    def __init__(self, catalog: Catalog, paths: Iterable[str], rows: int = 2) -> None:
        lex = lexicon()
        self.lexicon = lex
        entries = []
        for path in paths:
            if path not in catalog:
                continue
            signal = catalog.get(path)
            segments = path.split(".")[1:]
            if any(int(m.group(1)) > rows for s in segments if (m := _ROW.fullmatch(s))):
                continue  # a row the car does not have
            if _BUTTONS.fullmatch(segments[-1]):
                continue
            named = [s for s in segments if s not in lex.zone_segments]
            for segment in named:
                if segment not in lex.segments:
                    lex.learn(camel_words(segment))
            things = [s for s in segments if s in lex.things]
            # what each segment stands for; a part holding another (the door of a door's window) is a holder, named
            # or not; "Parent.Segment" in the lexicon is a segment in its place (the front trunk is the frunk)
            pairs = _pairs(segments, lex.zone_segments)
            concepts = tuple(c for c in (lex.segment_concepts(prev, seg) for prev, seg in pairs
                                         if not (seg in things and seg != things[-1])) if c)
            holders = frozenset(c for prev, seg in pairs if seg in things and seg != things[-1]
                                for c in lex.segment_concepts(prev, seg))
            thing = things[-1] if things else None
            key = ".".join("*" if s in lex.zone_segments else s for s in segments)
            entries.append(Entry(signal, concepts, _zones_of(lex, segments), key, thing, holders))
        self.entries = entries

    def ground(self, mentions: Mentions, actuators: bool, wanted: Any = None, named: Any = None,
               favour: Any = None) -> Grounding:
        """The signals ``mentions`` name best (actuators only if ``actuators``); ``wanted(entry)`` says whether a
        signal can take what is asked (its datatype against the verb and value), ``named(entry)`` whether the
        request names one of its allowed values by its words ("auto": the light switch's; with no concept named,
        such values alone find a signal: "feet"), which counts as a concept matched; of signals named as well,
        and preferred alike, of one part, those ``favour(entry)`` likes (a yes/no question's boolean, a light's
        switch rather than its brightness)."""
        if mentions.own and len(mentions.own) < len(mentions.zones):  # "for my son in the back": "my" is his
            mentions = mentions.without_own()
        scored = self._scored(mentions, actuators, wanted, named)
        if not scored and mentions.own:  # "the rear right door for my mom": "my" is no zone here
            return self.ground(mentions.without_own(), actuators, wanted, named, favour)
        if not scored:
            return Grounding()
        best = max(score for score, _ in scored)
        # a request that names no signal's part ("make it darker") fits the parts that have it nearly as well
        slack = 0.5 if best[1] <= -1 else 0.0
        top = [entry for score, entry in scored if score[0] == best[0] and score[1] >= best[1] - slack]
        if mentions.zones and any(e.zones for e in top):
            top = [e for e in top if e.zones]  # a zone said: the parts that have zones
        keys = list(dict.fromkeys(e.key for e in top))
        if len(keys) > 1:
            keys = self._preferred(keys, top, actuators)
        if len(keys) > 1 and favour is not None and len({e.thing for e in top if e.key in keys}) == 1:
            keys = [k for k in keys if any(e.key == k and favour(e) for e in top)] or keys  # of one part
        if len(keys) > 1:
            return Grounding(ambiguous="thing", options=tuple(e for e in top if e.key in keys))
        return self._zoned([e for e in top if e.key == keys[0]], mentions)

    def choices(self, mentions: Mentions, actuators: bool, wanted: Any = None, count: int = 4) -> list[Entry]:
        """The ``count`` signals that ``mentions`` name best, one per signal whatever its zone, best first (what
        to offer when a request names a part and asks nothing of it)."""
        best: dict[str, Entry] = {}
        for _, entry in sorted(self._scored(mentions, actuators, wanted, None), key=lambda s: s[0],
                               reverse=True):
            best.setdefault(entry.key, entry)
        return list(best.values())[:count]

    def _scored(self, mentions: Mentions, actuators: bool, wanted: Any, named: Any
                ) -> list[tuple[tuple[int, float], Entry]]:
        scored: list[tuple[tuple[int, float], Entry]] = []
        if not mentions.concepts and named is None:
            return scored
        for entry in self.entries:
            if actuators and entry.signal.entry_type is not EntryType.ACTUATOR:
                continue
            matched = len(entry.every_concept & mentions.concepts)
            if not matched and mentions.concepts:
                continue
            if named is not None and named(entry):
                matched += 1
            if not matched:
                continue
            # segments the request does not name, and half for a segment it names in part (the window child lock
            # is a window's, but less of one than the window itself)
            missed = sum(1.0 if not group & mentions.concepts else 0.5 if group - mentions.concepts else 0.0
                         for group in entry.concepts)
            if entry.zones and not all(zone & entry.zones for zone in mentions.zones):
                continue  # a zone said that this signal is not in (a zone says nothing of a part without any)
            if wanted is not None and not wanted(entry):
                continue
            scored.append(((matched, -missed), entry))
        return scored

    def _preferred(self, keys: list[str], top: list[Entry], actuators: bool) -> list[str]:
        """Of signals that fit equally, narrowed in turn: the lexicon's preferred ones, a part's open/close
        signal for a request, a sensor for a question (what the car measures, rather than what was last asked
        of it)."""
        for name in self.lexicon.prefer:
            chosen = [k for k in keys if k.endswith(f".{name}") or f".{name}." in k]
            if chosen:
                keys = chosen
                break
        things = {e.thing for e in top if e.key in keys}
        if actuators and len(things) == 1 and (thing := things.pop()) is not None:
            opens = self.lexicon.things[thing].opens
            keys = [k for k in keys if opens and k.endswith(f".{opens}")] or keys
        if not actuators:
            keys = [k for k in keys if any(e.key == k and e.signal.entry_type is not EntryType.ACTUATOR
                                           for e in top)] or keys
        return keys

    def _zoned(self, entries: list[Entry], mentions: Mentions) -> Grounding:
        """The zones meant of one signal: those said, else the part's default (or all of them, or ask). When a
        zone is said and several still fit ("the back seat": three), the part's ``partial`` says: all of them
        (a row of climate zones), or all only if named in the plural."""
        thing_name = entries[0].thing
        part = self.lexicon.concepts_of(thing_name) if thing_name else entries[0].every_concept
        plural = bool(mentions.plural & part)  # "the windows", not "the wipers" (of the front windshield)
        said = {z for zone in mentions.zones for z in zone}
        if said and not said & {z for e in entries for z in e.zones if _ROW.fullmatch(z)}:
            front = [e for e in entries if "Row1" in e.zones]  # the driver's or passenger's seat is the front one
            if front and len(front) < len(entries):
                return self._zoned(front, mentions)
        if len(entries) == 1 or mentions.all or plural:
            return Grounding(tuple(entries))
        thing = self.lexicon.things.get(entries[0].thing or "")
        default = "ask" if thing is None else thing.defaults.get(entries[0].name, thing.default)
        if mentions.zones:
            if thing is not None and (thing.partial == "all" or plural):
                return Grounding(tuple(entries))
            return Grounding(ambiguous="zone", options=tuple(entries))
        if default == "all":
            return Grounding(tuple(entries))
        if isinstance(default, tuple):
            chosen = [e for e in entries if set(default) <= e.zones]
            if chosen:
                return Grounding(tuple(chosen))
        return Grounding(ambiguous="zone", options=tuple(entries))



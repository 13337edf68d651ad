"""The query language of ``sdv.databroker.v1`` (``SELECT ... WHERE ...``, the KUKSA databroker's ``doc/QUERY.md``)
and its conditions, which the car's automations use too: parsed, typed against the names' datatypes, evaluated on
values.

A pure core: ``compile_query(text, resolve)`` / ``compile_condition(text, resolve)`` take ``resolve(name) ->
Datatype`` (raising an EvosError for a name that does not exist) and give a ``Query`` / ``Condition``; evaluating
one reads a mapping of names to values, where a missing name or ``None`` is a value not available.

Semantics as the KUKSA databroker 0.6.1 (``databroker/src/query/``): a comparison with a value not available is
false for ``=``, true for ``!=`` and undefined for ``<``, ``>`` ...; an undefined condition does not hold. Numbers
compare across datatypes, floats within a relative 1e-6 (float32's precision). A numeric literal is checked against
the datatype of the other side (300 does not compare with a UInt8).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from evos.errors import EvosError, InvalidArgumentError
from evos.vss import Datatype, Kind

MAX_QUERY_CHARS = 8 * 1024
MAX_DEPTH = 64
FLOAT_REL_TOL = 1e-6

Resolve = Callable[[str], Datatype]

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<string>'(?:[^']|'')*')
  | (?P<op><>|!=|<=|>=|=|<|>|\(|\)|,|-|\*)
""", re.VERBOSE)
_KEYWORDS = {"SELECT", "WHERE", "AND", "OR", "NOT", "BETWEEN", "AS", "TRUE", "FALSE", "LAG", "FROM"}
_UNSUPPORTED = {"IN": "IN is not supported (compare with = and join with OR)", "LIKE": "LIKE is not supported",
                "IS": "IS [NOT] NULL is not supported (a value not available is neither = nor != to anything)",
                "NULL": "NULL is not supported", "ORDER": "ORDER BY is not supported", "GROUP": "GROUP BY is not "
                "supported", "LIMIT": "LIMIT is not supported", "JOIN": "JOIN is not supported"}
_COMPARE = {"=", "!=", "<>", "<", "<=", ">", ">="}


class _Undefined(Exception):
    """An expression has no value here (an order comparison with a value not available)."""


@dataclass(frozen=True)
class _Token:
    kind: str  # number, name, string, op, keyword, end
    text: str
    at: int  # position in the text, from 0


def _tokens(text: str, what: str) -> list[_Token]:
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidArgumentError(f"{what} is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}")
    out: list[_Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            char = text[at]
            hint = " (strings take single quotes)" if char == '"' else ""
            if char == "'":
                raise InvalidArgumentError(f"{what}: the string at position {at + 1} is not closed")
            raise InvalidArgumentError(f"{what}: unexpected character {char!r} (U+{ord(char):04X}) at position "
                                       f"{at + 1}{hint}")
        kind = match.lastgroup or ""
        token = match.group()
        if kind == "name" and "." not in token and token.upper() in _UNSUPPORTED:
            raise InvalidArgumentError(f"{what}: {_UNSUPPORTED[token.upper()]}, near {token!r} at position {at + 1}")
        if kind == "name" and "." not in token and token.upper() in _KEYWORDS:
            out.append(_Token("keyword", token.upper(), at))
        elif kind != "space":
            out.append(_Token(kind, token, at))
        at = match.end()
    out.append(_Token("end", "", len(text)))
    return out


# ---- the expression tree -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Name:
    name: str
    datatype: Datatype
    lag: bool = False

    def value(self, values: Mapping[str, Any], lags: Mapping[str, Any]) -> Any:
        return (lags if self.lag else values).get(self.name)


@dataclass(frozen=True)
class _Literal:
    literal: Any  # bool, str, int, float

    def value(self, values: Mapping[str, Any], lags: Mapping[str, Any]) -> Any:
        return self.literal


@dataclass(frozen=True)
class _Compare:
    op: str
    left: Any
    right: Any

    def value(self, values: Mapping[str, Any], lags: Mapping[str, Any]) -> Any:
        return _compare(self.op, self.left.value(values, lags), self.right.value(values, lags))


@dataclass(frozen=True)
class _Between:
    subject: Any
    low: Any
    high: Any
    negated: bool

    def value(self, values: Mapping[str, Any], lags: Mapping[str, Any]) -> Any:
        subject = self.subject.value(values, lags)
        inside = (_compare(">=", subject, self.low.value(values, lags))
                  and _compare("<=", subject, self.high.value(values, lags)))
        return not inside if self.negated else inside


@dataclass(frozen=True)
class _Not:
    operand: Any

    def value(self, values: Mapping[str, Any], lags: Mapping[str, Any]) -> Any:
        return not _truth(self.operand.value(values, lags))


@dataclass(frozen=True)
class _Logic:
    op: str  # AND, OR
    left: Any
    right: Any

    def value(self, values: Mapping[str, Any], lags: Mapping[str, Any]) -> Any:
        left = _truth(self.left.value(values, lags))
        if left is (self.op == "OR"):
            return left
        return _truth(self.right.value(values, lags))


def _truth(value: Any) -> bool:
    if value is None:
        raise _Undefined
    return bool(value)


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        if op in ("=", "!=", "<>"):
            return op != "="
        raise _Undefined
    floats = isinstance(left, float) or isinstance(right, float)
    if floats and math.isclose(left, right, rel_tol=FLOAT_REL_TOL, abs_tol=1e-12):
        return op in ("=", "<=", ">=")
    result: bool
    if op == "=":
        result = left == right
    elif op in ("!=", "<>"):
        result = left != right
    elif op == "<":
        result = left < right
    elif op == "<=":
        result = left <= right
    elif op == ">":
        result = left > right
    else:
        result = left >= right
    return result


# ---- typing --------------------------------------------------------------------------------------------------------
_BOOL, _STRING, _NUMBER = "a boolean", "a string", "a number"


def _type_of(node: Any) -> str:
    if isinstance(node, _Name):
        if node.datatype.is_array:
            return "an array"
        return {Kind.BOOL: _BOOL, Kind.STRING: _STRING}.get(node.datatype.kind, _NUMBER)
    if isinstance(node, _Literal):
        if isinstance(node.literal, bool):
            return _BOOL
        return _STRING if isinstance(node.literal, str) else _NUMBER
    return _BOOL


def _describe(node: Any) -> str:
    if isinstance(node, _Name):
        return f"LAG({node.name})" if node.lag else node.name
    if isinstance(node, _Literal):
        literal = node.literal
        if isinstance(literal, bool):
            return str(literal).upper()
        return repr(literal) if isinstance(literal, str) else str(literal)
    return "a condition"


def _check_literal(literal: _Literal, other: Any, what: str) -> None:
    """A numeric literal must fit the integer datatype of the signal it is compared with."""
    if not isinstance(other, _Name) or isinstance(literal.literal, bool | str):
        return
    bounds = other.datatype.int_bounds
    if bounds is None:
        return
    number = literal.literal
    if not float(number).is_integer() or not bounds[0] <= number <= bounds[1]:
        raise InvalidArgumentError(f"{what}: {number} does not compare with {_describe(other)}, a "
                                   f"{other.datatype.value} ({bounds[0]}..{bounds[1]})")


def _check_compare(op: str, left: Any, right: Any, what: str) -> None:
    types = _type_of(left), _type_of(right)
    if "an array" in types:
        side = left if types[0] == "an array" else right
        raise InvalidArgumentError(f"{what}: {_describe(side)} is an array; arrays cannot be compared")
    if types[0] != types[1]:
        raise InvalidArgumentError(f"{what}: {_describe(left)} is {types[0]} and {_describe(right)} is {types[1]}; "
                                   f"they do not compare ({op})")
    if types[0] != _NUMBER and op not in ("=", "!=", "<>"):
        raise InvalidArgumentError(f"{what}: {types[0][2:]}s compare only with = and != (not {op})")
    for literal, other in ((left, right), (right, left)):
        if isinstance(literal, _Literal):
            _check_literal(literal, other, what)


# ---- the parser ----------------------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, resolve: Resolve, what: str) -> None:
        self.what = what
        self.tokens = _tokens(text, what)
        self.at = 0
        self.resolve = resolve
        self.names: dict[str, Datatype] = {}
        self.lagged: set[str] = set()
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def _fail(self, message: str) -> InvalidArgumentError:
        token = self.token
        near = "the end" if token.kind == "end" else f"{token.text!r} at position {token.at + 1}"
        return InvalidArgumentError(f"{self.what}: {message}, near {near}")

    def accept(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.token
        if token.kind == kind and (text is None or token.text == text):
            self.at += 1
            return token
        return None

    def expect(self, kind: str, text: str, message: str) -> None:
        if self.accept(kind, text) is None:
            raise self._fail(message)

    def end(self) -> None:
        if self.token.kind != "end":
            token = self.token
            if token.kind == "keyword" and token.text == "FROM":
                raise self._fail("FROM is not part of the language (a query selects signals: SELECT Vehicle.Speed)")
            raise self._fail("unexpected text")

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._fail(f"nested over {MAX_DEPTH} levels deep")

    def expression(self) -> Any:
        self._deeper()
        node = self._and()
        while self.accept("keyword", "OR"):
            node = self._logic("OR", node, self._and())
        self.depth -= 1
        return node

    def _logic(self, op: str, left: Any, right: Any) -> _Logic:
        for side in (left, right):
            if _type_of(side) != _BOOL:
                raise InvalidArgumentError(f"{self.what}: {op} needs conditions on both sides; {_describe(side)} is "
                                           f"{_type_of(side)}")
        return _Logic(op, left, right)

    def _and(self) -> Any:
        node = self._not()
        while self.accept("keyword", "AND"):
            node = self._logic("AND", node, self._not())
        return node

    def _not(self) -> Any:
        if self.accept("keyword", "NOT"):
            self._deeper()
            operand = self._not()
            self.depth -= 1
            if _type_of(operand) != _BOOL:
                raise InvalidArgumentError(f"{self.what}: NOT needs a condition; {_describe(operand)} is "
                                           f"{_type_of(operand)}")
            return _Not(operand)
        return self._comparison()

    def _comparison(self) -> Any:
        left = self._primary()
        token = self.token
        if token.kind == "op" and token.text in _COMPARE:
            self.at += 1
            right = self._primary()
            _check_compare(token.text, left, right, self.what)
            return _Compare(token.text, left, right)
        negated = False
        if token.kind == "keyword" and token.text == "NOT" and self.tokens[self.at + 1].text == "BETWEEN":
            self.at += 1
            negated = True
        if self.accept("keyword", "BETWEEN"):
            low = self._primary()
            self.expect("keyword", "AND", "BETWEEN needs AND between its bounds")
            high = self._primary()
            for bound in (low, high):
                _check_compare("BETWEEN", left, bound, self.what)
                if _type_of(left) != _NUMBER:
                    raise InvalidArgumentError(f"{self.what}: BETWEEN needs numbers; {_describe(left)} is "
                                               f"{_type_of(left)}")
            return _Between(left, low, high, negated)
        return left

    def _name(self, name: str) -> _Name:
        datatype = self.names.get(name)
        if datatype is None:
            try:
                datatype = self.resolve(name)
            except EvosError as exc:
                raise InvalidArgumentError(f"{self.what}: {exc}") from exc
            self.names[name] = datatype
        return _Name(name, datatype)

    def _primary(self) -> Any:
        token = self.token
        self.at += 1
        if token.kind == "name":
            return self._name(token.text)
        if token.kind == "number" or (token.kind == "op" and token.text == "-" and self.token.kind == "number"):
            text = token.text if token.kind == "number" else "-" + self.accept("number").text  # type: ignore[union-attr]
            number = float(text)
            if not math.isfinite(number):
                self.at -= 1
                raise self._fail(f"{text} is not a finite number")
            is_int = re.fullmatch(r"-?\d+", text) is not None
            return _Literal(int(text) if is_int else number)
        if token.kind == "string":
            return _Literal(token.text[1:-1].replace("''", "'"))
        if token.kind == "keyword" and token.text in ("TRUE", "FALSE"):
            return _Literal(token.text == "TRUE")
        if token.kind == "keyword" and token.text == "LAG":
            self.expect("op", "(", "LAG needs a signal in parentheses: LAG(Vehicle.Speed)")
            name = self.accept("name")
            if name is None:
                raise self._fail("LAG takes one signal")
            self.expect("op", ")", "LAG takes one signal")
            self.lagged.add(name.text)
            return _Name(name.text, self._name(name.text).datatype, lag=True)
        if token.kind == "op" and token.text == "(":
            if self.token.kind == "keyword" and self.token.text == "SELECT":
                raise self._fail("subqueries are not supported")
            node = self.expression()
            self.expect("op", ")", "a parenthesis is not closed")
            return node
        self.at -= 1
        if token.kind == "end":
            raise self._fail("the expression ends too early")
        if token.kind == "op" and token.text == "*":
            raise self._fail("SELECT * is not supported; name the signals")
        raise self._fail("expected a signal, a value or a condition")


# ---- compiled forms ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """A boolean expression. ``names``: every name it reads (with their datatypes); ``lagged``: names read with
    ``LAG`` (their previous values)."""

    text: str
    names: Mapping[str, Datatype]
    lagged: frozenset[str]
    _root: Any

    def holds(self, values: Mapping[str, Any], lags: Mapping[str, Any] | None = None) -> bool:
        """True only if the condition evaluates to true (false or undefined: False)."""
        try:
            return _truth(self._root.value(values, lags or {}))
        except _Undefined:
            return False


@dataclass(frozen=True)
class Selected:
    """One item of a query's ``SELECT``: its reply name, datatype and expression."""

    name: str
    datatype: Datatype
    _node: Any

    def value(self, values: Mapping[str, Any], lags: Mapping[str, Any]) -> Any:
        """The field's value, None when not available (or undefined)."""
        try:
            return self._node.value(values, lags)
        except _Undefined:
            return None


@dataclass(frozen=True)
class Query:
    fields: tuple[Selected, ...]
    where: Condition | None
    names: Mapping[str, Datatype]
    lagged: frozenset[str]

    def reply(self, values: Mapping[str, Any], lags: Mapping[str, Any]) -> dict[str, tuple[Datatype, Any]] | None:
        """``{field name: (datatype, value or None)}`` when the ``WHERE`` holds (or there is none), else None."""
        if self.where is not None and not self.where.holds(values, lags):
            return None
        return {f.name: (f.datatype, f.value(values, lags)) for f in self.fields}


def _datatype_of(node: Any) -> Datatype:
    if isinstance(node, _Name):
        return node.datatype
    if isinstance(node, _Literal) and not isinstance(node.literal, bool):
        if isinstance(node.literal, str):
            return Datatype.STRING
        return Datatype.INT64 if isinstance(node.literal, int) else Datatype.DOUBLE
    return Datatype.BOOLEAN


def compile_condition(text: str, resolve: Resolve, what: str = "condition") -> Condition:
    """Parse and type a boolean expression; InvalidArgumentError names what is wrong (``what`` leads the message)."""
    parser = _Parser(text, resolve, what)
    if parser.token.kind == "end":
        raise InvalidArgumentError(f"{what}: empty")
    root = parser.expression()
    parser.end()
    if _type_of(root) != _BOOL:
        raise InvalidArgumentError(f"{what}: {_describe(root)} is {_type_of(root)}, not a condition (compare it: "
                                   f"{_describe(root)} > 0, = 'text', = true)")
    return Condition(text, dict(parser.names), frozenset(parser.lagged), root)


def compile_query(text: str, resolve: Resolve) -> Query:
    """Parse and type ``SELECT item, ... [WHERE condition]``; InvalidArgumentError names what is wrong."""
    parser = _Parser(text, resolve, "query")
    if parser.accept("keyword", "SELECT") is None:
        raise parser._fail("a query starts with SELECT")
    fields: list[Selected] = []
    while True:
        node = parser.expression()
        alias = None
        if parser.accept("keyword", "AS"):
            alias_token = parser.accept("name")
            if alias_token is None:
                raise parser._fail("AS needs a name")
            alias = alias_token.text
        elif parser.token.kind == "name" and "." not in parser.token.text:
            alias = parser.token.text
            parser.at += 1
        if alias is None:
            alias = node.name if isinstance(node, _Name) and not node.lag else f"field_{len(fields) + 1}"
        fields.append(Selected(alias, _datatype_of(node), node))
        if parser.accept("op", ",") is None:
            break
    where = None
    if parser.accept("keyword", "WHERE"):
        start = parser.token.at
        root = parser.expression()
        if _type_of(root) != _BOOL:
            raise InvalidArgumentError(f"query: WHERE needs a condition; {_describe(root)} is {_type_of(root)}")
        where = Condition(text[start:], {}, frozenset(), root)
    parser.end()
    return Query(tuple(fields), where, dict(parser.names), frozenset(parser.lagged))

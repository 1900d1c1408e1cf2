"""Compile a query into a predicate over `LogEvent`s, for tail: pure Python, no store involved.

The predicate agrees with the Tantivy and OpenSearch queries compiled from the same tree on every event
(the equivalence tests hold all three to it). Everything that can be prepared is prepared once, at compile
time: regexes, number bounds, per-field accessors; evaluating an event allocates nothing in the common
cases (keyword equality, `fields` strings and ints, ASCII messages).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import assert_never

from mintlog.domain.events import LogEvent
from mintlog.query.ast import (
    And,
    Exists,
    MatchAll,
    MatchNone,
    Node,
    Not,
    NumberRange,
    Or,
    Term,
    Text,
    TimeRange,
    Wildcard,
    field_key,
)
from mintlog.query.patterns import Wildcard as Piece
from mintlog.query.patterns import glob_to_python, split_glob
from mintlog.query.text import positioned_words
from mintlog.query.timebounds import resolve_time
from mintlog.query.values import MAX_VALUE_TEXT_BYTES, plain_decimal, value_text

__all__ = ["Matcher", "to_matcher"]

Matcher = Callable[[LogEvent], bool]
_ValueCheck = Callable[[object], bool]
_TextCheck = Callable[[str], bool]

# Strings up to this many characters are never cut to MAX_VALUE_TEXT_BYTES, so need no check.
_SHORT_STRING = MAX_VALUE_TEXT_BYTES // 4


def to_matcher(node: Node, now: datetime) -> Matcher:
    """A predicate that is true exactly for the events `node` matches.

    Relative times are resolved once, against `now` (a tail started with `timestamp:>now-1h` keeps the
    bound it had when it started). Raises `QuerySyntaxError` if a time bound is out of range for `now`.
    """
    return _compile(node, now)


def _always(_event: LogEvent) -> bool:
    return True


def _never(_event: LogEvent) -> bool:
    return False


def _compile(node: Node, now: datetime) -> Matcher:
    match node:
        case MatchAll():
            return _always
        case MatchNone():
            return _never
        case Text(words=words):
            return _text(words)
        case Term(field=field, value=value, number=number):
            key = field_key(field)
            if key is None:
                return _keyword(field, lambda text: text == value)
            return _field_values(key, _equals(value, number))
        case Wildcard(field=field, pattern=pattern):
            key = field_key(field)
            glob = _glob(pattern)
            if key is None:
                return _keyword(field, glob)
            return _field_values(key, _via_text(glob))
        case NumberRange(field=field):
            key = field_key(field)
            assert key is not None  # the parser only makes ranges on fields.*
            return _field_values(key, _in_range(node))
        case TimeRange():
            return _time_range(node, now)
        case Exists(field=field):
            key = field_key(field)
            if key is None:
                return _keyword(field, lambda _text: True)
            return _field_values(key, _has_text)
        case And(clauses=clauses):
            return _all([_compile(clause, now) for clause in sorted(clauses, key=_cost)])
        case Or(clauses=clauses):
            return _any([_compile(clause, now) for clause in sorted(clauses, key=_cost)])
        case Not(clause=clause):
            inner = _compile(clause, now)
            return lambda event: not inner(event)
        case _:
            assert_never(node)


def _cost(node: Node) -> int:
    """A rough evaluation cost, so cheap clauses run first (the result never depends on the order)."""
    if isinstance(node, Term | Exists):
        return 0 if field_key(node.field) is None else 1
    if isinstance(node, TimeRange | NumberRange):
        return 2
    if isinstance(node, Wildcard):
        return 3
    if isinstance(node, Text):
        return 4
    return 5 if isinstance(node, And | Or | Not) else 0


def _all(predicates: Sequence[Matcher]) -> Matcher:
    """The conjunction, as a chain of closures: one call per clause, no loop or generator per event."""
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 3:
        first, second, third = predicates
        return lambda event: first(event) and second(event) and third(event)
    first, rest = predicates[0], _all(predicates[1:])
    return lambda event: first(event) and rest(event)


def _any(predicates: Sequence[Matcher]) -> Matcher:
    """The disjunction, as a chain of closures."""
    if len(predicates) == 1:
        return predicates[0]
    first, rest = predicates[0], _any(predicates[1:])
    return lambda event: first(event) or rest(event)


# --- keyword fields ------------------------------------------------------------------------------------


def _keyword(field: str, check: _TextCheck) -> Matcher:
    """`check` on a keyword attribute; an absent `trace_id`/`span_id` (None) never matches."""
    match field:
        case "service":
            return lambda event: check(event.service)
        case "level":
            return lambda event: check(event.level)
        case "host":
            return lambda event: check(event.host)
        case "source":
            return lambda event: check(event.source)
        case "id":
            return lambda event: check(event.id)
        case "trace_id":
            return lambda event: (value := event.trace_id) is not None and check(value)
        case "span_id":
            return lambda event: (value := event.span_id) is not None and check(value)
        case _:
            raise ValueError(f"not a keyword field: {field!r}")


def _glob(pattern: str) -> _TextCheck:
    """A check of a text against a wildcard pattern; plain prefix, suffix and infix patterns avoid regexes."""
    pieces = split_glob(pattern)
    match pieces:
        case [str(prefix), Piece.ANY_RUN]:
            return lambda text: text.startswith(prefix)
        case [Piece.ANY_RUN, str(suffix)]:
            return lambda text: text.endswith(suffix)
        case [Piece.ANY_RUN, str(infix), Piece.ANY_RUN]:
            return lambda text: infix in text
        case _:
            fullmatch = glob_to_python(pattern).fullmatch
            return lambda text: fullmatch(text) is not None


# --- fields.* --------------------------------------------------------------------------------------------


def _field_values(key: str, check: _ValueCheck) -> Matcher:
    """True when `check` holds for the value of `fields[key]`, or for one element of a list value."""

    def matches(event: LogEvent) -> bool:
        value = event.fields.get(key)
        if value is None:
            return False
        if value.__class__ is list:
            return any(map(check, value))  # pyright: ignore[reportArgumentType]
        return check(value)

    return matches


def _via_text(check: _TextCheck) -> _ValueCheck:
    def on_value(value: object) -> bool:
        text = value_text(value)
        return text is not None and check(text)

    return on_value


def _has_text(value: object) -> bool:
    cls = value.__class__
    return cls is str or cls is int or cls is bool or value_text(value) is not None


def _equals(literal: str, number: Decimal | None) -> _ValueCheck:
    """`literal` equals the value's text, or (for a number literal) the value is that number."""
    as_int = int(number) if number is not None and number == number.to_integral_value() else None
    literal_is_int = plain_decimal(literal) is not None and "." not in literal

    def on_value(value: object) -> bool:
        cls = value.__class__
        if cls is int:
            if as_int is not None:
                return value == as_int
            return literal_is_int and str(value) == literal
        if cls is bool:
            return literal == ("true" if value else "false")
        if cls is str:
            assert isinstance(value, str)
            text = value if len(value) <= _SHORT_STRING else value_text(value)
        else:
            text = value_text(value)
        if text is None:
            return False
        if text == literal:
            return True
        if number is None:
            return False
        decimal = plain_decimal(text)
        return decimal is not None and decimal == number

    return on_value


def _in_range(node: NumberRange) -> _ValueCheck:
    """Numbers, and strings in plain decimal notation, whose value lies in the range of `node`."""
    lower, upper = node.lower, node.upper
    include_lower, include_upper = node.include_lower, node.include_upper
    # The same bounds over the integers, and as the nearest floats.
    int_low = None if lower is None else (math.ceil(lower) if include_lower else math.floor(lower) + 1)
    int_high = None if upper is None else (math.floor(upper) if include_upper else math.ceil(upper) - 1)
    float_low = None if lower is None else float(lower)
    float_high = None if upper is None else float(upper)

    def decimal_in_range(value: Decimal) -> bool:
        if lower is not None and (value < lower or (value == lower and not include_lower)):
            return False
        return upper is None or value < upper or (value == upper and include_upper)

    def float_in_range(value: float) -> bool:
        # A float's text is its shortest round-trip decimal; compare that exactly only when the float
        # equals a bound's nearest float (anywhere else the float comparison gives the same answer).
        if (
            float_low is not None
            and value <= float_low
            and (value < float_low or not decimal_in_range(Decimal(repr(value))))
        ):
            return False
        if float_high is not None and value >= float_high:
            return value == float_high and decimal_in_range(Decimal(repr(value)))
        return True

    def on_value(value: object) -> bool:
        cls = value.__class__
        if cls is int:
            assert isinstance(value, int)
            return (int_low is None or value >= int_low) and (int_high is None or value <= int_high)
        if cls is str:
            assert isinstance(value, str)
            text = value if len(value) <= _SHORT_STRING else value_text(value)
            decimal = plain_decimal(text) if text is not None else None
            return decimal is not None and decimal_in_range(decimal)
        if cls is float:
            assert isinstance(value, float)
            return math.isfinite(value) and float_in_range(value)
        if cls is bool:
            return False
        text = value_text(value)
        decimal = plain_decimal(text) if text is not None else None
        return decimal is not None and decimal_in_range(decimal)

    return on_value


# --- timestamp ---------------------------------------------------------------------------------------------


def _time_range(node: TimeRange, now: datetime) -> Matcher:
    lower = resolve_time(node.lower, now) if node.lower is not None else None
    upper = resolve_time(node.upper, now) if node.upper is not None else None
    include_lower, include_upper = node.include_lower, node.include_upper

    def matches(event: LogEvent) -> bool:
        moment = event.timestamp
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if lower is not None and (moment < lower or (not include_lower and moment == lower)):
            return False
        return upper is None or moment < upper or (include_upper and moment == upper)

    return matches


# --- message ---------------------------------------------------------------------------------------------------


def _text(words: tuple[str, ...]) -> Matcher:
    """The words occur next to each other in `message`, as the index's analyzer splits and lowercases it."""
    if all(word.isascii() for word in words):
        # On ASCII text a word is a maximal run of [a-z0-9]: a regex over the message finds the words in
        # place, with no tokenizing and no copy. Lowercased non-ASCII words never occur in ASCII text.
        separator = r"[^a-z0-9]+"
        body = separator.join(re.escape(word) for word in words)
        search = re.compile(rf"(?<![a-z0-9]){body}(?![a-z0-9])", re.IGNORECASE | re.ASCII).search
    else:
        search = None

    def matches(event: LogEvent) -> bool:
        message = event.message
        if message.isascii():
            return search is not None and search(message) is not None
        return _contains_phrase(positioned_words(message), words)

    return matches


def _contains_phrase(positioned: list[tuple[int, str]], words: tuple[str, ...]) -> bool:
    first = words[0]
    count = len(words)
    for index, (position, word) in enumerate(positioned):
        if word != first:
            continue
        if index + count > len(positioned):
            return False
        if all(positioned[index + offset] == (position + offset, words[offset]) for offset in range(1, count)):
            return True
    return False

"""logfmt lines (`key=value key2="quoted \\"value\\""`) and the typing of values read from text.

A value written without quotes that is a plain decimal number (`12`, `-3`, `0.25`: the numbers range queries
compare, `mintlog.query.values.plain_decimal`) becomes an int (when it fits in 64 signed bits) or a float, so
metrics (`avg`, `percentiles`, …) and `/v1/logs/fields` see a number. Everything else stays the text as
written: quoted values (`"12"`), leading zeros (`007`, a code rather than a quantity), exponents (`1e3`),
signs (`+1`), hex, units (`12ms`) and integers beyond 64 bits.
"""

from __future__ import annotations

import re
from typing import Any

from mintlog.query.patterns import PLAIN_DECIMAL

__all__ = ["parse_logfmt", "typed_text_value"]

_LOGFMT_PAIR = re.compile(r'([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s+|\Z)')
_LOGFMT_ESCAPE = re.compile(r"\\(.)")
_LOGFMT_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_NUMBER = re.compile(PLAIN_DECIMAL)
_NUMBER_START = frozenset("-0123456789")
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_LONGEST_INT_DIGITS = 19


def typed_text_value(text: str) -> str | int | float:
    """`text` as an int or a float when it is a plain decimal number (see the module docstring), else itself."""
    if not text or text[0] not in _NUMBER_START or _NUMBER.fullmatch(text) is None:
        return text
    if "." in text:
        return float(text)
    if len(text) > _LONGEST_INT_DIGITS + 1:
        return text
    number = int(text)
    return number if _INT_MIN <= number <= _INT_MAX else text


def parse_logfmt(text: str) -> dict[str, Any] | None:
    """The pairs of a logfmt line, or `None` unless every word is a pair and there are at least two.

    Unquoted values are typed by `typed_text_value`; quoted values stay strings.
    """
    if "\\" in text:
        return _parse_escaped_logfmt(text)
    # Without backslashes, quotes alternate: odd parts of a split on '"' are quoted values.
    parts = text.split('"')
    if not len(parts) % 2:
        return None
    pairs: dict[str, Any] = {}
    count = 0
    quoted_key = ""
    last_part = len(parts) - 1
    for index, part in enumerate(parts):
        if index % 2:
            pairs[quoted_key] = part
            count += 1
            continue
        if index and part and not part[0].isspace():
            return None
        words = part.split()
        if index < last_part:
            if not words or part[-1].isspace():
                return None
            quoted_key, equals, rest = words.pop().partition("=")
            if not quoted_key or not equals or rest:
                return None
        for word in words:
            key, equals, value = word.partition("=")
            if not key or not equals:
                return None
            pairs[key] = typed_text_value(value) if value[:1] in _NUMBER_START else value
            count += 1
    return pairs if count >= 2 else None


def _parse_escaped_logfmt(text: str) -> dict[str, Any] | None:
    """`parse_logfmt` for lines with backslash escapes inside quoted values."""
    pairs: dict[str, Any] = {}
    position = len(text) - len(text.lstrip())
    end = len(text)
    count = 0
    while position < end:
        match = _LOGFMT_PAIR.match(text, position)
        if match is None:
            return None
        key, value = match.group(1, 2)
        if value[:1] == '"':
            pairs[key] = _LOGFMT_ESCAPE.sub(_unescape, value[1:-1])
        else:
            pairs[key] = typed_text_value(value)
        position = match.end()
        count += 1
    return pairs if count >= 2 else None


def _unescape(match: re.Match[str]) -> str:
    escaped = match.group(1)
    return _LOGFMT_ESCAPES.get(escaped, escaped)

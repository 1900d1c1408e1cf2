"""The index text of a `fields` value: what both stores index and what every query on `fields.*` compares.

OpenSearch maps `fields` as `flat_object`, which indexes every leaf as the keyword `fields.<key>=<text>`
(`fields._valueAndPath`) and cannot tell a number from a string. The Tantivy store indexes the same
`<key>=<text>` pairs in a raw text field (`FIELD_PAIRS`), and the matcher compares the same texts, so the
three agree by construction. The text of a value is:

- a string: itself, cut to at most `MAX_VALUE_TEXT_BYTES` UTF-8 bytes (whole characters);
- a bool: `true` or `false`;
- an int: its decimal digits (`-12`);
- a finite float: its shortest round-trip decimal, always in plain notation (`500.0`, `0.00001`,
  `100000000000000000000.0`), never with an exponent;
- `None`, NaN, ±infinity and anything else: no text (the value counts as absent);
- a list: the texts of its elements (a list with no text counts as absent).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from mintlog.query.patterns import PLAIN_DECIMAL

__all__ = [
    "FIELD_PAIRS",
    "MAX_VALUE_TEXT_BYTES",
    "field_pairs",
    "float_text",
    "indexed_field_values",
    "pair_prefix",
    "pairs_and_numbers",
    "plain_decimal",
    "value_text",
    "value_texts",
]

FIELD_PAIRS = "field_pairs"
"""The Tantivy field (raw tokenizer, indexed, not stored) holding `field_pairs(event.fields)`."""

MAX_VALUE_TEXT_BYTES = 8192
"""Longest value text kept: Lucene refuses terms above 32766 bytes and Tantivy drops those above 65530."""

# A string of at most this many characters is at most MAX_VALUE_TEXT_BYTES long in UTF-8.
_SHORT_STRING = MAX_VALUE_TEXT_BYTES // 4
_PLAIN_DECIMAL = re.compile(PLAIN_DECIMAL)


def float_text(number: float) -> str | None:
    """The plain decimal text of a finite float (`repr` without an exponent); `None` for NaN and infinities."""
    if not math.isfinite(number):
        return None
    text = repr(number)
    if "e" not in text:
        return text
    plain = format(Decimal(text), "f")
    return plain if "." in plain else plain + ".0"


def _cut(text: str) -> str:
    if len(text) <= _SHORT_STRING:
        return text
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_VALUE_TEXT_BYTES:
        return text
    return encoded[:MAX_VALUE_TEXT_BYTES].decode("utf-8", "ignore")


def value_text(value: object) -> str | None:
    """The index text of one scalar, or `None` when it has none (see the module docstring)."""
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    return None


def value_texts(value: object) -> list[str]:
    """The index texts of a `fields` value: one per scalar that has a text."""
    if isinstance(value, list):
        texts: list[str] = []
        for element in cast("list[object]", value):
            text = value_text(element)
            if text is not None:
                texts.append(text)
        return texts
    text = value_text(value)
    return [] if text is None else [text]


def pair_prefix(key: str) -> str:
    """The start of every `field_pairs` term of `key`: the key with `\\` and `=` escaped, then `=`.

    Escaping keeps the first unescaped `=` the separator, so key `a=b` with value `c` (`a\\=b=c`) never
    meets key `a` with value `b=c` (`a=b=c`).
    """
    if "=" in key or "\\" in key:
        key = key.replace("\\", "\\\\").replace("=", "\\=")
    return f"{key}="


def field_pairs(fields: Mapping[str, object]) -> list[str]:
    """The `key=text` terms of an event's `fields` for the Tantivy `FIELD_PAIRS` field, duplicates removed.

    Runs for every indexed event: scalars take a direct path, and only lists (the one place a duplicate
    can come from, keys being unique) are deduplicated.
    """
    pairs: list[str] = []
    append = pairs.append
    for key, value in fields.items():
        if isinstance(value, list):
            texts: list[str] = value_texts(cast("list[object]", value))
            prefix = pair_prefix(key)
            pairs.extend(prefix + text for text in dict.fromkeys(texts))
            continue
        text = value_text(value)
        if text is not None:
            append(pair_prefix(key) + text)
    return pairs


def _number(value: object) -> int | float | None:
    """`value` when it is an int or a finite float (a bool is not a number here), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return None


_prefixes: dict[str, str] = {}
_MAX_CACHED_PREFIXES = 4096


def _cached_prefix(key: str) -> str:
    prefix = _prefixes.get(key)
    if prefix is None:
        if len(_prefixes) >= _MAX_CACHED_PREFIXES:
            _prefixes.clear()
        prefix = _prefixes[key] = pair_prefix(key)
    return prefix


def pairs_and_numbers(fields: Mapping[str, object]) -> tuple[list[str], dict[str, Any]]:
    """`field_pairs(fields)` and the numbers of `fields` (each int or finite float, a bool is not one; in a
    list, the list of its numbers; keys without any left out), in one pass: the indexer's hot path.

    Strings, ints and floats (what most fields hold) take a direct path; the prefix of each key is cached
    (at most 4,096 keys, then the cache starts over).
    """
    pairs: list[str] = []
    numbers: dict[str, Any] = {}
    append = pairs.append
    for key, value in fields.items():
        kind = type(value)
        if kind is str:
            text = cast("str", value)
            append(_cached_prefix(key) + (text if len(text) <= _SHORT_STRING else _cut(text)))
        elif kind is int:
            numbers[key] = value
            append(_cached_prefix(key) + str(value))
        elif kind is float:
            float_value = cast("float", value)
            if math.isfinite(float_value):
                numbers[key] = float_value
                append(_cached_prefix(key) + cast("str", float_text(float_value)))
        elif kind is list:
            elements = cast("list[object]", value)
            prefix = _cached_prefix(key)
            pairs.extend(prefix + text for text in dict.fromkeys(value_texts(elements)))
            kept = [number for number in map(_number, elements) if number is not None]
            if kept:
                numbers[key] = kept
        else:
            text = value_text(value)
            if text is not None:
                append(_cached_prefix(key) + text)
            number = _number(value)
            if number is not None:
                numbers[key] = number
    return pairs, numbers


def indexed_field_values(fields: Mapping[str, object]) -> dict[str, str | list[str]]:
    """`fields` as the OpenSearch store should index them (`flat_object`): texts only, absent values dropped.

    Indexing these texts instead of the typed values makes OpenSearch hold exactly the terms Tantivy holds.
    """
    indexed: dict[str, str | list[str]] = {}
    for key, value in fields.items():
        texts = value_texts(value)
        if texts:
            indexed[key] = texts if isinstance(value, list) else texts[0]
    return indexed


def plain_decimal(text: str) -> Decimal | None:
    """The value of a text written as a plain decimal number (`-12.50`, not `1e3`, `+1`, `01` or `.5`)."""
    if not text or text[0] not in "-0123456789" or _PLAIN_DECIMAL.fullmatch(text) is None:
        return None
    return Decimal(text)

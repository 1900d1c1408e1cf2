"""Hints for plausible query mistakes: the warnings a valid but likely wrong query carries, and the
corrections an invalid one's error suggests (docs/query-language.md, "Hints").

A suggestion is always a whole corrected query, offered only when it parses itself, so a client can run it
as it is. The parser decides where each hint applies; this module names the mistakes and builds the texts.
"""

from __future__ import annotations

import difflib
import re

import msgspec

from mintlog.domain.events import LEVELS
from mintlog.parsing.levels import normalize_level
from mintlog.query.ast import FIELDS_PREFIX, KEYWORD_FIELDS

__all__ = [
    "KNOWN_FIELDS",
    "QueryWarning",
    "equals_sign_field",
    "level_meant",
    "lowercase_operator",
    "quoted",
    "replace_span",
    "similar_field",
    "unknown_field_fix",
    "unknown_level_reason",
]

KNOWN_FIELDS = ("message", "timestamp", *sorted(KEYWORD_FIELDS))
"""Every field name a query may use, besides `fields.<key>`."""

_OPERATOR_WORDS = frozenset({"AND", "OR"})
# `name=value` or `name==value` where `name` could be a field: a dotted identifier.
_EQUALS_SIGN = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)==?(?P<value>[^=].*)", re.DOTALL)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class QueryWarning(msgspec.Struct, frozen=True, kw_only=True):
    """A query that parsed but is likely not what was meant; the answer still holds what it matched.

    `code` names the mistake (`lowercase_operator`, `equals_sign`), `position` is the 0-based character offset
    of the word concerned, `suggestion` the whole query as it was probably meant (null when none parses).
    """

    code: str
    message: str
    position: int
    suggestion: str | None = None


def replace_span(query: str, start: int, end: int, text: str) -> str:
    """`query` with the characters from `start` to `end` (exclusive) replaced by `text`."""
    return query[:start] + text + query[end:]


def quoted(text: str) -> str:
    """`text` as a quoted phrase of the query language (`"` and `\\` escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def level_meant(value: str) -> str | None:
    """The level a value that names none most likely meant: its synonym (`warning` → `warn`, `err` → `error`)
    or the closest spelling (`eror` → `error`); `None` when nothing is close."""
    level = normalize_level(value)
    if level is not None:
        return level
    close = difflib.get_close_matches(value.lower(), LEVELS, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_level_reason(value: str, meant: str | None) -> str:
    """The sentence refusing a level that is none of the six: `unknown level 'eror'; did you mean 'error'?
    (levels are trace, debug, info, warn, error, fatal)`, without the question when `meant` is None."""
    guess = "" if meant is None else f"; did you mean {meant!r}?"
    return f"unknown level {value!r}{guess} (levels are {', '.join(LEVELS)})"


def similar_field(name: str) -> str | None:
    """The known field a mistyped field name most likely meant (`servce` → `service`, `Level` → `level`), or
    `None`. Only a near spelling of about the same length counts: `myhost` is not taken for `host`."""
    lowered = name.lower()
    close = [
        field
        for field in difflib.get_close_matches(lowered, KNOWN_FIELDS, n=3, cutoff=0.8)
        if abs(len(field) - len(lowered)) <= 1
    ]
    return close[0] if close else None


def unknown_field_fix(name: str, value_raw: str) -> tuple[str, bool]:
    """How to fix `name:value_raw` when `name` is no field: `(replacement, whole_word)`.

    A typo of a known field replaces the name (`whole_word` false). A name that reads as a key of the
    event's `fields` (an identifier, dotted or not) becomes `fields.<name>`. Anything else (`10.0.0.1:8080`,
    `web-1:80`, a word with several colons such as `a:b:c`) was meant as text: the word is quoted whole.
    """
    typo = similar_field(name)
    if typo is not None:
        return typo, False
    if _IDENTIFIER.fullmatch(name) and name != "fields" and ":" not in value_raw:
        return FIELDS_PREFIX + name, False
    return quoted(f"{name}:{value_raw}"), True


def lowercase_operator(word: str) -> str | None:
    """`AND` or `OR` when `word` is one of them in another case (`and`, `Or`), else `None`."""
    upper = word.upper()
    return upper if upper in _OPERATOR_WORDS and word != upper else None


def equals_sign_field(raw: str) -> tuple[str, str] | None:
    """For a word written `name=value` (or `name==value`): the `field:value` clause probably meant, as
    `(field, value)`; `None` for another word. A name that is no known field is taken as a key of `fields`."""
    match = _EQUALS_SIGN.fullmatch(raw)
    if match is None:
        return None
    name, value = match.group("name"), match.group("value")
    if name not in KNOWN_FIELDS and not name.startswith(FIELDS_PREFIX):
        name = FIELDS_PREFIX + name
    return name, value

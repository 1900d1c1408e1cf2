"""Regular expressions over index texts: decimal ranges and wildcard patterns.

Both stores index the values of `fields` as text (see `mintlog.query.values`), so a numeric range on a field
becomes a regular expression that matches exactly the plain decimal numbers (`-?(0|[1-9][0-9]*)(\\.[0-9]+)?`)
whose value lies in the range. The expressions use only the syntax that Rust's `regex` (Tantivy), Lucene's
`RegExp` (OpenSearch, flags `NONE`) and Python's `re` read the same way: literal digits, `[0-9]` classes,
`\\.`, `\\-`, groups, `|`, `?`, `*`, `+` and `{n}`/`{n,}`; every engine anchors it at both ends (Python via
`fullmatch`).

Wildcard patterns are kept in the OpenSearch `wildcard` syntax (`*` any run, `?` one character, `\\` escapes
the next character) and translated here for Tantivy and for the in-memory matcher.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import Enum

__all__ = [
    "PLAIN_DECIMAL",
    "Wildcard",
    "decimal_range_pattern",
    "glob_to_python",
    "glob_to_rust",
    "lucene_escape",
    "rust_escape",
    "split_glob",
]

# The numbers a range sees in an index text: JSON's number syntax without an exponent.
PLAIN_DECIMAL = r"\-?(0|[1-9][0-9]*)(\.[0-9]+)?"

_ANY_FRACTION = r"(\.[0-9]+)?"
_RUST_SPECIAL = frozenset("\\.+*?()|[]{}^$#&-~")
_LUCENE_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def rust_escape(text: str) -> str:
    """`text` as a literal inside a Rust `regex` (Tantivy's `regex_query`)."""
    return "".join("\\" + character if character in _RUST_SPECIAL else character for character in text)


def lucene_escape(text: str) -> str:
    """`text` as a literal inside a Lucene `RegExp`: every character but an ASCII letter, digit or `_` is escaped."""
    return "".join(character if character in _LUCENE_PLAIN else "\\" + character for character in text)


class Wildcard(Enum):
    """A wildcard inside a pattern: `*` (any run of characters, possibly empty) or `?` (one character)."""

    ANY_RUN = "*"
    ONE = "?"


def split_glob(pattern: str) -> list[str | Wildcard]:
    """The pieces of a wildcard pattern: literal runs (escapes resolved) and wildcards, in order."""
    pieces: list[str | Wildcard] = []
    literal: list[str] = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if character == "\\" and index + 1 < len(pattern):
            literal.append(pattern[index + 1])
            index += 2
            continue
        if character in "*?":
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append(Wildcard(character))
        else:
            literal.append(character)
        index += 1
    if literal:
        pieces.append("".join(literal))
    return pieces


def glob_to_rust(pattern: str, literal_prefix: str = "") -> str:
    """A Rust regex matching `literal_prefix` followed by text matching the wildcard `pattern`."""
    parts = ["(?s)", rust_escape(literal_prefix)]
    for piece in split_glob(pattern):
        if piece is Wildcard.ANY_RUN:
            parts.append(".*")
        elif piece is Wildcard.ONE:
            parts.append(".")
        else:
            parts.append(rust_escape(piece))
    return "".join(parts)


def glob_to_python(pattern: str) -> re.Pattern[str]:
    """A compiled Python regex for `fullmatch` with the wildcard `pattern`, linear in the text.

    Each run between two `*` is found at its leftmost place inside an atomic group, so no input makes the
    engine backtrack over earlier runs (the shape `fnmatch` uses since Python 3.11).
    """
    groups: list[list[str]] = [[]]
    for piece in split_glob(pattern):
        if piece is Wildcard.ANY_RUN:
            groups.append([])
        elif piece is Wildcard.ONE:
            groups[-1].append(".")
        else:
            groups[-1].append(re.escape(piece))
    head, *middle_and_tail = ["".join(group) for group in groups]
    if not middle_and_tail:
        return re.compile(head, re.DOTALL)
    *middle, tail = middle_and_tail
    body = head + "".join(f"(?>.*?{run})" for run in middle if run) + ".*" + tail
    return re.compile(body, re.DOTALL)


# --- decimal ranges ----------------------------------------------------------------------------------


def decimal_range_pattern(
    lower: Decimal | None, upper: Decimal | None, *, include_lower: bool = True, include_upper: bool = True
) -> str | None:
    """A regex matching exactly the plain decimal texts whose value lies between the bounds.

    `None` bounds are open. Returns `None` when no number lies in the range. `-0` counts as zero.
    """
    alternatives: list[str] = []
    # Texts without a minus sign: magnitudes in [max(lower, 0), upper].
    if upper is None or upper > 0 or (upper == 0 and include_upper):
        if lower is None or lower < 0:
            low, low_inclusive = Decimal(0), True
        else:
            low, low_inclusive = lower, include_lower
        positive = _magnitude(low, low_inclusive, upper, include_upper)
        if positive is not None:
            alternatives.append(positive)
    # Texts with a minus sign, value -m: magnitudes m in [max(-upper, 0), -lower].
    if lower is None or lower < 0 or (lower == 0 and include_lower):
        if upper is None or upper > 0:
            low, low_inclusive = Decimal(0), True
        else:
            low, low_inclusive = upper.copy_negate(), include_upper
        high = None if lower is None else lower.copy_negate()
        negative = _magnitude(low, low_inclusive, high, include_lower)
        if negative is not None:
            alternatives.append("\\-" + _group(negative))
    if not alternatives:
        return None
    return alternatives[0] if len(alternatives) == 1 else "|".join(alternatives)


def _group(pattern: str) -> str:
    return f"({pattern})" if "|" in pattern else pattern


def _split(magnitude: Decimal) -> tuple[str, str]:
    """The integer digits (no leading zeros) and fraction digits (no trailing zeros) of a magnitude."""
    integer, _, fraction = format(magnitude.copy_abs(), "f").partition(".")
    return integer.lstrip("0") or "0", fraction.rstrip("0")


def _magnitude(low: Decimal, low_inclusive: bool, high: Decimal | None, high_inclusive: bool) -> str | None:
    """Unsigned plain decimals `m` with low <(=) m <(=) high; `high=None` is unbounded."""
    if high is not None and (low > high or (low == high and not (low_inclusive and high_inclusive))):
        return None
    low_integer, low_fraction = _split(low)
    alternatives: list[str] = []
    if high is None:
        alternatives.append(_with_fraction(low_integer, _fraction(low_fraction, low_inclusive, None, False)))
        alternatives.append(_group("|".join(_integers_above(low_integer))) + _ANY_FRACTION)
    else:
        high_integer, high_fraction = _split(high)
        if low_integer == high_integer:
            alternatives.append(
                _with_fraction(low_integer, _fraction(low_fraction, low_inclusive, high_fraction, high_inclusive))
            )
        else:
            alternatives.append(_with_fraction(low_integer, _fraction(low_fraction, low_inclusive, None, False)))
            between = _integer_range(int(low_integer) + 1, int(high_integer) - 1)
            if between:
                alternatives.append(_group("|".join(between)) + _ANY_FRACTION)
            alternatives.append(_with_fraction(high_integer, _fraction("", True, high_fraction, high_inclusive)))
    present = [alternative for alternative in alternatives if alternative]
    return "|".join(present) if present else None


def _with_fraction(integer: str, fraction: str | None) -> str:
    return "" if fraction is None else integer + fraction


def _fraction(low: str, low_inclusive: bool, high: str | None, high_inclusive: bool) -> str | None:
    """The optional `.digits` part of a number whose fraction 0.f satisfies the bounds, or `None`."""
    digits, zero_allowed = _fraction_digits(low, low_inclusive, high, high_inclusive)
    if digits is None:
        return "" if zero_allowed else None
    return f"(\\.{_group(digits)})?" if zero_allowed else f"\\.{_group(digits)}"


def _fraction_digits(low: str, low_inclusive: bool, high: str | None, high_inclusive: bool) -> tuple[str | None, bool]:
    """Non-empty digit strings `d` with 0.low <(=) 0.d <(=) 0.high, and whether the empty string (0) fits.

    `low` and `high` have no trailing zeros (`""` is zero); `high=None` means no upper bound. A lower bound
    of `("", True)` is no constraint at all.
    """
    zero_allowed = low == "" and low_inclusive and (high is None or high != "" or high_inclusive)
    if high == "":
        return ("0+" if zero_allowed else None), zero_allowed
    if low == "" and high is None:
        return ("[0-9]+" if low_inclusive else "0*[1-9][0-9]*"), zero_allowed
    low_active = low != "" or not low_inclusive
    low_digit = int(low[0]) if low else 0
    high_digit = int(high[0]) if high is not None else 9
    alternatives: list[str] = []
    free_from: int | None = None  # start of a run of digits followed by anything

    def flush(until: int) -> None:
        nonlocal free_from
        if free_from is not None:
            alternatives.append(_digit_class(free_from, until) + "[0-9]*")
            free_from = None

    for digit in range(low_digit, high_digit + 1):
        at_low = low_active and digit == low_digit
        at_high = high is not None and digit == high_digit
        if not at_low and not at_high:
            if free_from is None:
                free_from = digit
            continue
        flush(digit - 1)
        rest_low, rest_low_inclusive = (low[1:], low_inclusive) if at_low else ("", True)
        rest_high = high[1:] if at_high and high is not None else None
        rest, rest_empty = _fraction_digits(rest_low, rest_low_inclusive, rest_high, high_inclusive)
        if rest is not None:
            alternatives.append(f"{digit}({rest})?" if rest_empty else f"{digit}{_group(rest)}")
        elif rest_empty:
            alternatives.append(str(digit))
    flush(high_digit)
    if not alternatives:
        return None, zero_allowed
    return "|".join(alternatives), zero_allowed


def _digit_class(first: int, last: int) -> str:
    return str(first) if first == last else f"[{first}-{last}]"


def _any_digits(count: int) -> str:
    if count == 0:
        return ""
    return "[0-9]" if count == 1 else f"[0-9]{{{count}}}"


def _integers_above(integer: str) -> list[str]:
    """Patterns for the integers strictly greater than `integer`, without leading zeros."""
    length = len(integer)
    alternatives = _integer_range(int(integer) + 1, 10**length - 1)
    alternatives.append(f"[1-9][0-9]{{{length},}}")
    return alternatives


def _integer_range(low: int, high: int) -> list[str]:
    """Patterns for the integers in [low, high] (both non-negative), without leading zeros."""
    if low > high:
        return []
    alternatives: list[str] = []
    for length in range(len(str(low)), len(str(high)) + 1):
        start = max(low, 10 ** (length - 1) if length > 1 else 0)
        stop = min(high, 10**length - 1)
        if start <= stop:
            alternatives.extend(_same_length(str(start), str(stop)))
    return alternatives


def _same_length(low: str, high: str) -> list[str]:
    """Patterns for the digit strings of one length between `low` and `high` (inclusive)."""
    if low == high:
        return [low]
    shared = 0
    while low[shared] == high[shared]:
        shared += 1
    prefix, low, high = low[:shared], low[shared:], high[shared:]
    rest = len(low) - 1
    low_first, high_first = int(low[0]), int(high[0])
    low_tail_zero = low[1:] == "0" * rest
    high_tail_nine = high[1:] == "9" * rest
    if low_tail_zero and high_tail_nine:
        return [prefix + _digit_class(low_first, high_first) + _any_digits(rest)]
    alternatives: list[str] = []
    middle_first = low_first
    if not low_tail_zero:
        alternatives.extend(prefix + low[0] + tail for tail in _same_length(low[1:], "9" * rest))
        middle_first += 1
    middle_last = high_first if high_tail_nine else high_first - 1
    if middle_first <= middle_last:
        alternatives.append(prefix + _digit_class(middle_first, middle_last) + _any_digits(rest))
    if not high_tail_nine:
        alternatives.extend(prefix + high[0] + tail for tail in _same_length("0" * rest, high[1:]))
    return alternatives

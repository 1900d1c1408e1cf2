"""Level names and numbers → one of the six levels (`mintlog.domain.events.LEVELS`).

`normalize_level` reads an explicit level (a JSON member, a logfmt `level=`, a rule's `level` group): any
synonym in any case, syslog severities, pino/bunyan numbers and OpenTelemetry SeverityNumbers.
`TEXT_LEVELS` is the smaller vocabulary that text detection (`mintlog.parsing.detect`) accepts as a level
token inside a plain line: single letters and words that are common in prose (`default`) are left out.
"""

from __future__ import annotations

from mintlog.domain.events import LEVELS, Level

__all__ = ["TEXT_LEVELS", "normalize_level", "syslog_severity_level"]

_LEVEL_SYNONYMS: dict[Level, tuple[str, ...]] = {
    "trace": ("trace", "trc", "t", "finest", "finer"),
    "debug": ("debug", "dbg", "d", "verbose", "vrb", "v", "fine"),
    "info": ("info", "inf", "i", "information", "informational", "notice", "default"),
    "warn": ("warn", "warning", "wrn", "w"),
    "error": ("error", "err", "eror", "e", "severe", "dpanic"),
    "fatal": ("fatal", "ftl", "f", "critical", "crit", "alert", "emerg", "emergency", "panic"),
}
# Lowercase, UPPERCASE and Capitalized spellings up front, so most levels cost one dict lookup.
_LEVEL_NAMES: dict[str, Level] = {
    spelling: level
    for level, names in _LEVEL_SYNONYMS.items()
    for name in names
    for spelling in (name, name.upper(), name.capitalize())
}
_SYSLOG_AND_PINO_LEVELS: dict[int, Level] = {
    0: "fatal",
    1: "fatal",
    2: "fatal",
    3: "error",
    4: "warn",
    5: "info",
    6: "info",
    7: "debug",
    10: "trace",
    20: "debug",
    30: "info",
    40: "warn",
    50: "error",
    60: "fatal",
}
# OpenTelemetry SeverityNumber: four numbers per level, in the order of LEVELS, from 1.
_OTEL_LEVELS: dict[int, Level] = {1 + 4 * rank + step: level for rank, level in enumerate(LEVELS) for step in range(4)}

_TEXT_SYNONYMS: dict[Level, tuple[str, ...]] = {
    "trace": ("trace", "trc", "finest", "finer", *(f"trace{n}" for n in range(1, 9))),
    "debug": ("debug", "dbg", "verbose", "fine", "config", *(f"debug{n}" for n in range(1, 6))),
    "info": ("info", "inf", "information", "informational", "notice", "note"),
    "warn": ("warn", "warning", "wrn"),
    "error": ("error", "err", "severe"),
    "fatal": ("fatal", "ftl", "critical", "crit", "alert", "emerg", "emergency", "panic"),
}
TEXT_LEVELS: dict[str, Level] = {name: level for level, names in _TEXT_SYNONYMS.items() for name in names}
"""Lowercase level words text detection recognizes (Apache's `trace1`-`trace8`, PostgreSQL's `debug1`-`debug5`,
java.util.logging's `config`, MySQL's `note` included)."""


def normalize_level(value: str | int, *, otel: bool = False) -> Level | None:
    """The level named by `value`, or `None` when it names none.

    Integers (and digit strings) are OpenTelemetry SeverityNumbers when `otel` is true, else syslog
    severities or pino levels.
    """
    if isinstance(value, str):
        level = _LEVEL_NAMES.get(value)
        if level is not None:
            return level
        text = value.strip().lower()
        level = _LEVEL_NAMES.get(text)
        if level is not None or not (text.isascii() and text.isdigit()):
            return level
        number = int(text)
    else:
        number = value
    return (_OTEL_LEVELS if otel else _SYSLOG_AND_PINO_LEVELS).get(number)


def syslog_severity_level(severity: int) -> Level:
    """The level of a syslog severity 0-7 (the low three bits of a PRI)."""
    return _SYSLOG_AND_PINO_LEVELS[severity & 7]

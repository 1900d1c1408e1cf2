"""A grok subset compiled to a regular expression: `%{NAME}`, `%{NAME:field}` and `%{NAME:field:type}`.

Why not a library: the Python grok packages (pygrok, last released in 2016) are unmaintained and untyped;
what rules need is small (expand named patterns into one regular expression with named groups), so it is
done here over the `regex` module that runs every rule with a timeout (`mintlog.parsing.rules`).

`NAME` is one of `PATTERNS` (the usual names of Logstash's pattern set, written here from their meaning:
numbers, words, addresses, paths, dates and times, log levels) and may itself use `%{…}`. `field` is a field
key (letters, digits, `_`, `.`; `level` and `timestamp` set the event's level and time), and `type` is `int`,
`float` or `string` (default: a plain decimal number becomes a number, anything else stays text). Text
outside `%{…}` is a regular expression, so literal `[`, `(`, `.` and friends need a backslash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

__all__ = ["PATTERNS", "GrokError", "GrokPattern", "GrokType", "compile_grok", "is_field_key"]

GrokType = Literal["int", "float", "string"]

_MONTH_NAMES = (
    r"\b(?:[Jj]an(?:uary)?|[Ff]eb(?:ruary)?|[Mm]ar(?:ch)?|[Aa]pr(?:il)?|[Mm]ay|[Jj]une?|[Jj]uly?|[Aa]ug(?:ust)?"
    r"|[Ss]ep(?:t(?:ember)?)?|[Oo]ct(?:ober)?|[Nn]ov(?:ember)?|[Dd]ec(?:ember)?)\b"
)

PATTERNS: dict[str, str] = {
    "INT": r"[+-]?[0-9]+",
    "POSINT": r"\b[1-9][0-9]*\b",
    "NONNEGINT": r"\b[0-9]+\b",
    "BASE10NUM": r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)",
    "NUMBER": r"%{BASE10NUM}",
    "BASE16NUM": r"(?:0[xX])?[0-9A-Fa-f]+",
    "WORD": r"\b\w+\b",
    "NOTSPACE": r"\S+",
    "SPACE": r"\s*",
    "DATA": r".*?",
    "GREEDYDATA": r".*",
    "QUOTEDSTRING": r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'',
    "QS": r"%{QUOTEDSTRING}",
    "UUID": r"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}",
    "USERNAME": r"[a-zA-Z0-9._-]+",
    "USER": r"%{USERNAME}",
    "EMAILADDRESS": r"[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-zA-Z0-9.-]+",
    "IPV4": r"(?<![0-9])(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})(?![0-9])",
    "IPV6": r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%[0-9A-Za-z]+)?",
    "IP": r"(?:%{IPV6}|%{IPV4})",
    "HOSTNAME": r"\b[0-9A-Za-z][0-9A-Za-z-]{0,62}(?:\.[0-9A-Za-z][0-9A-Za-z-]{0,62})*\.?\b",
    "IPORHOST": r"(?:%{IP}|%{HOSTNAME})",
    "HOSTPORT": r"%{IPORHOST}:%{POSINT}",
    "UNIXPATH": r"(?:/[^/\s?#]*)+",
    "PATH": r"%{UNIXPATH}",
    "URIPATH": r"(?:/[A-Za-z0-9$.+!*'(){},~:;=@#%&_\-]*)+",
    "URIPARAM": r"\?[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\-\[\]<>]*",
    "URIPATHPARAM": r"%{URIPATH}(?:%{URIPARAM})?",
    "URIPROTO": r"[A-Za-z][A-Za-z0-9+.-]+",
    "URI": r"%{URIPROTO}://(?:[^@\s/]+@)?%{IPORHOST}(?::%{POSINT})?(?:%{URIPATHPARAM})?",
    "MONTH": _MONTH_NAMES,
    "MONTHNUM": r"(?:0?[1-9]|1[0-2])",
    "MONTHDAY": r"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])",
    "DAY": r"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)",
    "YEAR": r"(?:\d\d){1,2}",
    "HOUR": r"(?:2[0123]|[01]?[0-9])",
    "MINUTE": r"(?:[0-5][0-9])",
    "SECOND": r"(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?)",
    "TIME": r"%{HOUR}:%{MINUTE}(?::%{SECOND})?",
    "DATE_US": r"%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR}",
    "DATE_EU": r"%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR}",
    "ISO8601_TIMEZONE": r"(?:Z|[+-]%{HOUR}(?::?%{MINUTE}))",
    "TIMESTAMP_ISO8601": r"%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?%{ISO8601_TIMEZONE}?",
    "SYSLOGTIMESTAMP": r"%{MONTH} +%{MONTHDAY} %{TIME}",
    "HTTPDATE": r"%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} %{INT}",
    "DATESTAMP": r"(?:%{DATE_US}|%{DATE_EU})[- ]%{TIME}",
    "LOGLEVEL": (
        r"(?:[Aa]lert|ALERT|[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo(?:rmation)?|INFO(?:RMATION)?"
        r"|[Ww]arn(?:ing)?|WARN(?:ING)?|[Ee]rr(?:or)?|ERR(?:OR)?|[Cc]rit(?:ical)?|CRIT(?:ICAL)?|[Ff]atal|FATAL"
        r"|[Ss]evere|SEVERE|EMERG(?:ENCY)?|[Ee]merg(?:ency)?)"
    ),
    "SYSLOGPROG": r"[\w._/%-]+(?:\[%{POSINT}\])?",
    "COMMONAPACHELOG": (
        r"%{IPORHOST:client.ip} %{USER:ident} %{USER:auth} \[%{HTTPDATE:timestamp}\] "
        r'"(?:%{WORD:http.method} %{NOTSPACE:url.path}(?: HTTP/%{NUMBER:http.version})?|%{DATA})" '
        r"%{NUMBER:http.status:int} (?:%{NUMBER:http.bytes:int}|-)"
    ),
    "COMBINEDAPACHELOG": r"%{COMMONAPACHELOG} %{QS:http.referrer} %{QS:user_agent}",
}
"""The named patterns a grok expression may use."""

_REFERENCE = re.compile(r"%\{([A-Z0-9_]+)(?::([A-Za-z_][\w.]*))?(?::(int|float|string))?\}")
_MAX_EXPANSIONS = 200
_FIELD_KEY = re.compile(r"[A-Za-z_][\w.]*")


class GrokError(ValueError):
    """A grok expression that names an unknown pattern, nests too deep or reuses a field name."""


@dataclass(frozen=True, slots=True)
class GrokPattern:
    """A grok expression compiled to a regular expression: `groups[name]` is the field key and type of each
    named group (`g0`, `g1`, …)."""

    regex: str
    groups: dict[str, tuple[str, GrokType | None]]


def compile_grok(expression: str) -> GrokPattern:
    """The regular expression of `expression`; raises `GrokError` naming what is wrong."""
    groups: dict[str, tuple[str, GrokType | None]] = {}
    fields: set[str] = set()
    expansions = 0

    def expand(text: str, depth: int) -> str:
        nonlocal expansions

        def replace(match: re.Match[str]) -> str:
            nonlocal expansions
            name, field, kind = match.group(1), match.group(2), match.group(3)
            body = PATTERNS.get(name)
            if body is None:
                raise GrokError(f"unknown grok pattern %{{{name}}}; known: {', '.join(sorted(PATTERNS))}")
            expansions += 1
            if expansions > _MAX_EXPANSIONS or depth > 10:
                raise GrokError("the grok expression expands too far (more than 200 patterns)")
            inner = expand(body, depth + 1)
            if field is None:
                return f"(?:{inner})"
            if field in fields:
                raise GrokError(f"the field {field!r} is captured twice")
            fields.add(field)
            group = f"g{len(groups)}"
            groups[group] = (field, cast("GrokType | None", kind))
            return f"(?P<{group}>{inner})"

        return _REFERENCE.sub(replace, text)

    regex = expand(expression, 0)
    return GrokPattern(regex=regex, groups=groups)


def is_field_key(name: str) -> bool:
    """True when `name` may be a field key of an extraction (letters, digits, `_` and `.`)."""
    return _FIELD_KEY.fullmatch(name) is not None

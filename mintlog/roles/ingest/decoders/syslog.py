"""Syslog messages (RFC 5424 and RFC 3164 with its real-world variants) → ingest events, source `syslog`.

One frame (a UDP datagram, or one message cut out of a TCP stream by `mintlog.roles.ingest.syslog.framing`)
is one message. `parse_syslog` reads it and returns the event it becomes plus the API key it carries; the
listener authenticates the key and hands the event to `IngestService.accept`. As for every protocol, the
timestamp and level are passed on as written and normalized by the pipeline (`mintlog.parsing`): a 3164
timestamp has no zone and no year, so it is a wall time in the tenant's zone whose year is inferred from
the arrival time (`mintlog.parsing.timestamps`).

Mapping (docs/ingest.md, "Syslog"):
- severity → `level` (0 emerg, 1 alert, 2 crit → fatal; 3 err → error; 4 warning → warn; 5 notice,
  6 info → info; 7 debug → debug), and `fields["syslog.severity"]` (its keyword); facility →
  `fields["syslog.facility"]` (its keyword, `kern`…`local7`). A 3164 message without PRI has no level of its
  own (the pipeline looks for one in the text, else info) and no facility field.
- HOSTNAME → `host`; APP-NAME (5424) or TAG (3164) → `service`; PROCID or the TAG's `[pid]` →
  `fields["syslog.procid"]`; MSGID → `fields["syslog.msgid"]`; each structured-data parameter →
  `fields["sd.<SD-ID>.<name>"]` (a parameter repeated in one element → a list of its values).
- The key: the `key` parameter of an SD element whose SD-ID is `mintlog` or `mintlog@<number>`
  (`[mintlog@32473 key="mlk_..."]`), which is removed from the stored fields; else, for clients that
  cannot send structured data (RFC 3164), a well-formed API key as the first word of the message, which is
  removed from the stored message.

Refusals (`SyslogError.reason`, counted by the listener): `invalid_utf8` (the frame is not UTF-8),
`malformed` (an RFC 5424 header or structured data that does not parse), `empty` (nothing but blanks).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from mintlog.domain.keys import is_well_formed_key
from mintlog.parsing.levels import syslog_severity_level

__all__ = ["FACILITIES", "SEVERITIES", "SOURCE", "SyslogError", "SyslogMessage", "parse_syslog"]

SOURCE = "syslog"
"""The `source` of every event that came through syslog."""

SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
"""Severity keywords by number (RFC 5424 §6.2.1)."""
FACILITIES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    *(f"local{number}" for number in range(8)),
)
"""Facility keywords by number (RFC 5424 §6.2.1, names as rsyslog and syslog-ng write them)."""
_PRIORITIES = tuple(
    (syslog_severity_level(severity), FACILITIES[facility], SEVERITIES[severity])
    for facility in range(len(FACILITIES))
    for severity in range(len(SEVERITIES))
)
"""The level, facility and severity of each PRI (0-191), for `_rfc5424_fast`."""

_KEY_SD_NAME = "mintlog"
_KEY_PARAM = "key"
_BOM = "\ufeff"
_NIL = "-"
_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424_HEAD = re.compile(r"([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+) ")
# PRI and the RFC 5424 header in one match, for `_rfc5424_fast`.
_RFC5424_FAST_HEAD = re.compile(r"<(\d{1,3})>[1-9]\d{0,2} (\S+) (\S+) (\S+) (\S+) (\S+) ")
_MAX_PRI = 191
_SD_NAME = re.compile(r'[^\s="\]]{1,32}')
# A whole well-formed SD element in one match (the usual case): `[SD-ID( NAME="VALUE")*]`, a value's `\"`, `\\`
# and `\]` escaped, any other backslash kept as it is. What this does not match is read by
# `_sd_element_stepwise`, which says where it is malformed; for what this does match, both read the same.
# (A value is written `[^"\\]*(?:\\.[^"\\]*)*`, not `(?:[^"\\]|\\.)*`: the same strings, matched twice as fast.)
_SD_ELEMENT = re.compile(r'\[([^\s="\]]{1,32})((?: [^\s="\]]{1,32}="[^"\\]*(?:\\.[^"\\]*)*")*)\]', re.DOTALL)
_SD_PARAM = re.compile(r' ([^\s="\]]{1,32})="([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
_SD_ESCAPE = re.compile(r'\\(["\\\]])')
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTHS.split("|"), 1)}
# `Dec  5 14:00:00`, `Dec 5 14:00:00.123`, Cisco's `Dec 5 2026 14:00:00`, then an optional `:` (Cisco).
_BSD_TIME = re.compile(
    rf"(?:\*|\.)?({_MONTHS}) +(\d{{1,2}}) (?:(\d{{4}}) )?(\d\d:\d\d:\d\d(?:\.\d{{1,9}})?)(?: ?[A-Z]{{3,4}})?:? "
)
_ISO_TIME = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?) ")
# A TAG: a program name (letters, digits and `._/-`), an optional `[pid]`, then `:`.
_TAG = re.compile(r"([\w./@-]{1,64})(?:\[([^\]\s]{0,32})\])?: ?")
_HOSTNAME = re.compile(r"[\w.:-]{1,255}")


class SyslogError(Exception):
    """A frame that cannot become an event; `reason` is its drop counter's label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class SyslogMessage(NamedTuple):
    """One parsed syslog message: the event it becomes and the API key it carried (None: none). (A named tuple:
    one is made per message, faster than a frozen dataclass.)"""

    event: dict[str, Any]
    key: str | None
    format: str
    """`rfc5424` or `rfc3164`."""


def parse_syslog(frame: bytes) -> SyslogMessage:
    """Parse one syslog message (one frame, without its framing); raises `SyslogError`.

    RFC 5424 is recognized by `<PRI>` followed by a version number and a space; everything else is read as
    RFC 3164 and its variants (no PRI, an RFC 3339 timestamp, a year in the timestamp, no timestamp, no
    hostname, `tag[pid]:` or `tag:` or no tag at all). Trailing newlines and NULs are ignored.
    """
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SyslogError("invalid_utf8", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    text = text.rstrip("\r\n\x00")
    head = _RFC5424_FAST_HEAD.match(text)
    if head is not None:
        parsed = _rfc5424_fast(text, head)
        if parsed is not None:
            return parsed
    return _parse_general(text)


def _parse_general(text: str) -> SyslogMessage:
    """`parse_syslog` of a decoded frame without its trailing newlines and NULs, read the general way: every
    message, well-formed or not (`_rfc5424_fast` reads the usual ones, to the same event)."""
    if not text.strip():
        raise SyslogError("empty", "empty message")
    fields: dict[str, Any] = {}
    event: dict[str, Any] = {}
    position = 0
    pri = _PRI.match(text)
    if pri is not None and int(pri.group(1)) <= 191:
        facility, severity = divmod(int(pri.group(1)), 8)
        event["level"] = syslog_severity_level(severity)
        fields["syslog.facility"] = FACILITIES[facility]
        fields["syslog.severity"] = SEVERITIES[severity]
        position = pri.end()
        head = _RFC5424_HEAD.match(text, position)
        if head is not None:
            return _rfc5424(text, head, event, fields)
    return _rfc3164(text, position, event, fields)


def _rfc5424_fast(text: str, head: re.Match[str]) -> SyslogMessage | None:
    """The usual RFC 5424 message read without a step per character: its structured data, when it has some, is cut
    at its quotes (`_sd_by_quotes`). None when the message is anything else (a PRI over 191, a backslash in an SD
    value, structured data not well-formed, no space before the message...): `parse_syslog` then reads it the
    general way, which gives the same event for what this reads and says what is wrong with the rest."""
    pri, timestamp, hostname, app_name, procid, msgid = head.groups()
    priority = int(pri)
    if priority > _MAX_PRI:
        return None
    level, facility, severity = _PRIORITIES[priority]
    fields: dict[str, Any] = {"syslog.facility": facility, "syslog.severity": severity}
    if procid != _NIL:
        fields["syslog.procid"] = procid
    if msgid != _NIL:
        fields["syslog.msgid"] = msgid
    position = head.end()
    if text.startswith(_NIL, position):
        key = None
        message = text[position + 1 :]
        if message.startswith(" "):
            message = message[1:]
        elif message:
            return None
    else:
        read = _sd_by_quotes(text[position:], fields)
        if read is None:
            return None
        key, message = read
    message = message.removeprefix(_BOM)
    if key is None:
        key, message = _leading_key(message)
    event: dict[str, Any] = {"level": level}
    _put_header(event, timestamp, hostname, app_name)
    event["message"] = message
    event["fields"] = fields
    return SyslogMessage(event, key, "rfc5424")


def _sd_by_quotes(rest: str, fields: dict[str, Any]) -> tuple[str | None, str] | None:
    """Structured data at the start of `rest` into `fields`, when no SD value holds a backslash: the quotes are then
    exactly the values' delimiters, and `rest.split('"')` alternates the texts between values (`[id name=`,
    ` name=`, `][id name=`, then `] message`) with the values. Returns the key found and the message (without its
    leading space); None when the structured data is not read this way (see `_rfc5424_fast`).

    A sender writes the same texts between its values in every message: a sequence of them read before (its
    "layout", `_sd_layouts`) says at once which field each value is, and the values are stored in one step."""
    parts = rest.split('"')
    final = parts[-1]
    layout = _sd_layouts.get(tuple(parts[0:-1:2]))
    if (
        layout is not None
        and (final.startswith("] ") or final == "]")
        and rest.find("\\", 0, len(rest) - len(final)) < 0
    ):
        names, key_index = layout
        values = parts[1::2]
        key = values.pop(key_index) if key_index >= 0 else None
        fields.update(zip(names, values, strict=True))
        return key, final[2:]
    return _sd_by_segments(parts, fields)


def _sd_by_segments(parts: list[str], fields: dict[str, Any]) -> tuple[str | None, str] | None:
    """`_sd_by_quotes` for a layout not read before: each text between values is read once by a regex
    (`_sd_segment`) and remembered; the layout too, when its message has no quote, and no parameter is repeated in
    an element and at most one is a key (`_sd_layouts`)."""
    last = len(parts) - 1
    segments = _sd_segments
    key: str | None = None
    key_index = -1
    key_taken = False
    key_element = False
    prefix = ""
    element_names: set[str] = set()
    names: list[str] = []
    simple = True
    index = 0
    while True:
        segment = parts[index]
        known = segments.get(segment)
        if known is None:
            if index and (segment.startswith("] ") or (segment == "]" and index == last)):
                break
            known = _sd_segment(segment)
            if known is None:
                return None
        opens, element_prefix, name, is_key_element = known
        if opens is None:  # ` name=`: the next parameter of the same element
            if not index:
                return None
        elif opens != bool(index):  # `[id name=` must come first, `][id name=` after a value
            return None
        else:
            prefix = element_prefix
            key_element = is_key_element
            key_taken = False
            element_names = set()
        if index + 2 > last:
            return None  # a value without its closing quote
        value = parts[index + 1]
        if "\\" in value:
            return None
        index += 2
        if key_element and name == _KEY_PARAM:
            simple = simple and key_index < 0
            key_index = index // 2 - 1
            if not key_taken:  # a key repeated in one element: its first value
                key = value
                key_taken = True
            continue
        field_name = prefix + name
        if field_name in element_names:
            # A parameter repeated in one element: the list of its values.
            simple = False
            earlier: str | list[str] = fields[field_name]
            if isinstance(earlier, list):
                earlier.append(value)
            else:
                fields[field_name] = [earlier, value]
        else:
            element_names.add(field_name)
            fields[field_name] = value
            names.append(field_name)
    if index == last:
        if simple:
            if len(_sd_layouts) >= _SD_LAYOUTS_MAX:
                _sd_layouts.clear()
            _sd_layouts[tuple(parts[0:-1:2])] = (tuple(names), key_index)
        return key, segment[2:]
    return key, '"'.join(parts[index:])[2:]


_SD_LAYOUTS_MAX = 1024
_sd_layouts: dict[tuple[str, ...], tuple[tuple[str, ...], int]] = {}
"""Layouts of structured data read before, by the texts between their values: the field name of each value but
the key, and the key's position among the values (-1: none). Cleared when full."""


# The texts between SD values: one that opens an element (the first, `[id name=`, or after a value, `][id name=`;
# elements without parameters may come before it, `[a][id name=`), or the next parameter's ` name=`.
_SD_SEGMENT_OPEN = re.compile(r'(\]?)(?:\[[^\s="\]]{1,32}\])*\[([^\s="\]]{1,32}) ([^\s="\]]{1,32})=')
_SD_SEGMENT_NEXT = re.compile(r' ([^\s="\]]{1,32})=')
_SD_SEGMENTS_MAX = 4096
_sd_segments: dict[str, tuple[bool | None, str, str, bool]] = {}
"""Texts between SD values read before (`_sd_segment`). Senders write the same few in every message. Cleared when
full."""


def _sd_segment(segment: str) -> tuple[bool | None, str, str, bool] | None:
    """What a text between SD values is, remembered: whether it opens an element after a value (True: `][id name=`),
    before any (False: `[id name=`) or opens none (None: ` name=`); the field name prefix of the element it opens
    (`sd.id.`), the name of the parameter that follows, and whether the element it opens is a Mintlog key element.
    None when it is none of them."""
    opening = _SD_SEGMENT_OPEN.fullmatch(segment)
    if opening is not None:
        closes, element_id, name = opening.groups()
        known = (bool(closes), f"sd.{element_id}.", name, element_id.split("@", 1)[0] == _KEY_SD_NAME)
    else:
        following = _SD_SEGMENT_NEXT.fullmatch(segment)
        if following is None:
            return None
        known = (None, "", following.group(1), False)
    if len(_sd_segments) >= _SD_SEGMENTS_MAX:
        _sd_segments.clear()
    _sd_segments[segment] = known
    return known


def _put_header(event: dict[str, Any], timestamp: str, hostname: str, app_name: str) -> None:
    """An RFC 5424 header's time, host and app name into `event` (as `timestamp`, `host`, `service`), each
    unless it is the nil value `-`."""
    if timestamp != _NIL:
        event["timestamp"] = timestamp
    if hostname != _NIL:
        event["host"] = hostname
    if app_name != _NIL:
        event["service"] = app_name


def _rfc5424(text: str, head: re.Match[str], event: dict[str, Any], fields: dict[str, Any]) -> SyslogMessage:
    _version, timestamp, hostname, app_name, procid, msgid = head.groups()
    _put_header(event, timestamp, hostname, app_name)
    if procid != _NIL:
        fields["syslog.procid"] = procid
    if msgid != _NIL:
        fields["syslog.msgid"] = msgid
    key, position = _structured_data(text, head.end(), fields)
    message = text[position:]
    if message.startswith(" "):
        message = message[1:]
    elif message:
        raise SyslogError("malformed", f"no space after the structured data at character {position}")
    message = message.removeprefix(_BOM)
    if key is None:
        key, message = _leading_key(message)
    event["message"] = message
    event["fields"] = fields
    return SyslogMessage(event, key, "rfc5424")


def _structured_data(text: str, position: int, fields: dict[str, Any]) -> tuple[str | None, int]:
    """Read STRUCTURED-DATA at `position` into `fields`; returns the Mintlog key found and the end position."""
    if text.startswith(_NIL, position):
        return None, position + 1
    key: str | None = None
    length = len(text)
    if position >= length or text[position] != "[":
        raise SyslogError("malformed", f"structured data must be '-' or start with '[' (character {position})")
    while position < length and text[position] == "[":
        end = text.find("]", position) + 1
        known = _key_elements.get(text[position:end]) if end else None
        if known is not None:
            # The very element a sender puts in every message (`[mintlog@32473 key="mlk_..."]`), read before.
            key, known_fields = known
            fields.update(known_fields)
            position = end
            continue
        element = _SD_ELEMENT.match(text, position)
        if element is None:
            # Not well-formed: read it step by step, which names what is wrong.
            element_id, params, position = _sd_element_stepwise(text, position)
        else:
            element_id, params, position = element.group(1), _sd_params(element.group(2)), element.end()
        if _KEY_PARAM in params and element_id.split("@", 1)[0] == _KEY_SD_NAME:
            taken = params.pop(_KEY_PARAM)
            key = taken if isinstance(taken, str) else taken[0]
            if element is not None:
                _remember_key_element(text[element.start() : position], key, element_id, params)
        prefix = f"sd.{element_id}."
        for name, value in params.items():
            fields[prefix + name] = value
    return key, position


_KEY_ELEMENTS_MAX = 1024
_key_elements: dict[str, tuple[str, dict[str, str]]] = {}
"""Well-formed SD elements that carried a Mintlog key, by their text: the key and the fields they become.
A sender writes the same one in every message; reading it again is a dict lookup. Cleared when full."""


def _remember_key_element(element_text: str, key: str, element_id: str, params: dict[str, str | list[str]]) -> None:
    """Remember a key element read whole by `_SD_ELEMENT` that ends at its first `]` (so that the lookup,
    which cuts at the first `]`, finds exactly it), unless a parameter was repeated (lists are not shared)."""
    if "]" in element_text[:-1] or any(not isinstance(value, str) for value in params.values()):
        return
    if len(_key_elements) >= _KEY_ELEMENTS_MAX:
        _key_elements.clear()
    prefix = f"sd.{element_id}."
    _key_elements[element_text] = (key, {prefix + name: str(value) for name, value in params.items()})


def _sd_params(params_text: str) -> dict[str, str | list[str]]:
    """The parameters of a well-formed SD element (the text `_SD_ELEMENT` matched as its parameters), in order:
    a parameter repeated in the element has the list of its values."""
    if "\\" not in params_text:
        # Without a backslash, the quotes are exactly the values' delimiters: ` a="1" b="2"` splits into
        # [" a=", "1", " b=", "2", ""].
        parts = params_text.split('"')
        params: dict[str, str | list[str]] = dict(zip([part[1:-1] for part in parts[:-1:2]], parts[1::2], strict=True))
        if len(params) * 2 == len(parts) - 1:  # the usual case: no parameter repeated
            return params
    pairs: list[tuple[str, str]] = _SD_PARAM.findall(params_text)
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        if "\\" in value:
            value = _SD_ESCAPE.sub(r"\1", value)
        values.setdefault(name, []).append(value)
    return _singles(values)


def _singles(values: dict[str, list[str]]) -> dict[str, str | list[str]]:
    return {name: found[0] if len(found) == 1 else found for name, found in values.items()}


def _sd_element_stepwise(text: str, position: int) -> tuple[str, dict[str, str | list[str]], int]:
    """One SD element at `position` (its `[`) read character by character: its SD-ID, its parameters and the
    position after its `]`; raises `SyslogError` saying where it is malformed."""
    length = len(text)
    sd_id = _SD_NAME.match(text, position + 1)
    if sd_id is None:
        raise SyslogError("malformed", f"bad SD-ID at character {position + 1}")
    element_id = sd_id.group()
    position = sd_id.end()
    params: dict[str, list[str]] = {}
    while position < length and text[position] == " ":
        name = _SD_NAME.match(text, position + 1)
        if name is None or not text.startswith('="', name.end()):
            raise SyslogError("malformed", f"bad SD-PARAM in [{element_id}] at character {position + 1}")
        value, position = _param_value(text, name.end() + 2)
        params.setdefault(name.group(), []).append(value)
    if position >= length or text[position] != "]":
        raise SyslogError("malformed", f"unterminated SD element [{element_id}]")
    return element_id, _singles(params), position + 1


def _param_value(text: str, position: int) -> tuple[str, int]:
    """A PARAM-VALUE starting after its opening quote (`\\"`, `\\\\` and `\\]` unescaped); returns it and the
    position after its closing quote."""
    parts: list[str] = []
    start = position
    length = len(text)
    while position < length:
        character = text[position]
        if character == '"':
            parts.append(text[start:position])
            return "".join(parts), position + 1
        if character == "\\" and position + 1 < length and text[position + 1] in '"\\]':
            parts.append(text[start:position])
            start = position + 1
            position += 2
            continue
        position += 1
    raise SyslogError("malformed", "unterminated SD-PARAM value")


def _rfc3164(text: str, position: int, event: dict[str, Any], fields: dict[str, Any]) -> SyslogMessage:
    rest = text[position:].lstrip(" ")
    bsd = _BSD_TIME.match(rest)
    iso = None if bsd is not None else _ISO_TIME.match(rest)
    if bsd is not None:
        month, day, year, clock = bsd.groups()
        # Cisco's `Dec 5 2026 14:00:00` keeps its year; otherwise the pipeline infers it.
        event["timestamp"] = (
            f"{year}-{_month_number(month):02d}-{int(day):02d} {clock}" if year else f"{month} {day} {clock}"
        )
        rest = rest[bsd.end() :]
    elif iso is not None:
        event["timestamp"] = iso.group(1)
        rest = rest[iso.end() :]
    if bsd is not None or iso is not None:
        # After a timestamp comes the HOSTNAME, unless the next word is already the TAG.
        host = _HOSTNAME.match(rest)
        if (
            host is not None
            and rest[host.end() : host.end() + 1] == " "
            and _TAG.fullmatch(rest[: host.end() + 1]) is None
        ):
            event["host"] = host.group()
            rest = rest[host.end() + 1 :]
    tag = _TAG.match(rest)
    if tag is not None:
        event["service"] = tag.group(1)
        if tag.group(2):
            fields["syslog.procid"] = tag.group(2)
        rest = rest[tag.end() :]
    key, message = _leading_key(rest)
    event["message"] = message
    event["fields"] = fields
    return SyslogMessage(event, key, "rfc3164")


def _month_number(month: str) -> int:
    return _MONTH_NUMBERS[month]


def _leading_key(message: str) -> tuple[str | None, str]:
    """A well-formed API key that is the message's first word, and the message without it."""
    if not message.startswith("mlk_"):
        return None, message
    word, _space, rest = message.partition(" ")
    if not is_well_formed_key(word):
        return None, message
    return word, rest

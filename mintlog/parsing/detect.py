"""Level and timestamp detection in a plain text line, the way Loki's `detected_level`, Elastic's ingest
pipelines and Graylog's extractors do it, but only from the positions where systems write them.

`detect(line, context)` reads the line's first line (at most 512 characters) in this order:

1. A syslog PRI (`<34>`, `<3>` from the kernel or systemd): its severity (PRI mod 8) is the level
   (`syslog_pri`), unless it is 5 or 6 (notice, info: what senders put when they do not know) and the line
   has a level token of its own. `<PRI>1 ` starts an RFC 5424 header: its timestamp (`rfc5424`), then host,
   app, procid, msgid and structured data are skipped to the message.
2. glog/klog: `E1203 14:05:22.123456 …` gives both (`glog`; the year is inferred).
3. A timestamp at the start (`mintlog.parsing.timestamps.match_time_format`), or after one leading token
   that is `-`, an UPPERCASE word, a Redis `pid:role` or a file name (`….log…`), or, for access logs, a
   bracketed `[10/Oct/2000:13:55:36 -0700]` within the first 120 characters.
4. The level token, scanning at most 10 tokens from after the timestamp (the header): a level word in
   brackets or angle brackets, any case (`[error]`, `[core:error]`, `<warning>`, `[Warning]`: `bracket`); an
   UPPERCASE level word, alone or followed by `:` (`INFO`, `ERROR:root:…`: `header`); a Capitalized one
   (`Info`, Windows CBS), or one followed by `:` (`error:`); a lowercase one only as the first token after
   the timestamp and followed by a tab (zap's console `2024-…<TAB>info<TAB>…`); `level=`/`lvl=`/`severity=`
   with a level value (`key_value`);
   Android's `E/Tag(…)` and threadtime's letter after pid and tid (`android`); Redis's `.`, `-`, `*`, `#`
   (`redis`). Numbers, ids (any token with a digit), bracketed groups (`[main]`, `[pid 12:tid 34]`),
   UPPERCASE words (`RAS KERNEL`), `key=value` pairs, separators (`-`, `|`, `---`), logger names (a word
   between separators, or one with a `.`) and a syslog host before a program tag are skipped. A program tag
   (`sshd[24200]:`, `kernel:`) ends the header: only the first word of the message is then looked at, and
   only in strict forms (bracketed, UPPERCASE, or followed by `:`: sshd's `error: …`).

Any other word ends the scan: a level word in running prose (`no error found`, `Connection failed with error
10061`) is never taken. Level words are `mintlog.parsing.levels.TEXT_LEVELS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from mintlog.domain.events import Level
from mintlog.parsing.levels import TEXT_LEVELS, normalize_level, syslog_severity_level
from mintlog.parsing.timestamps import (
    TimeContext,
    TimeMatch,
    match_time_format,
    search_bracketed_clf,
)

__all__ = ["Detection", "detect"]

_HEAD_CHARS = 512
_HEADER_TOKENS = 10
_MESSAGE_TOKENS = 4
_MAX_PRI = 191
_VAGUE_SEVERITIES = frozenset((5, 6))

_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424 = re.compile(r"1 (\S+) \S+ \S+ \S+ \S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: |$)")
_GLOG = re.compile(r"([IWEF])(\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})(?!\d)")
_GLOG_LEVELS: dict[str, Level] = {"I": "info", "W": "warn", "E": "error", "F": "fatal"}
_ANDROID_LEVELS: dict[str, Level] = {
    "V": "trace",
    "D": "debug",
    "I": "info",
    "W": "warn",
    "E": "error",
    "F": "fatal",
    "A": "fatal",
}
_REDIS_LEVELS: dict[str, Level] = {".": "debug", "-": "debug", "*": "info", "#": "warn"}
_REDIS_ROLE = re.compile(r"\d+:[XCSM] ")
_LEADING_TOKEN = re.compile(r"(?:-|[A-Z][A-Z_]*|\d+:[XCSM]|\S*\.log\S*) +")
_TOKEN = re.compile(r"\s*(?:(\[(?:[^\[\]]|\[[^\[\]]*\])*\])\S*|(\S+))")
_PROGRAM_TAG = re.compile(r"[A-Za-z_][\w./-]*(?:\([^()\s]*\))?(?:\[[\w.-]*\])?:")
_SEPARATORS = frozenset(("-", "--", "---", "|", ":", "*", "/", "::", "=>", "->", "~", ","))
_LEVEL_KEYS = frozenset(("level", "lvl", "severity", "loglevel", "log.level"))
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class Detection:
    """What was found in a line: each member is None when that part was not found (or not asked for).

    `level_source` says where the level came from (`syslog_pri`, `bracket`, `header`, `message_start`,
    `key_value`, `android`, `redis`, `glog`) and `time_format` names the timestamp's format.
    """

    level: Level | None = None
    level_source: str | None = None
    moment: datetime | None = None
    time_format: str | None = None


_NOTHING = Detection()


@dataclass(frozen=True, slots=True)
class _Found:
    level: Level
    source: str


def detect(line: str, context: TimeContext) -> Detection:
    """The level and the timestamp written in `line`, where the module docstring says they are looked for."""
    head = line[:_HEAD_CHARS]
    newline = head.find("\n")
    if newline >= 0:
        head = head[:newline]
    position = len(head) - len(head.lstrip())
    if position >= len(head):
        return _NOTHING

    severity: int | None = None
    if head[position] == "<":
        pri = _PRI.match(head, position)
        if pri is not None and int(pri.group(1)) <= _MAX_PRI:
            severity = int(pri.group(1)) & 7
            position = pri.end()
            if head.startswith("1 ", position):
                return _rfc5424(head, position, severity, context)

    time: TimeMatch | None = None
    found: _Found | None = None
    glog = _GLOG.match(head, position) if head[position : position + 1] in _GLOG_LEVELS else None
    if glog is not None:
        return _glog(glog, context, severity)
    time = match_time_format(head, position, context)
    scan_from = position
    if time is None:
        leading = _LEADING_TOKEN.match(head, position)
        if leading is not None:
            time = match_time_format(head, leading.end(), context)
            if time is not None:
                found = _header_level(head, position, leading.end())
                if _REDIS_ROLE.match(head, position) is not None and found is None:
                    found = _redis_level(head, time.end)
    if time is None:
        time = search_bracketed_clf(head, context)
        if time is not None:  # an access log: the client, identity and user come first, and no level
            return _detection(_pri_or(severity, None), time)
    else:
        scan_from = time.end
    if found is None:
        found = _scan(head, scan_from, after_time=time is not None)
    return _detection(_pri_or(severity, found), time)


def _detection(found: _Found | None, time: TimeMatch | None) -> Detection:
    return Detection(
        level=None if found is None else found.level,
        level_source=None if found is None else found.source,
        moment=None if time is None else time.moment,
        time_format=None if time is None else time.format,
    )


def _pri_or(severity: int | None, found: _Found | None) -> _Found | None:
    if severity is None or (found is not None and severity in _VAGUE_SEVERITIES):
        return found
    return _Found(syslog_severity_level(severity), "syslog_pri")


def _rfc5424(head: str, position: int, severity: int, context: TimeContext) -> Detection:
    header = _RFC5424.match(head, position)
    if header is None:
        return _detection(_pri_or(severity, None), None)
    stamp = header.group(1)
    time: TimeMatch | None = None
    if stamp != "-":
        parsed = match_time_format(stamp, 0, context)
        if parsed is not None and parsed.end == len(stamp):
            time = TimeMatch(parsed.moment, "rfc5424", parsed.end)
    found = _scan(head, header.end(), after_time=False, message=True)
    return _detection(_pri_or(severity, found), time)


def _glog(match: re.Match[str], context: TimeContext, severity: int | None) -> Detection:
    letter = match.group(1)
    time = match_time_format(f"{match.group(2)}-{match.group(3)} {_glog_time(match)}", 0, context)
    found = _pri_or(severity, _Found(_GLOG_LEVELS[letter], "glog"))
    return Detection(
        level=None if found is None else found.level,
        level_source=None if found is None else found.source,
        moment=None if time is None else time.moment,
        time_format=None if time is None else "glog",
    )


def _glog_time(match: re.Match[str]) -> str:
    """The `HH:mm:ss.SSSSSS` part of a glog header."""
    return f"{match.group(4)}:{match.group(5)}:{match.group(6)}.{match.group(7)}"


def _redis_level(head: str, position: int) -> _Found | None:
    symbol = head[position + 1 : position + 2]
    if head[position : position + 1] == " " and head[position + 2 : position + 3] in (" ", "") and symbol:
        level = _REDIS_LEVELS.get(symbol)
        if level is not None:
            return _Found(level, "redis")
    return None


def _header_level(head: str, start: int, end: int) -> _Found | None:
    """The level of a leading token skipped to reach the timestamp (`ERROR 2024-03-05 …`)."""
    word = head[start:end].strip()
    level = TEXT_LEVELS.get(word.lower()) if word.isupper() else None
    return None if level is None else _Found(level, "header")


def _scan(head: str, position: int, *, after_time: bool, message: bool = False) -> _Found | None:
    """The first level token of the header (or, with `message`, of the message start); None at prose."""
    limit = _MESSAGE_TOKENS if message else _HEADER_TOKENS
    first = after_time
    integers = 0
    previous_separator = False
    seen = 0
    while seen < limit:
        token = _TOKEN.match(head, position)
        if token is None:
            return None
        position = token.end()
        seen += 1
        bracket = token.group(1)
        if bracket is not None:
            found = _bracket_level(bracket)
            if found is not None:
                return found
            integers, first, previous_separator = 0, False, False
            continue
        word = token.group(2)
        found = _word_level(word, head, position, first=first, loose=after_time, message=message, integers=integers)
        if found is not None:
            return found
        first = False
        if "=" in word:  # a key=value pair of a partly structured header
            previous_separator = False
            continue
        if word in _SEPARATORS:
            previous_separator = True
            continue
        if word.isdigit():
            integers += 1
            previous_separator = False
            continue
        integers = 0
        if message:
            return None
        if _PROGRAM_TAG.fullmatch(word) is not None:
            message, seen, limit = True, 0, _MESSAGE_TOKENS
            continue
        if not _DIGITS.isdisjoint(word) or (word.isupper() and word.isalpha()):
            previous_separator = False
            continue
        following = _TOKEN.match(head, position)
        following_word = None if following is None else following.group(2)
        if following_word is not None and (
            (previous_separator and following_word in _SEPARATORS) or _PROGRAM_TAG.fullmatch(following_word) is not None
        ):
            continue  # a logger name between separators, or a syslog host before its program tag
        if "." in word and word[-1] != ".":
            previous_separator = False
            continue  # a logger or file name (`org.apache.Foo`, `chrome.exe`)
        return None
    return None


def _bracket_level(bracket: str) -> _Found | None:
    inner = bracket[1:-1].strip()
    if " " in inner:
        return None
    if ":" in inner:  # Apache 2.4: [module:level]
        inner = inner.rsplit(":", 1)[1]
    level = TEXT_LEVELS.get(inner.lower())
    return None if level is None else _Found(level, "bracket")


def _word_level(
    word: str, head: str, position: int, *, first: bool, loose: bool, message: bool, integers: int
) -> _Found | None:
    """The level `word` stands for in its position, or None. `first`: the first token after a timestamp;
    `loose`: the line has a timestamp, so a Capitalized level word in its header counts. A lowercase level
    word without `:` counts only as the first token after the timestamp, followed by a tab (zap's console)."""
    if "=" in word:
        key, _, value = word.partition("=")
        if key.lower() in _LEVEL_KEYS:
            level = normalize_level(value.strip("\"'"))
            return None if level is None else _Found(level, "key_value")
        return None
    if len(word) > 2 and word[1] == "/" and word[0] in _ANDROID_LEVELS:
        return _Found(_ANDROID_LEVELS[word[0]], "android")
    if len(word) == 1:
        if integers >= 2 and not message and word in _ANDROID_LEVELS:
            return _Found(_ANDROID_LEVELS[word], "android")
        return None
    if word[0] == "<" and word[-1] == ">":
        level = TEXT_LEVELS.get(word[1:-1].lower())
        return None if level is None else _Found(level, "bracket")
    core = word.rstrip(",;")
    colon = core.endswith(":")
    if colon:
        core = core[:-1]
    elif head.startswith(" :", position):
        colon = True  # `error : …` (Proxifier)
    if ":" in core:  # Python's default `ERROR:root:message`
        core = core.split(":", 1)[0]
        colon = True
    if "[" in core:  # logrus `INFO[0000]`
        core = core.split("[", 1)[0]
    level = TEXT_LEVELS.get(core.lower())
    if level is None:
        return None
    source = "message_start" if message else "header"
    if core.isupper() or colon:
        return _Found(level, source)
    if not message and ((first and head.startswith("\t", position)) or (loose and core[0].isupper())):
        return _Found(level, source)
    return None

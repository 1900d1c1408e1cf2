"""Per-tenant extraction rules, compiled once and applied to messages (`mintlog.domain.extraction_rules`).

Guarantees:
- `compile_rule` refuses, with `RuleError` naming the member, a pattern that does not compile, has no named
  group, names a group that is not a field key, uses an unknown grok pattern, takes more than
  `PROBE_TIMEOUT_SECONDS` on any of a few adversarial 2,000-character lines (catastrophic backtracking), or a
  `timestamp_format` that strptime cannot read back (or given without a `timestamp` group);
- `apply_rules` runs each enabled rule on the first `SEARCHED_CHARS` characters of the message with a
  timeout (the `regex` module's), in order; the first rule that matches wins. A rule that runs out of time
  counts as not matching, and the caller is told how many did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import regex

from mintlog.domain.events import Level
from mintlog.domain.extraction_rules import ExtractionRuleSpec
from mintlog.parsing.grok import GrokError, GrokType, compile_grok, is_field_key
from mintlog.parsing.levels import normalize_level
from mintlog.parsing.logfmt import typed_text_value
from mintlog.parsing.timestamps import TimeContext, parse_timestamp, parse_with_format

__all__ = [
    "PROBE_TIMEOUT_SECONDS",
    "SEARCHED_CHARS",
    "CompiledRule",
    "RuleError",
    "RuleMatch",
    "apply_rules",
    "compile_rule",
]

PROBE_TIMEOUT_SECONDS = 0.05
"""Longest a new pattern may take on one adversarial probe line."""
SEARCHED_CHARS = 8192
"""Rules look at the first 8 KiB of a message."""

_LEVEL_GROUP = "level"
_TIMESTAMP_GROUP = "timestamp"
_AUTO = "auto"
_PROBE_CHARS = 2000
_PROBES = tuple(
    unit * (_PROBE_CHARS // len(unit)) + "!"
    for unit in ("a", "0", " ", "a ", "a,", "-", "a=b ", '"', ":", "\t", "ab12 ")
)
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_SAMPLE_TIME = datetime(2024, 3, 5, 10, 12, 1, 123456, tzinfo=UTC)


class RuleError(ValueError):
    """A rule that cannot be used: `field` names the member at fault (`pattern`, `timestamp_format`, …)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Capture:
    group: str
    key: str
    kind: GrokType | None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to run: its compiled pattern and what each named group becomes."""

    name: str
    pattern: regex.Pattern[str]
    captures: tuple[_Capture, ...]
    level_group: str | None
    timestamp_group: str | None
    timestamp_format: str | None
    service: str | None


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """What a matching rule took from a message. `level_text`/`timestamp_text` are set (and `level`/`moment`
    None) when the group matched text that is not a level or a time."""

    rule: str
    level: Level | None
    moment: datetime | None
    fields: dict[str, Any]
    level_text: str | None = None
    timestamp_text: str | None = None


def compile_rule(spec: ExtractionRuleSpec, *, probe: bool = True) -> CompiledRule:
    """The rule of `spec`, checked as the module docstring says; raises `RuleError`. `probe=False` skips the
    backtracking probe (for rules already checked when they were stored)."""
    kinds: dict[str, tuple[str, GrokType | None]] = {}
    if spec.kind == "grok":
        try:
            grok = compile_grok(spec.pattern)
        except GrokError as exc:
            raise RuleError("pattern", str(exc)) from None
        source = grok.regex
        kinds = grok.groups
    else:
        source = spec.pattern
    try:
        pattern: regex.Pattern[str] = regex.compile(source, regex.VERSION0)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise RuleError("pattern", f"the pattern does not compile: {exc}") from None
    names = list(pattern.groupindex)
    if not names:
        raise RuleError("pattern", "the pattern has no named group: name what to take, e.g. (?P<level>\\w+)")
    captures: list[_Capture] = []
    level_group: str | None = None
    timestamp_group: str | None = None
    for group in names:
        key, kind = kinds.get(group, (group.replace("__", "."), None))
        if key == _LEVEL_GROUP:
            level_group = group
        elif key == _TIMESTAMP_GROUP:
            timestamp_group = group
        elif not is_field_key(key):
            raise RuleError("pattern", f"the group name {group!r} is not a field key (letters, digits, _ and .)")
        else:
            captures.append(_Capture(group, key, kind))
    time_format = _check_time_format(spec.timestamp_format, timestamp_group is not None)
    if probe:
        _probe(pattern)
    return CompiledRule(
        name=spec.name,
        pattern=pattern,
        captures=tuple(captures),
        level_group=level_group,
        timestamp_group=timestamp_group,
        timestamp_format=time_format,
        service=spec.service,
    )


def _check_time_format(time_format: str | None, has_group: bool) -> str | None:
    if time_format is None or time_format == _AUTO:
        return None
    if not has_group:
        raise RuleError("timestamp_format", "`timestamp_format` needs a group named `timestamp` in the pattern")
    if "%" not in time_format:
        raise RuleError(
            "timestamp_format", "`timestamp_format` is `auto` or a strptime format such as `%d.%m.%Y %H:%M:%S`"
        )
    try:
        written = _SAMPLE_TIME.strftime(time_format)
        datetime.strptime(written, time_format)
    except ValueError as exc:
        raise RuleError("timestamp_format", f"strptime cannot read its own output of this format: {exc}") from None
    return time_format


def _probe(pattern: regex.Pattern[str]) -> None:
    for probe in _PROBES:
        try:
            pattern.search(probe, timeout=PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise RuleError(
                "pattern",
                f"the pattern takes more than {PROBE_TIMEOUT_SECONDS * 1000:.0f} ms on a {_PROBE_CHARS}-character line "
                "(catastrophic backtracking); avoid nested repetition such as (a+)+ or (\\w+\\s?)*",
            ) from None


def apply_rules(
    rules: tuple[CompiledRule, ...],
    message: str,
    service: str,
    context: TimeContext,
    timeout_seconds: float,
) -> tuple[RuleMatch | None, int]:
    """The first rule that matches `message` (rules limited to another service are skipped), and how many
    rules ran out of time."""
    timeouts = 0
    for rule in rules:
        if rule.service is not None and rule.service != service:
            continue
        try:
            match = rule.pattern.search(message, 0, SEARCHED_CHARS, timeout=timeout_seconds)
        except TimeoutError:
            timeouts += 1
            continue
        if match is not None:
            return _rule_match(rule, match, context), timeouts
    return None, timeouts


def _rule_match(rule: CompiledRule, match: regex.Match[str], context: TimeContext) -> RuleMatch:
    fields: dict[str, Any] = {}
    for capture in rule.captures:
        text = match.group(capture.group)
        if text:
            fields[capture.key] = _typed(text, capture.kind)
    level: Level | None = None
    level_text: str | None = None
    if rule.level_group is not None and (text := match.group(rule.level_group)):
        level = normalize_level(text)
        level_text = text if level is None else None
    moment: datetime | None = None
    timestamp_text: str | None = None
    if rule.timestamp_group is not None and (text := match.group(rule.timestamp_group)):
        if rule.timestamp_format is None:
            moment = parse_timestamp(text, context)
        else:
            moment = parse_with_format(text, rule.timestamp_format, context)
        timestamp_text = text if moment is None else None
    return RuleMatch(rule.name, level, moment, fields, level_text, timestamp_text)


def _typed(text: str, kind: GrokType | None) -> Any:
    if kind == "string":
        return text
    if kind == "int":
        try:
            number = int(text)
        except ValueError:
            return text
        return number if _INT_MIN <= number <= _INT_MAX else text
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            return text
        return number if number - number == 0 else text  # NaN and infinities stay text
    return typed_text_value(text)

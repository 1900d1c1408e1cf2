"""`TextParsing`: how one tenant's plain text is read (its time zone, its extraction rules, detection on or
off), as the normalizer receives it for each batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo

from mintlog.parsing.rules import CompiledRule

__all__ = ["DEFAULT_TEXT_PARSING", "TextParsing"]


@dataclass(frozen=True, slots=True)
class TextParsing:
    """A tenant's text parsing settings.

    `zone` is the zone of wall times written without an offset; `rules` are the tenant's enabled extraction
    rules in order; `detect` switches the built-in level and timestamp detection; `rule_timeout_seconds`
    bounds each rule's run on one message.
    """

    zone: tzinfo = UTC
    rules: tuple[CompiledRule, ...] = ()
    detect: bool = True
    rule_timeout_seconds: float = 0.01


DEFAULT_TEXT_PARSING = TextParsing()
"""UTC, no rules, detection on."""

"""Extraction rules: per-tenant patterns that take a level, a timestamp and fields out of plain text lines the
built-in detection misses (`mintlog.parsing.rules` compiles and applies them). Pure code, no I/O."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

__all__ = [
    "MAX_PATTERN_CHARS",
    "ExtractionRule",
    "ExtractionRuleSpec",
    "ExtractionRuleUpdate",
    "RuleKind",
    "merge_update",
    "new_extraction_rule_id",
]

MAX_PATTERN_CHARS = 2000
"""Longest pattern a rule may have, in characters."""

RuleKind = Literal["regex", "grok"]
_Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
_Pattern = Annotated[str, Meta(min_length=1, max_length=MAX_PATTERN_CHARS)]
_TimeFormat = Annotated[str, Meta(min_length=1, max_length=100)]
_Service = Annotated[str, Meta(min_length=1, max_length=256)]
_Description = Annotated[str, Meta(max_length=1000)]


class ExtractionRuleSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client sends to create a rule (`POST /v1/logs/extraction-rules`).

    `pattern` is a regular expression (`kind: "regex"`, Python/`regex` syntax with named groups
    `(?P<name>…)`) or a grok expression (`kind: "grok"`, `%{PATTERN:field}`). A group named `level` sets the
    level, `timestamp` the time (read with `timestamp_format`, a strptime format such as `%d.%m.%Y %H:%M:%S`;
    absent or `auto`: every format the built-in detection knows), any other group becomes a field (`__` in a
    regex group name stands for `.`). `service`, when set, limits the rule to events of that service.
    """

    name: _Name
    pattern: _Pattern
    kind: RuleKind = "regex"
    timestamp_format: _TimeFormat | None = None
    service: _Service | None = None
    description: _Description | None = None
    enabled: bool = True


class ExtractionRuleUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PUT`/`PATCH /v1/logs/extraction-rules/{id}`: the members to change; `null` clears an optional one."""

    name: _Name | UnsetType = UNSET
    pattern: _Pattern | UnsetType = UNSET
    kind: RuleKind | UnsetType = UNSET
    timestamp_format: _TimeFormat | UnsetType | None = UNSET
    service: _Service | UnsetType | None = UNSET
    description: _Description | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET


@dataclass(frozen=True, slots=True)
class ExtractionRule:
    """A stored rule. Rules of a tenant apply in `(created_at, id)` order; the first that matches wins."""

    id: str
    tenant_id: str
    spec: ExtractionRuleSpec
    created_at: datetime
    updated_at: datetime


def new_extraction_rule_id() -> str:
    """A new, unguessable rule id."""
    return f"xrule_{secrets.token_hex(8)}"


def merge_update(spec: ExtractionRuleSpec, update: ExtractionRuleUpdate) -> ExtractionRuleSpec:
    """`spec` with every member `update` gives replaced (not yet compiled: call `compile_rule`)."""
    changes = {name: value for name in update.__struct_fields__ if (value := getattr(update, name)) is not UNSET}
    return msgspec.structs.replace(spec, **changes)

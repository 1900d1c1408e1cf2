"""Alert rule bodies: defaults, every 422 naming its member, message templates, merges and comparisons."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from mintlog.domain.alert_rules import (
    AlertRuleSpec,
    AlertRuleUpdate,
    breaches,
    group_hash,
    merge_update,
    render_message,
    validate_rule,
)
from mintlog.errors import UnprocessableEntity
from mintlog.roles.api.common.wire import decode_body

SEED = {"name": "high-errors", "query": {"level": "error"}, "threshold": 5, "window_seconds": 300}


def decode(body: dict[str, Any]) -> AlertRuleSpec:
    return validate_rule(decode_body(msgspec.json.encode(body), msgspec.json.Decoder(AlertRuleSpec)))


def refused(body: dict[str, Any]) -> dict[str, object]:
    with pytest.raises(UnprocessableEntity) as caught:
        decode(body)
    return {"code": caught.value.code, **caught.value.extra}


def test_the_seed_rule_takes_documented_defaults() -> None:
    spec = decode(SEED)
    assert (spec.comparator, spec.interval_seconds, spec.for_seconds, spec.keep_firing_for_seconds) == ("gt", 60, 0, 0)
    assert (spec.severity, spec.no_data, spec.auto_resolve_incident, spec.is_active) == (
        "warning",
        "alerting",
        True,
        True,
    )
    assert spec.group_by is None
    assert spec.channel_ids == []
    assert spec.labels == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"threshold": -1}, "threshold"),
        ({"comparator": "ne"}, "comparator"),
        ({"window_seconds": 5}, "window_seconds"),
        ({"window_seconds": 8 * 86400}, "window_seconds"),
        ({"interval_seconds": 4}, "interval_seconds"),
        ({"interval_seconds": 600}, "window_seconds"),  # a window shorter than the interval misses events
        ({"for_seconds": -1}, "for_seconds"),
        ({"severity": "urgent"}, "severity"),
        ({"no_data": "maybe"}, "no_data"),
        ({"group_by": "message"}, "group_by"),
        ({"labels": {"bad key": "x"}}, "labels"),
        ({"labels": {f"k{n}": "v" for n in range(21)}}, "labels"),
        ({"channel_ids": [f"ch{n}" for n in range(21)]}, "channel_ids"),
        ({"channel_ids": ["ch1", "ch1"]}, "channel_ids"),
        ({"channel_ids": ["not a channel id!"]}, "channel_ids[0]"),
        ({"message": "{nope}"}, "message"),
        ({"message": "lone { brace"}, "message"),
        ({"query": {"level": "eror"}}, "query.level"),
        ({"query": {"size": 10}}, "query.size"),
        ({"query": {"from": "now-1h"}}, "query.from"),
        ({"query": {"fields": {"n": 18741065154739602647416832}}}, "query.fields"),
        ({"query": {"fields": {"n": 2**64}}}, "query.fields"),
        ({"query": {"fields": {"n": -(2**63) - 1}}}, "query.fields"),
        ({"id": "rule_x"}, "id"),
        ({"tenant_id": "other"}, "tenant_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_an_invalid_member_is_a_422_naming_it(change: dict[str, Any], field: str) -> None:
    assert refused({**SEED, **change})["field"] == field


def test_query_fields_take_every_integer_an_event_can_hold() -> None:
    fields = {"low": -(2**63), "high": 2**64 - 1, "big_float": 1e300, "flag": True}
    assert decode({**SEED, "query": {"fields": fields}}).query.fields == fields
    problem = refused({**SEED, "query": {"fields": {"ok": 1, "n": 2**64}}})
    assert problem == {"code": "validation_failed", "field": "query.fields"}


def test_a_query_syntax_error_names_the_field_and_the_position() -> None:
    problem = refused({**SEED, "query": {"query": "level:error AND (service:api"}})
    assert problem == {"code": "invalid_query", "field": "query.query", "position": 28}


def test_a_missing_member_is_named() -> None:
    body = dict(SEED)
    del body["threshold"]
    assert refused(body)["field"] == "threshold"


def test_message_placeholders_are_filled_and_braces_escaped() -> None:
    spec = decode(
        {
            **SEED,
            "group_by": "service",
            "message": "{rule_name} {{x}}: {value} {comparator} {threshold} in {window_seconds}s for {group.service}",
        }
    )
    text = render_message(spec, rule_id="rule_1", value=6.0, state="firing", group={"service": "checkout"})
    assert text == "high-errors {x}: 6 gt 5 in 300s for checkout"
    assert "no data" in render_message(decode(SEED), rule_id="r", value=None, state="error", group={})


def test_a_group_placeholder_needs_that_group_by() -> None:
    assert refused({**SEED, "message": "{group.service}"})["field"] == "message"
    assert refused({**SEED, "group_by": "host", "message": "{group.service}"})["field"] == "message"


def test_an_update_merges_only_the_members_given() -> None:
    spec = decode({**SEED, "group_by": "service", "description": "d"})
    update = msgspec.json.decode(b'{"threshold": 10, "description": null}', type=AlertRuleUpdate)
    merged = merge_update(spec, update)
    assert (merged.threshold, merged.description, merged.group_by, merged.name) == (10, None, "service", "high-errors")


@pytest.mark.parametrize(
    ("value", "comparator", "threshold", "expected"),
    [
        (6, "gt", 5, True),
        (5, "gt", 5, False),
        (5, "gte", 5, True),
        (4, "lt", 5, True),
        (5, "lt", 5, False),
        (5, "lte", 5, True),
    ],
)
def test_comparators(value: float, comparator: Any, threshold: float, expected: bool) -> None:
    assert breaches(value, comparator, threshold) is expected


def test_group_hashes_are_stable_and_distinct() -> None:
    assert group_hash({"service": "a"}) == group_hash({"service": "a"})
    assert group_hash({"service": "a"}) != group_hash({"service": "b"}) != group_hash({})

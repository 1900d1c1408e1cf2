"""Management bodies and list parameters: every bad input is a precise 400 or 422, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from mintlog.errors import BadRequest, UnprocessableEntity
from mintlog.roles.api.admin.wire import KeyCreate, KeyRotate, TenantCreate, TenantPatch
from mintlog.roles.api.common.pagination import (
    MAX_LIMIT,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
    encode_time_cursor,
    parse_limit,
    refuse_unknown_parameters,
)
from mintlog.roles.api.common.wire import decode_body

TENANT = msgspec.json.Decoder(TenantCreate)
PATCH = msgspec.json.Decoder(TenantPatch)
KEY = msgspec.json.Decoder(KeyCreate)


@pytest.mark.parametrize(
    ("decoder", "body", "field", "words"),
    [
        pytest.param(TENANT, b'{"name": "a", "created_at": "x"}', "created_at", "read-only", id="read-only"),
        pytest.param(TENANT, b'{"name": "a", "colour": "red"}', "colour", "not a known member", id="unknown"),
        pytest.param(TENANT, b'{"plan": "pro"}', "name", "required", id="missing"),
        pytest.param(TENANT, b'{"name": "a", "retention_days": 0}', "retention_days", ">= 1", id="too-small"),
        pytest.param(TENANT, b'{"name": "a", "retention_days": 36501}', "retention_days", "<= 36500", id="too-big"),
        pytest.param(
            TENANT, b'{"name": "a", "retention_basis": "arrival"}', "retention_basis", "Invalid enum", id="basis"
        ),
        pytest.param(PATCH, b'{"retention_basis": null}', "retention_basis", "got `null`", id="patch-basis-null"),
        pytest.param(TENANT, b'{"name": "a", "retention_days": "90"}', "retention_days", "got `str`", id="type"),
        pytest.param(TENANT, b'{"name": "a", "plan": ""}', "plan", "length >= 1", id="empty-plan"),
        pytest.param(TENANT, b'{"name": "a", "plan": "' + b"p" * 41 + b'"}', "plan", "<= 40", id="long-plan"),
        pytest.param(TENANT, b"[]", "", "Expected `object`", id="not-an-object"),
        pytest.param(PATCH, b'{"id": "other"}', "id", "read-only", id="patch-id"),
        pytest.param(PATCH, b'{"plan": null}', "plan", "got `null`", id="patch-null"),
        pytest.param(KEY, b'{"name": "k", "tenant_id": "other"}', "tenant_id", "read-only", id="tenant-id"),
        pytest.param(KEY, b'{"name": "k", "scopes": ["logs:all"]}', "scopes[0]", "Invalid enum", id="scope"),
        pytest.param(KEY, b'{"name": "k", "scopes": []}', "scopes", "length >= 1", id="no-scopes"),
        pytest.param(KEY, b'{"name": "k", "rate_limit": 0}', "rate_limit", ">= 1", id="rate-limit"),
        pytest.param(KEY, b'{"name": "k", "expires_at": "2030-01-01T00:00:00"}', "expires_at", "timezone", id="naive"),
    ],
)
def test_a_wrong_member_is_a_422_naming_it(
    decoder: msgspec.json.Decoder[object], body: bytes, field: str, words: str
) -> None:
    with pytest.raises(UnprocessableEntity) as refused:
        decode_body(body, decoder)
    assert refused.value.code == "validation_failed"
    assert refused.value.extra["field"] == field
    assert words in refused.value.detail


def test_a_tenant_may_keep_a_century_of_history_counted_from_arrival() -> None:
    created = decode_body(b'{"name": "a", "retention_days": 36500, "retention_basis": "received_at"}', TENANT)
    changed = decode_body(b'{"retention_basis": "event_time"}', PATCH)

    assert (created.retention_days, created.retention_basis) == (36500, "received_at")
    assert decode_body(b'{"name": "a"}', TENANT).retention_basis == "event_time"
    assert changed.retention_basis == "event_time"


@pytest.mark.parametrize("body", [b"{", b'{"name": "caf\xe9"}', b"nope"])
def test_malformed_json_is_a_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_body(body, TENANT)
    assert refused.value.code == "malformed_json"


def test_an_empty_body_is_a_400_unless_the_endpoint_has_a_default() -> None:
    with pytest.raises(BadRequest) as refused:
        decode_body(b" ", TENANT)
    assert refused.value.code == "empty_body"
    assert decode_body(b"", msgspec.json.Decoder(KeyRotate), empty=KeyRotate()) == KeyRotate()


def test_a_valid_body_decodes_with_its_defaults() -> None:
    assert decode_body(b'{"name": "Acme"}', TENANT) == TenantCreate(name="Acme", plan="free", retention_days=30)
    assert decode_body(b'{"suspended": true}', PATCH).plan is msgspec.UNSET


def test_cursors_round_trip_and_forged_ones_are_a_400() -> None:
    assert decode_cursor(encode_cursor("acme-corp")) == "acme-corp"
    at = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
    assert decode_time_cursor(encode_time_cursor(at, "aud_1")) == (at, "aud_1")
    assert decode_cursor(None) is None
    assert decode_time_cursor(None) is None
    for forged in ("%%%", "bm9wZQ", encode_cursor("acme"), "W10"):
        with pytest.raises(BadRequest) as refused:
            decode_time_cursor(forged)
        assert refused.value.code == "invalid_cursor"
    with pytest.raises(BadRequest):
        decode_cursor(encode_time_cursor(at, "aud_1"))


@pytest.mark.parametrize("limit", ["0", "-1", str(MAX_LIMIT + 1), "ten", "1.5", "²", ""])
def test_a_limit_out_of_bounds_is_a_400(limit: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_limit(limit)
    assert refused.value.code == "invalid_limit"


def test_limits_default_and_bound() -> None:
    assert parse_limit(None) == 50
    assert parse_limit("1") == 1
    assert parse_limit(str(MAX_LIMIT)) == MAX_LIMIT


def test_an_unknown_query_parameter_is_refused_by_name() -> None:
    refuse_unknown_parameters({"limit": "1"}, frozenset({"limit"}))
    with pytest.raises(BadRequest) as refused:
        refuse_unknown_parameters({"limit": "1", "tenant_id": "other"}, frozenset({"limit"}))
    assert refused.value.code == "unknown_parameter"
    assert refused.value.extra["parameter"] == "tenant_id"

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import msgspec

from mintlog.domain.keys import (
    DEFAULT_SCOPES,
    KEY_PREFIX,
    SCOPES,
    display_prefix,
    generate_api_key,
    hash_api_key,
    is_well_formed_key,
    missing_scopes,
    new_key_id,
)
from mintlog.domain.tenants import ApiKey


def test_generated_keys_are_prefixed_unique_and_checksummed() -> None:
    keys = {generate_api_key().secret for _ in range(200)}
    assert len(keys) == 200
    for secret in keys:
        assert secret.startswith(KEY_PREFIX)
        assert is_well_formed_key(secret)


def test_only_the_hash_and_a_short_prefix_are_kept() -> None:
    key = generate_api_key()
    assert key.key_hash == hashlib.sha256(key.secret.encode()).hexdigest()
    assert key.key_hash == hash_api_key(key.secret)
    assert key.prefix == display_prefix(key.secret)
    assert len(key.prefix) == 12
    assert key.secret.startswith(key.prefix)


def test_a_mistyped_or_truncated_key_fails_the_checksum() -> None:
    secret = generate_api_key().secret
    flipped = secret[:10] + ("a" if secret[10] != "a" else "b") + secret[11:]
    assert not is_well_formed_key(flipped)
    assert not is_well_formed_key(secret[:-1])
    assert not is_well_formed_key("mlk_" + "!" * 38)
    assert not is_well_formed_key("")
    assert not is_well_formed_key("Bearer " + secret)


def test_a_key_may_grant_only_scopes_it_holds() -> None:
    assert missing_scopes(["ingest:logs"], ["ingest:logs", "search:logs"]) == ()
    assert missing_scopes(["admin", "ingest:logs", "audit:read"], ["ingest:logs"]) == ("audit:read", "admin")
    assert missing_scopes(["made:up"], SCOPES) == ("made:up",)


def test_default_scopes_are_everything_but_admin() -> None:
    assert "admin" not in DEFAULT_SCOPES
    assert set(DEFAULT_SCOPES) | {"admin"} == set(SCOPES)


def test_key_ids_are_unique_and_carry_no_secret() -> None:
    ids = {new_key_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(key_id.startswith("key_") and not is_well_formed_key(key_id) for key_id in ids)


def test_a_key_status_says_revoked_before_expired() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    generated = generate_api_key()
    key = ApiKey(
        id="key_1",
        tenant_id="acme",
        name="k",
        key_hash=generated.key_hash,
        prefix=generated.prefix,
        scopes=("ingest:logs",),
        created_at=now,
    )
    assert key.status(now) == "active"
    assert msgspec.structs.replace(key, expires_at=now + timedelta(seconds=1)).status(now) == "active"
    assert msgspec.structs.replace(key, expires_at=now).status(now) == "expired"
    assert msgspec.structs.replace(key, expires_at=now, revoked_at=now).status(now) == "revoked"

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mintlog.adapters.cache.memory import MemoryCache
from mintlog.auth import UNAUTHORIZED_DETAIL, Authenticator
from mintlog.domain.keys import generate_api_key
from mintlog.errors import DatabaseUnavailable, Unauthorized
from tests.fakes import FakeKeyMetadata as FakeMetadata

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def add_key(
    metadata: FakeMetadata,
    *,
    scopes: tuple[str, ...] = ("ingest:logs",),
    revoked: bool = False,
    expires_at: datetime | None = None,
    suspended: bool = False,
) -> str:
    secret, _ = metadata.add(
        "acme", scopes=scopes, expires_at=expires_at, revoked_at=NOW if revoked else None, suspended=suspended
    )
    return secret


def make_auth(metadata: FakeMetadata, now: list[datetime] | None = None) -> Authenticator:
    clock = now or [NOW]
    return Authenticator(metadata, MemoryCache(), ttl_seconds=300, clock=lambda: clock[0])  # type: ignore[arg-type]


async def test_a_valid_key_resolves_to_its_tenant_and_scopes() -> None:
    metadata = FakeMetadata()
    secret = add_key(metadata, scopes=("ingest:logs", "search:logs"))
    principal = await make_auth(metadata).authenticate(secret)
    assert principal.tenant_id == "acme"
    assert principal.has_scope("search:logs")
    assert not principal.has_scope("admin")
    assert principal.key_prefix == secret[:12]


@pytest.mark.parametrize("case", ["missing", "malformed", "unknown", "revoked", "expired", "suspended"])
async def test_every_bad_key_gets_the_same_401(case: str) -> None:
    metadata = FakeMetadata()
    secret: str | None
    if case == "missing":
        secret = None
    elif case == "malformed":
        secret = "not-a-key"
    elif case == "unknown":
        secret = generate_api_key().secret
    elif case == "revoked":
        secret = add_key(metadata, revoked=True)
    elif case == "expired":
        secret = add_key(metadata, expires_at=NOW - timedelta(seconds=1))
    else:
        secret = add_key(metadata, suspended=True)
    with pytest.raises(Unauthorized) as error:
        await make_auth(metadata).authenticate(secret)
    assert error.value.detail == UNAUTHORIZED_DETAIL
    assert error.value.code == "unauthorized"


async def test_malformed_keys_never_reach_the_database() -> None:
    metadata = FakeMetadata()
    with pytest.raises(Unauthorized):
        await make_auth(metadata).authenticate("mlk_short")
    assert metadata.lookups == 0


async def test_a_cached_key_keeps_working_while_the_database_is_down() -> None:
    metadata = FakeMetadata()
    secret = add_key(metadata)
    auth = make_auth(metadata)
    await auth.authenticate(secret)
    metadata.down = True
    principal = await auth.authenticate(secret)
    assert principal.tenant_id == "acme"


async def test_an_uncached_key_gets_503_not_401_while_the_database_is_down() -> None:
    metadata = FakeMetadata()
    secret = add_key(metadata)
    metadata.down = True
    with pytest.raises(DatabaseUnavailable):
        await make_auth(metadata).authenticate(secret)


async def test_a_cached_key_stops_working_when_it_expires() -> None:
    metadata = FakeMetadata()
    clock = [NOW]
    secret = add_key(metadata, expires_at=NOW + timedelta(seconds=60))
    auth = make_auth(metadata, clock)
    await auth.authenticate(secret)
    clock[0] = NOW + timedelta(seconds=61)
    with pytest.raises(Unauthorized):
        await auth.authenticate(secret)


async def test_last_used_is_written_in_one_batch_not_per_request() -> None:
    metadata = FakeMetadata()
    secret = add_key(metadata)
    auth = make_auth(metadata)
    for _ in range(50):
        await auth.authenticate(secret)
    assert metadata.touched == {}
    assert await auth.flush_last_used() == 1
    assert metadata.touched == {"key_0": NOW}
    assert await auth.flush_last_used() == 0


async def test_last_used_survives_a_failed_flush() -> None:
    metadata = FakeMetadata()
    secret = add_key(metadata)
    auth = make_auth(metadata)
    await auth.authenticate(secret)
    metadata.down = True
    with pytest.raises(DatabaseUnavailable):
        await auth.flush_last_used()
    metadata.down = False
    assert await auth.flush_last_used() == 1

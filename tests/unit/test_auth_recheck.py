"""`Authenticator.recheck`: whether a key in use (an open tail) still authenticates, and if not why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import msgspec
import pytest

from mintlog.adapters.cache.memory import MemoryCache
from mintlog.auth import Authenticator
from mintlog.domain.tenants import ApiKey, Tenant
from mintlog.errors import DatabaseUnavailable, Unauthorized
from tests.fakes import NOW
from tests.fakes import FakeKeyMetadata as Metadata
from tests.fakes import FakeWallClock as Clock


class CountingMetadata(Metadata):
    """Counts database reads of keys; `down` makes them fail as an unreachable database does."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.down = False

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
        self.reads += 1
        if self.down:
            raise DatabaseUnavailable("database unreachable")
        return await super().find_api_key(key_hash)


def authenticator(metadata: Metadata, clock: Clock | None = None) -> Authenticator:
    return Authenticator(metadata, MemoryCache(), ttl_seconds=300, clock=clock or Clock())  # type: ignore[arg-type]


async def test_a_valid_key_in_the_cache_is_rechecked_without_reading_the_database() -> None:
    metadata = CountingMetadata()
    secret, key = metadata.add("acme")
    auth = authenticator(metadata)
    await auth.authenticate(secret)
    reads = metadata.reads
    for _ in range(5):
        assert await auth.recheck(key.key_hash) is None
    assert metadata.reads == reads


async def test_an_uncached_valid_key_is_read_once_then_cached() -> None:
    metadata = CountingMetadata()
    _, key = metadata.add("acme")
    auth = authenticator(metadata)
    assert await auth.recheck(key.key_hash) is None
    assert await auth.recheck(key.key_hash) is None
    assert metadata.reads == 1


def revoke(metadata: Metadata, key: ApiKey) -> None:
    metadata.keys[key.key_hash] = msgspec.structs.replace(key, revoked_at=NOW)


def suspend(metadata: Metadata, key: ApiKey) -> None:
    tenant = metadata.tenants[key.tenant_id]
    metadata.tenants[key.tenant_id] = msgspec.structs.replace(tenant, suspended=True)


def delete(metadata: Metadata, key: ApiKey) -> None:
    tenant = metadata.tenants[key.tenant_id]
    metadata.tenants[key.tenant_id] = msgspec.structs.replace(tenant, suspended=True, deleted_at=NOW)


def retire(metadata: Metadata, key: ApiKey) -> None:
    metadata.keys[key.key_hash] = msgspec.structs.replace(key, expires_at=NOW)


def forget(metadata: Metadata, key: ApiKey) -> None:
    del metadata.keys[key.key_hash]


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (revoke, "key_revoked"),
        (suspend, "tenant_suspended"),
        (delete, "tenant_deleted"),
        (retire, "key_expired"),
        (forget, "key_invalid"),
    ],
)
async def test_a_change_is_seen_once_invalidated_with_its_reason(
    change: Callable[[Metadata, ApiKey], None], refusal: str
) -> None:
    metadata = CountingMetadata()
    secret, key = metadata.add("acme")
    auth = authenticator(metadata)
    await auth.authenticate(secret)
    change(metadata, key)
    await auth.invalidate_key(key.key_hash)
    assert await auth.recheck(key.key_hash) == refusal
    with pytest.raises(Unauthorized):  # and the refusal is what the next request gets too
        await auth.authenticate(secret)
    await auth.close()


async def test_a_cached_key_is_refused_as_expired_once_its_expiry_passes() -> None:
    metadata = CountingMetadata()
    secret, key = metadata.add("acme")
    metadata.keys[key.key_hash] = msgspec.structs.replace(key, expires_at=NOW + timedelta(seconds=5))
    clock = Clock()
    auth = authenticator(metadata, clock)
    await auth.authenticate(secret)
    assert await auth.recheck(key.key_hash) is None
    clock.now = NOW + timedelta(seconds=5)
    reads = metadata.reads
    assert await auth.recheck(key.key_hash) == "key_expired"
    assert metadata.reads == reads


async def test_an_unreachable_database_raises_unless_the_cache_already_refuses_the_key() -> None:
    metadata = CountingMetadata()
    secret, key = metadata.add("acme")
    auth = authenticator(metadata)
    metadata.down = True
    with pytest.raises(DatabaseUnavailable):  # nothing cached: the key may well be valid
        await auth.recheck(key.key_hash)
    metadata.down = False
    revoke(metadata, key)
    with pytest.raises(Unauthorized):  # caches the refusal
        await auth.authenticate(secret)
    metadata.down = True
    assert await auth.recheck(key.key_hash) == "key_invalid"


async def test_a_recheck_is_not_a_use_of_the_key() -> None:
    metadata = CountingMetadata()
    _, key = metadata.add("acme")
    auth = authenticator(metadata)
    assert await auth.recheck(key.key_hash) is None
    assert await auth.flush_last_used() == 0

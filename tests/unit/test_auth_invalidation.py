"""`Authenticator.invalidate_key` / `invalidate_tenant`: a change is seen by the very next request."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from mintlog.adapters.cache.memory import MemoryCache
from mintlog.auth import Authenticator
from mintlog.errors import CacheUnavailable, Unauthorized
from tests.fakes import FakeKeyMetadata as Metadata

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class BrokenCache(MemoryCache):
    async def delete(self, key: str) -> None:
        raise CacheUnavailable("redis down")


def authenticator(metadata: Metadata, cache: MemoryCache | None = None) -> Authenticator:
    return Authenticator(metadata, cache or MemoryCache(), ttl_seconds=300, clock=lambda: NOW)  # type: ignore[arg-type]


async def test_a_revoked_key_is_refused_at_once_after_invalidation() -> None:
    metadata = Metadata()
    secret, key = metadata.add("acme")
    auth = authenticator(metadata)
    await auth.authenticate(secret)
    metadata.keys[key.key_hash] = msgspec.structs.replace(key, revoked_at=NOW)
    await auth.authenticate(secret)  # still cached: this is what invalidation is for
    await auth.invalidate_key(key.key_hash)
    with pytest.raises(Unauthorized):
        await auth.authenticate(secret)


async def test_suspending_a_tenant_refuses_all_its_keys_and_reinstating_it_accepts_them_again() -> None:
    metadata = Metadata()
    secrets = [metadata.add("acme")[0] for _ in range(3)]
    other, _ = metadata.add("other")
    auth = authenticator(metadata)
    for secret in [*secrets, other]:
        await auth.authenticate(secret)
    metadata.tenants["acme"] = msgspec.structs.replace(metadata.tenants["acme"], suspended=True)
    assert await auth.invalidate_tenant("acme") == 3
    for secret in secrets:
        with pytest.raises(Unauthorized):
            await auth.authenticate(secret)
    await auth.authenticate(other)
    # The refusals are cached too; reinstating must not wait for them to expire.
    metadata.tenants["acme"] = msgspec.structs.replace(metadata.tenants["acme"], suspended=False)
    await auth.invalidate_tenant("acme")
    for secret in secrets:
        assert (await auth.authenticate(secret)).tenant_id == "acme"


async def test_an_unreachable_cache_does_not_fail_the_invalidation(caplog: pytest.LogCaptureFixture) -> None:
    metadata = Metadata()
    _, key = metadata.add("acme")
    await authenticator(metadata, BrokenCache()).invalidate_key(key.key_hash)
    assert "could not invalidate" in caplog.text
    assert key.key_hash not in caplog.text


async def test_a_verdict_cached_by_a_racing_request_is_deleted_again() -> None:
    import asyncio

    metadata = Metadata()
    secret, key = metadata.add("acme")
    cache = MemoryCache()
    auth = Authenticator(metadata, cache, ttl_seconds=300, reinvalidate_after_seconds=0.05)  # type: ignore[arg-type]
    stale = msgspec.msgpack.encode(await auth.authenticate(secret))
    metadata.keys[key.key_hash] = msgspec.structs.replace(key, revoked_at=NOW)
    await auth.invalidate_key(key.key_hash)
    # A request that read the key before the revocation committed writes its verdict back after the delete.
    await cache.set(f"apikey:{key.key_hash}", stale, 300)
    await asyncio.sleep(0.2)
    with pytest.raises(Unauthorized):
        await auth.authenticate(secret)
    await auth.close()


async def test_close_runs_pending_second_deletes_at_once() -> None:
    metadata = Metadata()
    secret, key = metadata.add("acme")
    cache = MemoryCache()
    auth = Authenticator(metadata, cache, ttl_seconds=300, reinvalidate_after_seconds=60)  # type: ignore[arg-type]
    stale = msgspec.msgpack.encode(await auth.authenticate(secret))
    await auth.invalidate_key(key.key_hash)
    await cache.set(f"apikey:{key.key_hash}", stale, 300)
    await auth.close()
    assert await cache.get(f"apikey:{key.key_hash}") is None

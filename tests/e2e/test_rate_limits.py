"""Rate limits and the Redis cache, seen from outside a running Mintlog.

- a key gets its burst, then 429 problem+json with `Retry-After` and `RateLimit-*`;
- on Redis, ingest and search work end to end, and a key revoked (database + cache entry deleted, as the
  admin API does) gets 401 at once from every instance sharing that Redis;
- with Redis unreachable, a valid key still gets 202 (database + local limiter) and is still limited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mintlog.domain.keys import hash_api_key
from tests.e2e.harness import MintlogProcess
from tests.services import UNREACHABLE_REDIS_URL

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
# A burst of 5 that refills one request a minute: a loaded machine cannot refill a token between the burst
# and the refused sixth request (at 60/minute it did, when six requests took over a second).
TIGHT = {"MINTLOG_RATELIMIT__DEFAULT_KEY_REQUESTS_PER_MINUTE": "1", "MINTLOG_RATELIMIT__BURST_SECONDS": "300"}
ONE_EVENT = {"events": [{"message": "limited", "service": "rl"}]}


def metric(mintlog: MintlogProcess, name: str) -> float:
    text = httpx.get(f"{mintlog.ingest_url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def assert_burst_then_429(mintlog: MintlogProcess, key: str) -> None:
    for remaining in (4, 3, 2, 1, 0):
        response = mintlog.ingest(key, ONE_EVENT)
        assert response.status_code == 202, response.text
        assert response.headers["ratelimit-limit"] == "5"
        assert response.headers["ratelimit-remaining"] == str(remaining)
        assert "ratelimit-reset" in response.headers
    refused = mintlog.ingest(key, ONE_EVENT)
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "5"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["ratelimit-reset"]) >= 1
    problem = refused.json()
    assert problem["status"] == 429
    assert problem["code"] == "rate_limited"
    assert problem["title"]
    assert problem["detail"]
    assert problem["request_id"] == refused.headers["x-request-id"]


def test_a_key_gets_its_burst_then_429(mintlog_factory: Callable[..., MintlogProcess]) -> None:
    mintlog = mintlog_factory(**TIGHT)
    mintlog.start()
    key = mintlog.bootstrap("demo")
    assert_burst_then_429(mintlog, key)
    # The limit is per key across both servers: the search API refuses it too.
    search = mintlog.search(key, {})
    assert search.status_code == 429
    assert search.json()["code"] == "rate_limited"


async def redis_keys(redis_url: str, pattern: str) -> list[bytes]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        return [key async for key in client.scan_iter(match=pattern)]
    finally:
        await client.aclose()


def test_mintlog_on_redis_works_end_to_end(mintlog_factory: Callable[..., MintlogProcess], redis_url: str) -> None:
    mintlog = mintlog_factory(MINTLOG_CACHE__URL=redis_url)
    mintlog.start()
    key = mintlog.bootstrap("demo")
    response = mintlog.ingest(key, {"events": [{"message": "through redis", "service": "cached"}]})
    assert response.status_code == 202, response.text
    assert response.headers["ratelimit-limit"] == "1000"  # the defaults: 6000/minute, 10 s of burst
    answer = mintlog.wait_for_total(key, {"service": "cached"}, 1)
    assert answer["total"] == 1
    assert asyncio.run(redis_keys(redis_url, f"mintlog:cache:apikey:{hash_api_key(key)}"))
    assert asyncio.run(redis_keys(redis_url, "mintlog:rl:key:*"))
    assert metric(mintlog, "mintlog_cache_errors_total") == 0


async def revoke(database_url: str, redis_url: str, secret: str) -> None:
    """What the admin API's revoke does: mark the key revoked, then delete its cache entry."""
    from redis.asyncio import Redis
    from sqlalchemy import update

    from mintlog.adapters.db.models import ApiKeyRow
    from mintlog.adapters.db.sql import SqlMetadataStore

    key_hash = hash_api_key(secret)
    store = SqlMetadataStore(database_url, migrate_on_start=False)
    await store.start()
    try:
        async with store.engine.begin() as connection:
            await connection.execute(
                update(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash).values(revoked_at=datetime.now(UTC))
            )
    finally:
        await store.close()
    client = Redis.from_url(redis_url)
    try:
        await client.delete(f"mintlog:cache:apikey:{key_hash}")
    finally:
        await client.aclose()


def test_a_revoked_key_is_refused_at_once_by_every_instance_sharing_redis(
    tmp_path: Path, mintlog_factory: Callable[..., MintlogProcess], redis_url: str
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    shared = {"MINTLOG_CACHE__URL": redis_url, "MINTLOG_DATABASE__URL": database_url}
    first = mintlog_factory(tmp_path / "first", **shared)
    first.start()
    second = mintlog_factory(tmp_path / "second", **shared)
    second.start()
    key = first.bootstrap("demo")
    for instance in (first, second):
        assert instance.ingest(key, ONE_EVENT).status_code == 202  # the key is now cached in Redis

    asyncio.run(revoke(database_url, redis_url, key))

    for instance in (first, second):
        response = instance.ingest(key, ONE_EVENT)
        assert response.status_code == 401, response.text


def test_with_redis_down_a_valid_key_still_works_and_is_still_limited(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory(MINTLOG_CACHE__URL=UNREACHABLE_REDIS_URL, **TIGHT)
    mintlog.start()
    key = mintlog.bootstrap("demo")
    assert_burst_then_429(mintlog, key)
    assert metric(mintlog, "mintlog_cache_errors_total") >= 1
    assert metric(mintlog, "mintlog_ratelimit_fallbacks_total") >= 6

"""The IdempotencyStore contract, run against the unit tests' fake and the SQL store on SQLite and PostgreSQL.

The SQL store is reopened on the same database to show that records survive a restart of the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from mintlog.adapters.db.idempotency_sql import SqlIdempotencyStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.ports.idempotency import IdempotencyRecord, IdempotencyStore
from tests.fakes import FakeIdempotencyStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

OpenStore = Callable[[], Awaitable[IdempotencyStore]]


@pytest.fixture(params=["fake", "sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database of this test; empty for the fake."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}"
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_database_url"))
    return ""


@pytest.fixture
async def open_store(database_url: str) -> AsyncIterator[OpenStore]:
    """Opens a store on this test's database; each call is a new process reaching the same records."""
    metadata_stores: list[SqlMetadataStore] = []
    fake = FakeIdempotencyStore()
    url = database_url

    async def open_one() -> IdempotencyStore:
        if not url:
            return fake
        metadata = SqlMetadataStore(url)
        await metadata.start()
        metadata_stores.append(metadata)
        return SqlIdempotencyStore(metadata)

    yield open_one
    for metadata in metadata_stores:
        await metadata.close()


def record(key: str = "k" * 64, *, tenant: str = "acme", batch_id: str = "b1", **changes: object) -> IdempotencyRecord:
    base = IdempotencyRecord(
        tenant_id=tenant,
        key_sha256=key,
        body_sha256="a" * 64,
        batch_id=batch_id,
        received_at=NOW,
        answer=b'{"accepted":1,"rejected":0,"errors":[],"batch_id":"' + batch_id.encode() + b'"}',
        completed=False,
        expires_at=NOW + timedelta(hours=24),
    )
    return msgspec.structs.replace(base, **changes)


async def test_a_claim_stores_the_record_durably(open_store: OpenStore) -> None:
    store = await open_store()
    mine = record(answer=b"x" * 200_000)
    assert await store.claim(mine, now=NOW) == mine
    reopened = await open_store()
    assert await reopened.get("acme", mine.key_sha256, now=NOW) == mine
    assert await reopened.get("acme", "other" + "0" * 59, now=NOW) is None
    assert await reopened.get("globex", mine.key_sha256, now=NOW) is None


async def test_a_claim_of_a_held_key_returns_the_holder_unchanged(open_store: OpenStore) -> None:
    store = await open_store()
    first = record(batch_id="b1")
    await store.claim(first, now=NOW)
    assert await store.claim(record(batch_id="b2", body_sha256="b" * 64), now=NOW + timedelta(hours=23)) == first
    assert await store.get("acme", first.key_sha256, now=NOW) == first


async def test_of_racing_claims_exactly_one_wins(open_store: OpenStore) -> None:
    stores = [await open_store() for _ in range(4)]
    claims = [record(batch_id=f"b{n}") for n in range(8)]
    holders = await asyncio.gather(*(stores[n % 4].claim(claim, now=NOW) for n, claim in enumerate(claims)))
    assert len({holder.batch_id for holder in holders}) == 1
    assert holders[0] in claims


async def test_an_expired_record_is_gone_and_its_key_can_be_claimed_again(open_store: OpenStore) -> None:
    store = await open_store()
    old = record(batch_id="old")
    await store.claim(old, now=NOW)
    expiry = old.expires_at
    assert await store.get("acme", old.key_sha256, now=expiry - timedelta(microseconds=1)) == old
    assert await store.get("acme", old.key_sha256, now=expiry) is None
    new = record(batch_id="new", expires_at=expiry + timedelta(hours=24))
    assert await store.claim(new, now=expiry) == new
    assert await store.get("acme", new.key_sha256, now=expiry) == new


async def test_complete_marks_only_the_record_of_its_batch(open_store: OpenStore) -> None:
    store = await open_store()
    mine = record(batch_id="b1")
    await store.claim(mine, now=NOW)
    await store.complete("acme", mine.key_sha256, "another-batch")
    assert await store.get("acme", mine.key_sha256, now=NOW) == mine
    await store.complete("acme", mine.key_sha256, "b1")
    await store.complete("acme", mine.key_sha256, "b1")
    completed = await (await open_store()).get("acme", mine.key_sha256, now=NOW)
    assert completed == msgspec.structs.replace(mine, completed=True)


async def test_forget_expired_deletes_expired_records_only_up_to_the_limit(open_store: OpenStore) -> None:
    store = await open_store()
    for n in range(5):
        await store.claim(record(f"{n}" * 64, expires_at=NOW + timedelta(minutes=n)), now=NOW)
    later = NOW + timedelta(minutes=3)
    assert await store.forget_expired(now=later, limit=2) == 2
    assert await store.forget_expired(now=later, limit=100) == 2  # minute 3 has expired at `later` too
    assert await store.forget_expired(now=later, limit=100) == 0
    assert await store.get("acme", "4" * 64, now=NOW) is not None
    assert await store.get("acme", "0" * 64, now=NOW) is None

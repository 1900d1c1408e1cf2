"""Fixtures shared by the integration tests: the metadata database on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mintlog.adapters.db.sql import SqlMetadataStore


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs twice: on a fresh SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}"
    else:
        yield request.getfixturevalue("postgres_database_url")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlMetadataStore]:
    """The migrated metadata store on `database_url` (a test module may define its own `store`)."""
    metadata = SqlMetadataStore(database_url)
    await metadata.start()
    try:
        yield metadata
    finally:
        await metadata.close()

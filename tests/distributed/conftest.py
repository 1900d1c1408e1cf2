"""Fixtures of the distributed suite: per-module PostgreSQL database and OpenSearch index prefix, and the
settings every role process of a module shares.

A missing service fails the tests (it never skips them): this suite is the proof that the production topology
works, and a skip would hide that it was not run.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import SHARED_STREAMS_ENV, delete_opensearch_indices


def required_service(request: pytest.FixtureRequest, fixture: str) -> str:
    """The value of a `tests/services.py` fixture; a skip (service cannot be started) becomes a failure."""
    try:
        return str(request.getfixturevalue(fixture))
    except pytest.skip.Exception as exc:
        pytest.fail(f"the distributed suite needs {fixture}: {exc}", pytrace=False)


async def _execute(server_url: str, statement: str) -> None:
    import asyncpg  # pyright: ignore[reportMissingTypeStubs]

    connection = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))  # pyright: ignore[reportUnknownMemberType]
    try:
        await connection.execute(statement)  # pyright: ignore[reportUnknownMemberType]
    finally:
        await connection.close()  # pyright: ignore[reportUnknownMemberType]


@pytest.fixture(scope="module")
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for one test module, dropped afterwards."""
    server_url = required_service(request, "postgres_server_url")
    name = f"dist_{secrets.token_hex(5)}"
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    yield server_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class OpenSearchTarget:
    url: str
    prefix: str


@pytest.fixture(scope="module")
def module_opensearch(request: pytest.FixtureRequest) -> Iterator[OpenSearchTarget]:
    """The shared OpenSearch with an index prefix of this module; its indices are deleted afterwards."""
    url = required_service(request, "opensearch_url")
    target = OpenSearchTarget(url=url, prefix=f"dist{secrets.token_hex(4)}")
    yield target
    delete_opensearch_indices(url, target.prefix)


def role_settings(
    *, nats_url: str, database_url: str, opensearch: OpenSearchTarget, redis_url: str, blob_dir: Path
) -> dict[str, str]:
    """The `MINTLOG_*` settings every role process of a module shares: real services, short timers."""
    return {
        "MINTLOG_NATS__URL": nats_url,
        **SHARED_STREAMS_ENV,
        "MINTLOG_NATS__PUBLISH_TIMEOUT_SECONDS": "2",
        "MINTLOG_NATS__CONNECT_TIMEOUT_SECONDS": "10",
        "MINTLOG_NATS__STREAM_MAX_BYTES": str(256 * 1024 * 1024),
        "MINTLOG_DATABASE__URL": database_url,
        "MINTLOG_STORE__URL": opensearch.url,
        "MINTLOG_STORE__OPENSEARCH__INDEX_PREFIX": opensearch.prefix,
        "MINTLOG_CACHE__URL": redis_url,
        "MINTLOG_BLOB__URL": f"file://{blob_dir}",
        "MINTLOG_EGRESS_ALLOW": "127.0.0.0/8",
        "MINTLOG_HTTP__SHUTDOWN_GRACE_SECONDS": "5",
        # A killed consumer's unacked messages come back after 5 s instead of 30 s.
        "MINTLOG_PIPELINE__ACK_WAIT_SECONDS": "5",
        "MINTLOG_INCIDENTS__ACK_WAIT_SECONDS": "5",
        "MINTLOG_INCIDENTS__OUTBOX_INTERVAL_SECONDS": "1",
        "MINTLOG_INCIDENTS__OUTBOX_MIN_AGE_SECONDS": "1",
        "MINTLOG_NOTIFY__POLL_INTERVAL_SECONDS": "0.5",
        "MINTLOG_NOTIFY__CLAIM_SECONDS": "20",
        "MINTLOG_NOTIFY__TIMEOUT_SECONDS": "5",
        "MINTLOG_RETENTION__ENABLED": "false",
        "MINTLOG_SEARCH__MAX_SIZE": "5000",
        "MINTLOG_SEARCH__TOTAL_CAP": "1000000",
        "MINTLOG_LOG_FORMAT": "json",
        "MINTLOG_LOG_LEVEL": "info",
    }

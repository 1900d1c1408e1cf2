"""Fixtures for the real PostgreSQL and Redis the tests use, started by `scripts/services.sh`.

`scripts/services.sh up` is idempotent, so a fixture just asks for the service; on a machine where it
cannot be started the test is skipped, and in CI (`CI` set) a skip fails the run (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["UNREACHABLE_REDIS_URL", "delete_redis_keys", "postgres_database_url", "postgres_server_url", "redis_url"]

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services.sh"
# Nothing listens on port 1: connecting is refused at once, like a Redis that is down.
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"


def _service_env(name: str) -> dict[str, str]:
    result = subprocess.run(["bash", str(SCRIPT), "up", name], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.skip(f"{name} could not be started by scripts/services.sh: {result.stderr.strip()[-500:]}")
    lines = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in lines.split())


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The URL of the test PostgreSQL's `mintlog` database (shared: prefer `postgres_database_url`)."""
    return os.environ.get("TEST_POSTGRES_URL") or _service_env("postgres")["TEST_POSTGRES_URL"]


async def _execute(server_url: str, statement: str) -> None:
    import asyncpg  # pyright: ignore[reportMissingTypeStubs]

    connection = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))  # pyright: ignore[reportUnknownMemberType]
    try:
        await connection.execute(statement)  # pyright: ignore[reportUnknownMemberType]
    finally:
        await connection.close()  # pyright: ignore[reportUnknownMemberType]


@pytest.fixture
def postgres_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards. A sync fixture, so any test may use it."""
    name = f"test_{secrets.token_hex(6)}"
    asyncio.run(_execute(postgres_server_url, f'CREATE DATABASE "{name}"'))
    yield postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_execute(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the test Redis (database 0; tests must use unique key prefixes or flush their own keys)."""
    return os.environ.get("TEST_REDIS_URL") or _service_env("redis")["TEST_REDIS_URL"]


async def delete_redis_keys(redis_url: str, prefix: str) -> None:
    """Delete the keys a test wrote under its own `prefix` in the shared test Redis."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()

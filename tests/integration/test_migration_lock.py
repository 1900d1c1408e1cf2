"""Processes that start together against a new PostgreSQL database migrate it one at a time, all succeeding
(an advisory lock in alembic/env.py; without it they race to create the same tables)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.integration


async def test_concurrent_upgrades_of_a_fresh_database_all_succeed(postgres_database_url: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MINTLOG_")}
    env["MINTLOG_DATABASE__URL"] = postgres_database_url
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "mintlog", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=90)[0].decode(errors="replace") for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs

    engine = create_async_engine(postgres_database_url)
    try:
        async with engine.connect() as connection:
            versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
            tables = (
                await connection.execute(text("SELECT count(*) FROM pg_tables WHERE tablename = 'alert_rules'"))
            ).scalar_one()
    finally:
        await engine.dispose()
    assert len(versions) == 1
    assert tables == 1

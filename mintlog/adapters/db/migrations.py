"""Run the Alembic migrations of `alembic/` programmatically (at start and from `mintlog db`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.config import Config

from alembic import command

__all__ = ["alembic_config", "downgrade", "upgrade"]


def _script_location() -> Path:
    packaged = Path(__file__).resolve().parents[2] / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "alembic"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for `database_url`, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate up to `revision` (idempotent). Runs in a thread: Alembic's env drives its own loop."""
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), revision)


async def downgrade(database_url: str, revision: str = "-1") -> None:
    """Migrate down to `revision` (one step by default)."""
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), revision)

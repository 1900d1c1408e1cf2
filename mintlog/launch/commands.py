"""What the `mintlog run`, `mintlog admin bootstrap` and `mintlog db` commands do (`mintlog.cli` parses and
dispatches to them).

- `run_command` holds the data directory (`mintlog.launch.datadir`) before anything else touches it, then
  serves the one HTTP role in Granian workers when `MINTLOG_HTTP__WORKERS` is above 1, or runs the selected
  roles in this process until SIGINT/SIGTERM.
- `admin_bootstrap` creates the tenant when missing and a key with every scope, printed once, on the last line.
- `migrate_database` moves the metadata database to a revision (creating a SQLite file's directory first).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from mintlog.domain.keys import SCOPES, generate_api_key
from mintlog.domain.tenants import ApiKey, Tenant, tenant_id_from_name
from mintlog.launch.bootstrap import build_metadata
from mintlog.launch.datadir import hold_data_dir
from mintlog.settings import Settings

__all__ = ["admin_bootstrap", "migrate_database", "run_command"]


def run_command(settings: Settings, environment: Mapping[str, str]) -> None:
    """`mintlog run`: blocks until the process is told to stop. `environment` holds the settings given as CLI
    flags: Granian workers read their settings from the environment, so they are put there first.

    Raises `DirectoryInUse` when another process holds the data directory, `ConfigError` for settings the
    workers refuse.
    """
    from mintlog.launch.process import run_until_signalled
    from mintlog.launch.workers import check_worker_settings, serve_workers

    serve_in_workers = check_worker_settings(settings) is not None
    # Before anything else touches the data directory; held until this process ends, kill -9 included.
    with hold_data_dir(settings):
        if serve_in_workers:
            os.environ.update(environment)
            serve_workers(settings)
        else:
            asyncio.run(run_until_signalled(settings))


async def admin_bootstrap(settings: Settings, tenant_name: str, plan: str, retention_days: int) -> None:
    """`mintlog admin bootstrap`: the tenant `tenant_name` (created when missing) and a new all-scopes key."""
    metadata = build_metadata(settings)
    await metadata.start()
    try:
        now = datetime.now(UTC)
        tenant_id = tenant_id_from_name(tenant_name)
        tenant = await metadata.get_tenant(tenant_id)
        if tenant is None:
            tenant = await metadata.create_tenant(
                Tenant(id=tenant_id, name=tenant_name, plan=plan, retention_days=retention_days, created_at=now)
            )
            print(f"created tenant {tenant.id} ({tenant.name}, plan {tenant.plan}, {tenant.retention_days} days)")
        else:
            print(f"tenant {tenant.id} exists; adding a key")
        generated = generate_api_key()
        key = await metadata.create_api_key(
            ApiKey(
                id=f"key_{secrets.token_hex(8)}",
                tenant_id=tenant.id,
                name="bootstrap",
                key_hash=generated.key_hash,
                prefix=generated.prefix,
                scopes=SCOPES,
                created_at=now,
            )
        )
        print(f"created API key {key.id} with scopes {','.join(key.scopes)}; it is shown once, below:")
        print(generated.secret, flush=True)
    finally:
        await metadata.close()


async def migrate_database(settings: Settings, command: str, revision: str) -> None:
    """`mintlog db upgrade|downgrade`: migrate the metadata database to `revision`."""
    from mintlog.adapters.db import migrations

    url = settings.database_url
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
    if command == "upgrade":
        await migrations.upgrade(url, revision)
    else:
        await migrations.downgrade(url, revision)
    print(f"database {command} to {revision}: done")

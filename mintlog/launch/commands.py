"""What the `mintlog run`, `mintlog admin bootstrap`, `mintlog config check` and `mintlog db` commands do
(`mintlog.cli` parses and dispatches to them).

- `run_command` checks the settings (`mintlog.launch.preflight`), holds the data directory
  (`mintlog.launch.datadir`) before anything else touches it, makes sure its ports are free, then
  serves the one HTTP role in Granian workers when `MINTLOG_HTTP__WORKERS` is above 1, or runs the selected
  roles in this process until SIGINT/SIGTERM.
- `admin_bootstrap` creates the tenant when missing and a key with every scope; the key is printed once and is
  all it prints on standard output (its report goes to the logs, on standard error), so
  `KEY=$(mintlog admin bootstrap --tenant demo)` works.
- `check_config` is `mintlog config check`: the settings checks of `run_command`, without starting anything.
- `migrate_database` moves the metadata database to a revision (creating a SQLite file's directory first).
"""

from __future__ import annotations

import asyncio
import logging
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

__all__ = ["admin_bootstrap", "check_config", "migrate_database", "run_command"]

logger = logging.getLogger(__name__)


def run_command(settings: Settings, environment: Mapping[str, str], *, supervised: bool = False) -> None:
    """`mintlog run`: blocks until the process is told to stop. `environment` holds the settings given as CLI
    flags: Granian workers read their settings from the environment, so they are put there first.
    `supervised`: started by another `mintlog run` (a pipeline child), which announces readiness itself.

    Checks first what `mintlog config check` checks (`check_settings`), then holds the data directory, then
    makes sure no other program holds a port this process binds; nothing has listened or been announced yet.
    Raises `ConfigError` for bad settings, `DirectoryInUse` when another process holds the data directory,
    `PortUnavailable` naming the port and its setting.
    """
    from mintlog.launch.preflight import check_ports_free, check_settings
    from mintlog.launch.process import run_until_signalled
    from mintlog.launch.workers import check_worker_settings, serve_workers

    check_settings(settings)
    serve_in_workers = check_worker_settings(settings) is not None
    # Before anything else touches the data directory; held until this process ends, kill -9 included.
    with hold_data_dir(settings):
        check_ports_free(settings)
        if serve_in_workers:
            os.environ.update(environment)
            serve_workers(settings)
        else:
            asyncio.run(run_until_signalled(settings, supervised=supervised))


def check_config(settings: Settings) -> str:
    """`mintlog config check`: the checks `mintlog run` makes before it opens anything (`check_settings`);
    raises `ConfigError` listing the problems, or returns a summary of what `run` would start."""
    from mintlog.launch.ports import listening_ports
    from mintlog.launch.preflight import check_settings

    check_settings(settings)
    ports = ", ".join(f"{port.what} {port.setting}={port.port}" for port in listening_ports(settings)) or "none"
    return f"configuration OK: roles {','.join(settings.roles)}; ports {ports}; data directory {settings.data_path}"


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
            logger.info(
                "created tenant %s (%s, plan %s, %s days)", tenant.id, tenant.name, tenant.plan, tenant.retention_days
            )
        else:
            logger.info("tenant %s exists; adding a key", tenant.id)
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
        logger.info(
            "created API key %s with scopes %s; it is shown once, on standard output", key.id, ",".join(key.scopes)
        )
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

"""The `mintlog` command line (also `python -m mintlog`).

    mintlog run [--role ingest,api,...]      run roles (default: all six, embedded defaults); with
                                             MINTLOG_HTTP__WORKERS>1, one of ingest/api in N Granian workers
    mintlog admin bootstrap --tenant NAME    create a tenant and an all-scopes key; the key is all it prints on
                                             stdout (its report goes to stderr): KEY=$(mintlog admin bootstrap …)
    mintlog db upgrade|downgrade [REV]       migrate the metadata database
    mintlog config show|example              effective settings (secrets masked) | the .env.example text
    mintlog config check                     the checks `run` makes before it starts; exit 0 or 1 with the problems
    mintlog import PATH... [--url U --key K]  load log files into a running Mintlog (docs/import.md)

Exit codes: 0 success, 1 runtime failure (among them: the data directory is locked by another `mintlog run`),
2 bad usage or bad settings (`config check`: 1 for bad settings, the check's failure).

This module only parses the command line and the settings and dispatches: what the commands do is in the shell
wing (`mintlog.launch.commands`), imported once a command needs it, so `--version` and `config` stay quick.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from mintlog import __version__
from mintlog.errors import ConfigError, MintlogError
from mintlog.importer.command import add_import_parser
from mintlog.logs import configure_logging
from mintlog.settings import ALL_ROLES, Settings, env_example, load_settings, masked_settings

__all__ = ["main"]

logger = logging.getLogger("mintlog.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mintlog", description="Mintlog: logs, alerts and incidents.")
    parser.add_argument("--version", action="version", version=f"mintlog {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run Mintlog roles in this process")
    run.add_argument(
        "--role",
        "--roles",
        dest="roles",
        help=f"comma-separated roles among {','.join(ALL_ROLES)} (default: all; same as MINTLOG_ROLES)",
    )
    run.add_argument("--data-dir", help="data directory (same as MINTLOG_DATA_DIR)")
    # Set by `mintlog run` on its pipeline children (mintlog.launch.pipeline_child): the parent announces readiness.
    run.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)

    admin = commands.add_parser("admin", help="administration").add_subparsers(dest="admin_command", required=True)
    boot = admin.add_parser("bootstrap", help="create a tenant (if needed) and an API key with every scope")
    boot.add_argument("--tenant", required=True, help="tenant name; its id is derived from it")
    boot.add_argument("--plan", default="free")
    boot.add_argument("--retention-days", type=int, default=30)

    db = commands.add_parser("db", help="metadata database migrations").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="migrate up (default: to the latest revision)")
    up.add_argument("revision", nargs="?", default="head")
    down = db.add_parser("downgrade", help="migrate down (default: one revision)")
    down.add_argument("revision", nargs="?", default="-1")

    config = commands.add_parser("config", help="settings").add_subparsers(dest="config_command", required=True)
    config.add_parser("show", help="print the effective settings, secrets masked")
    config.add_parser("example", help="print .env.example, generated from the settings tree")
    config.add_parser("check", help="check the settings as `mintlog run` does before it starts (binds no port)")
    add_import_parser(commands)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides: dict[str, str] = {}
    if getattr(args, "roles", None):
        overrides["MINTLOG_ROLES"] = args.roles
    if getattr(args, "data_dir", None):
        overrides["MINTLOG_DATA_DIR"] = args.data_dir
    return overrides


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(overrides=_overrides(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mintlog` console script."""
    args = _parser().parse_args(argv)
    if args.command == "import":  # a client of a running Mintlog: the server's settings do not apply
        from mintlog.importer.command import run_import

        return run_import(args)
    checking = args.command == "config" and args.config_command == "check"
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"mintlog: error: {exc}", file=sys.stderr)
        return 1 if checking else 2
    log_format = configure_logging(settings.log_level, settings.log_format)

    try:
        if checking:
            from mintlog.launch.commands import check_config

            print(check_config(settings))
            return 0
        if args.command == "config":
            if args.config_command == "show":
                for name, value in masked_settings(settings).items():
                    print(f"{name}={value}")
            else:
                sys.stdout.write(env_example())
            return 0
        if args.command == "run":
            from mintlog.launch.commands import run_command

            run_command(settings, _overrides(args), supervised=args.supervised)
            return 0
        from mintlog.launch.commands import admin_bootstrap, migrate_database

        if args.command == "admin":
            asyncio.run(admin_bootstrap(settings, args.tenant, args.plan, args.retention_days))
            return 0
        asyncio.run(migrate_database(settings, args.db_command, args.revision))
        return 0
    except ConfigError as exc:
        print(f"mintlog: error: {exc}", file=sys.stderr)
        return 1 if checking else 2
    except MintlogError as exc:
        # One line: a JSON record where stderr is read by machines, plain text at a terminal.
        if log_format == "json":
            logger.error("mintlog failed: %s", exc)
        else:
            print(f"mintlog: error: {exc}", file=sys.stderr)
        return 1

"""The role registry is the one table of roles: the all-in-one process builds its services from it, in its start
order, and the Granian workers accept exactly its HTTP roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.errors import ConfigError
from mintlog.launch.bootstrap import bootstrap
from mintlog.launch.process import build_services
from mintlog.launch.registry import ROLES, http_role_names
from mintlog.launch.workers import check_worker_settings
from mintlog.settings import ALL_ROLES, RoleName, load_settings
from tests.fakes import FakeOutboundHttp


def test_every_role_of_the_settings_has_one_entry() -> None:
    assert sorted(entry.name for entry in ROLES) == sorted(ALL_ROLES)


def test_consumers_start_before_intake() -> None:
    order = [entry.name for entry in sorted(ROLES, key=lambda entry: entry.start_order)]
    assert order == ["pipeline", "alert", "notify", "uptime", "api", "ingest"]
    assert http_role_names() == ("ingest", "api")


@pytest.mark.parametrize(
    ("roles", "ops_port", "services"),
    [
        (ALL_ROLES, "0", ["api-key-usage", "pipeline", "alert", "notify", "uptime", "api", "ingest"]),
        (("ingest",), "9100", ["api-key-usage", "ingest"]),
        (("notify", "alert"), "9100", ["alert", "notify", "ops"]),
        (("pipeline",), "0", ["pipeline"]),
    ],
)
async def test_a_process_runs_the_services_of_its_roles_in_start_order(
    tmp_path: Path, roles: tuple[RoleName, ...], ops_port: str, services: list[str]
) -> None:
    settings = load_settings(
        {"MINTLOG_DATA_DIR": str(tmp_path), "MINTLOG_ROLES": ",".join(roles), "MINTLOG_HTTP__OPS_PORT": ops_port},
        env_file=None,
    )
    # The in-memory bus cannot be shared with a child process: the pipeline runs in this one.
    runtime = bootstrap(settings, bus=MemoryEventBus(), outbound=FakeOutboundHttp())
    try:
        assert [service.name for service in build_services(runtime, settings.roles)] == services
    finally:
        await runtime.close()


@pytest.mark.parametrize("role", [entry.name for entry in ROLES])
def test_granian_workers_serve_the_http_roles_only(role: RoleName) -> None:
    settings = load_settings(
        {"MINTLOG_HTTP__WORKERS": "2", "MINTLOG_ROLES": role, "MINTLOG_NATS__URL": "nats://127.0.0.1:4222"},
        env_file=None,
    )
    if role in http_role_names():
        assert check_worker_settings(settings) == role
    else:
        with pytest.raises(ConfigError, match="offered for the ingest and api roles only"):
            check_worker_settings(settings)

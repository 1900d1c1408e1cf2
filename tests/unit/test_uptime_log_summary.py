"""The context of a monitor's `down` event: the failing check always, the linked service's log summary when the
store answers, and a summary marked unavailable (never an exception) when it fails or is too slow."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from mintlog.domain.monitors import Monitor, MonitorSpec
from mintlog.domain.uptime_checks import CheckOutcome, TcpCheck
from mintlog.errors import StoreUnavailable
from mintlog.ports.logstore import LogStore
from mintlog.roles.uptime.log_summary import failure_context

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OUTCOME = CheckOutcome(ok=False, latency_ms=5001.0, error="connection refused")


def _monitor(**spec: Any) -> Monitor:
    return Monitor(
        id="mon_1",
        tenant_id="acme",
        spec=MonitorSpec(name="db", check=TcpCheck(host="db.example.com", port=5432), **spec),
        created_at=AT,
        updated_at=AT,
        next_check_at=AT,
    )


class BrokenStore:
    """A log store that fails, or never answers when `hang`."""

    def __init__(self, *, hang: bool = False) -> None:
        self.hang = hang

    async def aggregate(self, query: object) -> object:
        if self.hang:
            await asyncio.sleep(3600)
        raise StoreUnavailable("store down")

    async def search(self, query: object) -> object:
        raise StoreUnavailable("store down")


def _store(store: BrokenStore) -> LogStore:
    return store  # type: ignore[return-value]


async def test_a_monitor_without_a_linked_service_gets_only_the_failing_check() -> None:
    context = await failure_context(
        _monitor(), OUTCOME, at=AT, location="eu", store=_store(BrokenStore()), timeout_seconds=1
    )
    assert context == {
        "check": {
            "type": "tcp",
            "target": "db.example.com:5432",
            "at": AT.isoformat(),
            "error": "connection refused",
            "status_code": None,
            "latency_ms": 5001.0,
            "location": "eu",
        }
    }


async def test_an_unreachable_or_slow_store_marks_the_summary_unavailable() -> None:
    for store, error in ((BrokenStore(), "StoreUnavailable"), (BrokenStore(hang=True), "TimeoutError")):
        context = await failure_context(
            _monitor(linked_service="api", log_window_minutes=10),
            OUTCOME,
            at=AT,
            location="eu",
            store=_store(store),
            timeout_seconds=0.05,
        )
        logs = context["logs"]
        assert logs["available"] is False
        assert logs["service"] == "api"
        assert logs["from"] == "2026-12-06T11:50:00+00:00"
        assert logs["error"].startswith(error)
        assert context["check"]["error"] == "connection refused"

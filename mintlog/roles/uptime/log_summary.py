"""What a monitor's incident shows when it goes down: the failing check, and the logs of its linked service.

It is computed by the uptime role at the moment of the transition, before the status and the alert event are
committed, so it travels with the event through the outbox (every process has a log store, the uptime role's
included; the notify role never queries it). The incident worker copies it into the timeline entry as
`data.context`.

Guarantees:
- the summary never holds back the incident: a store that fails or takes longer than
  `MINTLOG_UPTIME__LOG_SUMMARY_TIMEOUT_SECONDS` gives `{"available": false, "error": …}` instead;
- the counts are exact for `[failed_at - log_window_minutes, failed_at)` and the service (`by_level`); the top
  error messages are counted over the newest `_ERROR_SAMPLE` error and fatal events of that window;
- `search` is a body for `POST /v1/logs/search` that finds the same events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from mintlog.domain.monitors import Monitor
from mintlog.domain.uptime_alerts import check_type
from mintlog.domain.uptime_checks import CheckOutcome
from mintlog.ports.aggregation import AggregateQuery, TermsGroup
from mintlog.ports.logstore import LogStore, SearchQuery
from mintlog.query import all_of, any_of
from mintlog.query.filters import equals

__all__ = ["check_details", "failure_context", "service_log_summary"]

logger = logging.getLogger(__name__)

_TOP_MESSAGES = 5
_ERROR_SAMPLE = 500
_MESSAGE_CHARS = 500


def _target(monitor: Monitor) -> str:
    check = monitor.spec.check
    for name in ("url", "host", "name"):
        value = getattr(check, name, None)
        if isinstance(value, str):
            port = getattr(check, "port", None)
            return f"{value}:{port}" if name == "host" and isinstance(port, int) else value
    return ""


def check_details(monitor: Monitor, outcome: CheckOutcome, *, at: datetime, location: str) -> dict[str, Any]:
    """The failing check as the timeline shows it: type, target, error, status code, latency and location."""
    return {
        "type": check_type(monitor),
        "target": _target(monitor),
        "at": at.isoformat(),
        "error": outcome.error,
        "status_code": outcome.status_code,
        "latency_ms": round(outcome.latency_ms, 3),
        "location": location,
    }


async def service_log_summary(
    store: LogStore, *, tenant_id: str, service: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """Counts by level, the top error messages and the search body of `service`'s logs in `[start, end)`.
    Raises what the store raises."""
    of_service = equals("service", service)
    levels = await store.aggregate(
        AggregateQuery(
            tenant_id=tenant_id, node=of_service, now=end, start=start, end=end, groups=(TermsGroup("level"),)
        )
    )
    errors = await store.search(
        SearchQuery(
            tenant_id=tenant_id,
            node=all_of([of_service, any_of([equals("level", "error"), equals("level", "fatal")])]),
            now=end,
            start=start,
            end=end,
            size=_ERROR_SAMPLE,
        )
    )
    messages = Counter(event.message[:_MESSAGE_CHARS] for event in errors.events)
    return {
        "available": True,
        "service": service,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "total": levels.total,
        "by_level": {str(bucket.key): bucket.count for bucket in levels.buckets},
        "top_errors": [{"message": message, "count": count} for message, count in messages.most_common(_TOP_MESSAGES)],
        "errors_sampled": len(errors.events),
        "search": {"query": f'service:"{service}"', "from": start.isoformat(), "to": end.isoformat()},
    }


async def failure_context(
    monitor: Monitor,
    outcome: CheckOutcome,
    *,
    at: datetime,
    location: str,
    store: LogStore,
    timeout_seconds: float,
) -> dict[str, Any]:
    """The `context` of a `down` alert event: the failing check and, for a monitor with a `linked_service`, the
    summary of that service's logs in the `log_window_minutes` before `at` (marked unavailable when the store
    fails or is too slow). Never raises."""
    context: dict[str, Any] = {"check": check_details(monitor, outcome, at=at, location=location)}
    service = monitor.spec.linked_service
    if service is None:
        return context
    start = at - timedelta(minutes=monitor.spec.log_window_minutes)
    try:
        context["logs"] = await asyncio.wait_for(
            service_log_summary(store, tenant_id=monitor.tenant_id, service=service, start=start, end=at),
            timeout=timeout_seconds,
        )
    except Exception as exc:  # any failure of the store: the incident opens anyway, without the summary
        logger.warning("monitor %s: logs of %r not summarized: %s", monitor.id, service, exc)
        context["logs"] = {
            "available": False,
            "service": service,
            "from": start.isoformat(),
            "to": at.isoformat(),
            "error": f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__,
        }
    return context

"""`LogReading`: what the routes that read logs (search, aggregate, fields, context, tail) take from the
runtime, as one dependency named `reading`.

They are the API's busiest routes, and Litestar resolves every dependency of a request at a cost (several
in a task group): one dependency keeps a search as cheap to route as before the API had dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mintlog.metrics import Metrics
from mintlog.ports.bus import EventBus
from mintlog.ports.logstore import LogStore
from mintlog.runtime import Runtime
from mintlog.settings import SearchSettings, TailSettings

__all__ = ["LogReading", "log_reading"]


@dataclass(frozen=True, slots=True)
class LogReading:
    """The log store (search, replay), the bus (live events), the search and tail settings, the metrics."""

    store: LogStore
    bus: EventBus
    search: SearchSettings
    tail: TailSettings
    metrics: Metrics


def log_reading(runtime: Runtime) -> Mapping[str, object]:
    """The logs area's dependencies: `reading`, built once per app."""
    settings = runtime.settings
    return {
        "reading": LogReading(
            store=runtime.store, bus=runtime.bus, search=settings.search, tail=settings.tail, metrics=runtime.metrics
        )
    }

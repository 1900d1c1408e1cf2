"""Prometheus metrics of one Mintlog process, in a registry owned by the Runtime (no globals)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from mintlog.metrics_merge import merge_expositions

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _counter(registry: CollectorRegistry, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name, doc, labels, registry=registry)


@dataclass
class Metrics:
    """Every metric Mintlog exports. Names follow Prometheus conventions (`_total`, `_seconds`)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    peers: list[Callable[[], Awaitable[bytes | None]]] = field(default_factory=lambda: [])

    def __post_init__(self) -> None:
        r = self.registry
        self.ingest_events_accepted = _counter(r, "mintlog_ingest_events_accepted", "Events accepted (202).")
        self.ingest_events_rejected = _counter(
            r,
            "mintlog_ingest_events_rejected",
            "Events rejected inside accepted batches, by reason.",
            ("reason",),
        )
        self.ingest_requests_rejected = _counter(
            r, "mintlog_ingest_requests_rejected", "Ingest requests refused whole, by reason.", ("reason",)
        )
        self.syslog_messages = _counter(
            r, "mintlog_syslog_messages", "Syslog messages received, by transport (tcp, udp, tls).", ("transport",)
        )
        self.syslog_dropped = _counter(
            r,
            "mintlog_syslog_dropped",
            "Syslog messages dropped, by transport and reason (unauthenticated, invalid_key, oversized, "
            "invalid_utf8, malformed, rejected, backpressure, unavailable, quota, backlog, framing_lost, shutdown).",
            ("transport", "reason"),
        )
        self.ingest_batches_duplicate = _counter(
            r, "mintlog_ingest_batches_duplicate", "Batches answered from an earlier identical request."
        )
        self.ingest_backlog_messages = Gauge(
            "mintlog_ingest_backlog_messages",
            "Messages (batches) waiting for a pipeline stage to start on them, as ingest last read them: on "
            "LOGS_RAW those not yet handed to the normalizer, on LOGS_PARSED all it holds (not yet indexed).",
            ("stream",),
            registry=r,
        )
        self.ingest_backlog_oldest_seconds = Gauge(
            "mintlog_ingest_backlog_oldest_seconds",
            "Age of the oldest of the messages counted in mintlog_ingest_backlog_messages (0 when none), as "
            "ingest last read it.",
            ("stream",),
            registry=r,
        )
        self.ingest_backlog_expected_wait_seconds = Gauge(
            "mintlog_ingest_backlog_expected_wait_seconds",
            "How long a batch accepted now would wait to be indexed, at the rate the pipeline drained LOGS_RAW and "
            "LOGS_PARSED over the last 5 s while busy (0 while it keeps up or cannot be told).",
            registry=r,
        )
        self.ingest_backlog_refusing = Gauge(
            "mintlog_ingest_backlog_refusing",
            "1 while ingest refuses new batches because the pipeline's backlog passed MINTLOG_INGEST__MAX_BACKLOG_"
            "SECONDS or _MESSAGES (until it is below 80 % of both); else 0.",
            registry=r,
        )
        self.pipeline_events = _counter(r, "mintlog_pipeline_events", "Events normalized by the pipeline.")
        self.extraction_rule_timeouts = _counter(
            r,
            "mintlog_extraction_rule_timeouts",
            "Extraction rules that ran out of time on a message (counted as not matching).",
        )
        self.pipeline_lag = Gauge(
            "mintlog_pipeline_lag_seconds",
            "Age of the newest raw batch when the pipeline published it.",
            registry=r,
        )
        self.indexer_events = _counter(r, "mintlog_indexer_events", "Events written to the log store.")
        self.indexer_lag = Gauge(
            "mintlog_indexer_lag_seconds",
            "Age of the newest batch when the indexer committed it (ingest to searchable).",
            registry=r,
        )
        self.dead_letters = _counter(
            r,
            "mintlog_dead_letters",
            "Bus messages dead-lettered, by consumer and reason.",
            ("consumer", "reason"),
        )
        self.store_write_seconds = Histogram(
            "mintlog_store_write_seconds",
            "Time of one log store write (commit included).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.search_seconds = Histogram(
            "mintlog_search_seconds",
            "Time of one search in the log store.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.aggregate_seconds = Histogram(
            "mintlog_aggregate_seconds",
            "Time of one aggregation in the log store.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tails_open = Gauge(
            "mintlog_tails_open", "Live tails (`POST /v1/logs/tail` streams) open in this process.", registry=r
        )
        self.tail_events_sent = _counter(
            r, "mintlog_tail_events_sent", "Events sent to tail clients, replayed or live."
        )
        self.tail_events_dropped = _counter(
            r, "mintlog_tail_events_dropped", "Live events skipped because a tail client read too slowly."
        )
        self.http_requests = _counter(
            r, "mintlog_http_requests", "HTTP requests answered, by server and status.", ("server", "status")
        )
        self.http_request_seconds = Histogram(
            "mintlog_http_request_seconds",
            "HTTP request latency by server, until the response starts (a tail: until its stream opens).",
            ("server",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_errors = _counter(
            r, "mintlog_cache_errors", "Cache operations that failed and were served as a miss, by operation.", ("op",)
        )
        self.ratelimit_fallbacks = _counter(
            r, "mintlog_ratelimit_fallbacks", "Rate-limit decisions taken by the local limiter because Redis failed."
        )
        self.ratelimit_rejected = _counter(
            r, "mintlog_ratelimit_rejected", "Requests refused with 429, by limit (key, tenant_ingest).", ("limit",)
        )
        self.retention_runs = _counter(
            r,
            "mintlog_retention_runs",
            "Retention runs by outcome: completed, skipped (another instance holds the lease), aborted.",
            ("outcome",),
        )
        self.retention_partitions_dropped = _counter(
            r, "mintlog_retention_partitions_dropped", "Day partitions or daily indices deleted by retention."
        )
        self.retention_failures = _counter(
            r, "mintlog_retention_failures", "Tenants whose expired partitions could not be deleted in a run."
        )
        self.archive_objects = _counter(r, "mintlog_archive_objects", "Archive objects written (rewrites included).")
        self.archive_events = _counter(r, "mintlog_archive_events", "Events written to archive objects.")
        self.archive_failures = _counter(
            r, "mintlog_archive_failures", "Archive flushes that failed (their messages are redelivered)."
        )
        self.archive_objects_expired = _counter(
            r, "mintlog_archive_objects_expired", "Archive objects deleted by archive retention."
        )
        self.pipeline_child_restarts = _counter(
            r,
            "mintlog_pipeline_child_restarts",
            "Times a pipeline child process of `mintlog run` was restarted, by stage.",
            ("stage",),
        )
        self.nats_server_restarts = _counter(
            r, "mintlog_embedded_nats_restarts", "Times the embedded nats-server was restarted after dying."
        )
        self.data_dir_free_bytes = Gauge(
            "mintlog_data_dir_free_bytes",
            "Bytes free on the data directory's filesystem, measured every second where the embedded nats-server "
            "stores (by the process that runs it; 0 elsewhere).",
            registry=r,
        )
        self.bus_store_write_failed = Gauge(
            "mintlog_bus_store_write_failed",
            "1 while the embedded nats-server reports a failed store write (disk full): ingest answers 503 and "
            "/readyz is not ready until it is restarted on a disk with room again; else 0.",
            registry=r,
        )
        self.bus_store_recoveries = _counter(
            r,
            "mintlog_bus_store_recoveries",
            "Times the embedded nats-server was restarted to clear a failed store write once space was back.",
        )
        self.store_write_failed = Gauge(
            "mintlog_store_write_failed",
            "1 while the log store's disk refuses the indexer's writes (full, over quota, read-only, I/O error): "
            "the indexer retries them without dead-lettering and /readyz names `store`; 0 once a write succeeds.",
            registry=r,
        )
        self.alert_evaluations = _counter(
            r,
            "mintlog_alert_evaluations",
            "Alert rule evaluations by result: ok, error (store or query failed), conflict (another instance "
            "won), publish_failed (an event waits for the next tick).",
            ("result",),
        )
        self.alert_evaluation_seconds = Histogram(
            "mintlog_alert_evaluation_seconds",
            "Time of one alert rule evaluation (count, state writes, publishing).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.alert_transitions = _counter(
            r, "mintlog_alert_transitions", "Alert state transitions recorded, by new state.", ("state",)
        )

        self.notify_deliveries = _counter(
            r,
            "mintlog_notify_deliveries",
            "Webhook attempts by outcome: delivered, retried (failed, another attempt scheduled), dead (gave up, "
            "channel gone or disabled), disabled (410 switched the channel off), lost_claim.",
            ("outcome",),
        )
        self.notify_deliveries_enqueued = _counter(
            r, "mintlog_notify_deliveries_enqueued", "Deliveries created (one per incident event and channel)."
        )
        self.notify_attempt_seconds = Histogram(
            "mintlog_notify_attempt_seconds",
            "Time of one webhook attempt, from connecting to the answer.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.incident_changes = _counter(
            r, "mintlog_incident_changes", "Incident changes recorded in timelines, by entry type.", ("type",)
        )
        self.incident_events_republished = _counter(
            r, "mintlog_incident_events_republished", "Incident events the outbox sweeper published after a failure."
        )
        self.due_work_claimed = _counter(
            r, "mintlog_due_work_claimed", "Due items this instance claimed, by kind of work.", ("work",)
        )
        self.due_work_running = Gauge(
            "mintlog_due_work_running",
            "Due items claimed by this instance and not finished (running or waiting for a slot), by kind of work.",
            ("work",),
            registry=r,
        )
        self.due_work_start_delay_seconds = Histogram(
            "mintlog_due_work_start_delay_seconds",
            "Time from an item's due time to the start of its run, by kind of work.",
            ("work",),
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=r,
        )
        self.due_work_overruns = _counter(
            r,
            "mintlog_due_work_overruns",
            "Runs still going at their deadline (the claim expired or the item's next turn was due), by kind of work.",
            ("work",),
        )

    def render(self) -> bytes:
        """The text exposition format of this process's own metrics."""
        return generate_latest(self.registry)

    async def render_all(self) -> bytes:
        """`GET /metrics`: this process's metrics merged with those of its child processes (`peers`, each
        returning its exposition, or None when it cannot be read right now: its series are then missing)."""
        texts = [self.render()]
        if self.peers:
            answers = await asyncio.gather(*(peer() for peer in self.peers))
            texts.extend(answer for answer in answers if answer is not None)
        return merge_expositions(texts)

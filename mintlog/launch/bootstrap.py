"""The composition root: settings in, a `Runtime` of adapters out. Adapters are imported here and nowhere else
outside the shell wing (`mintlog.launch`).

The scheme of each URL setting picks the adapter, and an unknown scheme fails here, at start:
- `MINTLOG_NATS__URL`: empty → an embedded nats-server child process; `nats://…` (comma-separated) → that cluster;
- `MINTLOG_STORE__URL`: empty → Tantivy under `$MINTLOG_DATA_DIR/index`; `tantivy:///abs/path` → Tantivy there;
- `MINTLOG_DATABASE__URL`: empty → SQLite at `$MINTLOG_DATA_DIR/mintlog.db`; `sqlite+aiosqlite://…` or
  `postgresql+asyncpg://…`;
- `MINTLOG_CACHE__URL`: empty → the API-key cache and the rate limits live in this process (right for one
  instance: another instance would neither see a revoked key's cache entry go nor share the limits);
  `redis://…` or `rediss://…` → Redis, shared by every instance, with the database and a local limiter as
  fallbacks while Redis is down;
- `MINTLOG_BLOB__URL`: empty → files under `$MINTLOG_DATA_DIR/objects`; `file:///abs/path` → files there;
  `s3://bucket` → that S3 bucket (endpoint and credentials in `MINTLOG_BLOB__S3__*`).
Outbound HTTP (webhooks) is one aiohttp client per process under the egress policy of `MINTLOG_EGRESS_ALLOW`,
shared by every role that sends.
Heavy clients are imported inside the factories, so a process never imports what it does not use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mintlog.auth import Authenticator
from mintlog.domain.egress import EgressPolicy
from mintlog.errors import ConfigError
from mintlog.metrics import Metrics
from mintlog.ports.blobstore import BlobStore
from mintlog.ports.bus import EventBus
from mintlog.ports.cache import Cache
from mintlog.ports.logstore import LogStore
from mintlog.ports.outbound import OutboundHttp
from mintlog.ports.person_notify import PersonNotifier
from mintlog.ports.ratelimit import RateLimiter
from mintlog.ports.smtp import SmtpSender
from mintlog.runtime import Runtime
from mintlog.settings import Settings

if TYPE_CHECKING:
    from mintlog.adapters.db.sql import SqlMetadataStore

__all__ = [
    "bootstrap",
    "build_blobs",
    "build_bus",
    "build_cache",
    "build_metadata",
    "build_outbound",
    "build_rate_limiter",
    "build_smtp",
    "build_store",
]

_REDIS_SCHEMES = ("redis://", "rediss://")


def build_bus(settings: Settings, metrics: Metrics) -> EventBus:
    """The event bus named by `MINTLOG_NATS__URL`."""
    nats = settings.nats
    if not nats.url:
        from mintlog.adapters.bus.embedded import EmbeddedNatsBus
        from mintlog.adapters.bus.embedded_nats import StoreHealth

        def observe_store(health: StoreHealth) -> None:
            if health.free_bytes is not None:
                metrics.data_dir_free_bytes.set(health.free_bytes)
            metrics.bus_store_write_failed.set(0 if health.write_error is None else 1)

        return EmbeddedNatsBus(
            store_dir=settings.data_path / "nats",
            sync_interval=nats.sync_interval,
            max_payload_bytes=nats.max_payload_bytes,
            connect_timeout_seconds=nats.connect_timeout_seconds,
            publish_timeout_seconds=nats.publish_timeout_seconds,
            stream_max_bytes=nats.stream_max_bytes,
            stream_max_age_seconds=nats.stream_max_age_seconds,
            duplicate_window_seconds=nats.duplicate_window_seconds,
            replicas=nats.replicas,
            on_restart=metrics.nats_server_restarts.inc,
            on_store_health=observe_store,
            on_store_recovery=metrics.bus_store_recoveries.inc,
        )
    servers = [url.strip() for url in nats.url.split(",") if url.strip()]
    bad = [url for url in servers if not url.startswith(("nats://", "tls://"))]
    if bad:
        raise ConfigError(f"invalid setting MINTLOG_NATS__URL={nats.url!r}: use nats:// or tls:// URLs")
    from mintlog.adapters.bus.nats import NatsEventBus

    return NatsEventBus(
        servers,
        connect_timeout_seconds=nats.connect_timeout_seconds,
        publish_timeout_seconds=nats.publish_timeout_seconds,
        stream_max_bytes=nats.stream_max_bytes,
        stream_max_age_seconds=nats.stream_max_age_seconds,
        duplicate_window_seconds=nats.duplicate_window_seconds,
        replicas=nats.replicas,
    )


def _local_root(url: str, scheme: str, default: Path, variable: str) -> Path:
    """The directory of a local adapter: `default` for an empty URL, else the absolute path after `scheme`."""
    root = default if not url else Path(url.removeprefix(scheme))
    if not root.is_absolute():
        raise ConfigError(f"invalid setting {variable}={url!r}: use {scheme}/absolute/path")
    return root


def build_store(settings: Settings) -> LogStore:
    """The log store named by `MINTLOG_STORE__URL`."""
    url = settings.store.url
    if not url or url.startswith("tantivy://"):
        root = _local_root(url, "tantivy://", settings.data_path / "index", "MINTLOG_STORE__URL")
        from mintlog.adapters.logstore.tantivy import TantivyLogStore

        return TantivyLogStore(
            root,
            writer_heap_bytes=settings.store.writer_heap_bytes,
            max_open_writers=settings.store.max_open_writers,
            max_open_readers=settings.store.max_open_readers,
            release_freed_memory_seconds=settings.store.release_freed_memory_seconds,
        )
    if url.startswith(("opensearch://", "http://", "https://")):
        return _build_opensearch_store(settings)
    shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1****@", url)
    raise ConfigError(
        f"invalid setting MINTLOG_STORE__URL={shown!r}: "
        "supported schemes are tantivy://, opensearch://, http:// and https://"
    )


def _build_opensearch_store(settings: Settings) -> LogStore:
    from mintlog.adapters.logstore.opensearch import BulkPolicy, ClusterOptions, OpenSearchLogStore
    from mintlog.adapters.logstore.opensearch_client import cluster_urls, masked_url

    store, opensearch = settings.store, settings.store.opensearch
    try:
        urls = cluster_urls(store.url)
    except ValueError as exc:
        raise ConfigError(f"invalid setting MINTLOG_STORE__URL={masked_url(store.url)!r}: {exc}") from None
    if opensearch.ca_file and not Path(opensearch.ca_file).is_file():
        raise ConfigError(f"invalid setting MINTLOG_STORE__OPENSEARCH__CA_FILE={opensearch.ca_file!r}: no such file")
    return OpenSearchLogStore(
        ClusterOptions(
            urls=urls,
            username=opensearch.username,
            password=opensearch.password,
            verify_certs=opensearch.verify_certs,
            ca_file=opensearch.ca_file,
            request_timeout_seconds=opensearch.request_timeout_seconds,
        ),
        index_prefix=opensearch.index_prefix,
        shards=opensearch.shards,
        replicas=opensearch.replicas,
        bulk=BulkPolicy(
            max_bytes=opensearch.bulk_max_bytes,
            max_retries=opensearch.bulk_max_retries,
            initial_backoff_seconds=opensearch.bulk_retry_initial_seconds,
            max_backoff_seconds=opensearch.bulk_retry_max_seconds,
        ),
    )


def build_blobs(settings: Settings) -> BlobStore:
    """The blob store named by `MINTLOG_BLOB__URL`."""
    url = settings.blob.url
    if not url or url.startswith("file://"):
        root = _local_root(url, "file://", settings.data_path / "objects", "MINTLOG_BLOB__URL")
        from mintlog.adapters.blob.filesystem import FilesystemBlobStore

        return FilesystemBlobStore(root)
    if url.startswith("s3://"):
        from mintlog.adapters.blob.s3 import build_s3_blob_store

        return build_s3_blob_store(url, settings.blob.s3)
    raise ConfigError(f"invalid setting MINTLOG_BLOB__URL={url!r}: supported schemes are file:// and s3://")


def build_metadata(settings: Settings) -> SqlMetadataStore:
    """The metadata database named by `MINTLOG_DATABASE__URL`."""
    url = settings.database_url
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            f"invalid setting MINTLOG_DATABASE__URL={settings.database.url!r}: "
            "use sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host/db"
        )
    from mintlog.adapters.db.sql import SqlMetadataStore

    return SqlMetadataStore(url, migrate_on_start=settings.database.migrate_on_start)


# Hot API keys are served from each process's memory while Redis's invalidation subscription is live
# (`RedisCache`); a revocation reaches every process with the pub/sub message, not after the TTL.
_NEAR_CACHE_ENTRIES = 10_000
_NEAR_CACHE_PREFIXES = ("apikey:",)
_NEAR_CACHE_MAX_TTL_SECONDS = 60.0
# Each process takes up to 10 % of a bucket's burst ahead of use and spends it alone for at most 1 s
# (`RedisRateLimiter`): one Redis round trip per lease instead of one per request.
_RATE_LIMIT_LEASE_FRACTION = 0.1
_RATE_LIMIT_LEASE_SECONDS = 1.0


def build_cache(settings: Settings, metrics: Metrics | None = None) -> Cache:
    """The cache named by `MINTLOG_CACHE__URL`; a Redis cache keeps API keys near (in process, invalidated
    by Redis) and is wrapped so that its failures are misses."""
    url = settings.cache.url
    if not url:
        from mintlog.adapters.cache.memory import MemoryCache

        return MemoryCache()
    _check_redis_url(url)
    from mintlog.adapters.cache.redis import RedisCache
    from mintlog.adapters.cache.resilient import ResilientCache

    redis_cache = RedisCache(
        url,
        timeout_seconds=settings.cache.timeout_seconds,
        near_cache_entries=_NEAR_CACHE_ENTRIES,
        near_cache_prefixes=_NEAR_CACHE_PREFIXES,
        near_cache_max_ttl_seconds=_NEAR_CACHE_MAX_TTL_SECONDS,
    )
    return ResilientCache(redis_cache, metrics=metrics)


def build_rate_limiter(settings: Settings, metrics: Metrics | None = None) -> RateLimiter:
    """The rate limiter beside the cache: in process, or Redis (with leases) falling back to in process while
    it is down."""
    from mintlog.adapters.ratelimit.memory import MemoryRateLimiter

    url = settings.cache.url
    if not url:
        return MemoryRateLimiter()
    _check_redis_url(url)
    from mintlog.adapters.ratelimit.fallback import FallbackRateLimiter
    from mintlog.adapters.ratelimit.redis import RedisRateLimiter

    shared = RedisRateLimiter(
        url,
        timeout_seconds=settings.cache.timeout_seconds,
        lease_fraction=_RATE_LIMIT_LEASE_FRACTION,
        lease_seconds=_RATE_LIMIT_LEASE_SECONDS,
    )
    return FallbackRateLimiter(shared, MemoryRateLimiter(), metrics=metrics)


# The delivery sender makes at most `MINTLOG_NOTIFY__CONCURRENCY` requests at once; these connections come on top,
# so that a request someone waits for (a channel's test delivery) never queues behind a busy sender.
_OUTBOUND_INTERACTIVE_CONNECTIONS = 16


def build_outbound(settings: Settings) -> OutboundHttp:
    """The one outbound HTTP client of the process, under the egress policy of `MINTLOG_EGRESS_ALLOW`."""
    from mintlog.adapters.http.egress_aiohttp import AiohttpOutboundHttp

    return AiohttpOutboundHttp(
        EgressPolicy.from_setting(settings.egress_allow),
        max_connections=settings.notify.concurrency + _OUTBOUND_INTERACTIVE_CONNECTIONS,
    )


def build_smtp(settings: Settings) -> SmtpSender:
    """The one SMTP client of the process, under the egress policy of `MINTLOG_EGRESS_ALLOW`."""
    from mintlog.adapters.smtp.smtp_aiosmtplib import AiosmtplibSmtpSender

    return AiosmtplibSmtpSender(EgressPolicy.from_setting(settings.egress_allow))


def _check_redis_url(url: str) -> None:
    shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1****@", url)
    if not url.startswith(_REDIS_SCHEMES):
        raise ConfigError(
            f"invalid setting MINTLOG_CACHE__URL={shown!r}: use redis://host:port/db or rediss://… (empty: in process)"
        )
    try:
        parts = urlsplit(url)
        if not parts.hostname or parts.port == 0:
            raise ValueError("a host (and a non-zero port, default 6379) is required")
    except ValueError as exc:
        raise ConfigError(f"invalid setting MINTLOG_CACHE__URL={shown!r}: {exc}") from None


def bootstrap(
    settings: Settings,
    *,
    bus: EventBus | None = None,
    store: LogStore | None = None,
    cache: Cache | None = None,
    rate_limiter: RateLimiter | None = None,
    metrics: Metrics | None = None,
    blobs: BlobStore | None = None,
    outbound: OutboundHttp | None = None,
    smtp: SmtpSender | None = None,
    person_notifier: PersonNotifier | None = None,
) -> Runtime:
    """Build the adapters from settings; tests pass overrides (e.g. `MemoryEventBus`) instead.

    Nothing is connected yet: `await runtime.open()` does that. Raises `ConfigError` for an unknown scheme.
    """
    metrics = metrics or Metrics()
    metadata = build_metadata(settings)
    from mintlog.adapters.db.alerting_sql import SqlAlertRuleStore
    from mintlog.adapters.db.archive_sql import SqlArchiveManifest
    from mintlog.adapters.db.escalation_sql import SqlEscalationStore
    from mintlog.adapters.db.idempotency_sql import SqlIdempotencyStore
    from mintlog.adapters.db.incidents_sql import SqlIncidentStore
    from mintlog.adapters.db.maintenance_sql import SqlBadgeStore, SqlMaintenanceWindowStore
    from mintlog.adapters.db.notifications_sql import SqlNotificationStore
    from mintlog.adapters.db.oncall_sql import SqlOnCallStore
    from mintlog.adapters.db.parsing_sql import SqlExtractionRuleStore
    from mintlog.adapters.db.uptime_sql import SqlMonitorStore

    cache = cache or build_cache(settings, metrics)
    return Runtime(
        settings=settings,
        bus=bus or build_bus(settings, metrics),
        store=store or build_store(settings),
        metadata=metadata,
        cache=cache,
        rate_limiter=rate_limiter or build_rate_limiter(settings, metrics),
        metrics=metrics,
        authenticator=Authenticator(metadata, cache, ttl_seconds=settings.cache.api_key_ttl_seconds),
        blobs=blobs or build_blobs(settings),
        archive=SqlArchiveManifest(metadata),
        notifications=SqlNotificationStore(metadata),
        incidents=SqlIncidentStore(metadata),
        alert_rules=SqlAlertRuleStore(metadata),
        extraction_rules=SqlExtractionRuleStore(metadata),
        idempotency=SqlIdempotencyStore(metadata),
        monitors=SqlMonitorStore(metadata),
        maintenance_windows=SqlMaintenanceWindowStore(metadata),
        badges=SqlBadgeStore(metadata),
        oncall=SqlOnCallStore(metadata),
        outbound=outbound or build_outbound(settings),
        smtp=smtp or build_smtp(settings),
        escalation=SqlEscalationStore(metadata),
        person_notifier=person_notifier,
    )

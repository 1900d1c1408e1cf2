"""One frozen, typed settings tree read from `MINTLOG_*` variables and an optional `.env` file.

Names are derived from the path in the tree: a top-level field `data_dir` is `MINTLOG_DATA_DIR`, a nested
field `nats.url` is `MINTLOG_NATS__URL`. The process environment wins over `.env`. Every field has a
default, a bound where one makes sense, and a one-line meaning (the `description` of its `Meta`), from
which `.env.example` and `mintlog config show` are generated. A bad value raises `ConfigError` naming the
variable and the value; an unknown `MINTLOG_*` variable is an error too, so a typo never goes unnoticed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import msgspec
from msgspec import Meta

from mintlog.errors import ConfigError

__all__ = [
    "ALL_ROLES",
    "PIPELINE_STAGES",
    "AlertSettings",
    "ArchiveSettings",
    "BlobS3Settings",
    "BlobSettings",
    "CacheSettings",
    "DatabaseSettings",
    "EscalationSettings",
    "HttpSettings",
    "IncidentSettings",
    "IndexerSettings",
    "IngestSettings",
    "NatsSettings",
    "NotifySettings",
    "OpenSearchSettings",
    "ParsingSettings",
    "PipelineSettings",
    "PipelineStage",
    "RateLimitSettings",
    "RetentionSettings",
    "RoleName",
    "SearchSettings",
    "SettingSpec",
    "Settings",
    "SmtpRelaySettings",
    "StoreSettings",
    "SyslogSettings",
    "TailSettings",
    "UptimeSettings",
    "env_example",
    "iter_setting_specs",
    "load_settings",
    "masked_settings",
]

ENV_PREFIX = "MINTLOG_"
RoleName = Literal["ingest", "pipeline", "api", "alert", "notify", "uptime"]
ALL_ROLES: tuple[RoleName, ...] = ("ingest", "pipeline", "api", "alert", "notify", "uptime")
PipelineStage = Literal["normalize", "index"]
PIPELINE_STAGES: tuple[PipelineStage, ...] = ("normalize", "index")

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: Annotated[str, Meta(description="Address the HTTP servers bind to.")] = "127.0.0.1"
    ingest_port: Annotated[int, Meta(ge=0, le=65535, description="Port of the ingest API (0 picks a free port).")] = (
        8080
    )
    api_port: Annotated[int, Meta(ge=0, le=65535, description="Port of the query and management API.")] = 8081
    shutdown_grace_seconds: Annotated[
        float, Meta(ge=0, le=300, description="Time given to in-flight requests and consumers at shutdown.")
    ] = 10.0
    workers: Annotated[
        int,
        Meta(
            ge=1,
            le=64,
            description="Worker processes serving the ingest or api role behind one port (above 1 needs "
            "MINTLOG_NATS__URL and one HTTP role per process).",
        ),
    ] = 1
    ops_port: Annotated[
        int,
        Meta(
            ge=0,
            le=65535,
            description="Port of /healthz, /readyz and /metrics in a process that runs neither ingest nor api "
            "(pipeline, alert, notify); 0: none.",
        ),
    ] = 0
    max_connections: Annotated[
        int,
        Meta(
            ge=16,
            le=1_000_000,
            description="Connections each HTTP port serves at once (split among its workers); more wait in the "
            "listen backlog until one closes.",
        ),
    ] = 4096
    header_read_timeout_seconds: Annotated[
        float,
        Meta(
            ge=0.1,
            le=300,
            description="Time a connection has to send a request's complete headers, from its opening or its "
            "previous response (also the idle keep-alive timeout); then it is closed.",
        ),
    ] = 10.0
    body_idle_timeout_seconds: Annotated[
        float,
        Meta(gt=0, le=3600, description="Longest wait for the next part of a request body before answering 408."),
    ] = 10.0
    body_read_timeout_seconds: Annotated[
        float,
        Meta(
            gt=0, le=3600, description="Time to receive a whole request body, from its headers, before answering 408."
        ),
    ] = 60.0


class NatsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[
        str, Meta(description="NATS JetStream URL(s), comma-separated; empty starts an embedded nats-server.")
    ] = ""
    sync_interval: Annotated[
        str,
        Meta(
            pattern=r"^(always|\d+(ms|s|m))$",
            description="Embedded server fsync policy: 'always' (no loss window) or an interval such as 2m.",
        ),
    ] = "always"
    max_payload_bytes: Annotated[
        int, Meta(ge=64 * KiB, le=64 * MiB, description="Largest message the embedded server accepts.")
    ] = 8 * MiB
    connect_timeout_seconds: Annotated[float, Meta(gt=0, le=120, description="Timeout to connect to NATS.")] = 5.0
    publish_timeout_seconds: Annotated[
        float,
        Meta(gt=0, le=120, description="How long ingest waits for a JetStream PubAck before answering 503."),
    ] = 5.0
    stream_max_bytes: Annotated[
        int, Meta(ge=MiB, description="Size limit of each stream; a full stream refuses new messages (503).")
    ] = 10 * GiB
    stream_max_age_seconds: Annotated[
        int, Meta(ge=60, description="How long a stream keeps a message after it was written.")
    ] = 24 * 3600
    duplicate_window_seconds: Annotated[
        int,
        Meta(ge=1, le=86400, description="Window in which a repeated Nats-Msg-Id is dropped as a duplicate."),
    ] = 600
    replicas: Annotated[int, Meta(ge=1, le=5, description="Stream replicas (1 for the embedded server).")] = 1


class OpenSearchSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[
        str, Meta(description="OpenSearch basic-auth user (empty: the user in the store URL, if any, else none).")
    ] = ""
    password: Annotated[str, Meta(description="OpenSearch basic-auth password.")] = ""
    verify_certs: Annotated[bool, Meta(description="Verify the cluster's TLS certificate (https:// URLs).")] = True
    ca_file: Annotated[
        str, Meta(description="CA bundle (PEM) that signed the cluster's certificate; empty uses the system CAs.")
    ] = ""
    index_prefix: Annotated[
        str,
        Meta(
            pattern=r"^[a-z0-9][a-z0-9_]{0,63}$",
            description="Index names are {prefix}-{tenant}-YYYY.MM.DD, the template {prefix}; no dash allowed.",
        ),
    ] = "mintlog"
    shards: Annotated[int, Meta(ge=1, le=1024, description="Primary shards of each new daily index.")] = 1
    replicas: Annotated[int, Meta(ge=0, le=16, description="Replicas of each new daily index.")] = 0
    request_timeout_seconds: Annotated[
        float,
        Meta(gt=0, le=600, description="Timeout of one request; a bulk lets unavailable shards wait half of it."),
    ] = 30.0
    bulk_max_bytes: Annotated[
        int, Meta(ge=64 * KiB, le=512 * MiB, description="Largest bulk request body; bigger writes are split.")
    ] = 16 * MiB
    bulk_max_retries: Annotated[
        int, Meta(ge=0, le=50, description="Retries of events refused with 429/5xx or lost to a timeout.")
    ] = 6
    bulk_retry_initial_seconds: Annotated[
        float, Meta(gt=0, le=60, description="First backoff before a bulk retry; doubles on every retry.")
    ] = 0.2
    bulk_retry_max_seconds: Annotated[
        float, Meta(gt=0, le=600, description="Longest backoff between bulk retries.")
    ] = 5.0


class StoreSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[
        str,
        Meta(
            description="Log store: empty or tantivy:///path for embedded Tantivy; "
            "opensearch://host:port or http(s)://host:port (comma-separated for several nodes) for OpenSearch."
        ),
    ] = ""
    writer_heap_bytes: Annotated[
        int, Meta(ge=16 * MiB, le=4 * GiB, description="Tantivy indexing memory per open partition writer.")
    ] = 64 * MiB
    max_open_writers: Annotated[
        int, Meta(ge=1, le=1024, description="Tantivy partition writers kept open at once (bounds memory).")
    ] = 4
    max_open_readers: Annotated[
        int, Meta(ge=1, le=100_000, description="Tantivy partitions kept open for search at once.")
    ] = 256
    release_freed_memory_seconds: Annotated[
        float,
        Meta(
            ge=0,
            le=86_400,
            description="How often the process writing the embedded Tantivy store hands memory that Tantivy's "
            "merges freed back to the system (glibc malloc_trim, after a write); 0: never.",
        ),
    ] = 60.0
    opensearch: OpenSearchSettings = msgspec.field(default_factory=OpenSearchSettings)


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[
        str, Meta(description="Metadata database URL; empty uses SQLite at $MINTLOG_DATA_DIR/mintlog.db.")
    ] = ""
    migrate_on_start: Annotated[bool, Meta(description="Run Alembic migrations to head at start.")] = True


class BlobS3Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    endpoint: Annotated[
        str,
        Meta(description="S3 endpoint URL, e.g. http://127.0.0.1:8333 (empty: https://s3.<region>.amazonaws.com)."),
    ] = ""
    region: Annotated[str, Meta(min_length=1, description="S3 region used in request signatures.")] = "us-east-1"
    access_key: Annotated[str, Meta(description="S3 access key id.")] = ""
    secret_key: Annotated[str, Meta(description="S3 secret access key.")] = ""
    timeout_seconds: Annotated[
        float, Meta(gt=0, le=600, description="Timeout of one S3 request (connect, send, answer).")
    ] = 30.0
    max_retries: Annotated[
        int, Meta(ge=0, le=20, description="Retries of an S3 request that failed with 5xx or a connection error.")
    ] = 4
    retry_initial_seconds: Annotated[
        float, Meta(gt=0, le=60, description="First backoff before an S3 retry; doubles on every retry.")
    ] = 0.2
    retry_max_seconds: Annotated[float, Meta(gt=0, le=600, description="Longest backoff between S3 retries.")] = 5.0
    create_bucket: Annotated[bool, Meta(description="Create the bucket at start when it does not exist.")] = True


class BlobSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[
        str,
        Meta(
            description="Blob store (archive): empty uses $MINTLOG_DATA_DIR/objects; file:///abs/path a directory; "
            "s3://bucket an S3 bucket (see MINTLOG_BLOB__S3__*)."
        ),
    ] = ""
    s3: BlobS3Settings = msgspec.field(default_factory=BlobS3Settings)


class CacheSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[
        str,
        Meta(description="Cache and rate-limit store: empty keeps both in process; redis://host:port/db for Redis."),
    ] = ""
    api_key_ttl_seconds: Annotated[int, Meta(ge=0, le=3600, description="How long a verified API key is cached.")] = 300
    timeout_seconds: Annotated[
        float,
        Meta(gt=0, le=30, description="Timeout of one Redis command before falling back (database, local limiter)."),
    ] = 0.5


class RateLimitSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: Annotated[bool, Meta(description="Enforce per-key rate limits and per-tenant ingest quotas.")] = True
    default_key_requests_per_minute: Annotated[
        int, Meta(ge=1, le=10_000_000, description="Rate limit of a key created without `rate_limit`, requests/minute.")
    ] = 6000
    burst_seconds: Annotated[
        float, Meta(gt=0, le=3600, description="Burst allowance: a bucket holds this many seconds of a key's rate.")
    ] = 10.0
    tenant_ingest_events_per_second: Annotated[
        int, Meta(ge=1, le=100_000_000, description="Default ingest quota of a tenant, events/second (burst as above).")
    ] = 100_000


class IngestSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_body_bytes: Annotated[
        int, Meta(ge=KiB, le=256 * MiB, description="Largest request body, before and after decompression.")
    ] = 5 * MiB
    max_events_per_batch: Annotated[int, Meta(ge=1, le=100_000, description="Most events in one ingest request.")] = (
        10_000
    )
    max_message_bytes: Annotated[
        int, Meta(ge=64, le=16 * MiB, description="Longest `message` of one event, in UTF-8 bytes.")
    ] = 64 * KiB
    max_fields_per_event: Annotated[
        int, Meta(ge=1, le=10_000, description="Most leaf values in the `fields` of one event.")
    ] = 128
    max_field_depth: Annotated[
        int, Meta(ge=1, le=32, description="Deepest nesting of objects and arrays inside `fields`.")
    ] = 5
    max_key_length: Annotated[
        int, Meta(ge=1, le=1024, description="Longest field name, in characters, after flattening.")
    ] = 128
    max_value_bytes: Annotated[
        int, Meta(ge=16, le=16 * MiB, description="Longest string value inside `fields`, in UTF-8 bytes.")
    ] = 16 * KiB
    idempotency_ttl_seconds: Annotated[
        int,
        Meta(
            ge=60,
            le=7 * 86400,
            description="Window after the first request with an Idempotency-Key in which its batch is stored once.",
        ),
    ] = 86400
    max_future_seconds: Annotated[
        int,
        Meta(
            ge=0,
            le=366 * 86400,
            description="Event times further than this after arrival take the arrival time "
            "(the original is kept in fields.timestamp_original).",
        ),
    ] = 600
    max_backlog_seconds: Annotated[
        float,
        Meta(
            ge=0,
            le=7 * 86400,
            description="Refuse new batches (503/429 with Retry-After) while the searchable delay is longer: the "
            "age of the oldest batch waiting for the pipeline, or the expected wait of a new one at the pipeline's "
            "recent rate; accept again below 80 %; 0: off.",
        ),
    ] = 300.0
    max_backlog_messages: Annotated[
        int,
        Meta(
            ge=0,
            le=1_000_000_000,
            description="Refuse new batches while LOGS_RAW and LOGS_PARSED together hold more messages (batches) "
            "than this; accept again below 80 %; 0: off.",
        ),
    ] = 0
    backlog_check_interval_ms: Annotated[
        int,
        Meta(ge=100, le=60_000, description="How often ingest reads the pipeline's backlog from the bus."),
    ] = 1000


class SyslogSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: Annotated[str, Meta(description="Address the syslog listeners bind to.")] = "127.0.0.1"
    tcp_port: Annotated[
        int,
        Meta(ge=0, le=65535, description="Port of the syslog TCP listener (RFC 6587 framing, auto-detected); 0: off."),
    ] = 0
    udp_port: Annotated[int, Meta(ge=0, le=65535, description="Port of the syslog UDP listener; 0: off.")] = 0
    tls_port: Annotated[
        int,
        Meta(
            ge=0,
            le=65535,
            description="Port of the syslog TCP+TLS listener (needs tls_cert_file and tls_key_file); 0: off.",
        ),
    ] = 0
    tls_cert_file: Annotated[str, Meta(description="Certificate chain (PEM) the syslog TLS listener presents.")] = ""
    tls_key_file: Annotated[str, Meta(description="Private key (PEM) of the syslog TLS listener's certificate.")] = ""
    max_frame_bytes: Annotated[
        int, Meta(ge=480, le=16 * MiB, description="Longest syslog message; longer ones are counted and dropped.")
    ] = 64 * KiB
    batch_events: Annotated[
        int, Meta(ge=1, le=100_000, description="Syslog messages gathered into one ingest batch per tenant.")
    ] = 1000
    flush_interval_ms: Annotated[
        int, Meta(ge=1, le=60_000, description="Longest a syslog message waits for its batch to fill.")
    ] = 200
    max_pending_events: Annotated[
        int,
        Meta(
            ge=1,
            le=10_000_000,
            description="Syslog messages held while the bus is slow or refuses: beyond this TCP stops reading "
            "and UDP drops (counted).",
        ),
    ] = 20_000


class PipelineSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_deliveries: Annotated[
        int, Meta(ge=1, le=100, description="Deliveries of one bus message before it is dead-lettered.")
    ] = 5
    ack_wait_seconds: Annotated[
        float, Meta(ge=1, le=3600, description="Time a consumer has to ack a message before redelivery.")
    ] = 30.0
    fetch_batch: Annotated[int, Meta(ge=1, le=10_000, description="Bus messages fetched per pull.")] = 64
    default_service: Annotated[str, Meta(min_length=1, description="Service of an event that names none.")] = "unknown"
    default_host: Annotated[str, Meta(min_length=1, description="Host of an event that names none.")] = "unknown"
    stages: Annotated[
        tuple[PipelineStage, ...],
        Meta(
            min_length=1,
            description="Pipeline stages this process runs, comma-separated: normalize (normalizer, archive, "
            "archive retention), index (indexer, retention).",
        ),
    ] = PIPELINE_STAGES
    own_process: Annotated[
        bool,
        Meta(
            description="When one `mintlog run` serves ingest or api and the pipeline, run each pipeline stage "
            "in a child process so intake, normalizing and indexing use every core (false: all in one process)."
        ),
    ] = True


class IndexerSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    flush_interval_ms: Annotated[
        int, Meta(ge=10, le=60_000, description="Longest wait before buffered events are committed.")
    ] = 250
    max_batch_events: Annotated[
        int, Meta(ge=1, le=1_000_000, description="Events buffered before a commit is forced.")
    ] = 50_000
    max_inflight_bytes: Annotated[
        int,
        Meta(
            ge=0,
            le=4 * GiB,
            description="Bus bytes of parsed batches in one indexer's writes in flight, each write at most its "
            "share (this / concurrent writes); Python memory is about 10 times this. 0: the store's default "
            "(Tantivy 16 MiB, OpenSearch 8 MiB).",
        ),
    ] = 0
    fetch_batch: Annotated[int, Meta(ge=1, le=10_000, description="Bus messages fetched per pull.")] = 256
    concurrent_writes: Annotated[
        int,
        Meta(
            ge=0,
            le=64,
            description="Store writes in flight per indexer; 0: the store's default (Tantivy 1, OpenSearch 4).",
        ),
    ] = 0


class RetentionSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: Annotated[
        bool, Meta(description="Delete day partitions past each tenant's retention_days (pipeline role).")
    ] = True
    interval_seconds: Annotated[
        float, Meta(ge=1, le=7 * 86400, description="Time between retention runs (the first runs at start).")
    ] = 3600.0
    lease_seconds: Annotated[
        float,
        Meta(
            ge=10,
            le=30 * 86400,
            description="How long a retention lease lasts; keep it above interval_seconds so one instance keeps it.",
        ),
    ] = 7200.0


class ArchiveSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: Annotated[
        bool, Meta(description="Archive every accepted raw event to the blob store as gzip NDJSON (pipeline role).")
    ] = True
    max_bytes: Annotated[
        int,
        Meta(
            ge=1024, le=1024 * 1024 * 1024, description="Uncompressed NDJSON bytes per tenant and hour before a flush."
        ),
    ] = 16 * 1024 * 1024
    max_age_seconds: Annotated[
        float,
        Meta(
            ge=0.1,
            le=3600,
            description="Longest time events wait in the archive buffer (capped at half the pipeline's ack wait).",
        ),
    ] = 10.0
    gzip_level: Annotated[
        int,
        Meta(
            ge=1,
            le=9,
            description="gzip level of archive objects: 1 is the fastest (the pipeline's CPU), 9 the smallest; "
            "1 to 3 compress with ISA-L's igzip, 4 to 9 with zlib.",
        ),
    ] = 1
    default_retention_days: Annotated[
        int, Meta(ge=0, le=36500, description="Archive retention of tenants that set none (0: keep forever).")
    ] = 0
    retention_interval_seconds: Annotated[
        float, Meta(ge=1, le=7 * 86400, description="Time between archive retention runs (the first runs at start).")
    ] = 3600.0


class SearchSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    default_size: Annotated[int, Meta(ge=1, le=10_000, description="Events per page when `size` is absent.")] = 50
    max_size: Annotated[
        int,
        Meta(
            ge=1,
            le=9_999,
            description="Largest `size` a search accepts (below OpenSearch's 10,000-hit window: a page asks one more).",
        ),
    ] = 1000
    total_cap: Annotated[
        int, Meta(ge=1, le=1_000_000, description="Matches counted exactly; above it the total is a lower bound.")
    ] = 10_000
    fields_sample_size: Annotated[
        int, Meta(ge=1, le=10_000, description="Newest matching events `GET /v1/logs/fields` looks at.")
    ] = 1000
    aggregate_default_hours: Annotated[
        int,
        Meta(ge=1, le=24 * 366, description="Hours before `to` a histogram aggregation without `from` starts."),
    ] = 24


class TailSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_per_tenant: Annotated[
        int, Meta(ge=1, le=10_000, description="Live tails one tenant may hold open on one API instance (429 beyond).")
    ] = 10
    heartbeat_seconds: Annotated[
        float, Meta(gt=0, le=300, description="Idle time after which a live tail sends a `: keepalive` comment.")
    ] = 15.0
    buffer_events: Annotated[
        int,
        Meta(
            ge=1,
            le=1_000_000,
            description="Events held for a slow tail client, beyond which they are skipped (keep it above the "
            "events of one ingest batch: a batch arrives at once).",
        ),
    ] = 10_000
    max_replay_events: Annotated[
        int, Meta(ge=1, le=1_000_000, description="Most stored events a tail replays for `since` before going live.")
    ] = 10_000
    replay_settle_seconds: Annotated[
        float,
        Meta(ge=0, le=60, description="Wait before a `since` replay, so events already on the bus are searchable."),
    ] = 1.0
    key_recheck_seconds: Annotated[
        float,
        Meta(
            ge=0.1,
            le=60,
            description="How often open tails re-check their API key (one check per key): a revoked or expired "
            "key or a suspended tenant ends its tails within about this time.",
        ),
    ] = 2.0


class AlertSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    evaluation_lag_seconds: Annotated[
        float,
        Meta(
            ge=0,
            le=300,
            description="Alert windows end this long before now, so events still being indexed are not missed.",
        ),
    ] = 1.0
    tick_seconds: Annotated[
        float, Meta(gt=0, le=5, description="How often each alert instance looks for due rules.")
    ] = 0.5
    max_concurrent_evaluations: Annotated[
        int, Meta(ge=1, le=1000, description="Rules one alert instance evaluates at once.")
    ] = 16
    evaluation_timeout_seconds: Annotated[
        float, Meta(gt=0, le=600, description="Longest one rule evaluation may take; longer counts as an error.")
    ] = 30.0
    max_rules_per_tenant: Annotated[int, Meta(ge=1, le=100_000, description="Alert rules one tenant may have.")] = 500
    max_groups: Annotated[
        int, Meta(ge=1, le=1000, description="Most `group_by` values one rule tracks (the most frequent first).")
    ] = 100
    sample_events: Annotated[
        int, Meta(ge=0, le=20, description="Ids of matching events an alert event carries as examples.")
    ] = 3


CidrText = Annotated[str, Meta(pattern=r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$")]
RetryDelay = Annotated[float, Meta(ge=0, le=7 * 86400)]


class SmtpRelaySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: Annotated[
        str,
        Meta(
            max_length=253,
            description="SMTP relay for emails to people (on-call); empty: email contact methods fail and retry.",
        ),
    ] = ""
    port: Annotated[int, Meta(ge=1, le=65535, description="Port of the SMTP relay.")] = 587
    security: Annotated[
        Literal["starttls", "tls", "none"],
        Meta(description="starttls (upgrade, required), tls (TLS from the first byte, port 465) or none."),
    ] = "starttls"
    username: Annotated[str, Meta(max_length=200, description="SMTP AUTH user of the relay; empty: no AUTH.")] = ""
    password: Annotated[str, Meta(max_length=200, description="SMTP AUTH password of the relay.")] = ""
    from_address: Annotated[str, Meta(max_length=254, description="From address of emails to people.")] = (
        "mintlog@localhost"
    )
    verify_tls: Annotated[bool, Meta(description="Verify the relay's TLS certificate (false: accept any).")] = True


class NotifySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_attempts: Annotated[
        int, Meta(ge=1, le=100, description="Attempts of one webhook delivery before it is dead (a retry restarts).")
    ] = 13
    retry_delays_seconds: Annotated[
        tuple[RetryDelay, ...],
        Meta(
            min_length=1,
            description="Wait after the 1st, 2nd, … failed attempt (the last repeats), before jitter; comma-separated.",
        ),
    ] = (5, 30, 120, 600, 1800, 3600, 7200, 18000, 36000, 50400, 72000, 86400)
    retry_jitter: Annotated[
        float, Meta(ge=0, le=1, description="Each retry wait is scaled by a random factor within 1 ± this fraction.")
    ] = 0.2
    timeout_seconds: Annotated[
        float, Meta(gt=0, le=120, description="Timeout of one webhook attempt (connect, send, answer).")
    ] = 15.0
    max_retry_after_seconds: Annotated[
        float, Meta(ge=0, le=86400, description="Longest Retry-After of a 429 that is honoured; longer ones are cut.")
    ] = 3600.0
    claim_seconds: Annotated[
        float,
        Meta(
            ge=1,
            le=3600,
            description="How long a sender owns an attempt; a crashed sender's attempt is retried after it. Keep it "
            "above timeout_seconds.",
        ),
    ] = 60.0
    poll_interval_seconds: Annotated[
        float, Meta(gt=0, le=60, description="How often each notify instance looks for due deliveries.")
    ] = 1.0
    concurrency: Annotated[
        int, Meta(ge=1, le=1000, description="Webhook attempts one notify instance makes at once.")
    ] = 16
    smtp: SmtpRelaySettings = msgspec.field(default_factory=SmtpRelaySettings)


class IncidentSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ack_wait_seconds: Annotated[
        float, Meta(ge=1, le=3600, description="Time before the incident worker gets an unacked alert event again.")
    ] = 30.0
    max_deliveries: Annotated[
        int, Meta(ge=1, le=1000, description="Deliveries of an alert event before the incident worker dead-letters it.")
    ] = 20
    retry_delay_seconds: Annotated[
        float, Meta(ge=0, le=3600, description="Wait before an alert event that failed (database down) is retried.")
    ] = 5.0
    outbox_interval_seconds: Annotated[
        float, Meta(gt=0, le=3600, description="How often the notify role re-publishes unpublished incident events.")
    ] = 5.0
    outbox_min_age_seconds: Annotated[
        float,
        Meta(ge=0, le=3600, description="Age after which the sweeper re-publishes an unpublished incident event."),
    ] = 5.0
    outbox_lease_seconds: Annotated[
        float, Meta(ge=1, le=86400, description="How long one notify instance holds the incident outbox sweep.")
    ] = 30.0


class UptimeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    location: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=100,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="Name of where this uptime instance checks from, recorded with every result; a monitor "
            "listing `locations` is checked by the instances of each of them.",
        ),
    ] = "default"
    nameservers: Annotated[
        tuple[Annotated[str, Meta(min_length=1, max_length=60, pattern=r"^[0-9A-Fa-f:.\[\]]+$")], ...],
        Meta(
            max_length=10,
            description="Nameservers (ip, ip:port or [ipv6]:port, comma-separated) of the DNS checks that name no "
            "nameserver of their own (empty: the system resolver).",
        ),
    ] = ()
    poll_seconds: Annotated[
        float, Meta(gt=0, le=5, description="How often each uptime instance looks for due checks.")
    ] = 0.5
    max_concurrent_checks: Annotated[
        int, Meta(ge=1, le=1000, description="Checks one uptime instance runs at once.")
    ] = 32
    min_interval_seconds: Annotated[
        int, Meta(ge=1, le=86400, description="Shortest check interval a monitor may have.")
    ] = 30
    max_monitors_per_tenant: Annotated[int, Meta(ge=1, le=100_000, description="Monitors one tenant may have.")] = 100
    max_maintenance_windows_per_tenant: Annotated[
        int, Meta(ge=1, le=1000, description="Maintenance windows one tenant may have.")
    ] = 100
    result_retention_days: Annotated[
        int, Meta(ge=1, le=3650, description="Days check results are kept for the results and SLA endpoints.")
    ] = 90
    outbox_interval_seconds: Annotated[
        float,
        Meta(
            gt=0,
            le=60,
            description="How often each uptime instance publishes the alert events left in its outbox (bus down, "
            "a crash, a pause or a delete over the API).",
        ),
    ] = 2.0
    log_summary_timeout_seconds: Annotated[
        float,
        Meta(
            gt=0,
            le=60,
            description="Longest the summary of a linked service's logs may take when a monitor goes down; past it "
            "the incident opens with the summary marked unavailable.",
        ),
    ] = 5.0
    ping_requests_per_minute: Annotated[
        int,
        Meta(
            ge=1,
            le=60_000,
            description="Pings one heartbeat token may send per minute (bursts of as many); more are answered 429.",
        ),
    ] = 60


class EscalationSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    link_secret: Annotated[
        str,
        Meta(
            max_length=200,
            description="Key that signs one-click acknowledge/resolve links (empty: a random one kept in the "
            "database and shared by every instance).",
        ),
    ] = ""
    public_url: Annotated[
        str,
        Meta(
            pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
            max_length=500,
            description="Base URL of the API as people reach it, for the links in notifications.",
        ),
    ] = "http://127.0.0.1:8081"
    link_ttl_hours: Annotated[
        float, Meta(gt=0, le=720, description="Hours a one-click acknowledge/resolve link works.")
    ] = 24.0
    poll_seconds: Annotated[
        float, Meta(gt=0, le=60, description="How often each notify instance looks for due escalation steps.")
    ] = 1.0
    claim_seconds: Annotated[
        float,
        Meta(ge=5, le=3600, description="How long a claimed escalation step is reserved before another may retry it."),
    ] = 60.0
    batch_size: Annotated[
        int,
        Meta(
            ge=1,
            le=1000,
            description="Due escalation steps one notify instance claims and runs together, sharing their reads "
            "and writes.",
        ),
    ] = 250
    batches_running: Annotated[
        int,
        Meta(
            ge=1,
            le=32,
            description="Batches of escalation steps one notify instance prepares at once, and writes at once.",
        ),
    ] = 2
    batches_held: Annotated[
        int,
        Meta(
            ge=1,
            le=400,
            description="Batches of escalation steps one notify instance claims and holds at once: prepared ahead "
            "of their due time, then written `batches_running` at a time (at least `batches_running`; "
            "batches_held x batch_size steps must be written within claim_seconds, or their claims expire and "
            "they run again).",
        ),
    ] = 40
    lookahead_seconds: Annotated[
        float,
        Meta(
            ge=0,
            le=30,
            description="How long before their due time a notify instance claims escalation steps to prepare them "
            "(reads, on-call lookups, messages); a step is still written and sent at its due time, never before "
            "(0: claim steps once due).",
        ),
    ] = 2.0
    max_policies_per_tenant: Annotated[
        int, Meta(ge=1, le=10_000, description="Escalation policies one tenant may have.")
    ] = 200


class ParsingSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    detect: Annotated[
        bool,
        Meta(
            description="Detect levels and timestamps in plain text messages that do not state them (docs/ingest.md)."
        ),
    ] = True
    tenant_config_ttl_seconds: Annotated[
        float,
        Meta(
            ge=0,
            le=3600,
            description="Longest a normalizer uses a tenant's time zone and extraction rules before reading them "
            "again (how stale a change may be).",
        ),
    ] = 10.0
    max_rules_per_tenant: Annotated[int, Meta(ge=0, le=1000, description="Extraction rules one tenant may have.")] = 20
    rule_timeout_ms: Annotated[
        float, Meta(gt=0, le=1000, description="Longest one extraction rule may run on one message.")
    ] = 10.0


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data_dir: Annotated[
        str, Meta(min_length=1, description="Directory of all embedded state: bus, index, database, objects.")
    ] = "./data"
    roles: Annotated[
        tuple[RoleName, ...], Meta(min_length=1, description="Roles this process runs, comma-separated.")
    ] = ALL_ROLES
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], Meta(description="Lowest level of Mintlog's own logs.")
    ] = "info"
    log_format: Annotated[
        Literal["auto", "json", "text"],
        Meta(description="Format of Mintlog's own logs on stderr: auto is text on a terminal, JSON lines otherwise."),
    ] = "auto"
    egress_allow: Annotated[
        tuple[CidrText, ...],
        Meta(description="CIDRs outbound calls (webhooks) may reach although private or loopback, comma-separated."),
    ] = ()
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    nats: NatsSettings = msgspec.field(default_factory=NatsSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    cache: CacheSettings = msgspec.field(default_factory=CacheSettings)
    blob: BlobSettings = msgspec.field(default_factory=BlobSettings)
    ratelimit: RateLimitSettings = msgspec.field(default_factory=RateLimitSettings)
    ingest: IngestSettings = msgspec.field(default_factory=IngestSettings)
    syslog: SyslogSettings = msgspec.field(default_factory=SyslogSettings)
    pipeline: PipelineSettings = msgspec.field(default_factory=PipelineSettings)
    parsing: ParsingSettings = msgspec.field(default_factory=ParsingSettings)
    indexer: IndexerSettings = msgspec.field(default_factory=IndexerSettings)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)
    archive: ArchiveSettings = msgspec.field(default_factory=ArchiveSettings)
    search: SearchSettings = msgspec.field(default_factory=SearchSettings)
    tail: TailSettings = msgspec.field(default_factory=TailSettings)
    incidents: IncidentSettings = msgspec.field(default_factory=IncidentSettings)
    alert: AlertSettings = msgspec.field(default_factory=AlertSettings)
    notify: NotifySettings = msgspec.field(default_factory=NotifySettings)
    uptime: UptimeSettings = msgspec.field(default_factory=UptimeSettings)
    escalation: EscalationSettings = msgspec.field(default_factory=EscalationSettings)

    @property
    def data_path(self) -> Path:
        """The data directory as an absolute path."""
        return Path(self.data_dir).expanduser().resolve()

    @property
    def database_url(self) -> str:
        """The effective metadata database URL (the embedded SQLite file when none is set)."""
        return self.database.url or f"sqlite+aiosqlite:///{self.data_path / 'mintlog.db'}"


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One leaf of the settings tree: where it lives, its variable, default and meaning."""

    path: tuple[str, ...]
    env: str
    default: object
    description: str
    is_list: bool
    secret: bool
    choices: tuple[str, ...] = ()


_SECRET_WORDS = ("password", "secret", "token")


def _env_name(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "__".join(part.upper() for part in path)


def _unwrap(info: msgspec.inspect.Type) -> tuple[msgspec.inspect.Type, str]:
    description = ""
    while isinstance(info, msgspec.inspect.Metadata):
        schema = cast("dict[str, object]", info.extra_json_schema or {})  # pyright: ignore[reportUnknownMemberType]
        if "description" in schema:
            description = str(schema["description"])
        info = info.type
    return info, description


def iter_setting_specs(struct: type[msgspec.Struct] = Settings, prefix: tuple[str, ...] = ()) -> Iterator[SettingSpec]:
    """Every leaf setting, depth first, in declaration order."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    defaults = struct()
    for field in info.fields:
        path = (*prefix, field.name)
        field_type, description = _unwrap(field.type)
        if isinstance(field_type, msgspec.inspect.StructType):
            yield from iter_setting_specs(field_type.cls, path)
            continue
        item_type = field_type.item_type if isinstance(field_type, msgspec.inspect.VarTupleType) else field_type
        choices = tuple(str(v) for v in item_type.values) if isinstance(item_type, msgspec.inspect.LiteralType) else ()
        yield SettingSpec(
            path=path,
            choices=choices,
            env=_env_name(path),
            default=getattr(defaults, field.name),
            description=description,
            is_list=isinstance(field_type, msgspec.inspect.TupleType | msgspec.inspect.VarTupleType),
            secret=any(word in field.name for word in _SECRET_WORDS),
        )


_ERROR_PATH = re.compile(r" - at `\$\.([A-Za-z0-9_.]+)(?:\[\d+\])?`")


def _read_env_file(env_file: Path) -> dict[str, str]:
    if not env_file.is_file():
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(env_file).items() if value is not None}


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
    overrides: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from `.env`, then the environment, then `overrides` (e.g. CLI flags), in that order.

    Raises `ConfigError` naming the variable and its value when a value is invalid or a `MINTLOG_*`
    variable is unknown.
    """
    values: dict[str, str] = {}
    if env_file is not None:
        values.update(_read_env_file(env_file))
    values.update({k: v for k, v in (os.environ if environ is None else environ).items()})
    values.update(overrides or {})

    specs = {spec.env: spec for spec in iter_setting_specs()}
    unknown = sorted(k for k in values if k.startswith(ENV_PREFIX) and k not in specs)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]}={values[unknown[0]]!r}; see .env.example for the list")

    tree: dict[str, Any] = {}
    for env, spec in specs.items():
        if env not in values:
            continue
        raw = values[env]
        value: object = [part.strip() for part in raw.split(",") if part.strip()] if spec.is_list else raw
        node = tree
        for part in spec.path[:-1]:
            node = node.setdefault(part, {})
        node[spec.path[-1]] = value

    try:
        return msgspec.convert(tree, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _ERROR_PATH.search(message)
        if match is None:
            raise ConfigError(f"invalid settings: {message}") from None
        path = tuple(match.group(1).split("."))
        env = _env_name(path)
        reason = message[: match.start()]
        spec = specs.get(env)
        if spec is not None and spec.choices:
            reason += f"; choose from {', '.join(spec.choices)}"
        raise ConfigError(f"invalid setting {env}={values.get(env, '')!r}: {reason}") from None


def _mask_url_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1****@", url)


def masked_settings(settings: Settings) -> dict[str, str]:
    """The effective settings as `{variable: value}` with secrets and URL passwords masked."""
    shown: dict[str, str] = {}
    for spec in iter_setting_specs():
        value: object = settings
        for part in spec.path:
            value = getattr(value, part)
        text = _format_value(value)
        if spec.secret and text:
            text = "****"
        elif isinstance(value, str) and "://" in value:
            text = _mask_url_password(value)
        shown[spec.env] = text
    return shown


def _format_value(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)  # pyright: ignore[reportUnknownVariableType,reportUnknownArgumentType]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def env_example() -> str:
    """The text of `.env.example`: every setting with its default and meaning."""
    lines = [
        "# Mintlog settings. Every variable is optional; the value shown is the default.",
        "# Generated by `mintlog config example` from mintlog/settings.py: do not edit by hand.",
        "",
    ]
    section: tuple[str, ...] = ()
    for spec in iter_setting_specs():
        if spec.path[:-1] != section:
            section = spec.path[:-1]
            lines.append(f"# --- {'.'.join(section)} ---")
        lines.append(f"# {spec.description}")
        lines.append(f"# {spec.env}={_format_value(spec.default)}")
    return "\n".join(lines) + "\n"

"""Rate limits as an HTTP client sees them: in-process Litestar apps with fakes, no real server.

Per-key limits on a guarded endpoint (`RateLimit-*` headers on every answer, 429 `rate_limited` with
`Retry-After`), the per-tenant ingest quota (429 `ingest_quota_exceeded`), the off switch, and a limiter
outage (never a 429 of its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import get
from litestar.testing import AsyncTestClient

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.cache.memory import MemoryCache
from mintlog.adapters.ratelimit.fallback import FallbackRateLimiter
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.auth import Authenticator
from mintlog.domain.ratelimit import RateDecision
from mintlog.errors import CacheUnavailable
from mintlog.http.app import create_app
from mintlog.http.guards import make_requires
from mintlog.http.ratelimit import KeyRateLimits
from mintlog.metrics import Metrics
from mintlog.ports.ratelimit import RateLimiter
from mintlog.roles.ingest.routes import IngestRequests, ingest_routes
from mintlog.roles.ingest.service import IngestService
from mintlog.settings import IngestSettings, RateLimitSettings
from tests.fakes import FakeIdempotencyStore, FakeKeyMetadata

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PROBLEM = "application/problem+json"
SLOW = RateLimitSettings(default_key_requests_per_minute=60, burst_seconds=5, tenant_ingest_events_per_second=10)


class FakeMetadata(FakeKeyMetadata):
    def add_key(
        self, *, tenant_id: str = "acme", rate_limit: int | None = None, scopes: tuple[str, ...] = ("search:logs",)
    ) -> str:
        return self.add(tenant_id, rate_limit=rate_limit, scopes=scopes)[0]


class DownLimiter:
    """A limiter whose store is unreachable."""

    async def acquire(self, key: str, *, rate_per_second: float, burst: float, cost: float = 1) -> RateDecision:
        raise CacheUnavailable("redis down")

    async def close(self) -> None:
        return None


@dataclass
class Api:
    client: AsyncTestClient[Any]
    metadata: FakeMetadata
    metrics: Metrics
    bus: MemoryEventBus


@pytest.fixture
def settings() -> RateLimitSettings:
    return SLOW


@pytest.fixture
def limiter() -> RateLimiter:
    return MemoryRateLimiter()


@pytest.fixture
async def api(settings: RateLimitSettings, limiter: RateLimiter) -> AsyncIterator[Api]:
    """One app with `GET /v1/thing` (scope search:logs) and the real ingest routes (scope ingest:logs)."""
    metadata, metrics, bus = FakeMetadata(), Metrics(), MemoryEventBus()
    await bus.start()
    authenticator = Authenticator(metadata, MemoryCache(), ttl_seconds=300)  # type: ignore[arg-type]
    requires = make_requires(authenticator, rate_limits=KeyRateLimits(limiter, settings, metrics))

    @get("/v1/thing", guards=[requires("search:logs")], sync_to_thread=False)
    def thing() -> dict[str, str]:
        return {"ok": "yes"}

    service = IngestService(
        bus=bus,
        idempotency=FakeIdempotencyStore(),
        limits=IngestSettings(),
        limiter=limiter,
        rate_limits=settings,
        metrics=metrics,
    )
    routes = ingest_routes(IngestRequests(service, max_body_bytes=1024 * 1024, metrics=metrics), requires=requires)
    app = create_app(server="test", route_handlers=[thing, *routes], metrics=metrics, readiness_checks={})
    async with AsyncTestClient(app=app) as client:
        yield Api(client, metadata, metrics, bus)
    await bus.close()


def events(count: int) -> dict[str, Any]:
    return {"events": [{"message": f"event {i}"} for i in range(count)]}


async def test_a_burst_passes_with_headers_then_429_with_retry_after(api: Api) -> None:
    key = api.metadata.add_key()
    for remaining in (4, 3, 2, 1, 0):
        response = await api.client.get("/v1/thing", headers={"X-API-Key": key})
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "5"
        assert response.headers["ratelimit-remaining"] == str(remaining)
        assert 1 <= int(response.headers["ratelimit-reset"]) <= 5
        assert "retry-after" not in response.headers

    refused = await api.client.get("/v1/thing", headers={"X-API-Key": key})
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.headers["retry-after"] == "1"  # one request a second
    assert refused.headers["ratelimit-limit"] == "5"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-reset"] == "5"
    problem = refused.json()
    assert problem["code"] == "rate_limited"
    assert problem["status"] == 429
    assert problem["retry_after_seconds"] == 1
    assert "60 requests per minute" in problem["detail"]
    assert problem["request_id"] == refused.headers["x-request-id"]
    assert api.metrics.registry.get_sample_value("mintlog_ratelimit_rejected_total", {"limit": "key"}) == 1


async def test_each_key_has_its_own_limit(api: Api) -> None:
    generous = api.metadata.add_key(rate_limit=600)  # 10/s, bursts of 50
    stingy = api.metadata.add_key()
    for _ in range(5):
        await api.client.get("/v1/thing", headers={"X-API-Key": stingy})
    assert (await api.client.get("/v1/thing", headers={"X-API-Key": stingy})).status_code == 429
    response = await api.client.get("/v1/thing", headers={"X-API-Key": generous})
    assert response.status_code == 200
    assert response.headers["ratelimit-limit"] == "50"
    assert response.headers["ratelimit-remaining"] == "49"


async def test_a_limit_below_one_request_per_burst_still_allows_one(api: Api) -> None:
    key = api.metadata.add_key(rate_limit=1)  # 1/minute over a 5 s burst is 1/12 of a request
    assert (await api.client.get("/v1/thing", headers={"X-API-Key": key})).status_code == 200
    refused = await api.client.get("/v1/thing", headers={"X-API-Key": key})
    assert refused.status_code == 429
    assert 59 <= int(refused.headers["retry-after"]) <= 60


async def test_unauthenticated_answers_carry_no_rate_limit_headers(api: Api) -> None:
    response = await api.client.get("/v1/thing", headers={"X-API-Key": "mlk_nope"})
    assert response.status_code == 401
    assert "ratelimit-limit" not in response.headers


async def test_requests_refused_for_a_missing_scope_still_count(api: Api) -> None:
    key = api.metadata.add_key(scopes=("ingest:logs",))
    for _ in range(5):
        response = await api.client.get("/v1/thing", headers={"X-API-Key": key})
        assert response.status_code == 403
        assert "ratelimit-remaining" in response.headers
    assert (await api.client.get("/v1/thing", headers={"X-API-Key": key})).status_code == 429


@pytest.mark.parametrize("settings", [RateLimitSettings(enabled=False, default_key_requests_per_minute=1)])
async def test_disabled_rate_limits_neither_limit_nor_add_headers(api: Api) -> None:
    key = api.metadata.add_key(scopes=("search:logs", "ingest:logs"))
    for _ in range(20):
        response = await api.client.get("/v1/thing", headers={"X-API-Key": key})
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers
    ingest = await api.client.post("/v1/ingest/logs", json=events(1000), headers={"X-API-Key": key})
    assert ingest.status_code == 202


@pytest.mark.parametrize("limiter", [FallbackRateLimiter(DownLimiter(), MemoryRateLimiter())])
async def test_a_limiter_outage_falls_back_to_local_limits(api: Api) -> None:
    key = api.metadata.add_key()
    statuses = [(await api.client.get("/v1/thing", headers={"X-API-Key": key})).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


@pytest.mark.parametrize("limiter", [DownLimiter()])
async def test_an_unwrapped_limiter_outage_is_a_503_never_a_429(api: Api) -> None:
    key = api.metadata.add_key()
    response = await api.client.get("/v1/thing", headers={"X-API-Key": key})
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


async def test_the_tenant_ingest_quota_is_counted_in_events(api: Api) -> None:
    """10 events/s with bursts of 50: 30 + 20 events pass, one more event is refused, nothing published."""
    key = api.metadata.add_key(rate_limit=6000, scopes=("ingest:logs",))
    headers = {"X-API-Key": key}
    assert (await api.client.post("/v1/ingest/logs", json=events(30), headers=headers)).status_code == 202
    assert (await api.client.post("/v1/ingest/logs", json=events(20), headers=headers)).status_code == 202

    refused = await api.client.post("/v1/ingest/logs", json=events(1), headers=headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.headers["retry-after"] == "1"
    problem = refused.json()
    assert problem["code"] == "ingest_quota_exceeded"
    assert "10 events per second" in problem["detail"]
    assert refused.headers["ratelimit-limit"] == "500"  # the headers describe the key's request limit

    rejected = api.metrics.registry.get_sample_value(
        "mintlog_ingest_requests_rejected_total", {"reason": "ingest_quota_exceeded"}
    )
    assert rejected == 1
    consumer = await api.bus.consumer("LOGS_RAW", "test", filter_subject="logs.raw.>", ack_wait_seconds=30)
    published = await consumer.fetch(100, 0.1)
    assert len(published) == 2


async def test_a_batch_larger_than_the_quota_burst_is_told_to_shrink(api: Api) -> None:
    key = api.metadata.add_key(scopes=("ingest:logs",))
    refused = await api.client.post("/v1/ingest/logs", json=events(51), headers={"X-API-Key": key})
    assert refused.status_code == 429
    assert "send smaller batches" in refused.json()["detail"]


async def test_the_quota_is_per_tenant(api: Api) -> None:
    first = api.metadata.add_key(tenant_id="first", scopes=("ingest:logs",))
    second = api.metadata.add_key(tenant_id="second", scopes=("ingest:logs",))
    assert (await api.client.post("/v1/ingest/logs", json=events(50), headers={"X-API-Key": first})).status_code == 202
    assert (await api.client.post("/v1/ingest/logs", json=events(1), headers={"X-API-Key": first})).status_code == 429
    assert (await api.client.post("/v1/ingest/logs", json=events(50), headers={"X-API-Key": second})).status_code == 202

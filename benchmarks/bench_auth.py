"""Auth and rate-limit overhead on the ingest endpoint, and how fast a revoked key is refused.

    python benchmarks/bench_auth.py                                   # in-process cache and limiter
    python benchmarks/bench_auth.py --redis-url redis://127.0.0.1:56379/0   # plus the same on Redis

For each backend (in-process; Redis with `--redis-url`) it spawns an all-in-one Mintlog (as
`benchmarks/load.py --spawn` does) twice per round, once with rate limits on and once with
`MINTLOG_RATELIMIT__ENABLED=false`, and sends single-event ingest requests from `--concurrency` connections
for `--duration` seconds after a warm-up that puts the key in the cache. Rounds alternate the order to
spread the drift of a shared machine; the median of the rounds is reported. Limits are set far above the
offered load, so every request pays the limiter but none is refused.

There is no setting that turns authentication off, so "limits off" still authenticates (from the warm
cache): the difference measures the rate limiter. `in_process_costs` measures what a warm-cache
authentication and a limiter decision cost per call, sequentially, in this process, and
`estimated_from_costs_percent` turns them into a share of the server's (single, busy) thread at the measured
rate: the way to see an overhead smaller than this machine's run-to-run noise. A per-request fsync of the
embedded bus dominates and varies a lot; `--env MINTLOG_NATS__SYNC_INTERVAL=2m` makes the runs steadier.

Then, per backend, the time from revoking a fresh key to its first 401: a client sends requests with the key
back to back while the key is revoked through the admin API (`DELETE /v1/admin/tenants/{t}/keys/{id}`, which
deletes the cache entry), or, where that API does not exist yet, in the database plus a Redis `DEL` of the
cache entry (impossible for the in-process cache of another process: reported as null).

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from load import percentile, spawn

from mintlog.domain.keys import generate_api_key, hash_api_key, new_key_id
from mintlog.domain.tenants import ApiKey, Tenant

BODY = json.dumps({"events": [{"message": "GET /api/orders 200 12.5ms", "service": "bench", "level": "info"}]})
HIGH_LIMITS = {
    "MINTLOG_RATELIMIT__DEFAULT_KEY_REQUESTS_PER_MINUTE": "10000000",
    "MINTLOG_RATELIMIT__TENANT_INGEST_EVENTS_PER_SECOND": "100000000",
}


@dataclass
class Load:
    ok: int = 0
    other: dict[int, int] = field(default_factory=lambda: {})
    latencies: list[float] = field(default_factory=lambda: [])


async def hammer(session: aiohttp.ClientSession, url: str, key: str, stop_at: float, load: Load) -> None:
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        async with session.post(url, data=BODY, headers=headers) as response:
            await response.read()
            if response.status == 202:
                load.ok += 1
                load.latencies.append(time.perf_counter() - started)
            else:
                load.other[response.status] = load.other.get(response.status, 0) + 1


async def measure_throughput(ingest: str, key: str, *, duration: float, warmup: float, concurrency: int) -> Load:
    url = f"{ingest}/v1/ingest/logs"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        warm = Load()
        stop_at = time.monotonic() + warmup
        await asyncio.gather(*(hammer(session, url, key, stop_at, warm) for _ in range(concurrency)))
        load = Load()
        stop_at = time.monotonic() + duration
        await asyncio.gather(*(hammer(session, url, key, stop_at, load) for _ in range(concurrency)))
        return load


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_one(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    temp_dir = Path(tempfile.mkdtemp(prefix="mintlog-bench-auth-"))
    process, ingest, _api, key = spawn(temp_dir / "data", env)
    try:
        load = asyncio.run(
            measure_throughput(ingest, key, duration=args.duration, warmup=args.warmup, concurrency=args.concurrency)
        )
    finally:
        stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)
    return {
        "requests_per_s": round(load.ok / args.duration, 1),
        "p50_ms": round(percentile(load.latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(load.latencies, 0.99) * 1000, 2),
        "non_202": load.other,
    }


# --- revocation --------------------------------------------------------------------------------------------


async def create_key(api: str, admin_key: str, database_url: str) -> tuple[str, str, str]:
    """A fresh ingest key: (secret, key id, how it was made)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{api}/v1/admin/tenants/bench/keys",
            json={"name": "revoke-me", "scopes": ["ingest:logs"]},
            headers={"X-API-Key": admin_key},
        ) as response,
    ):
        if response.status == 201:
            body = await response.json()
            return body["key"], body["id"], "admin_api"
    from mintlog.adapters.db.sql import SqlMetadataStore

    generated = generate_api_key()
    store = SqlMetadataStore(database_url, migrate_on_start=False)
    await store.start()
    try:
        key = ApiKey(
            id=new_key_id(),
            tenant_id="bench",
            name="revoke-me",
            key_hash=generated.key_hash,
            prefix=generated.prefix,
            scopes=("ingest:logs",),
            created_at=datetime.now(UTC),
        )
        await store.create_api_key(key)
    finally:
        await store.close()
    return generated.secret, key.id, "database"


async def revoke(
    api: str, admin_key: str, how: str, key_id: str, secret: str, database_url: str, redis_url: str
) -> None:
    if how == "admin_api":
        async with (
            aiohttp.ClientSession() as session,
            session.delete(f"{api}/v1/admin/tenants/bench/keys/{key_id}", headers={"X-API-Key": admin_key}) as response,
        ):
            assert response.status == 200, await response.text()
        return
    from redis.asyncio import Redis
    from sqlalchemy import update

    from mintlog.adapters.db.models import ApiKeyRow
    from mintlog.adapters.db.sql import SqlMetadataStore

    store = SqlMetadataStore(database_url, migrate_on_start=False)
    await store.start()
    try:
        async with store.engine.begin() as connection:
            await connection.execute(
                update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(revoked_at=datetime.now(UTC))
            )
    finally:
        await store.close()
    client = Redis.from_url(redis_url)
    try:
        await client.delete(f"mintlog:cache:apikey:{hash_api_key(secret)}")
    finally:
        await client.aclose()


async def time_to_401(ingest: str, api: str, admin_key: str, database_url: str, redis_url: str) -> dict[str, Any]:
    secret, key_id, how = await create_key(api, admin_key, database_url)
    if how == "database" and not redis_url:
        return {"revoked_through": None, "ms_to_first_401": None, "note": "in-process cache: needs the admin API"}
    url = f"{ingest}/v1/ingest/logs"
    headers = {"X-API-Key": secret, "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for _ in range(3):  # warm: the key is cached now
            async with session.post(url, data=BODY, headers=headers) as response:
                assert response.status == 202, await response.text()
        revoke_finished = float("inf")
        accepted_after_revoke = 0

        async def poll() -> float:
            nonlocal accepted_after_revoke
            while True:
                sent = time.perf_counter()
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    if response.status == 401:
                        return time.perf_counter()
                    if sent > revoke_finished:
                        accepted_after_revoke += 1

        poller = asyncio.create_task(poll())
        await asyncio.sleep(0.2)
        revoke_started = time.perf_counter()
        await revoke(api, admin_key, how, key_id, secret, database_url, redis_url)
        revoke_finished = time.perf_counter()
        first_401 = await asyncio.wait_for(poller, timeout=30)
    return {
        "revoked_through": how,
        "ms_to_first_401": round((first_401 - revoke_started) * 1000, 1),
        "revoke_call_ms": round((revoke_finished - revoke_started) * 1000, 1),
        "requests_sent_after_revoke_returned_and_accepted": accepted_after_revoke,
    }


def run_revocation(env: dict[str, str], redis_url: str) -> dict[str, Any]:
    temp_dir = Path(tempfile.mkdtemp(prefix="mintlog-bench-revoke-"))
    data_dir = temp_dir / "data"
    process, ingest, api, admin_key = spawn(data_dir, env)
    try:
        database_url = f"sqlite+aiosqlite:///{data_dir / 'mintlog.db'}"
        return asyncio.run(time_to_401(ingest, api, admin_key, database_url, redis_url))
    finally:
        stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)


# --- in-process costs --------------------------------------------------------------------------------------


class OneKeyMetadata:
    def __init__(self, key: ApiKey) -> None:
        self._found = (key, Tenant(id=key.tenant_id, name="bench", created_at=key.created_at))

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
        return self._found if key_hash == self._found[0].key_hash else None


async def in_process_costs(redis_url: str, calls: int) -> dict[str, float]:
    """µs per call, sequential: a warm-cache `authenticate`, and one limiter decision."""
    from mintlog.adapters.cache.memory import MemoryCache
    from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
    from mintlog.auth import Authenticator
    from mintlog.ports.cache import Cache
    from mintlog.ports.ratelimit import RateLimiter

    generated = generate_api_key()
    key = ApiKey(
        id="key_bench",
        tenant_id="bench",
        name="bench",
        key_hash=generated.key_hash,
        prefix=generated.prefix,
        scopes=("ingest:logs",),
        created_at=datetime.now(UTC),
    )
    caches: dict[str, Cache] = {"in_process": MemoryCache()}
    limiters: dict[str, RateLimiter] = {"in_process": MemoryRateLimiter()}
    if redis_url:
        # Exactly what a process on Redis builds: the near cache and the leased limiter included.
        from mintlog.launch.bootstrap import build_cache, build_rate_limiter
        from mintlog.settings import load_settings

        settings = load_settings({"MINTLOG_CACHE__URL": redis_url}, env_file=None)
        caches["redis"] = build_cache(settings)
        limiters["redis"] = build_rate_limiter(settings)
    costs: dict[str, float] = {}
    for name, cache in caches.items():
        authenticator = Authenticator(OneKeyMetadata(key), cache, ttl_seconds=300)  # type: ignore[arg-type]
        await authenticator.authenticate(generated.secret)
        await asyncio.sleep(0.5)  # a near cache serves once its invalidation subscription is live
        await authenticator.authenticate(generated.secret)
        started = time.perf_counter()
        for _ in range(calls):
            await authenticator.authenticate(generated.secret)
        costs[f"authenticate_warm_{name}_us"] = round((time.perf_counter() - started) / calls * 1e6, 1)
        await cache.delete(f"apikey:{generated.key_hash}")
        await cache.close()
    for name, limiter in limiters.items():
        started = time.perf_counter()
        for _ in range(calls):
            await limiter.acquire("key:bench-auth", rate_per_second=1e6, burst=1e7)
        costs[f"ratelimit_acquire_{name}_us"] = round((time.perf_counter() - started) / calls * 1e6, 1)
        await limiter.close()
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default="", help="also measure with MINTLOG_CACHE__URL set to this Redis")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--env", action="append", default=[], help="extra MINTLOG_X=Y for every spawn")
    args = parser.parse_args()

    extra = dict(item.split("=", 1) for item in args.env)
    backends = {"in_process": {}} | ({"redis": {"MINTLOG_CACHE__URL": args.redis_url}} if args.redis_url else {})
    results: dict[str, Any] = {
        "command": "python benchmarks/bench_auth.py"
        + (f" --redis-url {args.redis_url}" if args.redis_url else "")
        + f" --duration {args.duration:g} --warmup {args.warmup:g} --concurrency {args.concurrency}"
        + f" --rounds {args.rounds}"
        + "".join(f" --env {item}" for item in args.env),
        "request": "one event per request",
        "backends": {},
    }
    for backend, backend_env in backends.items():
        runs: dict[str, list[dict[str, Any]]] = {"limits_on": [], "limits_off": []}
        for round_number in range(args.rounds):
            order = ["limits_on", "limits_off"] if round_number % 2 == 0 else ["limits_off", "limits_on"]
            for mode in order:
                enabled = "true" if mode == "limits_on" else "false"
                env = {**HIGH_LIMITS, **backend_env, **extra, "MINTLOG_RATELIMIT__ENABLED": enabled}
                runs[mode].append(run_one(env, args))
        on = statistics.median(run["requests_per_s"] for run in runs["limits_on"])
        off = statistics.median(run["requests_per_s"] for run in runs["limits_off"])
        results["backends"][backend] = {
            "limits_on_requests_per_s": on,
            "limits_off_requests_per_s": off,
            "overhead_percent": round((off - on) / off * 100, 1),
            "runs": runs,
            "revocation": run_revocation(
                {**HIGH_LIMITS, **backend_env, **extra}, args.redis_url if backend == "redis" else ""
            ),
        }
    costs = asyncio.run(in_process_costs(args.redis_url, 20_000))
    results["in_process_costs"] = costs
    # The server is CPU-bound on one thread, so a cost of c µs per request at r requests/s takes c·r/10⁶ of
    # it. An ingest request authenticates once and takes two limiter decisions (the key, the tenant quota).
    for backend, measured in results["backends"].items():
        rate = measured["limits_off_requests_per_s"]
        measured["estimated_from_costs_percent"] = {
            "authenticate_warm": round(costs[f"authenticate_warm_{backend}_us"] * rate / 1e4, 1),
            "rate_limits": round(2 * costs[f"ratelimit_acquire_{backend}_us"] * rate / 1e4, 1),
        }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`MINTLOG_CACHE__URL` picks the cache and the rate limiter; a bad value fails at start, naming it."""

from __future__ import annotations

import pytest

from mintlog.adapters.cache.memory import MemoryCache
from mintlog.adapters.cache.resilient import ResilientCache
from mintlog.adapters.ratelimit.fallback import FallbackRateLimiter
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.errors import ConfigError
from mintlog.launch.bootstrap import build_cache, build_rate_limiter
from mintlog.settings import load_settings


async def test_no_url_keeps_both_in_process() -> None:
    settings = load_settings({}, env_file=None)
    assert isinstance(build_cache(settings), MemoryCache)
    assert isinstance(build_rate_limiter(settings), MemoryRateLimiter)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://:secret@redis.example:6380/2"])
async def test_a_redis_url_gives_redis_with_fallbacks(url: str) -> None:
    settings = load_settings({"MINTLOG_CACHE__URL": url}, env_file=None)
    cache, limiter = build_cache(settings), build_rate_limiter(settings)
    try:
        assert isinstance(cache, ResilientCache)
        assert isinstance(limiter, FallbackRateLimiter)
    finally:
        await cache.close()
        await limiter.close()


@pytest.mark.parametrize("url", ["memcached://host:11211", "http://:hunter2@host", "redis://host:port/0", "redis://"])
def test_a_bad_url_fails_at_start_naming_the_setting(url: str) -> None:
    settings = load_settings({"MINTLOG_CACHE__URL": url}, env_file=None)
    with pytest.raises(ConfigError, match="MINTLOG_CACHE__URL") as failure:
        build_cache(settings)
    assert "hunter2" not in str(failure.value)
    with pytest.raises(ConfigError, match="MINTLOG_CACHE__URL"):
        build_rate_limiter(settings)

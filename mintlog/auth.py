"""API key authentication: key → SHA-256 → cache → database → `Principal`.

Guarantees:
- every failure (missing, malformed, unknown, revoked, expired key, suspended tenant) raises the same
  `Unauthorized`, so a caller cannot tell which keys exist;
- a database outage never turns a valid key into a 401: a cached key keeps working, an uncached one gets
  `DatabaseUnavailable` (503);
- the secret is never logged or stored; only its hash and display prefix are;
- `invalidate_key` / `invalidate_tenant` drop cached verdicts at once, so a revocation, an expiry change or a
  suspension is seen by the next request on every process sharing the cache (Redis), without waiting for the
  TTL. With the in-process cache only this process is told; other processes see it within the TTL;
- `recheck` answers, for a key already in use (an open live tail), whether it still authenticates and if not
  why, from the same cache: the same invalidations reach it.

A request presents its key in one of the headers `presented_key` reads (`X-API-Key`, or `Authorization` with
`Bearer`, `ApiKey` or `Basic`), for clients that cannot set a header of their own (docs/api.md,
"Authentication").
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Literal

import msgspec

from mintlog.domain.keys import hash_api_key, is_well_formed_key
from mintlog.domain.tenants import ApiKey, IngestTimePolicy, Principal, Tenant
from mintlog.errors import DependencyUnavailable, Unauthorized
from mintlog.ports.cache import Cache
from mintlog.ports.metadata import MetadataStore

__all__ = ["UNAUTHORIZED_DETAIL", "Authenticator", "KeyRefusal", "presented_key"]

logger = logging.getLogger(__name__)

UNAUTHORIZED_DETAIL = "missing or invalid API key (send it in the X-API-Key header)"
_NEGATIVE = b"-"
_NEGATIVE_TTL_SECONDS = 30.0
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Principal)


KeyRefusal = Literal["key_revoked", "key_expired", "tenant_suspended", "tenant_deleted", "key_invalid"]
"""Why a key stopped authenticating; `key_invalid` when the reason cannot be told (the key is gone, or the
database cannot be read while the cache already refuses the key)."""


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key a request presents, None when it presents none in a form Mintlog reads.

    In order: the `X-API-Key` header; else `Authorization` (scheme names in any case) as
    - `Bearer <key>`;
    - `ApiKey <key>`, or `ApiKey base64(<id>:<key>)` as Elasticsearch clients send an `(id, api_key)` pair: the
      id is ignored and the key is what follows the last `:` (keys hold no `:`); credentials that are not
      such a pair are taken as the key;
    - `Basic base64(<user>:<key>)`: HTTP Basic with the key as password and any user name.
    Never raises: a malformed header (bad base64, not UTF-8, no `:`, an unknown scheme) presents no key, which
    `Authenticator.authenticate` answers with the same 401 as a wrong key. The key itself is not checked here.
    """
    key = headers.get("x-api-key")
    if key is not None:
        return key
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    credentials = credentials.strip()
    match scheme.lower():
        case "bearer":
            return credentials or None
        case "apikey":
            # A key (`mlk_…`) is never valid base64 (`_`), so a pair is told from a key by decoding it.
            return _secret_of_pair(credentials, last=True) or credentials or None
        case "basic":
            return _secret_of_pair(credentials, last=False)
        case _:
            return None


def _secret_of_pair(credentials: str, *, last: bool) -> str | None:
    """What follows the first (`last`: the last) `:` of `credentials` decoded from base64 (padding optional) as
    UTF-8; None when it is not that or the secret is empty."""
    try:
        pair = base64.b64decode(credentials + "=" * (-len(credentials) % 4), validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    if ":" not in pair:
        return None
    secret = pair.rpartition(":")[2] if last else pair.partition(":")[2]
    return secret or None


def _refusal(key: ApiKey, tenant: Tenant, now: datetime) -> KeyRefusal | None:
    if tenant.deleted_at is not None:
        return "tenant_deleted"
    if tenant.suspended:
        return "tenant_suspended"
    if key.revoked_at is not None:
        return "key_revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "key_expired"
    return None


def _cache_key(key_hash: str) -> str:
    return f"apikey:{key_hash}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Authenticator:
    """Resolves API keys to principals, caching both hits and misses by key hash."""

    def __init__(
        self,
        metadata: MetadataStore,
        cache: Cache,
        *,
        ttl_seconds: float,
        clock: Callable[[], datetime] = _utcnow,
        reinvalidate_after_seconds: float = 1.0,
    ) -> None:
        self._metadata = metadata
        self._cache = cache
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._reinvalidate_after_seconds = reinvalidate_after_seconds
        self._last_used: dict[str, datetime] = {}
        self._reinvalidations: dict[asyncio.Task[None], str] = {}

    async def authenticate(self, secret: str | None) -> Principal:
        """The principal of a valid key; raises `Unauthorized` or `DatabaseUnavailable`."""
        if not secret or not is_well_formed_key(secret):
            raise Unauthorized(UNAUTHORIZED_DETAIL)
        key_hash = hash_api_key(secret)
        cache_key = _cache_key(key_hash)
        now = self._clock()
        cached = await self._cache.get(cache_key)
        if cached == _NEGATIVE:
            raise Unauthorized(UNAUTHORIZED_DETAIL)
        if cached is not None:
            principal = _decoder.decode(cached)
            if principal.expires_at is not None and principal.expires_at <= now:
                await self._cache.delete(cache_key)
                raise Unauthorized(UNAUTHORIZED_DETAIL)
            self._last_used[principal.key_id] = now
            return principal

        verdict = await self._load(key_hash, now)
        if not isinstance(verdict, Principal):
            raise Unauthorized(UNAUTHORIZED_DETAIL)
        self._last_used[verdict.key_id] = now
        return verdict

    async def recheck(self, key_hash: str) -> KeyRefusal | None:
        """None while the key with this SHA-256 still authenticates, else why it no longer does.

        For a key already in use (an open live tail): it reads the cache as `authenticate` does, so a
        revocation, expiry change or suspension is seen as soon as its invalidation is; the database is read
        only when the cache holds no valid verdict. It does not count as a use of the key (`last_used_at`).
        Raises `DatabaseUnavailable` when the database must be read and cannot be, unless the cache already
        refuses the key (`key_invalid` then).
        """
        now = self._clock()
        cached = await self._cache.get(_cache_key(key_hash))
        if cached is not None and cached != _NEGATIVE:
            principal = _decoder.decode(cached)
            if principal.expires_at is None or principal.expires_at > now:
                return None
            return "key_expired"
        try:
            verdict = await self._load(key_hash, now)
        except DependencyUnavailable:
            if cached == _NEGATIVE:
                return "key_invalid"
            raise
        return None if isinstance(verdict, Principal) else verdict

    async def _load(self, key_hash: str, now: datetime) -> Principal | KeyRefusal:
        """The key's verdict from the database, cached (a refusal for `_NEGATIVE_TTL_SECONDS`)."""
        cache_key = _cache_key(key_hash)
        found = await self._metadata.find_api_key(key_hash)
        if found is None:
            await self._cache.set(cache_key, _NEGATIVE, _NEGATIVE_TTL_SECONDS)
            return "key_invalid"
        key, tenant = found
        refusal = _refusal(key, tenant, now)
        if refusal is not None:
            await self._cache.set(cache_key, _NEGATIVE, _NEGATIVE_TTL_SECONDS)
            return refusal
        principal = Principal(
            tenant_id=key.tenant_id,
            key_id=key.id,
            key_prefix=key.prefix,
            scopes=frozenset(key.scopes),
            expires_at=key.expires_at,
            rate_limit=key.rate_limit,
            time_policy=IngestTimePolicy.of(tenant),
        )
        ttl = self._ttl_seconds
        if key.expires_at is not None:
            ttl = min(ttl, (key.expires_at - now).total_seconds())
        if ttl > 0:
            await self._cache.set(cache_key, _encoder.encode(principal), ttl)
        return principal

    async def invalidate_key(self, key_hash: str) -> None:
        """Forget the cached verdict (valid or not) on the key with this SHA-256: its next request is checked
        against the database. Call it after the change is committed. A cache outage is logged, not raised: the
        write it follows has already happened, and without a cache every request reads the database anyway.

        The entry is deleted a second time `reinvalidate_after_seconds` later: a request that read the key
        from the database just before the change committed could otherwise put the old verdict back into
        the cache right after the first delete, for a whole TTL."""
        await self._delete_cached(key_hash)
        task = asyncio.create_task(self._delete_cached_later(key_hash))
        self._reinvalidations[task] = key_hash
        task.add_done_callback(self._reinvalidations.pop)

    async def _delete_cached(self, key_hash: str) -> None:
        try:
            await self._cache.delete(_cache_key(key_hash))
        except DependencyUnavailable as exc:
            logger.warning("could not invalidate a cached API key: %s", exc)

    async def _delete_cached_later(self, key_hash: str) -> None:
        await asyncio.sleep(self._reinvalidate_after_seconds)
        await self._delete_cached(key_hash)

    async def close(self) -> None:
        """Run the pending second deletes now (at shutdown), so none is lost."""
        pending = dict(self._reinvalidations)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for key_hash in pending.values():
            await self._delete_cached(key_hash)

    async def invalidate_tenant(self, tenant_id: str) -> int:
        """Forget the cached verdicts on every key of the tenant (after a suspension, a deletion or a
        reinstatement); returns how many keys were invalidated. Raises `DatabaseUnavailable` if the keys
        cannot be listed."""
        keys = await self._metadata.list_api_keys(tenant_id)
        for key in keys:
            await self.invalidate_key(key.key_hash)
        return len(keys)

    async def flush_last_used(self) -> int:
        """Write the keys' `last_used_at` gathered since the last flush, in one database write."""
        if not self._last_used:
            return 0
        pending, self._last_used = self._last_used, {}
        try:
            await self._metadata.touch_api_keys(pending)
        except Exception:
            for key_id, used_at in pending.items():
                self._last_used.setdefault(key_id, used_at)
            raise
        return len(pending)

"""The raw-event archive of the caller's tenant: `GET /v1/archive` and `GET /v1/archive/verify` (scope
`archive:read`).

Both take `from` and `to` (RFC 3339 or `now-7d`; default the last 24 hours) and cover the objects whose
receive hour starts in [hour of `from`, `to`), in key order (hour, then first event id), cursor-paginated.
`verify` re-reads each object of its page from the blob store, re-hashes it and re-counts its lines, and
reports every object that is missing, whose SHA-256 differs from the manifest's, or whose line count does;
it reads at most `limit` objects per call (default 20, at most 100), so a long range is verified page by
page, the totals being those of the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import zlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get
from litestar.params import QueryParameter

from mintlog.domain.archive_keys import count_lines
from mintlog.errors import BadRequest
from mintlog.http.guards import principal_of, requires
from mintlog.ports.archive import ArchiveManifest, ArchiveObject
from mintlog.ports.blobstore import BlobNotFound, BlobStore
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import (
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
    parse_limit,
    refuse_undeclared_parameters,
)
from mintlog.roles.api.common.resource import operation
from mintlog.roles.api.common.wire import FromParameter, ToParameter
from mintlog.roles.api.logs.search import time_range

__all__ = ["Archive", "ArchiveObjectView", "ArchiveVerification", "VerifyProblem", "verify_object"]

_DEFAULT_RANGE = timedelta(hours=24)
VERIFY_DEFAULT_LIMIT = 20
VERIFY_MAX_LIMIT = 100
_VERIFY_CONCURRENCY = 4
_DIGITS = re.compile(r"[0-9]{1,6}")


class ArchiveObjectView(msgspec.Struct, frozen=True, kw_only=True):
    """One archive object: `hour` is the start of the UTC receive hour it holds; `sha256` the digest of its
    stored (gzip) bytes; `first_event_at`/`last_event_at` the range of its events' timestamps."""

    key: str
    hour: datetime
    event_count: int
    bytes: int
    sha256: str
    first_event_at: datetime
    last_event_at: datetime
    created_at: datetime


Problem = Literal["missing", "digest_mismatch", "count_mismatch"]


class VerifyProblem(msgspec.Struct, frozen=True, kw_only=True):
    """An object that does not match its manifest row. `actual_*` are null when they cannot be known (a missing
    object, or bytes that are not gzip)."""

    key: str
    problem: Problem
    expected_sha256: str
    actual_sha256: str | None
    expected_event_count: int
    actual_event_count: int | None
    expected_bytes: int
    actual_bytes: int | None


class ArchiveVerification(msgspec.Struct, frozen=True, kw_only=True):
    """The result of verifying one page of objects; the counts are those of this page."""

    checked: int
    ok: int
    missing: int
    digest_mismatch: int
    count_mismatch: int
    events_expected: int
    events_found: int
    problems: list[VerifyProblem]
    next_cursor: str | None


async def _page(
    manifest: ArchiveManifest,
    tenant_id: str,
    start: str | None,
    end: str | None,
    cursor: str | None,
    size: int,
    now: datetime,
) -> tuple[list[ArchiveObject], str | None]:
    lower, upper = _range(start, end, now)
    entries = await manifest.list_objects(
        tenant_id, start=lower, end=upper, after=decode_cursor(cursor), limit=size + 1
    )
    shown = list(entries[:size])
    return shown, encode_cursor(shown[-1].key) if len(entries) > size else None


def _range(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """`from`/`to` as search reads them (`time_range`), defaulting to the `_DEFAULT_RANGE` up to now."""
    lower, upper = time_range(start, end, now)
    upper = upper or now
    lower = lower or upper - _DEFAULT_RANGE
    if lower >= upper:
        raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
    return lower, upper


def _verify_limit(limit: str | None) -> int:
    if limit is None:
        return VERIFY_DEFAULT_LIMIT
    if not _DIGITS.fullmatch(limit) or not 1 <= int(limit) <= VERIFY_MAX_LIMIT:
        raise BadRequest(
            f"`limit` must be an integer from 1 to {VERIFY_MAX_LIMIT}, got {limit!r}", code="invalid_limit"
        )
    return int(limit)


def _view(entry: ArchiveObject) -> ArchiveObjectView:
    return ArchiveObjectView(
        key=entry.key,
        hour=datetime(entry.day.year, entry.day.month, entry.day.day, entry.hour, tzinfo=UTC),
        event_count=entry.event_count,
        bytes=entry.bytes,
        sha256=entry.sha256,
        first_event_at=entry.first_event_at,
        last_event_at=entry.last_event_at,
        created_at=entry.created_at,
    )


async def verify_object(blobs: BlobStore, entry: ArchiveObject) -> tuple[VerifyProblem | None, int]:
    """Re-read, re-hash and re-count one object: (its problem or None, the events found in it)."""

    def problem(kind: Problem, digest: str | None, count: int | None, size: int | None) -> VerifyProblem:
        return VerifyProblem(
            key=entry.key,
            problem=kind,
            expected_sha256=entry.sha256,
            actual_sha256=digest,
            expected_event_count=entry.event_count,
            actual_event_count=count,
            expected_bytes=entry.bytes,
            actual_bytes=size,
        )

    try:
        data = await blobs.get(entry.key)
    except BlobNotFound:
        return problem("missing", None, None, None), 0
    digest = hashlib.sha256(data).hexdigest()
    try:
        count: int | None = await asyncio.to_thread(count_lines, data)
    except (OSError, EOFError, zlib.error):
        count = None
    if digest != entry.sha256:
        return problem("digest_mismatch", digest, count, len(data)), count or 0
    if count != entry.event_count:
        return problem("count_mismatch", digest, count, len(data)), count or 0
    return None, entry.event_count


class Archive(Controller):
    """`/v1/archive` and `/v1/archive/verify` (scope `archive:read`): the caller's tenant's archive objects."""

    path = "/v1/archive"

    @get(
        guards=[requires("archive:read")],
        summary="List your tenant's archive objects in a time range, with their SHA-256 digests.",
        description=(
            "Query: from/to (RFC 3339 or now-7d; default the last 24 hours; objects whose receive hour starts in "
            "[hour of from, to)), limit (1-200, default 50), cursor (the previous page's next_cursor). In key order."
        ),
        opt=operation(),
    )
    async def list_archive(
        self,
        request: Request[Any, Any, Any],
        archive: Injected[ArchiveManifest],
        clock: Injected[Clock],
        from_: FromParameter = None,
        to: ToParameter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[ArchiveObjectView]:
        principal = principal_of(request)
        refuse_undeclared_parameters(request)
        size = parse_limit(limit)
        shown, next_cursor = await _page(archive, principal.tenant_id, from_, to, cursor, size, clock())
        return Page(items=[_view(entry) for entry in shown], next_cursor=next_cursor)

    @get(
        "/verify",
        guards=[requires("archive:read")],
        summary="Re-read, re-hash and re-count your tenant's archive objects in a time range; report mismatches.",
        description=(
            "Query: from/to as for /v1/archive, limit (objects verified per call, 1-100, default 20), cursor. "
            "Reports objects that are missing, whose digest differs, or whose event count differs; the counts are "
            "those of this page."
        ),
        opt=operation(),
    )
    async def verify_archive(
        self,
        request: Request[Any, Any, Any],
        archive: Injected[ArchiveManifest],
        blobs: Injected[BlobStore],
        clock: Injected[Clock],
        from_: FromParameter = None,
        to: ToParameter = None,
        limit: Annotated[
            str | None,
            QueryParameter(
                name="limit",
                required=False,
                description=f"Objects verified per call, 1-{VERIFY_MAX_LIMIT} (default {VERIFY_DEFAULT_LIMIT}).",
            ),
        ] = None,
        cursor: Cursor = None,
    ) -> ArchiveVerification:
        principal = principal_of(request)
        refuse_undeclared_parameters(request)
        size = _verify_limit(limit)
        shown, next_cursor = await _page(archive, principal.tenant_id, from_, to, cursor, size, clock())
        gate = asyncio.Semaphore(_VERIFY_CONCURRENCY)

        async def check(entry: ArchiveObject) -> tuple[VerifyProblem | None, int]:
            async with gate:
                return await verify_object(blobs, entry)

        results = await asyncio.gather(*(check(entry) for entry in shown))
        problems = [found for found, _ in results if found is not None]
        kinds = [found.problem for found in problems]
        return ArchiveVerification(
            checked=len(shown),
            ok=len(shown) - len(problems),
            missing=kinds.count("missing"),
            digest_mismatch=kinds.count("digest_mismatch"),
            count_mismatch=kinds.count("count_mismatch"),
            events_expected=sum(entry.event_count for entry in shown),
            events_found=sum(events for _, events in results),
            problems=problems,
            next_cursor=next_cursor,
        )

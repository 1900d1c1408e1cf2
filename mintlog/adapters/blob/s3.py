"""`S3BlobStore`: the blob store port on an S3-compatible service (AWS S3, MinIO, SeaweedFS), over aiohttp.

Requests are path-style (`{endpoint}/{bucket}/{key}`) and signed with AWS Signature V4 over the payload's
SHA-256, so the service rejects a body altered in transit. A PUT is atomic on S3 (readers see the old or
the new object) and durable when S3 answers 200. A request that fails with a 5xx answer, a timeout or a
connection error is retried with exponential backoff (every operation here is idempotent); when the retries
run out, or on any other unexpected answer, the method raises `StoreUnavailable`. The secret key never
appears in a log, an error or a repr.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import warnings
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from mintlog.adapters.blob.keys import check_key, check_limit, check_prefix
from mintlog.adapters.blob.sigv4 import EMPTY_SHA256, encode_path, quote, sign_headers
from mintlog.errors import ConfigError, StoreUnavailable
from mintlog.ports.blobstore import BlobInfo, BlobNotFound
from mintlog.settings import BlobS3Settings

# aiohttp warns about every raw-bytes body over 1 MiB; archive objects are sent whole on purpose.
warnings.filterwarnings("ignore", message="Sending a large body directly with raw bytes", category=ResourceWarning)

__all__ = ["S3BlobStore", "S3Options", "build_s3_blob_store"]

logger = logging.getLogger(__name__)

_PAGE_SIZE = 1000  # S3's largest ListObjectsV2 page
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class S3Options:
    """Where the bucket is and how to talk to it (see `mintlog.settings.BlobS3Settings`)."""

    endpoint: str
    bucket: str
    region: str
    access_key: str
    secret_key: str = field(repr=False)
    timeout_seconds: float = 30.0
    max_retries: int = 4
    retry_initial_seconds: float = 0.2
    retry_max_seconds: float = 5.0
    create_bucket: bool = True


def build_s3_blob_store(url: str, settings: BlobS3Settings) -> S3BlobStore:
    """The S3 blob store for `s3://bucket` and the `MINTLOG_BLOB__S3__*` settings; `ConfigError` when invalid."""
    parts = urlsplit(url)
    bucket = parts.netloc
    if parts.scheme != "s3" or not _BUCKET_NAME.match(bucket) or parts.path not in ("", "/") or parts.query:
        raise ConfigError(
            f"invalid setting MINTLOG_BLOB__URL={url!r}: use s3://bucket "
            "(3 to 63 lowercase letters, digits, '.' or '-'; no path)"
        )
    endpoint = settings.endpoint.rstrip("/") or f"https://s3.{settings.region}.amazonaws.com"
    endpoint_parts = urlsplit(endpoint)
    if endpoint_parts.scheme not in ("http", "https") or not endpoint_parts.hostname or endpoint_parts.query:
        raise ConfigError(
            f"invalid setting MINTLOG_BLOB__S3__ENDPOINT={settings.endpoint!r}: use http(s)://host[:port]"
        )
    if not settings.access_key or not settings.secret_key:
        raise ConfigError(
            "MINTLOG_BLOB__S3__ACCESS_KEY and MINTLOG_BLOB__S3__SECRET_KEY are required with MINTLOG_BLOB__URL=s3://…"
        )
    return S3BlobStore(
        S3Options(
            endpoint=endpoint,
            bucket=bucket,
            region=settings.region,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            timeout_seconds=settings.timeout_seconds,
            max_retries=settings.max_retries,
            retry_initial_seconds=settings.retry_initial_seconds,
            retry_max_seconds=settings.retry_max_seconds,
            create_bucket=settings.create_bucket,
        )
    )


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes

    @property
    def error_code(self) -> str:
        """The `<Code>` of an S3 error document, or empty."""
        match = re.search(rb"<Code>([^<]{1,200})</Code>", self.body)
        return match.group(1).decode(errors="replace") if match else ""


class _Retryable(Exception):
    """A failure worth another attempt (5xx, timeout, connection error)."""


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass(slots=True)
class _Page:
    """One ListObjectsV2 page: objects, common prefixes ("directories"), and where the next page starts."""

    items: list[BlobInfo] = field(default_factory=lambda: [])
    prefixes: list[str] = field(default_factory=lambda: [])
    truncated: bool = False
    token: str = ""


def _parse_listing(body: bytes) -> _Page:
    """The objects, common prefixes, `IsTruncated` and `NextContinuationToken` of a ListObjectsV2 answer."""
    # The document comes from the configured S3 endpoint, and expat expands no external entities.
    root = ElementTree.fromstring(body)  # noqa: S314
    page = _Page()
    for child in root:
        name = _local_name(child.tag)
        if name == "Contents":
            key, size = "", 0
            for part in child:
                part_name = _local_name(part.tag)
                if part_name == "Key":
                    key = part.text or ""
                elif part_name == "Size":
                    size = int(part.text or "0")
            page.items.append(BlobInfo(key=key, size=size))
        elif name == "CommonPrefixes":
            page.prefixes.extend(part.text or "" for part in child if _local_name(part.tag) == "Prefix")
        elif name == "IsTruncated":
            page.truncated = (child.text or "").strip().lower() == "true"
        elif name == "NextContinuationToken":
            page.token = child.text or ""
    return page


class S3BlobStore:
    """The blob store port on one S3 bucket. One aiohttp session (connection pool) per instance."""

    def __init__(self, options: S3Options) -> None:
        self._options = options
        endpoint = urlsplit(options.endpoint)
        self._base = f"{endpoint.scheme}://{endpoint.netloc}"
        self._host = endpoint.netloc
        self._path_prefix = endpoint.path.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    @property
    def options(self) -> S3Options:
        """The bucket and connection options."""
        return self._options

    def __repr__(self) -> str:
        return f"S3BlobStore(endpoint={self._options.endpoint!r}, bucket={self._options.bucket!r})"

    async def start(self) -> None:
        """Open the connection pool and check the bucket, creating it when missing (if allowed)."""
        self._ensure_session()
        answer = await self._request("HEAD", "")
        if answer.status == 200:
            return
        if answer.status == 404 and self._options.create_bucket:
            await self._create_bucket()
            return
        raise StoreUnavailable(self._describe("check bucket", answer))

    async def _create_bucket(self) -> None:
        body = b""
        if self._options.region != "us-east-1":
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{self._options.region}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        answer = await self._request("PUT", "", body=body)
        if answer.status == 200 or answer.error_code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            logger.info("created S3 bucket %s at %s", self._options.bucket, self._options.endpoint)
            return
        raise StoreUnavailable(self._describe("create bucket", answer))

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def ping(self) -> None:
        """Return when the bucket answers HEAD with 200."""
        answer = await self._request("HEAD", "")
        if answer.status != 200:
            raise StoreUnavailable(self._describe("check bucket", answer))

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key` (a single PUT: atomic, durable when S3 answers 200)."""
        check_key(key)
        answer = await self._request("PUT", key, body=data, content_type=content_type)
        if answer.status != 200:
            raise StoreUnavailable(self._describe(f"put {key!r}", answer))

    async def get(self, key: str) -> bytes:
        """The object's bytes; `BlobNotFound` when there is none."""
        check_key(key)
        answer = await self._request("GET", key)
        if answer.status == 200:
            return answer.body
        if answer.status == 404 and answer.error_code in ("NoSuchKey", ""):
            raise BlobNotFound(key)
        raise StoreUnavailable(self._describe(f"get {key!r}", answer))

    async def list(self, prefix: str, *, after: str | None = None, limit: int = 1000) -> Sequence[BlobInfo]:
        """Up to `limit` objects whose key starts with `prefix` and sorts after `after`, in key order.

        Walks the key tree one `/` level at a time (ListObjectsV2 with a delimiter) and sorts each level
        itself, names of "directories" with their `/`: some S3 services (SeaweedFS) list a flat prefix
        directory by directory, which is not key order when a name is a prefix of its sibling's (`acme/…`
        and `acme-eu/…`), and would make `after`-pagination skip objects. Levels wholly before `after`
        are skipped without being listed; the walk stops at `limit`.
        """
        check_prefix(prefix)
        check_limit(limit)
        found: list[BlobInfo] = []
        await self._walk(prefix, after or "", limit, found)
        return found

    async def _walk(self, level_prefix: str, after: str, limit: int, found: list[BlobInfo]) -> None:
        items, prefixes = await self._list_level(level_prefix)
        entries: list[tuple[str, BlobInfo | None]] = [(item.key, item) for item in items]
        entries.extend((sub, None) for sub in prefixes)
        entries.sort(key=lambda entry: entry[0])
        for name, item in entries:
            if item is None:
                if name < after and not after.startswith(name):
                    continue  # every key under `name` sorts before `after`
                await self._walk(name, after, limit, found)
            elif name > after:
                found.append(item)
            if len(found) >= limit:
                return

    async def _list_level(self, level_prefix: str) -> tuple[list[BlobInfo], list[str]]:
        """Every object and common prefix directly under `level_prefix` (all pages)."""
        items: list[BlobInfo] = []
        prefixes: list[str] = []
        token = ""
        while True:
            query = [("list-type", "2"), ("delimiter", "/"), ("max-keys", str(_PAGE_SIZE))]
            if level_prefix:
                query.append(("prefix", level_prefix))
            if token:
                query.append(("continuation-token", token))
            answer = await self._request("GET", "", query=query)
            if answer.status != 200:
                raise StoreUnavailable(self._describe(f"list {level_prefix!r}", answer))
            try:
                page = _parse_listing(answer.body)
            except (ElementTree.ParseError, ValueError) as exc:
                raise StoreUnavailable(f"S3 list {level_prefix!r}: unreadable answer: {exc}") from exc
            # A key ending in `/` is a "directory marker" (SeaweedFS shows an emptied directory so; consoles
            # create them), never an object of this port.
            items.extend(item for item in page.items if item.key.startswith(level_prefix) and item.key[-1:] != "/")
            prefixes.extend(sub for sub in page.prefixes if sub.startswith(level_prefix) and sub != level_prefix)
            if not page.truncated or not page.token:
                return items, prefixes
            token = page.token

    async def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""
        check_key(key)
        answer = await self._request("DELETE", key)
        if answer.status in (200, 204) or (answer.status == 404 and answer.error_code in ("NoSuchKey", "")):
            return
        raise StoreUnavailable(self._describe(f"delete {key!r}", answer))

    def _describe(self, action: str, answer: _Answer) -> str:
        code = answer.error_code
        hint = ""
        if answer.status == 403:
            hint = " (check MINTLOG_BLOB__S3__ACCESS_KEY / SECRET_KEY and the bucket's permissions)"
        return (
            f"S3 {action} in bucket {self._options.bucket!r} at {self._options.endpoint} answered "
            f"{answer.status}{' ' + code if code else ''}{hint}"
        )

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self._options.timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        return self._session

    async def _request(
        self,
        method: str,
        key: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str = "",
    ) -> _Answer:
        """Send one signed request, retrying 5xx answers, timeouts and connection errors with backoff."""
        options = self._options
        attempt = 0
        while True:
            try:
                return await self._attempt(method, key, query or [], body, content_type)
            except _Retryable as exc:
                if attempt >= options.max_retries:
                    raise StoreUnavailable(
                        f"S3 {method} {key or '(bucket)'} in bucket {options.bucket!r} at {options.endpoint} failed "
                        f"after {attempt + 1} attempt(s): {exc}"
                    ) from None
                delay = min(options.retry_max_seconds, options.retry_initial_seconds * 2**attempt)
                delay *= 0.5 + random.random()  # jitter: instances do not retry in lockstep
                logger.warning("S3 %s %s failed (%s); retrying in %.2fs", method, key or "(bucket)", exc, delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def _attempt(
        self, method: str, key: str, query: list[tuple[str, str]], body: bytes, content_type: str
    ) -> _Answer:
        path = encode_path(f"{self._path_prefix}/{self._options.bucket}" + (f"/{key}" if key else ""))
        headers = {"host": self._host}
        if content_type:
            headers["content-type"] = content_type
        if method == "PUT":
            headers["content-length"] = str(len(body))
        signed = sign_headers(
            method=method,
            path=path,
            query=query,
            headers=headers,
            payload_sha256=hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256,
            access_key=self._options.access_key,
            secret_key=self._options.secret_key,
            region=self._options.region,
        )
        query_text = "&".join(f"{quote(k)}={quote(v)}" for k, v in query)
        url = URL(self._base + path + (f"?{query_text}" if query_text else ""), encoded=True)
        session = self._ensure_session()
        try:
            async with session.request(method, url, headers=signed, data=body if method == "PUT" else None) as response:
                data = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        if status >= 500:
            raise _Retryable(f"HTTP {status} {_Answer(status, data).error_code}".rstrip())
        return _Answer(status, data)

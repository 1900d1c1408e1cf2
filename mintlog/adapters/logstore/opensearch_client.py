"""Connecting to an OpenSearch cluster: node URLs, client options, and vendor errors at the boundary.

Only this module and its siblings import `opensearchpy`; `mintlog.launch.bootstrap` imports them lazily, so a
process on the embedded store never loads the client.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import ImproperlyConfigured, OpenSearchException, TransportError
from opensearchpy.serializer import JSONSerializer

from mintlog.errors import StoreDiskFailure, StoreUnavailable

# aiohttp warns about every raw-bytes body over 1 MiB; bulk bodies are up to `bulk_max_bytes` on purpose
# (fewer, larger requests index faster), and a single transport write of them does not block the loop.
warnings.filterwarnings("ignore", message="Sending a large body directly with raw bytes", category=ResourceWarning)

__all__ = [
    "CLUSTER_BLOCK",
    "WRITES_RETRIED",
    "ClusterOptions",
    "cluster_urls",
    "describe_error",
    "error_reason",
    "is_retryable",
    "is_write_block",
    "masked_url",
    "new_client",
    "search_when_shards_started",
    "status_of",
    "store_error",
    "translate_errors",
]

CLUSTER_BLOCK = "cluster_block_exception"
"""The error type of a request or bulk item refused by a block (see `mintlog.adapters.logstore.opensearch_blocks`)."""
WRITES_RETRIED = "writes are retried until the block is lifted"

_SCHEMES = {"opensearch": "http", "http": "http", "https": "https"}
_URL_PASSWORD = re.compile(r"(://[^:/@,]*:)[^@/,]*@")


def masked_url(url: str) -> str:
    """`url` (one or several, comma-separated) with every password replaced by `****`."""
    return _URL_PASSWORD.sub(r"\1****@", url)


def cluster_urls(url: str) -> list[str]:
    """The node URLs of a store URL: `opensearch://`, `http://` or `https://host:port`, comma-separated.

    `opensearch://` is plain HTTP. A node may carry `user:password@` and a path prefix. Raises
    `ValueError` (never showing a password) when an entry has another scheme or no host.
    """
    urls: list[str] = []
    for entry in (part.strip() for part in url.split(",")):
        if not entry:
            continue
        scheme, separator, rest = entry.partition("://")
        if not separator or scheme.lower() not in _SCHEMES:
            raise ValueError(f"{masked_url(entry)!r} is not an opensearch://, http:// or https:// URL")
        node = f"{_SCHEMES[scheme.lower()]}://{rest}"
        try:
            parts = urlsplit(node)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as exc:
            raise ValueError(f"{masked_url(entry)!r} is not a valid URL: {exc}") from None
        if not parts.hostname:
            raise ValueError(f"{masked_url(entry)!r} names no host")
        urls.append(node)
    if not urls:
        raise ValueError("no OpenSearch node given")
    return urls


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """How to reach the cluster (see `mintlog.settings.OpenSearchSettings` for each option's meaning)."""

    urls: Sequence[str]
    username: str = ""
    password: str = ""
    verify_certs: bool = True
    ca_file: str = ""
    request_timeout_seconds: float = 30.0


class _MsgspecSerializer(JSONSerializer):
    """JSON with msgspec: several times faster than `json` on big search responses; bodies given as text
    or bytes (the bulk body) pass through unchanged."""

    def loads(self, s: str) -> Any:
        try:
            return msgspec.json.decode(s)
        except msgspec.DecodeError:
            return super().loads(s)

    def dumps(self, data: Any) -> Any:
        if isinstance(data, str | bytes):
            return data
        return msgspec.json.encode(data).decode()


def new_client(options: ClusterOptions) -> AsyncOpenSearch:
    """An async client for the cluster; it connects on its first request.

    A request failing on one node is tried once on each other node (connection errors and 502/503/504);
    statuses and per-item bulk results are otherwise left to the store, which retries with backoff.
    """
    kwargs: dict[str, Any] = {
        "timeout": options.request_timeout_seconds,
        "max_retries": max(len(options.urls) - 1, 0),
        "retry_on_timeout": False,
        "serializer": _MsgspecSerializer(),
        "verify_certs": options.verify_certs,
        "ssl_show_warn": options.verify_certs,
    }
    if options.username:
        kwargs["http_auth"] = (options.username, options.password)
    if options.ca_file:
        kwargs["ca_certs"] = options.ca_file
    try:
        return AsyncOpenSearch(list(options.urls), **kwargs)
    except ImproperlyConfigured as exc:
        raise ValueError(f"cannot configure the OpenSearch client: {exc}") from exc


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a vendor error, `None` when no response came (connection error, timeout)."""
    if isinstance(exc, OpenSearchConnectionError) or not isinstance(exc, TransportError):
        return None
    status = exc.status_code
    return status if isinstance(status, int) else None


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed request may succeed later: no answer, a timeout, 408, 429 or 5xx."""
    if isinstance(exc, OpenSearchConnectionError):
        return True
    status = status_of(exc)
    return status is not None and (status in (408, 429) or status >= 500)


_SHARDS_STARTING = frozenset({"search_phase_execution_exception", "no_shard_available_action_exception"})
_SHARD_START_DELAYS_SECONDS = (0.1, 0.2, 0.4, 0.8, 1.0)


def is_shards_starting(exc: BaseException) -> bool:
    """Whether a search failed with 503 `all shards failed`: what a just-created daily index answers while its
    primary shards start (the index is listed before it can be searched)."""
    if isinstance(exc, OpenSearchConnectionError) or not isinstance(exc, TransportError):
        return False
    # The cause decides: `too_many_buckets_exception` and other root causes come wrapped in the same 503.
    return exc.status_code == 503 and error_reason(exc.info).split(":")[0] in _SHARDS_STARTING


async def search_when_shards_started(client: AsyncOpenSearch, **request: Any) -> Any:
    """`client.search(**request)`, tried again for up to 2.5 s while it fails with `is_shards_starting`.

    A search racing the creation of a new day's index would otherwise answer 503 for a moment; after the delays
    the last failure is raised as it came.
    """
    for delay in _SHARD_START_DELAYS_SECONDS:
        try:
            return await client.search(**request)
        except TransportError as exc:
            if not is_shards_starting(exc):
                raise
        await asyncio.sleep(delay)
    return await client.search(**request)


def is_write_block(exc: BaseException) -> bool:
    """Whether the cluster refused a whole request because of a block (`cluster_block_exception`: the flood-stage
    `read_only_allow_delete` block of a full disk, or a write block an operator set)."""
    if isinstance(exc, OpenSearchConnectionError) or not isinstance(exc, TransportError):
        return False
    return error_reason(exc.info).startswith(f"{CLUSTER_BLOCK}:")


def store_error(exc: OpenSearchException, action: str) -> StoreUnavailable:
    """`StoreUnavailable` naming `action` for what the client raised; `StoreDiskFailure` for a request refused by
    a block, an outage that lasts until the block is lifted."""
    if is_write_block(exc):
        return StoreDiskFailure(
            f"opensearch store could not {action}, the cluster refuses writes: {describe_error(exc)}; {WRITES_RETRIED}"
        )
    return StoreUnavailable(f"opensearch store could not {action}: {describe_error(exc)}")


@contextmanager
def translate_errors(action: str) -> Generator[None]:
    """Turn what the client raises into `store_error(exc, action)`."""
    try:
        yield
    except OpenSearchException as exc:
        raise store_error(exc, action) from exc
    except (OSError, TimeoutError) as exc:  # raised below the client, e.g. while closing
        raise StoreUnavailable(f"opensearch store could not {action}: {exc}") from exc


def describe_error(exc: OpenSearchException) -> str:
    """A one-line account of a vendor error: the status and the cluster's `type: reason`, or the cause."""
    if isinstance(exc, OpenSearchConnectionError):
        return f"no answer from the cluster ({type(exc.info).__name__}: {exc.info})"
    if isinstance(exc, TransportError):
        return f"HTTP {exc.status_code}: {error_reason(exc.info) or exc.error}"
    return str(exc)


class _Cause(msgspec.Struct):
    type: str = ""
    reason: str | None = None
    root_cause: list[_Cause] = []
    caused_by: _Cause | None = None


class _ErrorBody(msgspec.Struct):
    error: _Cause | str | None = None


def error_reason(info: object) -> str:
    """`type: reason` of an OpenSearch error body: the first root cause, else the first cause with a reason."""
    try:
        error = msgspec.convert(info, _ErrorBody).error
    except msgspec.ValidationError:
        return ""
    if error is None or isinstance(error, str):
        return error or ""
    cause = error.root_cause[0] if error.root_cause else error
    while not cause.reason and cause.caused_by is not None:
        cause = cause.caused_by
    return f"{cause.type}: {cause.reason or ''}" if cause.type else cause.reason or ""

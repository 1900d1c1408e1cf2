"""The error tree of Mintlog.

Adapters translate vendor exceptions (nats, tantivy, sqlalchemy, ...) into these classes at the boundary;
roles never catch vendor exceptions. `mintlog.http.problems` maps each class to one RFC 9457 response.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "BusFull",
    "BusUnavailable",
    "CacheUnavailable",
    "ConfigError",
    "Conflict",
    "DatabaseUnavailable",
    "DependencyUnavailable",
    "Forbidden",
    "Gone",
    "IngestBacklogged",
    "MintlogError",
    "NotFound",
    "NotImplementedByStore",
    "PayloadTooLarge",
    "ProblemError",
    "RequestTimeout",
    "StoreDiskFailure",
    "StoreUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedMediaType",
]


class MintlogError(Exception):
    """Base class of every error Mintlog raises on purpose."""


class ConfigError(MintlogError):
    """A setting has a bad value; start-up stops and names the variable and the value."""


class DependencyUnavailable(MintlogError):
    """A backing service (bus, store, database, cache) cannot serve right now; retrying later may succeed."""

    retry_after_seconds: int = 5


class BusUnavailable(DependencyUnavailable):
    """The event bus cannot be reached or did not acknowledge in time."""


class BusFull(DependencyUnavailable):
    """The event bus refused a message because a stream reached its limits (discard-new)."""

    retry_after_seconds = 10


class StoreUnavailable(DependencyUnavailable):
    """The log store cannot be reached or failed to write or read."""


class StoreDiskFailure(StoreUnavailable):
    """The store's disk refused a write: full, over quota, read-only or failing (ENOSPC, EDQUOT, EROFS, EIO), or
    the OpenSearch cluster refuses writes with a block (its flood-stage watermark's `read_only_allow_delete`).

    An outage, never the fault of the data written: the same write succeeds once the disk takes writes again.
    """


class DatabaseUnavailable(DependencyUnavailable):
    """The metadata database cannot be reached."""


class CacheUnavailable(DependencyUnavailable):
    """The shared cache or rate-limit store (Redis) cannot be reached or did not answer in time."""


class ProblemError(MintlogError):
    """An error answered to an HTTP client as RFC 9457 problem+json.

    `code` is a stable machine-readable identifier; `detail` is a human sentence safe to show to the caller.
    """

    status: int = 400
    title: str = "Bad request"
    default_code: str = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, extra: dict[str, object] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.extra: dict[str, object] = extra or {}


class BadRequest(ProblemError):
    """The request is malformed: not JSON, wrong shape, or a value the endpoint cannot use."""


class Unauthorized(ProblemError):
    """No valid API key was presented. Every cause gets the same body, so keys cannot be probed."""

    status = 401
    title = "Unauthorized"
    default_code = "unauthorized"


class Forbidden(ProblemError):
    """The API key is valid but lacks the scope the endpoint needs."""

    status = 403
    title = "Forbidden"
    default_code = "missing_scope"


class NotFound(ProblemError):
    """The object does not exist or belongs to another tenant."""

    status = 404
    title = "Not found"
    default_code = "not_found"


class Gone(ProblemError):
    """The object existed but can no longer be used (an expired or already used one-click link)."""

    status = 410
    title = "Gone"
    default_code = "gone"


class RequestTimeout(ProblemError):
    """The client did not send the request body within the server's read timeouts; the connection is closed."""

    status = 408
    title = "Request timeout"
    default_code = "body_timeout"


class PayloadTooLarge(ProblemError):
    """The body (compressed or decompressed) exceeds the configured limit."""

    status = 413
    title = "Payload too large"
    default_code = "payload_too_large"


class UnsupportedMediaType(ProblemError):
    """The Content-Type or Content-Encoding is not one the endpoint accepts."""

    status = 415
    title = "Unsupported media type"
    default_code = "unsupported_media_type"


class Conflict(ProblemError):
    """The object already exists or the request conflicts with its current state."""

    status = 409
    title = "Conflict"
    default_code = "conflict"


class UnprocessableEntity(ProblemError):
    """The body is well-formed but a field fails validation."""

    status = 422
    title = "Unprocessable entity"
    default_code = "validation_failed"


class TooManyRequests(ProblemError):
    """A rate limit or concurrency cap was exceeded."""

    status = 429
    title = "Too many requests"
    default_code = "rate_limited"


class IngestBacklogged(ProblemError):
    """Ingest refuses new batches for a while: the pipeline's backlog passed its configured limit. Nothing of
    the request was stored; retrying after `retry_after_seconds` may succeed. Protocols whose clients retry
    only a 429 answer it as 429."""

    status = 503
    title = "Service unavailable"
    default_code = "backlog_exceeded"


class NotImplementedByStore(ProblemError):
    """The configured log store cannot answer this kind of request yet."""

    status = 501
    title = "Not implemented"
    default_code = "not_implemented"

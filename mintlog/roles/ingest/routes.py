"""HTTP routes of the ingest role (:8080)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, post
from litestar.params import HeaderParameter

from mintlog.errors import DependencyUnavailable, ProblemError
from mintlog.http.guards import Guard, principal_of
from mintlog.http.openapi import documented
from mintlog.metrics import Metrics
from mintlog.roles.ingest.body import read_limited_body
from mintlog.roles.ingest.decoders import IngestDecoder
from mintlog.roles.ingest.decoders.native import NATIVE, IngestBody
from mintlog.roles.ingest.service import Accepted, IngestResult, IngestService

__all__ = ["IngestRequests", "ingest_routes"]


class IngestRequests:
    """What every HTTP ingest protocol's route does with its request, written once: refuse it while the pipeline's
    backlog is past its limit (before reading anything), check the type, read the
    body within `max_body_bytes` (decompressing gzip), decode it with the protocol's decoder and accept its
    events through `IngestService.ingest`. Every refusal is counted by code
    (`mintlog_ingest_requests_rejected_total{code}`) and raised for the route to answer in its protocol's shape."""

    def __init__(self, service: IngestService, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes
        self._rejected_requests = metrics.ingest_requests_rejected

    async def __call__(
        self, request: Request[Any, Any, Any], decoder: IngestDecoder, idempotency_key: str | None
    ) -> Accepted:
        principal = principal_of(request)
        try:
            self.service.check_backlog()
            decoder.check_content_type(request.headers.get("content-type"))
            body = await read_limited_body(
                request.stream(),
                content_encoding=request.headers.get("content-encoding"),
                content_length=request.headers.get("content-length"),
                max_bytes=self.max_body_bytes,
            )
            return await self.service.ingest(
                principal.tenant_id,
                body,
                decoder=decoder,
                headers=request.headers,
                idempotency_key=idempotency_key,
                time_policy=principal.time_policy,
            )
        except ProblemError as exc:
            self._rejected_requests.labels(exc.code).inc()
            raise
        except DependencyUnavailable:
            self._rejected_requests.labels("unavailable").inc()
            raise


def ingest_routes(ingest_request: IngestRequests, *, requires: Any) -> list[Any]:
    """The route handlers of the native ingest body (`POST /v1/ingest/logs`)."""
    ingest_guard: Guard = requires("ingest:logs")

    @post(
        "/v1/ingest/logs",
        guards=[ingest_guard],
        status_code=202,
        summary="Ingest a batch of log events.",
        description=(
            'Body: {"events": [{"message": ..., "level": ..., "service": ..., "timestamp": ..., "fields": {...}}]}. '
            "Answers 202 once the batch is durable on the bus, with the indexes and reasons of rejected events. "
            "Content-Encoding gzip is accepted. An Idempotency-Key header makes retries safe."
        ),
        opt=documented(body=IngestBody, answer=IngestResult, errors=(415, 422)),
    )
    async def ingest_logs(
        request: Request[Any, Any, Any],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)] = None,
    ) -> Response[bytes]:
        answer, replayed = await ingest_request(request, NATIVE, idempotency_key)
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return Response(answer, status_code=202, media_type="application/json", headers=headers)

    return [ingest_logs]

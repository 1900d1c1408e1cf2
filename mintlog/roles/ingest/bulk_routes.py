"""The Elasticsearch/OpenSearch `_bulk` API on the ingest port (:8080), and the few requests its clients make first.

Every route here answers as Elasticsearch does, errors included, so that Elasticsearch and OpenSearch clients
and shippers (Filebeat, Logstash, Fluent Bit, Vector) read the answers and retry as they would with a cluster:

- `POST /_bulk`, `POST /{index}/_bulk` (and `PUT`, which elasticsearch-py 8 sends): 200 with `{"took",
  "errors", "items"}`, one item per action in order, `status` 201 `created` for a stored document and 400 with
  `error.type`/`error.reason` for a refused one (`mintlog.roles.ingest.decoders.es_bulk` says which).
  Refusals of the whole request keep their status (400 malformed body, 401, 403, 408, 413, 415, 422 with an
  `Idempotency-Key` reused, 429, 503) with the body `{"error": {"root_cause": [...], "type", "reason"},
  "status"}`; a 429 is `es_rejected_execution_exception` with `Retry-After`, which the clients' bulk helpers
  retry, and so is the refusal while the pipeline's backlog is past its limit (`backlog_exceeded`);
- `GET /` and `HEAD /`: the cluster information clients read the version from (`version.number` 8.x);
- `GET /_license`, `GET /_xpack`: an active basic license (Logstash and Filebeat check it);
- `GET /_cluster/health` (Vector's health check), `GET /_nodes`: a one-node green cluster;
- `GET`/`HEAD`/`PUT` `/_index_template/{name}`, `/_template/{name}`, `/_ilm/policy/{name}`: every template and
  policy exists and every write is acknowledged and ignored (what Filebeat and Logstash set up first).

Every answer carries `X-Elastic-Product: Elasticsearch`, which elasticsearch-py 8 requires. Each route needs an
API key with the scope `ingest:logs`, in any form `mintlog.auth.presented_key` reads (clients send
`Authorization: ApiKey`, `Basic` or `Bearer`). These routes are not in the port's OpenAPI document: their shapes
are Elasticsearch's (docs/ingest.md, "Elasticsearch and OpenSearch `_bulk`").
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, head, put, route
from litestar.exceptions import HTTPException
from litestar.params import FromPath, HeaderParameter
from litestar.types import ExceptionHandlersMap

from mintlog import __version__
from mintlog.domain.events import event_id
from mintlog.errors import DependencyUnavailable, IngestBacklogged, ProblemError
from mintlog.http.guards import Guard
from mintlog.metrics import Metrics
from mintlog.roles.ingest.decoders.es_bulk import BulkItem, EsBulkDecoder
from mintlog.roles.ingest.routes import IngestRequests
from mintlog.roles.ingest.service import IngestError, IngestResult

__all__ = ["ES_VERSION", "bulk_answer", "bulk_routes", "es_error"]

logger = logging.getLogger(__name__)

ES_VERSION = "8.11.0"
"""The Elasticsearch version `GET /` claims: clients and shippers of 7.x and 8.x accept it."""
_PRODUCT_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
_CLUSTER_UUID = uuid.uuid5(uuid.NAMESPACE_URL, "https://mintlog.dev/es-compat").hex
_ES_TYPES = {
    400: "illegal_argument_exception",
    401: "security_exception",
    403: "security_exception",
    404: "resource_not_found_exception",
    405: "illegal_argument_exception",
    408: "receive_timeout_transport_exception",
    413: "content_too_long_exception",
    415: "illegal_argument_exception",
    422: "illegal_argument_exception",
    429: "es_rejected_execution_exception",
    503: "unavailable_shards_exception",
}
_encoder = msgspec.json.Encoder()
_result_decoder = msgspec.json.Decoder(IngestResult)


def es_error(status: int, es_type: str, reason: str, *, headers: dict[str, str] | None = None) -> Response[bytes]:
    """An Elasticsearch error answer: `{"error": {"root_cause": [...], "type", "reason"}, "status"}`."""
    cause = {"type": es_type, "reason": reason}
    body = {"error": {"root_cause": [cause], **cause}, "status": status}
    return Response(
        _encoder.encode(body),
        status_code=status,
        media_type="application/json",
        headers={**_PRODUCT_HEADERS, **(headers or {})},
    )


def _problem_as_es(_request: Request[Any, Any, Any], exc: ProblemError) -> Response[bytes]:
    es_type = exc.extra.get("es_type")
    headers: dict[str, str] = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
    elif exc.status == 408:
        headers["Connection"] = "close"
    elif isinstance(retry_after := exc.extra.get("retry_after_seconds"), int):
        headers["Retry-After"] = str(retry_after)
    # A node that cannot take more answers 429 es_rejected_execution_exception, which the clients retry.
    status = 429 if isinstance(exc, IngestBacklogged) else exc.status
    reason = exc.detail
    if exc.code == "all_events_rejected":
        reason = f"{reason}: {exc.extra.get('errors')}"
    return es_error(
        status,
        es_type if isinstance(es_type, str) else _ES_TYPES.get(status, "exception"),
        reason,
        headers=headers,
    )


def _unavailable_as_es(_request: Request[Any, Any, Any], exc: DependencyUnavailable) -> Response[bytes]:
    logger.warning("dependency unavailable: %s", exc)
    return es_error(503, _ES_TYPES[503], f"{exc} — retry later", headers={"Retry-After": str(exc.retry_after_seconds)})


def _http_as_es(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    return es_error(status, _ES_TYPES.get(status, "exception"), exc.detail or "error", headers=exc.headers)


_ES_EXCEPTION_HANDLERS: ExceptionHandlersMap = {  # pyright: ignore[reportUnknownVariableType]
    ProblemError: _problem_as_es,
    DependencyUnavailable: _unavailable_as_es,
    HTTPException: _http_as_es,
}


def _json(content: object, status_code: int = 200) -> Response[bytes]:
    return Response(
        _encoder.encode(content), status_code=status_code, media_type="application/json", headers=_PRODUCT_HEADERS
    )


def bulk_answer(items: list[BulkItem], result: IngestResult, took_ms: int) -> dict[str, Any]:
    """The `_bulk` answer for `items` given what `accept` did with their events: the `k`-th stored event's `_id`
    is its Mintlog event id unless its action named one."""
    refused = {error.index: error.reason for error in result.errors}
    batch_id = result.batch_id
    answers: list[dict[str, Any]] = []
    stored = 0
    for item in items:
        if item.error is not None:
            error = {"type": item.error.type, "reason": item.error.reason}
            answers.append({item.action: {"_index": item.index, "_id": item.doc_id, "status": 400, "error": error}})
            continue
        reason = refused.get(item.event_index) if item.event_index is not None else None
        if reason is not None:
            error = {"type": "mapper_parsing_exception", "reason": reason}
            answers.append({item.action: {"_index": item.index, "_id": item.doc_id, "status": 400, "error": error}})
            continue
        answers.append(
            {
                item.action: {
                    "_index": item.index,
                    "_id": item.doc_id or event_id(batch_id, stored),
                    "_version": 1,
                    "result": "created",
                    "_shards": {"total": 1, "successful": 1, "failed": 0},
                    "_seq_no": stored,
                    "_primary_term": 1,
                    "status": 201,
                }
            }
        )
        stored += 1
    return {"took": took_ms, "errors": stored < len(items), "items": answers}


def bulk_routes(ingest_request: IngestRequests, *, requires: Any, metrics: Metrics) -> list[Any]:
    """The route handlers of the `_bulk` API and its clients' probes (see the module)."""
    guard: Guard = requires("ingest:logs")
    rejected_events = metrics.ingest_events_rejected
    common: dict[str, Any] = {
        "guards": [guard],
        "exception_handlers": _ES_EXCEPTION_HANDLERS,
        "include_in_schema": False,
    }

    async def bulk(request: Request[Any, Any, Any], index: str | None, idempotency_key: str | None) -> Response[bytes]:
        started = time.perf_counter()
        decoder = EsBulkDecoder(index)
        try:
            answer, _replayed = await ingest_request(request, decoder, idempotency_key)
            result = _result_decoder.decode(answer)
        except ProblemError as exc:
            # Every document refused (by this decoder, or by validation): an answer per item, not a refusal.
            if not decoder.items or exc.code not in ("empty_events", "all_events_rejected"):
                raise
            result = _all_refused(exc)
        for item in decoder.items:
            if item.error is not None:
                rejected_events.labels(
                    "unsupported_action" if item.action in ("update", "delete") else "malformed_document"
                ).inc()
        took_ms = round((time.perf_counter() - started) * 1000)
        return _json(bulk_answer(decoder.items, result, took_ms))

    @route("/_bulk", http_method=["POST", "PUT"], status_code=200, **common)
    async def bulk_any_index(
        request: Request[Any, Any, Any],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)] = None,
    ) -> Response[bytes]:
        return await bulk(request, None, idempotency_key)

    @route("/{index:str}/_bulk", http_method=["POST", "PUT"], status_code=200, **common)
    async def bulk_one_index(
        request: Request[Any, Any, Any],
        index: FromPath[str],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)] = None,
    ) -> Response[bytes]:
        return await bulk(request, index, idempotency_key)

    @get("/", **common)
    async def cluster_info() -> Response[bytes]:
        return _json(_CLUSTER_INFO)

    @head("/", **common)
    async def cluster_exists() -> Response[None]:
        return Response(None, headers=_PRODUCT_HEADERS)

    @get("/_license", **common)
    async def license_info() -> Response[bytes]:
        return _json({"license": _LICENSE})

    @get("/_xpack", **common)
    async def xpack_info() -> Response[bytes]:
        return _json({"build": _CLUSTER_INFO["version"], "license": _LICENSE, "features": {}})

    @get("/_cluster/health", **common)
    async def cluster_health() -> Response[bytes]:
        return _json(_HEALTH)

    @get(["/_nodes", "/_nodes/{which:str}"], **common)
    async def nodes() -> Response[bytes]:
        return _json(
            {
                "_nodes": {"total": 1, "successful": 1, "failed": 0},
                "cluster_name": "mintlog",
                "nodes": {"mintlog": {"name": "mintlog", "version": ES_VERSION, "roles": ["data", "ingest", "master"]}},
            }
        )

    setup_paths = ["/_index_template/{name:str}", "/_template/{name:str}", "/_ilm/policy/{name:str}"]

    @get(setup_paths, **common)
    async def read_setup() -> Response[bytes]:
        # Every template and policy "exists", so that a shipper does not try to install its own.
        return _json({})

    @head(setup_paths, **common)
    async def setup_exists() -> Response[None]:
        return Response(None, headers=_PRODUCT_HEADERS)

    @put(setup_paths, status_code=200, **common)
    async def write_setup() -> Response[bytes]:
        return _json({"acknowledged": True})

    return [
        bulk_any_index,
        bulk_one_index,
        cluster_info,
        cluster_exists,
        license_info,
        xpack_info,
        cluster_health,
        nodes,
        read_setup,
        setup_exists,
        write_setup,
    ]


def _all_refused(exc: ProblemError) -> IngestResult:
    """What `accept` answers when it stores nothing: every event refused, with its reason (none when the
    decoder refused every item itself)."""
    errors = msgspec.convert(exc.extra.get("errors", []), list[IngestError])
    return IngestResult(accepted=0, rejected=len(errors), errors=errors, batch_id="")


_CLUSTER_INFO: dict[str, Any] = {
    "name": "mintlog",
    "cluster_name": "mintlog",
    "cluster_uuid": _CLUSTER_UUID,
    "version": {
        "number": ES_VERSION,
        "build_flavor": "default",
        "build_type": "mintlog",
        "build_hash": __version__,
        "build_date": "2026-01-01T00:00:00.000Z",
        "build_snapshot": False,
        "lucene_version": "9.8.0",
        "minimum_wire_compatibility_version": "7.17.0",
        "minimum_index_compatibility_version": "7.0.0",
    },
    "tagline": "You Know, for Search",
}
_LICENSE: dict[str, Any] = {
    "status": "active",
    "uid": _CLUSTER_UUID,
    "type": "basic",
    "mode": "basic",
    "issue_date_in_millis": 0,
    "max_nodes": 1000,
    "issued_to": "mintlog",
    "issuer": "mintlog",
    "start_date_in_millis": -1,
}
_HEALTH: dict[str, Any] = {
    "cluster_name": "mintlog",
    "status": "green",
    "timed_out": False,
    "number_of_nodes": 1,
    "number_of_data_nodes": 1,
    "active_primary_shards": 0,
    "active_shards": 0,
    "relocating_shards": 0,
    "initializing_shards": 0,
    "unassigned_shards": 0,
}

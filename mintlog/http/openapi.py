"""The complete OpenAPI document of a port, served at `/schema/openapi.json`, and a page to read it offline.

Litestar writes each operation's path, parameters, summary and description from its route handler. What it
cannot know, `complete_document` adds, generated from the same msgspec types the handlers use:

- the request body: the type the handler decodes (`documented(body=...)`), as the JSON Schema msgspec writes
  for it, so the document says exactly what the decoder accepts (bounds, required and unknown members);
  a body that also comes in other media types (protobuf beside JSON) lists them (`body_media_types`), and so
  does an answer given in the request's media type (`answer_media_types`);
- the answer: the handler's return type, or `documented(answer=...)` for a handler that encodes its answer
  itself or streams it (`media_type`, e.g. `text/event-stream`), plus any other answer it gives
  (`documented(answers={503: ...})`);
- every error status the operation can answer, as `application/problem+json` (`Problem`), or in a protocol's
  own error shape and media types (`documented(error=..., error_media_types=...)`): the statuses of
  admission for an operation behind a `ScopeGuard` (`ADMISSION_STATUSES`), 404 for one with path parameters
  (an id that names nothing), 405 for one whose path a fixed sibling path shadows for some values
  (`PATCH /v1/incidents/{incident_id}` sent to `/v1/incidents/stats`, which only answers `GET`: the router
  takes the fixed path), 400, 408 and 413 for one that reads a body (not JSON, too slow, too large), and the
  statuses it declares (`documented(errors=...)`);
- the ways to present an API key (`SECURITY_SCHEMES`: `X-API-Key` as `ApiKey`, and `Authorization` as `Bearer`,
  `ElasticApiKey` or `Basic`), any one of which every operation behind a `ScopeGuard` requires; the
  operation's scope is in its description and in `x-mintlog-scope`;
- the schemas of query and header parameters, from their annotations (a time is RFC 3339 or relative).

The component schemas are msgspec's (`msgspec.json.schema_components`). An operation whose handler returns
bytes without declaring what they hold gets an unconstrained answer schema in the served document (logged);
built with `strict=True` (as the tests build every port's) it raises `IncompleteDocument` instead.

The page at `/schema` is plain HTML built from the same document, with no script: it works without network
access (Litestar's own pages load theirs from a CDN, so they are not served).
"""

from __future__ import annotations

import copy
import html
import logging
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from http import HTTPStatus
from typing import Annotated, Any, TypedDict, Unpack, cast

import msgspec
from litestar import Litestar, Request, Response
from litestar.enums import MediaType, OpenAPIMediaType
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import HeaderParameter, QueryParameter
from litestar.routes import HTTPRoute
from msgspec import UNSET, Meta, UnsetType

from mintlog.http.guards import ADMISSION_STATUSES, SECURITY_SCHEMES, ScopeGuard

__all__ = [
    "DOC_OPT",
    "PROBLEM_MEDIA_TYPE",
    "Documentation",
    "IncompleteDocument",
    "OperationDoc",
    "Problem",
    "complete_document",
    "documented",
    "openapi_config",
]

logger = logging.getLogger(__name__)

DOC_OPT = "openapi"
"""The route `opt` member holding its `OperationDoc`."""
PROBLEM_MEDIA_TYPE = "application/problem+json"
BODY_STATUSES = (400, 408, 413)
"""What reading a body can answer: not JSON (or incomplete), too slow, too large."""
_REF_TEMPLATE = "#/components/schemas/{name}"
_TEXT_SCHEMA: dict[str, Any] = {"type": "string"}


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem: the body of every error Mintlog answers. Match on `code`; `detail` is for people.

    Besides the six members every problem has, some carry what is needed to act on them."""

    type: str
    title: str
    status: Annotated[int, Meta(ge=400, le=599)]
    detail: str
    code: Annotated[str, Meta(pattern="^[a-z][a-z0-9_]*$", description="Stable; match on it.")]
    request_id: Annotated[str, Meta(description="The X-Request-ID of the answer, in every log line of the request.")]
    field: Annotated[str, Meta(description="The body member at fault (`validation_failed`), e.g. `config.url`.")] | (
        UnsetType
    ) = UNSET
    position: Annotated[int, Meta(description="Where the query text goes wrong (`invalid_query`).")] | UnsetType = UNSET
    suggestion: (
        Annotated[str, Meta(description="What was probably meant: the corrected query (`invalid_query`), or level.")]
        | UnsetType
    ) = UNSET
    parameter: Annotated[str, Meta(description="The query parameter at fault.")] | UnsetType = UNSET
    required_scope: Annotated[str, Meta(description="The scope the key lacks (403).")] | UnsetType = UNSET
    missing_scopes: list[str] | UnsetType = UNSET
    retry_after_seconds: (
        Annotated[int, Meta(description="When to retry (429, 503 `backlog_exceeded`), as in Retry-After.")] | UnsetType
    ) = UNSET
    errors: Annotated[list[dict[str, Any]], Meta(description="What was refused, one object each (ingest).")] | (
        UnsetType
    ) = UNSET


class IncompleteDocument(ValueError):
    """An operation's answer cannot be documented from its handler: it needs `documented(answer=...)`."""


@dataclass(frozen=True, slots=True)
class OperationDoc:
    """What the document says about an operation beyond what its handler's signature tells (see the module)."""

    body: Any = None
    """The msgspec type of the JSON body the handler decodes."""
    body_required: bool = True
    """False when an absent body means `{}`."""
    answer: Any = None
    """The type of the success answer, when the handler returns bytes it encoded or a stream."""
    media_type: str | None = None
    """The media type of the success answer, when not the handler's."""
    answers: Mapping[int, Any] = field(default_factory=lambda: {})
    """Other answers that are not problems: status → type (None for no body)."""
    errors: tuple[int, ...] = ()
    """Error statuses beyond those of admission, path parameters and the body."""
    body_media_types: tuple[str, ...] = ()
    """The media types the body comes in, when not JSON alone (a protocol taking protobuf or JSON): JSON ones
    get `body`'s schema, others a string."""
    answer_media_types: tuple[str, ...] = ()
    """The media types of the success answer, when it has several (a protocol answering in the request's)."""
    error: Any = None
    """The type of every error answer, when it is not a `Problem` (a protocol's own error shape)."""
    error_media_types: tuple[str, ...] = ()
    """The media types of the `error` answers."""


class Documentation(TypedDict, total=False):
    """The keyword arguments of `documented` (see `OperationDoc`)."""

    body: Any
    body_required: bool
    answer: Any
    media_type: str
    answers: Mapping[int, Any]
    errors: Sequence[int]
    body_media_types: Sequence[str]
    answer_media_types: Sequence[str]
    error: Any
    error_media_types: Sequence[str]


def documented(**documentation: Unpack[Documentation]) -> dict[str, OperationDoc]:
    """The route `opt` that documents an operation (see `OperationDoc`)."""
    doc = OperationDoc(
        body=documentation.get("body"),
        body_required=documentation.get("body_required", True),
        answer=documentation.get("answer"),
        media_type=documentation.get("media_type"),
        answers=dict(documentation.get("answers", {})),
        errors=tuple(documentation.get("errors", ())),
        body_media_types=tuple(documentation.get("body_media_types", ())),
        answer_media_types=tuple(documentation.get("answer_media_types", ())),
        error=documentation.get("error"),
        error_media_types=tuple(documentation.get("error_media_types", ())),
    )
    return {DOC_OPT: doc}


@dataclass
class _Operation:
    path: str
    method: str
    handler: HTTPRouteHandler
    route: HTTPRoute
    spec: dict[str, Any]

    @property
    def doc(self) -> OperationDoc:
        doc = self.handler.opt.get(DOC_OPT)
        return doc if isinstance(doc, OperationDoc) else OperationDoc()

    @property
    def scope(self) -> str | None:
        guards = cast("list[object]", self.handler.resolve_guards())  # pyright: ignore[reportUnknownMemberType]
        for guard in guards:
            if isinstance(guard, ScopeGuard):
                return guard.scope
        return None

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def _operations(app: Litestar, document: dict[str, Any]) -> Iterator[_Operation]:
    paths: dict[str, dict[str, Any]] = document.get("paths", {})
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = paths.get(route.path_format or "/")
        if item is None:
            continue
        for method, (handler, _) in route.route_handler_map.items():
            spec = item.get(method.lower())
            if spec is not None:
                yield _Operation(route.path_format or "/", method.lower(), handler, route, spec)


def _media_type(handler: HTTPRouteHandler) -> str:
    """The media type the handler answers with (JSON unless it says otherwise)."""
    declared = handler.media_type
    value = declared.value if isinstance(declared, Enum) else declared
    return str(value) or MediaType.JSON.value


def _is_json(media_type: str) -> bool:
    essence = media_type.split(";")[0].strip().lower()
    return essence == "application/json" or essence.endswith("+json")


def _answer_type(operation: _Operation, *, strict: bool) -> Any:
    """The type of the success answer; None for no body; `Any` for undeclared bytes when not `strict`."""
    doc = operation.doc
    if doc.answer is not None:
        return doc.answer
    annotation = operation.handler.parsed_fn_signature.return_type.annotation
    if annotation is None or annotation is type(None) or operation.handler.status_code == 204:
        return None
    origin = typing.get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, Response | bytes):
        problem = f"{operation.label} answers {annotation!r}: declare what it holds with documented(answer=...)"
        if strict:
            raise IncompleteDocument(problem)
        logger.warning("the OpenAPI document is incomplete: %s", problem)
        return Any
    return annotation


def _parameter_annotations(handler: HTTPRouteHandler) -> dict[tuple[str, str], Any]:
    """The annotation of each query and header parameter, by (`in`, name as sent)."""
    found: dict[tuple[str, str], Any] = {}
    for name, definition in handler.parsed_fn_signature.parameters.items():
        kwarg = definition.kwarg_definition
        if isinstance(kwarg, QueryParameter):
            found["query", kwarg.name or name] = definition.annotation
        elif isinstance(kwarg, HeaderParameter):
            found["header", (kwarg.name or name).lower()] = definition.annotation
    return found


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without its `null` alternative (an absent parameter is not a null)."""
    alternatives: list[dict[str, Any]] | None = schema.get("anyOf")
    if alternatives is None:
        return schema
    kept = [alternative for alternative in alternatives if alternative != {"type": "null"}]
    if len(kept) == 1:
        return {**{key: value for key, value in schema.items() if key != "anyOf"}, **kept[0]}
    return {**schema, "anyOf": kept}


class _Schemas:
    """Collects the types an operation refers to, then has msgspec write all their schemas at once (shared
    components are written once, under their type's name)."""

    def __init__(self) -> None:
        self._types: list[Any] = []
        self._schemas: tuple[dict[str, Any], ...] = ()
        self.components: dict[str, Any] = {}

    def want(self, annotation: Any) -> int:
        self._types.append(annotation)
        return len(self._types) - 1

    def write(self) -> None:
        self._schemas, self.components = msgspec.json.schema_components(self._types, ref_template=_REF_TEMPLATE)
        for schema in (*self._schemas, *self.components.values()):
            _any_items(schema)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._schemas[index]


def _any_items(node: object) -> None:
    """Give an array of anything (`list[Any]`) an explicit `items: {}`: the same meaning in JSON Schema, and
    what client generators need to read it."""
    if isinstance(node, dict):
        members = cast("dict[str, object]", node)
        if members.get("type") == "array" and "items" not in members and "prefixItems" not in members:
            members["items"] = {}
        for value in members.values():
            _any_items(value)
    elif isinstance(node, list):
        for value in cast("list[object]", node):
            _any_items(value)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Status {status}"


def complete_document(app: Litestar, document: Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
    """`document` (what Litestar wrote for `app`) completed as the module says. With `strict`, raises
    `IncompleteDocument` for an operation whose answer is undeclared bytes."""
    completed: dict[str, Any] = copy.deepcopy(dict(document))
    schemas = _Schemas()
    problem = schemas.want(Problem)
    # operation, body, answer, other answers, parameters, error (None: problems)
    plans: list[
        tuple[_Operation, int | None, int | None, dict[int, int | None], dict[tuple[str, str], int], int | None]
    ] = []
    for operation in _operations(app, completed):
        doc = operation.doc
        body = schemas.want(doc.body) if doc.body is not None else None
        answer_type = _answer_type(operation, strict=strict)
        answer = schemas.want(answer_type) if answer_type is not None else None
        others = {status: (schemas.want(kind) if kind is not None else None) for status, kind in doc.answers.items()}
        parameters = {
            where: schemas.want(annotation) for where, annotation in _parameter_annotations(operation.handler).items()
        }
        error = schemas.want(doc.error) if doc.error is not None else None
        plans.append((operation, body, answer, others, parameters, error))
    schemas.write()

    routes = [route for route in app.routes if isinstance(route, HTTPRoute)]
    for operation, body, answer, others, parameters, error in plans:
        _complete_operation(operation, schemas, body=body, answer=answer, others=others, parameters=parameters)
        operation.spec["responses"] = {
            **operation.spec["responses"],
            **{
                str(status): _problem_answer(schemas[problem], status)
                if error is None
                else _error_answer(schemas[error], status, operation.doc.error_media_types)
                for status in _error_statuses(operation, routes)
            },
        }
    components: dict[str, Any] = completed.setdefault("components", {})
    components["schemas"] = dict(sorted(schemas.components.items()))
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    return completed


def _error_statuses(operation: _Operation, routes: Sequence[HTTPRoute]) -> list[int]:
    statuses = set(operation.doc.errors)
    if operation.scope is not None:
        statuses.update(ADMISSION_STATUSES)
    if operation.route.path_parameters:
        statuses.add(404)
        if _shadowed(operation, routes):
            statuses.add(405)
    if operation.doc.body is not None:
        statuses.update(BODY_STATUSES)
    return sorted(statuses)


def _shadowed(operation: _Operation, routes: Sequence[HTTPRoute]) -> bool:
    """Whether a route with a fixed segment where `operation`'s path has a parameter, and without
    `operation`'s method, takes some of its paths: the router prefers the fixed segment and answers 405."""
    segments = operation.path.strip("/").split("/")
    method = operation.method.upper()
    for route in routes:
        other = (route.path_format or "/").strip("/").split("/")
        if route is operation.route or len(other) != len(segments) or method in route.route_handler_map:
            continue
        if all(
            mine == theirs or (_is_parameter(mine) and not _is_parameter(theirs))
            for mine, theirs in zip(segments, other, strict=True)
        ):
            return True
    return False


def _is_parameter(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _problem_answer(schema: dict[str, Any], status: int) -> dict[str, Any]:
    return {
        "description": f"{_phrase(status)} (RFC 9457 problem).",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
    }


def _error_answer(schema: dict[str, Any], status: int, media_types: Sequence[str]) -> dict[str, Any]:
    return {"description": f"{_phrase(status)}.", "content": _contents(media_types, schema)}


def _contents(media_types: Sequence[str], schema: dict[str, Any]) -> dict[str, Any]:
    return {media_type: _content(media_type, schema)[media_type] for media_type in media_types}


def _content(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {media_type: {"schema": schema if _is_json(media_type) else _TEXT_SCHEMA}}


def _complete_operation(
    operation: _Operation,
    schemas: _Schemas,
    *,
    body: int | None,
    answer: int | None,
    others: dict[int, int | None],
    parameters: dict[tuple[str, str], int],
) -> None:
    spec, doc, handler = operation.spec, operation.doc, operation.handler
    if body is not None:
        body_media_types = doc.body_media_types or (MediaType.JSON.value,)
        spec["requestBody"] = {"required": doc.body_required, "content": _contents(body_media_types, schemas[body])}
    media_type = doc.media_type or _media_type(handler)
    status = handler.status_code
    success: dict[str, Any] = {"description": _phrase(status)}
    if answer is not None:
        success["content"] = _contents(doc.answer_media_types or (media_type,), schemas[answer])
    responses: dict[str, Any] = {str(status): success}
    for other_status, other in others.items():
        responses[str(other_status)] = {"description": _phrase(other_status)}
        if other is not None:
            responses[str(other_status)]["content"] = _content(media_type, schemas[other])
    spec["responses"] = responses
    for parameter in spec.get("parameters", []):
        where = (parameter["in"], parameter["name"].lower() if parameter["in"] == "header" else parameter["name"])
        if where in parameters:
            parameter["schema"] = _without_null(schemas[parameters[where]])
    scope = operation.scope
    if scope is not None:
        spec["security"] = [{scheme: []} for scheme in SECURITY_SCHEMES]
        spec["x-mintlog-scope"] = scope
        needs = f"Needs an API key with the scope `{scope}`."
        spec["description"] = f"{spec['description']}\n\n{needs}" if spec.get("description") else needs


class _CompleteJsonPlugin(OpenAPIRenderPlugin):
    """`/openapi.json`: the completed document, built once per app."""

    def __init__(self) -> None:
        super().__init__(path="/openapi.json", media_type=OpenAPIMediaType.OPENAPI_JSON)
        self._encoded: bytes | None = None

    def document(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> dict[str, Any]:
        return complete_document(request.app, openapi_schema)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._encoded is None:
            self._encoded = msgspec.json.encode(self.document(request, openapi_schema))
        return self._encoded


class _OfflinePagePlugin(OpenAPIRenderPlugin):
    """`/schema`: every operation with its scope and summary, as plain HTML with no script."""

    def __init__(self, document: _CompleteJsonPlugin) -> None:
        super().__init__(path="/", media_type=MediaType.HTML)
        self._document = document
        self._page: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._page is None:
            self._page = _page(self._document.document(request, openapi_schema)).encode()
        return self._page


def _page(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    title = html.escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    rows: list[str] = []
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            scope = operation.get("x-mintlog-scope")
            summary = html.escape(operation.get("summary") or "")
            description = html.escape(operation.get("description") or "").replace("\n\n", "<br>")
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{f'<code>{html.escape(scope)}</code>' if scope else 'none'}</td>"
                f"<td><details><summary>{summary}</summary>{description}</details></td></tr>"
            )
    return (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{vertical-align:top;padding:.2em .6em}"
        "tr:nth-child(even){background:#f4f4f4}</style></head><body>"
        f'<h1>{title}</h1><p>The OpenAPI document: <a href="/schema/openapi.json">/schema/openapi.json</a>. '
        "Authenticate with the <code>X-API-Key</code> header (or <code>Authorization: Bearer</code>, "
        "<code>ApiKey</code> or <code>Basic</code> with the key as password). "
        "Errors are <code>application/problem+json</code>."
        "</p><table><tr><th>method</th><th>path</th><th>scope</th><th>summary</th></tr>"
        f"{''.join(rows)}</table></body></html>"
    )


def openapi_config(*, title: str, version: str) -> OpenAPIConfig:
    """The OpenAPI configuration of a Mintlog app: the completed document at `/schema/openapi.json` and the
    offline page at `/schema`; any other `/schema/...` path is a 404."""
    document = _CompleteJsonPlugin()
    return OpenAPIConfig(
        title=title, version=version, path="/schema", render_plugins=[_OfflinePagePlugin(document), document]
    )

"""The OpenAPI document as a client generator reads it: every operation of the API port documents its body,
its answers and every error as a problem, from the same msgspec types the handlers use; `X-API-Key` is a
security scheme; the page at `/schema` loads nothing from the network.

In process: the API app over a runtime that is built but never opened (nothing is served, nothing stored),
and small apps of fake routes for what `complete_document` does with undeclared answers.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import httpx
import msgspec
import pytest
from litestar import Litestar, Response, post

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.http.app import create_app
from mintlog.http.guards import API_KEY_SCHEME, make_requires
from mintlog.http.openapi import IncompleteDocument, Problem, complete_document, documented
from mintlog.launch.bootstrap import bootstrap
from mintlog.metrics import Metrics
from mintlog.roles.api.admin.wire import TenantCreate
from mintlog.roles.api.logs.search import SearchRequest
from mintlog.roles.api.role import build_api_app
from mintlog.settings import load_settings

PROBLEM = "application/problem+json"
REF = "#/components/schemas/{name}"


async def _get(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=cast("Any", app))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        return await http.get(path)


@pytest.fixture(scope="module")
def api_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("openapi")
    runtime = bootstrap(load_settings({"MINTLOG_DATA_DIR": str(data_dir)}, env_file=None), bus=MemoryEventBus())
    return build_api_app(runtime)


@pytest.fixture(scope="module")
def document(api_app: Any) -> dict[str, Any]:
    """The served document, built once for the module (it is built once per app anyway)."""
    served = asyncio.run(_get(api_app, "/schema/openapi.json"))
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    return served.json()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in document["paths"].items() for method, operation in item.items()]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


async def test_every_operation_documents_its_answers_and_every_error_as_a_problem(document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert len(operations) >= 59
    for path, method, operation in operations:
        label = f"{method.upper()} {path}"
        responses = operation["responses"]
        successes = [status for status in responses if status.startswith("2")]
        assert len(successes) == 1, label
        answer = responses[successes[0]]
        if successes[0] != "204":
            (media_type, content), *_ = answer["content"].items()
            assert content["schema"] != {}, f"{label} answers an undescribed body"
            if media_type == "application/json":
                assert _resolve(document, content["schema"]), label
        for status, response in responses.items():
            if int(status) >= 400 and (path, status) != ("/readyz", "503"):
                assert response["content"] == {PROBLEM: {"schema": {"$ref": REF.format(name="Problem")}}}, label


PUBLIC_V1_PATHS = frozenset({"/v1/uptime/badges/{badge}", "/v1/oncall/ical/{feed}"})
"""The `/v1/` operations opened by a secret in their path instead of an API key (badges, calendar feeds: their
clients send no header)."""


async def test_every_v1_operation_needs_the_api_key_and_names_its_scope(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"][API_KEY_SCHEME] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (`mlk_…`); each operation names the scope it needs.",
    }
    schemes = document["components"]["securitySchemes"]
    assert (schemes["Bearer"]["scheme"], schemes["Basic"]["scheme"]) == ("bearer", "basic")
    assert schemes["ElasticApiKey"]["name"] == "Authorization"
    for path, method, operation in _operations(document):
        if not path.startswith("/v1/") or path in PUBLIC_V1_PATHS:
            assert "security" not in operation
            continue
        scope = operation["x-mintlog-scope"]
        assert operation["security"] == [{API_KEY_SCHEME: []}, {"Bearer": []}, {"ElasticApiKey": []}, {"Basic": []}], (
            method,
            path,
        )
        assert f"Needs an API key with the scope `{scope}`." in operation["description"]
        assert {"400", "401", "403", "429", "503"} <= operation["responses"].keys(), (method, path)


async def test_bodies_are_the_schemas_msgspec_writes_for_the_types_the_handlers_decode(
    document: dict[str, Any],
) -> None:
    (created,), components = msgspec.json.schema_components([TenantCreate], ref_template=REF)
    create_tenant = document["paths"]["/v1/admin/tenants"]["post"]
    assert create_tenant["requestBody"] == {"required": True, "content": {"application/json": {"schema": created}}}
    assert document["components"]["schemas"]["TenantCreate"] == components["TenantCreate"]
    assert {"409", "413", "422"} <= create_tenant["responses"].keys()
    search = document["paths"]["/v1/logs/search"]["post"]
    assert search["requestBody"]["required"] is False
    search_body = document["components"]["schemas"]["SearchRequest"]
    assert search_body == msgspec.json.schema_components([SearchRequest], ref_template=REF)[1]["SearchRequest"]
    # Times are RFC 3339 or relative, in bodies and query parameters alike.
    assert search_body["properties"]["from"]["anyOf"][0]["anyOf"][0] == {"type": "string", "format": "date-time"}
    audit_from = next(
        parameter for parameter in document["paths"]["/v1/audit"]["get"]["parameters"] if parameter["name"] == "from"
    )
    assert audit_from["schema"]["anyOf"] == [
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": "^now([+-][0-9]{1,9}(ms|s|m|h|d|w))?$"},
    ]
    problem = document["components"]["schemas"]["Problem"]
    assert problem == msgspec.json.schema_components([Problem], ref_template=REF)[1]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code", "request_id"}


async def test_the_tail_is_an_event_stream_and_bytes_answers_their_real_schema(document: dict[str, Any]) -> None:
    tail = document["paths"]["/v1/logs/tail"]["post"]
    assert tail["responses"]["200"]["content"] == {"text/event-stream": {"schema": {"type": "string"}}}
    for path, method, name in [
        ("/v1/logs/search", "post", "SearchResponse"),
        ("/v1/logs/aggregate", "post", "AggregateAnswer"),
        ("/v1/logs/fields", "get", "FieldsAnswer"),
        ("/v1/logs/{event_id}/context", "get", "EventContext"),
        ("/readyz", "get", "Readiness"),
    ]:
        content = document["paths"][path][method]["responses"]["200"]["content"]
        assert content == {"application/json": {"schema": {"$ref": REF.format(name=name)}}}, path
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert metrics == {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}


async def test_put_and_patch_of_a_resource_are_one_documented_update(document: dict[str, Any]) -> None:
    item = document["paths"]["/v1/alerts/rules/{rule_id}"]
    assert item["put"]["requestBody"] == item["patch"]["requestBody"]
    assert item["put"]["responses"] == item["patch"]["responses"]
    assert item["put"]["operationId"] != item["patch"]["operationId"]


async def test_a_path_a_fixed_sibling_shadows_documents_the_405_the_router_answers(
    api_app: Any, document: dict[str, Any]
) -> None:
    """`/v1/incidents/stats` is both the stats (GET) and, to the document, an `{incident_id}` one may PATCH: the
    router takes the fixed path and answers 405, which the PATCH operation must list (the fuzzer found it)."""
    assert "405" in document["paths"]["/v1/incidents/{incident_id}"]["patch"]["responses"]
    assert "405" not in document["paths"]["/v1/incidents/{incident_id}"]["get"]["responses"]
    assert "405" not in document["paths"]["/v1/alerts/rules/{rule_id}"]["patch"]["responses"]
    transport = httpx.ASGITransport(app=cast("Any", api_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        answer = await http.patch("/v1/incidents/stats", json={"status": "resolved"})
    assert answer.status_code == 405
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == "method_not_allowed"
    assert "GET" in answer.headers["allow"]
    assert (
        answer.json()["detail"] == f"PATCH is not allowed on /v1/incidents/stats; it answers {answer.headers['allow']}"
    )


async def test_the_page_works_offline_and_no_cdn_page_is_served(api_app: Any) -> None:
    page = await _get(api_app, "/schema")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text.lower()
    assert not re.search(r"(src|href)=\"https?://", page.text), "the page loads nothing from the network"
    assert '<a href="/schema/openapi.json">' in page.text
    assert "<code>/v1/logs/search</code>" in page.text
    for cdn_page in ("/schema/swagger", "/schema/redoc", "/schema/elements", "/schema/rapidoc", "/schema/scalar"):
        assert (await _get(api_app, cdn_page)).status_code == 404, cdn_page


def _app_answering_undeclared_bytes(declared: bool) -> Litestar:
    requires = make_requires(cast("Any", object()), rate_limits=None)

    @post(
        "/v1/things",
        guards=[requires("search:logs")],
        status_code=200,
        opt=documented(body=SearchRequest, answer=dict[str, list[Any]], errors=(409,)) if declared else None,
    )
    async def things() -> Response[bytes]:
        return Response(b"{}", media_type="application/json")

    return Litestar([things], debug=False, logging_config=None)


def test_an_undeclared_bytes_answer_is_refused_when_strict_and_unconstrained_when_served() -> None:
    app = _app_answering_undeclared_bytes(declared=False)
    with pytest.raises(IncompleteDocument, match=r"POST /v1/things answers .*documented\(answer=\.\.\.\)"):
        complete_document(app, app.openapi_schema.to_schema(), strict=True)
    served = complete_document(app, app.openapi_schema.to_schema())
    assert served["paths"]["/v1/things"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {}


def test_a_declared_operation_is_complete_with_the_statuses_of_its_guard_and_body() -> None:
    app = _app_answering_undeclared_bytes(declared=True)
    operation = complete_document(app, app.openapi_schema.to_schema(), strict=True)["paths"]["/v1/things"]["post"]
    assert sorted(operation["responses"]) == ["200", "400", "401", "403", "408", "409", "413", "429", "503"]
    # An array of anything gets `items: {}` (the same meaning), which client generators need.
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {}},
    }
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": REF.format(name="SearchRequest")
    }
    assert operation["x-mintlog-scope"] == "search:logs"


async def test_the_ops_and_ingest_style_apps_serve_their_document_too() -> None:
    app = create_app(server="ops", route_handlers=[], metrics=Metrics(), readiness_checks={})
    served = await _get(app, "/schema/openapi.json")
    assert served.status_code == 200
    assert served.json()["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"] == {
        "schema": {"$ref": REF.format(name="Health")}
    }

"""The ways a client presents its API key (`X-API-Key`, `Authorization: Bearer|ApiKey|Basic`): each admits the same
key with the same scopes, and every malformed header gets the same 401 problem as a wrong key, never a 500."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import get
from litestar.testing import AsyncTestClient

from mintlog.adapters.cache.memory import MemoryCache
from mintlog.auth import UNAUTHORIZED_DETAIL, Authenticator, presented_key
from mintlog.http.app import create_app
from mintlog.http.guards import make_requires
from mintlog.metrics import Metrics
from tests.fakes import FakeKeyMetadata

KEY = "mlk_abc"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": KEY},
        {"authorization": f"Bearer {KEY}"},
        {"authorization": f"bearer   {KEY} "},
        {"authorization": f"ApiKey {KEY}"},
        {"authorization": f"ApiKey {b64('any-id:' + KEY)}"},
        {"authorization": f"APIKEY {b64('any-id:' + KEY).rstrip('=')}"},
        {"authorization": f"Basic {b64('elastic:' + KEY)}"},
        {"authorization": f"Basic {b64(':' + KEY)}"},
        {"x-api-key": KEY, "authorization": "Bearer mlk_other"},
    ],
)
def test_every_form_presents_the_key(headers: dict[str, str]) -> None:
    assert presented_key(headers) == KEY


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "ApiKey",
        "Basic",
        "Basic ====",
        f"Basic {b64('user-without-password')}",
        f"Basic {b64('user:')}",
        "Basic " + base64.b64encode(b"user:\xff\xfe").decode(),
        f"Digest username={KEY}",
        KEY,
    ],
)
def test_a_malformed_header_presents_no_key(authorization: str) -> None:
    assert presented_key({"authorization": authorization}) is None


@pytest.fixture
async def guarded() -> AsyncIterator[tuple[AsyncTestClient[Any], str, str]]:
    """An app with `GET /v1/thing` needing `search:logs`; a key with the scope and one without."""
    metadata = FakeKeyMetadata()
    authenticator = Authenticator(metadata, MemoryCache(), ttl_seconds=300)  # type: ignore[arg-type]
    requires = make_requires(authenticator, rate_limits=None)

    @get("/v1/thing", guards=[requires("search:logs")], sync_to_thread=False)
    def thing() -> dict[str, str]:
        return {"ok": "yes"}

    app = create_app(server="test", route_handlers=[thing], metrics=Metrics(), readiness_checks={})
    allowed, _ = metadata.add(scopes=("search:logs",))
    ingest_only, _ = metadata.add(scopes=("ingest:logs",))
    async with AsyncTestClient(app=app) as client:
        yield client, allowed, ingest_only


def forms(key: str) -> list[dict[str, str]]:
    return [
        {"X-API-Key": key},
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"ApiKey {key}"},
        {"Authorization": f"ApiKey {b64('VuaCfGcBCdbkQm-e5aOx:' + key)}"},
        {"Authorization": f"Basic {b64('anyone:' + key)}"},
    ]


async def test_each_form_admits_a_key_with_the_scope(guarded: tuple[AsyncTestClient[Any], str, str]) -> None:
    client, allowed, _ = guarded
    for headers in forms(allowed):
        response = await client.get("/v1/thing", headers=headers)
        assert (response.status_code, response.json()) == (200, {"ok": "yes"}), headers


async def test_each_form_still_checks_the_scope(guarded: tuple[AsyncTestClient[Any], str, str]) -> None:
    client, _, ingest_only = guarded
    for headers in forms(ingest_only):
        response = await client.get("/v1/thing", headers=headers)
        assert (response.status_code, response.json()["code"]) == (403, "missing_scope"), headers


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer mlk_wrong",
        "Bearer " + "x" * 5000,
        "ApiKey %%%",
        f"ApiKey {b64('id-only')}",
        "Basic @@@@",
        f"Basic {b64('user:mlk_wrong')}",
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
        "Negotiate abc",
        "Bearer\tmlk_x",
    ],
)
async def test_a_malformed_or_wrong_header_is_the_usual_401(
    guarded: tuple[AsyncTestClient[Any], str, str], authorization: str
) -> None:
    client, _, _ = guarded
    response = await client.get("/v1/thing", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (response.json()["code"], response.json()["detail"]) == ("unauthorized", UNAUTHORIZED_DETAIL)


async def test_a_key_in_the_url_is_still_refused_whatever_the_header(
    guarded: tuple[AsyncTestClient[Any], str, str],
) -> None:
    client, allowed, _ = guarded
    response = await client.get(f"/v1/thing?api_key={allowed}", headers={"Authorization": f"Bearer {allowed}"})
    assert (response.status_code, response.json()["code"]) == (400, "key_in_query")

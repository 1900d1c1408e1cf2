"""A client generated from Mintlog's OpenAPI documents by a standard generator drives the quick start.

`openapi-python-client` (the `dev` extra) generates one Python package from each port's document, as a real
`mintlog run` serves it (`/schema/openapi.json`). Through those packages only, with the key `mintlog admin
bootstrap` printed in the `ApiKey` scheme: ingest two events, find them with search, list the tenant's keys,
create one and use it; and an error comes back as the documented `Problem`. Nothing here is written by hand
against the API: a body, an answer or a status missing from a document would be missing from the client.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess

pytestmark = pytest.mark.e2e

_GENERATOR = Path(sys.executable).with_name("openapi-python-client")
# Without post hooks the generator does not run ruff over its output: not needed to import it.
_GENERATOR_CONFIG = "post_hooks: []\n"


@dataclass(frozen=True)
class GeneratedClients:
    """The running Mintlog, the bootstrap key, and the package generated from each port's document."""

    process: MintlogProcess
    key: str
    ingest: str
    api: str

    def module(self, package: str, name: str) -> ModuleType:
        return importlib.import_module(f"{package}.{name}")

    def client(self, package: str, base_url: str, key: str | None = None) -> Any:
        """An authenticated client of `package`: the key in `X-API-Key`, no prefix."""
        authenticated = self.module(package, "client").AuthenticatedClient
        return authenticated(base_url=base_url, token=key or self.key, prefix="", auth_header_name="X-API-Key")


def _generate(document_url: str, output: Path, config: Path) -> None:
    document = output.parent / f"{output.name}.json"
    served = httpx.get(document_url, timeout=30)
    assert served.status_code == 200, served.text
    document.write_bytes(served.content)
    generated = subprocess.run(
        [
            *(str(_GENERATOR), "generate", "--path", str(document), "--output-path", str(output)),
            *("--meta", "none", "--config", str(config)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # The generator reports every schema it could not turn into a model; a complete document has none.
    assert "Unable to" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeneratedClients]:
    root = tmp_path_factory.mktemp("generated")
    config = root / "generator.yaml"
    config.write_text(_GENERATOR_CONFIG)
    process = MintlogProcess(data_dir=root / "data")
    try:
        process.start()
        key = process.bootstrap("demo")
        _generate(f"{process.ingest_url}/schema/openapi.json", root / "mintlog_ingest_client", config)
        _generate(f"{process.api_url}/schema/openapi.json", root / "mintlog_api_client", config)
        sys.path.insert(0, str(root))
        try:
            yield GeneratedClients(process=process, key=key, ingest="mintlog_ingest_client", api="mintlog_api_client")
        finally:
            sys.path.remove(str(root))
            for name in [
                name for name in sys.modules if name.startswith(("mintlog_ingest_client", "mintlog_api_client"))
            ]:
                del sys.modules[name]
    finally:
        process.cleanup()


def _search_until(clients: GeneratedClients, body: Any, total: int, timeout_seconds: float = 30.0) -> Any:
    search = clients.module(clients.api, "api.default.v1_logs_search_search_logs")
    answer_type = clients.module(clients.api, "models").SearchResponse
    deadline = time.monotonic() + timeout_seconds
    with clients.client(clients.api, clients.process.api_url) as api:
        while True:
            answer = search.sync(client=api, body=body)
            assert isinstance(answer, answer_type), answer
            if answer.total >= total or time.monotonic() > deadline:
                return answer
            time.sleep(0.2)


def test_the_quick_start_through_generated_clients(clients: GeneratedClients) -> None:
    ingest_models = clients.module(clients.ingest, "models")
    api_models = clients.module(clients.api, "models")
    ingest = clients.module(clients.ingest, "api.default.v1_ingest_logs_ingest_logs")
    body = ingest_models.IngestBody(
        events=[
            {"service": "web", "level": "error", "message": "connection timeout"},
            {"service": "api", "level": "info", "message": "user logged in", "fields": {"user_id": "u123"}},
        ]
    )
    with clients.client(clients.ingest, clients.process.ingest_url) as client:
        answered = ingest.sync_detailed(client=client, body=body)
    assert answered.status_code == 202, answered.content
    assert answered.parsed.accepted == 2
    assert answered.parsed.rejected == 0

    found = _search_until(clients, api_models.SearchRequest(query="timeout", level="error", size=10), total=1)
    assert found.total == 1
    assert [event.message for event in found.events] == ["connection timeout"]
    assert found.events[0].service == "web"

    list_keys = clients.module(clients.api, "api.default.v1_keys_list_keys")
    with clients.client(clients.api, clients.process.api_url) as api:
        page = list_keys.sync(client=api, limit="10")
        assert isinstance(page, api_models.PageApiKeyView), page
        assert [key.prefix for key in page.items] == [clients.key[:12]]
        assert page.next_cursor is None

        create_key = clients.module(clients.api, "api.default.v1_keys_create_key")
        scope = api_models.KeyCreateScopesType0Item("search:logs")  # the scopes are an enum in the document
        created = create_key.sync(client=api, body=api_models.KeyCreate(name="reader", scopes=[scope]))
        assert isinstance(created, api_models.CreatedApiKeyView), created
        assert created.key.startswith("mlk_")
    with clients.client(clients.api, clients.process.api_url, key=created.key) as reader:
        everything = clients.module(clients.api, "api.default.v1_logs_search_search_logs").sync(
            client=reader, body=api_models.SearchRequest()
        )
        assert isinstance(everything, api_models.SearchResponse), everything
        assert everything.total == 2


def test_an_error_is_the_documented_problem(clients: GeneratedClients) -> None:
    api_models = clients.module(clients.api, "models")
    get_key = clients.module(clients.api, "api.default.v1_keys_key_id_get_key")
    with clients.client(clients.api, clients.process.api_url) as api:
        missing = get_key.sync_detailed(client=api, key_id="key_0000000000000000")
    assert missing.status_code == 404
    assert isinstance(missing.parsed, api_models.Problem)
    assert missing.parsed.code == "key_not_found"
    assert missing.parsed.request_id == missing.headers["x-request-id"]
    with clients.client(clients.api, clients.process.api_url, key="mlk_not-a-key") as stranger:
        refused = get_key.sync_detailed(client=stranger, key_id="key_0000000000000000")
    assert refused.status_code == 401
    assert refused.parsed.code == "unauthorized"

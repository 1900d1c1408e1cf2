"""Every bad ingest input gets its documented status and a problem+json body, and nothing of it is stored."""

from __future__ import annotations

import gzip
import json
import socket
import sys
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess

PROBLEM = "application/problem+json"


def post_raw(mintlog: MintlogProcess, key: str | None, body: bytes, **headers: str) -> httpx.Response:
    all_headers = {"Content-Type": "application/json", **headers}
    if key is not None:
        all_headers["X-API-Key"] = key
    return httpx.post(f"{mintlog.ingest_url}/v1/ingest/logs", content=body, headers=all_headers, timeout=30)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["title"]
    assert problem["detail"]
    assert problem["type"].startswith("https://")
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


BAD_BODIES = [
    pytest.param(b'{"events": [', 400, "malformed_json", id="malformed-json"),
    pytest.param(b'{"events": {"message": "x"}}', 400, "wrong_shape", id="events-not-a-list"),
    pytest.param(b'[{"message": "x"}]', 400, "wrong_shape", id="top-level-array"),
    pytest.param(b'{"events": [], "extra": 1}', 400, "wrong_shape", id="unknown-top-level-member"),
    pytest.param(b'{"events": []}', 400, "empty_events", id="empty-events"),
    pytest.param(b"", 400, "empty_body", id="empty-body"),
    pytest.param(b'{"events": [{"message": "caf\xe9 bad"}]}', 400, "malformed_json", id="invalid-utf8"),
    pytest.param(b'{"events": [1, "two", null]}', 422, "all_events_rejected", id="events-not-objects"),
    pytest.param(b'{"events": [{"message": 42}]}', 422, "all_events_rejected", id="wrong-type"),
    pytest.param(
        json.dumps(
            {"events": [{"message": "deep", "fields": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}]}
        ).encode(),
        422,
        "all_events_rejected",
        id="nesting-past-the-limit",
    ),
    pytest.param(b'{"events": [{"message": "\\ud800 lone surrogate"}]}', 400, "malformed_json", id="lone-surrogate"),
    pytest.param(
        b'{"events": [{"message": "x", "fields": ' + b'{"a": ' * 1_000 + b"1" + b"}" * 1_000 + b"}]}",
        400,
        "too_deep",
        id="1000-nested-objects-in-fields",
    ),
    pytest.param(b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", 400, "too_deep", id="100000-nested-arrays"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_BODIES)
def test_bad_bodies(running: tuple[MintlogProcess, str], body: bytes, status: int, code: str) -> None:
    mintlog, key = running
    problem = assert_problem(post_raw(mintlog, key, body), status, code)
    if code == "all_events_rejected":
        assert problem["errors"]
        assert all({"index", "reason"} <= set(error) for error in problem["errors"])
    if code == "too_deep":
        assert f"the limit is below {sys.getrecursionlimit()} levels" in problem["detail"]


def test_too_many_events_is_413(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    body = json.dumps({"events": [{"message": "x"}] * 10_001}).encode()
    assert_problem(post_raw(mintlog, key, body), 413, "too_many_events")


def test_oversize_body_is_413(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    body = b'{"events": [{"message": "' + b"x" * (6 * 1024 * 1024) + b'"}]}'
    assert_problem(post_raw(mintlog, key, body), 413, "body_too_large")


def test_gzip_body_is_accepted(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    body = gzip.compress(json.dumps({"events": [{"message": "zipped", "service": "gz"}]}).encode())
    response = post_raw(mintlog, key, body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 202, response.text
    assert mintlog.wait_for_total(key, {"service": "gz"}, 1)["total"] == 1


def test_gzip_bomb_is_413(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    bomb = gzip.compress(b'{"events": [{"message": "' + b"0" * (200 * 1024 * 1024) + b'"}]}')
    assert len(bomb) < 1024 * 1024
    assert_problem(post_raw(mintlog, key, bomb, **{"Content-Encoding": "gzip"}), 413, "decompressed_body_too_large")


def test_gzip_members_are_read_as_one_stream(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    first = gzip.compress(b'{"events": [{"message": "first member", "service": "gz-members"},')
    second = gzip.compress(b' {"message": "second member", "service": "gz-members"}]}')
    response = post_raw(mintlog, key, first + second, **{"Content-Encoding": "gzip"})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 2
    answer = mintlog.wait_for_total(key, {"service": "gz-members"}, 2)
    assert sorted(event["message"] for event in answer["events"]) == ["first member", "second member"]


def test_garbage_after_gzip_data_is_400(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    body = gzip.compress(b'{"events": [{"message": "trailinggarbage"}]}') + b"not gzip at all"
    problem = assert_problem(post_raw(mintlog, key, body, **{"Content-Encoding": "gzip"}), 400, "trailing_data")
    assert "15 bytes after the end of its gzip data" in problem["detail"]


def raw_exchange(port: int, request: bytes, *, close_write: bool) -> tuple[int, dict[str, str], bytes]:
    """Send `request` bytes on a new connection (then half-close it if asked); the answer read to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


BROKEN_CHUNKED_BODIES = [
    pytest.param(b"zz\r\n{}\r\n0\r\n\r\n", False, id="bad-chunk-size"),
    pytest.param(b"40\r\n" + b'{"events": [{"message": "cut', True, id="closed-mid-chunk"),
]


@pytest.mark.parametrize(("port_name", "path"), [("ingest", "/v1/ingest/logs"), ("api", "/v1/logs/search")])
@pytest.mark.parametrize(("chunks", "close_write"), BROKEN_CHUNKED_BODIES)
def test_a_broken_chunked_body_is_400(
    running: tuple[MintlogProcess, str], port_name: str, path: str, chunks: bytes, close_write: bool
) -> None:
    mintlog, key = running
    port = mintlog.ingest_port if port_name == "ingest" else mintlog.api_port
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunks
    status, headers, body = raw_exchange(port, request, close_write=close_write)
    assert status == 400, body
    assert headers["content-type"].startswith(PROBLEM)
    problem = json.loads(body)
    assert problem["code"] == "incomplete_body"
    assert problem["request_id"] == headers["x-request-id"]


def test_unsupported_media_type_is_415(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    response = post_raw(mintlog, key, b"--x\r\n", **{"Content-Type": "multipart/form-data; boundary=x"})
    problem = assert_problem(response, 415, "unsupported_content_type")
    assert "send the header `Content-Type: application/json`" in problem["detail"]
    response = post_raw(mintlog, key, b'{"events": [{"message": "x"}]}', **{"Content-Encoding": "br"})
    assert_problem(response, 415, "unsupported_content_encoding")


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_a_json_body_is_accepted_without_a_json_content_type(
    running: tuple[MintlogProcess, str], content_type: str | None
) -> None:
    """As every API endpoint reads its body: no type at all, or what `curl -d` and plain clients send."""
    mintlog, key = running
    service = f"typed-{content_type or 'none'}".replace("/", "-")
    headers = {"X-API-Key": key} | ({"Content-Type": content_type} if content_type else {})
    body = json.dumps({"events": [{"message": "sent loosely", "service": service}]}).encode()
    response = httpx.post(f"{mintlog.ingest_url}/v1/ingest/logs", content=body, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    assert response.request.headers.get("content-type") == content_type
    assert mintlog.wait_for_total(key, {"service": service}, 1)["total"] == 1


@pytest.mark.parametrize("key", [None, "", "nope", "mlk_" + "A" * 38])
def test_missing_or_invalid_key_is_401(running: tuple[MintlogProcess, str], key: str | None) -> None:
    mintlog, _key = running
    response = post_raw(mintlog, key, b'{"events": [{"message": "x"}]}')
    problem = assert_problem(response, 401, "unauthorized")
    assert problem["detail"] == "missing or invalid API key (send it in the X-API-Key header)"


def test_key_in_query_string_is_400(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    response = httpx.post(
        f"{mintlog.ingest_url}/v1/ingest/logs?api_key={key}", json={"events": [{"message": "x"}]}, timeout=10
    )
    assert_problem(response, 400, "key_in_query")


def test_wrong_scope_is_403(running: tuple[MintlogProcess, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    mintlog, _key = running
    import asyncio
    from datetime import UTC, datetime

    from mintlog.adapters.db.sql import SqlMetadataStore
    from mintlog.domain.keys import generate_api_key
    from mintlog.domain.tenants import ApiKey

    generated = generate_api_key()

    async def add_search_only_key() -> None:
        store = SqlMetadataStore(f"sqlite+aiosqlite:///{mintlog.data_dir / 'mintlog.db'}", migrate_on_start=False)
        await store.start()
        try:
            await store.create_api_key(
                ApiKey(
                    id="key_search_only",
                    tenant_id="demo",
                    name="search only",
                    key_hash=generated.key_hash,
                    prefix=generated.prefix,
                    scopes=("search:logs",),
                    created_at=datetime.now(UTC),
                )
            )
        finally:
            await store.close()

    asyncio.run(add_search_only_key())
    problem = assert_problem(
        post_raw(mintlog, generated.secret, b'{"events": [{"message": "x"}]}'), 403, "missing_scope"
    )
    assert "ingest:logs" in problem["detail"]
    search = httpx.post(f"{mintlog.api_url}/v1/logs/search", json={}, headers={"X-API-Key": generated.secret})
    assert search.status_code == 200


def test_partly_bad_batch_stores_only_the_good_events(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    events: list[object] = [
        {"message": "good one", "service": "partial"},
        "not an object",
        {"message": "x" * (65 * 1024), "service": "partial"},
        {"message": "good two", "service": "partial"},
        {"message": "too many fields", "service": "partial", "fields": {f"k{i}": i for i in range(200)}},
    ]
    response = mintlog.ingest(key, {"events": events})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == 3
    assert [error["index"] for error in body["errors"]] == [1, 2, 4]
    answer = mintlog.wait_for_total(key, {"service": "partial"}, 2)
    assert sorted(event["message"] for event in answer["events"]) == ["good one", "good two"]


def test_nothing_rejected_reached_the_store(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    for query in ("deep", "lone", "zipped-never", "too many fields", "trailinggarbage"):
        answer = mintlog.search(key, {"query": query}).json()
        assert answer["total"] == 0, (query, answer)


def test_idempotency_key_replays_the_first_answer(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    body = {"events": [{"message": "charged card", "service": "billing"}]}
    first = mintlog.ingest(key, body, **{"Idempotency-Key": "retry-123"})
    second = mintlog.ingest(key, body, **{"Idempotency-Key": "retry-123"})
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    mintlog.wait_for_total(key, {"service": "billing"}, 1)
    other = mintlog.ingest(key, {"events": [{"message": "different"}]}, **{"Idempotency-Key": "retry-123"})
    assert_problem(other, 422, "idempotency_key_reused")
    import time

    time.sleep(1.0)
    assert mintlog.search(key, {"service": "billing"}).json()["total"] == 1


def test_search_errors_are_problems(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    response = httpx.post(f"{mintlog.api_url}/v1/logs/search", content=b"{oops", headers={"X-API-Key": key})
    assert_problem(response, 400, "malformed_json")
    assert_problem(mintlog.search(key, {"size": 100_000}), 400, "invalid_size")
    assert_problem(httpx.post(f"{mintlog.api_url}/v1/logs/search", json={}), 401, "unauthorized")
    not_found = httpx.get(f"{mintlog.api_url}/v1/nothing-here")
    assert_problem(not_found, 404, "not_found")
    wrong_method = httpx.get(f"{mintlog.ingest_url}/v1/ingest/logs", headers={"X-API-Key": key})
    assert_problem(wrong_method, 405, "method_not_allowed")

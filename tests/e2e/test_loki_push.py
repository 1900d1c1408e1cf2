"""Loki push end to end: real Loki client libraries from npm push to a real `mintlog run` — `winston-loki` in its
protobuf + snappy mode (and its JSON mode) and `pino-loki` (JSON) — and their entries are found by search with the
right service, host, level, timestamp and fields; a partly bad push is answered the way Loki answers (400 text naming
the refused entries, the others stored), and bad bodies get Loki's plain-text errors with nothing accepted lost.

Node.js and npm must be installed (`.ci/run` installs them with apt-get); the clients are installed from the npm
registry with `npm ci` (tests/clients/loki/package-lock.json) when missing or when the lockfile changed
(tests/e2e/node_clients.py). Without node the tests fail, never skip.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import cramjam
import httpx
import pytest

from mintlog.roles.ingest.decoders.loki_proto import PushRequest
from tests.e2e.harness import MintlogProcess
from tests.e2e.node_clients import CLIENTS as NODE_CLIENTS
from tests.e2e.node_clients import installed_node

pytestmark = pytest.mark.e2e

CLIENTS = NODE_CLIENTS / "loki"
LINES = [
    {"level": "error", "message": "payment declined for order 17"},
    {"level": "warn", "message": "retrying payment for order 17"},
    {"level": "info", "message": "order 17 shipped"},
]
PUSH_PATH = "/loki/api/v1/push"


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the client libraries installed (`npm ci` from the lockfile when missing or stale)."""
    return installed_node(CLIENTS)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MintlogProcess, str]]:
    process = MintlogProcess(data_dir=tmp_path_factory.mktemp("mintlog") / "data")
    try:
        process.start()
        yield process, process.bootstrap("demo")
    finally:
        process.cleanup()


def push_with_client(
    node: str,
    mintlog: MintlogProcess,
    key: str,
    client: str,
    job: str,
    time_ms: int,
    *,
    auth: str = "header",
    lines: list[dict[str, str]] = LINES,
    winston_json: bool = False,
) -> dict[str, Any]:
    env = {
        **os.environ,
        "LOKI_URL": mintlog.ingest_url,
        "LOKI_KEY": key,
        "LOKI_AUTH": auth,
        "LOKI_JOB": job,
        "LOKI_TIME_MS": str(time_ms),
        "LOKI_LINES": json.dumps(lines),
        "WINSTON_JSON": "1" if winston_json else "0",
    }
    finished = subprocess.run(
        [node, "push.mjs", client], cwd=CLIENTS, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def found(mintlog: MintlogProcess, key: str, service: str, count: int) -> list[dict[str, Any]]:
    answer = mintlog.wait_for_total(key, {"query": f"service:{service}", "from": "now-1h"}, count, timeout_seconds=30)
    assert answer["total"] == count, answer
    return answer["events"]


def recent_ms() -> int:
    return (time.time_ns() // 1_000_000) - 60_000


def at(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, UTC)


def test_winston_loki_protobuf_and_snappy_entries_are_found(node: str, running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    time_ms = recent_ms()

    outcome = push_with_client(node, mintlog, key, "winston", "winston-proto", time_ms)

    assert outcome == {"client": "winston", "contentType": "application/x-protobuf", "errors": []}
    events = found(mintlog, key, "winston-proto", 3)
    assert {event["message"]: event["level"] for event in events} == {line["message"]: line["level"] for line in LINES}
    for event in events:
        assert (event["source"], event["host"]) == ("loki", "winston-host")
        assert datetime.fromisoformat(event["timestamp"]) == at(time_ms)
        assert "job" not in event.get("fields", {})  # it named the service


def test_winston_loki_json_mode_with_basic_auth_brings_structured_metadata(
    node: str, running: tuple[MintlogProcess, str]
) -> None:
    mintlog, key = running
    time_ms = recent_ms()

    outcome = push_with_client(node, mintlog, key, "winston", "winston-json", time_ms, auth="basic", winston_json=True)

    assert outcome == {"client": "winston", "contentType": "application/json", "errors": []}
    events = found(mintlog, key, "winston-json", 3)
    for event in events:
        assert event["host"] == "winston-host"
        assert event["fields"]["request_id"] == "r-1"  # winston's meta, sent as structured metadata
        assert datetime.fromisoformat(event["timestamp"]) == at(time_ms)


def test_pino_loki_json_entries_are_found_with_trace_ids_and_fields(
    node: str, running: tuple[MintlogProcess, str]
) -> None:
    mintlog, key = running
    time_ms = recent_ms()

    outcome = push_with_client(node, mintlog, key, "pino", "pino-json", time_ms, auth="basic")

    assert outcome == {"client": "pino", "contentType": "application/json", "errors": []}
    events = found(mintlog, key, "pino-json", 3)
    # pino-loki's level label says `warning` for warn: any level name reads
    assert {event["message"]: event["level"] for event in events} == {line["message"]: line["level"] for line in LINES}
    for event in events:
        assert (event["source"], event["host"]) == ("loki", "pino-host")
        assert event["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"  # structured metadata
        assert event["fields"]["tenant_hint"] == "blue"
        assert event["fields"]["user"] == "ada"  # from the JSON line itself
        assert datetime.fromisoformat(event["timestamp"]) == at(time_ms)


def test_a_client_is_told_which_entries_were_refused_and_the_others_are_stored(
    node: str, running: tuple[MintlogProcess, str]
) -> None:
    mintlog, key = running
    too_long = {"level": "info", "message": "x" * (64 * 1024 + 1)}

    outcome = push_with_client(node, mintlog, key, "winston", "winston-partial", recent_ms(), lines=[*LINES, too_long])

    [error] = outcome["errors"]
    assert error.startswith("Server returned HTTP 400: 1 of 4 entries were rejected and the other 3 stored")
    assert "entry 3: `message` exceeds 65536 bytes" in error
    assert len(found(mintlog, key, "winston-partial", 3)) == 3


def snappy_push(labels: str, *lines: str) -> bytes:
    push = PushRequest(streams=[{"labels": labels, "entries": [{"line": line} for line in lines]}])
    return bytes(cramjam.snappy.compress_raw(push.SerializeToString()))


def post(mintlog: MintlogProcess, key: str, body: bytes, content_type: str) -> httpx.Response:
    return httpx.post(
        f"{mintlog.ingest_url}{PUSH_PATH}",
        content=body,
        headers={"X-API-Key": key, "Content-Type": content_type},
        timeout=30,
    )


def test_bad_bodies_get_loki_s_text_errors_and_nothing_accepted_is_lost(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    good = snappy_push('{job="bad-input"}', "before the bad ones")
    truncated = bytes(
        cramjam.snappy.compress_raw(
            PushRequest.FromString(bytes(cramjam.snappy.decompress_raw(good))).SerializeToString()[:-4]
        )
    )
    invalid_utf8 = json.dumps({"streams": [{"stream": {"job": "bad-input"}, "values": [["1", "BAD"]]}]}).encode()
    invalid_utf8 = invalid_utf8.replace(b"BAD", b"\xff\xfe")
    bad = [
        (b'{"streams": [{"stream": {"job": "bad-input"}, "values": [', "application/json", 400, "not valid JSON"),
        (truncated, "application/x-protobuf", 400, "protobuf"),
        (b"\xffnot snappy", "application/x-protobuf", 400, "snappy"),
        (invalid_utf8, "application/json", 400, "UTF-8"),
        (snappy_push("{}", "no labels"), "application/x-protobuf", 400, "at least one label pair is required"),
        (b"{" + b" " * (6 * 1024 * 1024) + b"}", "application/json", 413, "limit"),
        (b"hello", "text/plain", 415, "application/x-protobuf"),
    ]

    assert post(mintlog, key, good, "application/x-protobuf").status_code == 204
    for body, content_type, status, words in bad:
        response = post(mintlog, key, body, content_type)
        assert response.status_code == status, (content_type, response.text)
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert words in response.text
    assert (
        post(mintlog, key, snappy_push('{job="bad-input"}', "after the bad ones"), "application/x-protobuf").status_code
        == 204
    )

    events = found(mintlog, key, "bad-input", 2)
    assert sorted(event["message"] for event in events) == ["after the bad ones", "before the bad ones"]


def test_a_push_needs_a_key_in_any_form_a_loki_client_sends(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    body = snappy_push('{job="auth-forms"}', "authenticated")
    url = f"{mintlog.ingest_url}{PUSH_PATH}"
    kind = {"Content-Type": "application/x-protobuf"}

    refused = httpx.post(url, content=body, headers=kind, timeout=30)
    basic = base64.b64encode(f"tenant-1:{key}".encode()).decode()
    by_basic = httpx.post(url, content=body, headers={**kind, "Authorization": f"Basic {basic}"}, timeout=30)
    by_bearer = httpx.post(url, content=body, headers={**kind, "Authorization": f"Bearer {key}"}, timeout=30)

    assert (refused.status_code, refused.headers["content-type"]) == (401, "text/plain; charset=utf-8")
    assert (by_basic.status_code, by_bearer.status_code) == (204, 204)
    assert len(found(mintlog, key, "auth-forms", 2)) == 2

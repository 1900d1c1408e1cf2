"""Bounded searchable lag (issue 19): with the pipeline frozen, ingest refuses new batches once the backlog passes
its limit, on every path in the protocol's own shape, and accepts again once the pipeline caught up; every 202'd
event is searchable exactly once.

One all-in-one `mintlog run` (embedded NATS, Tantivy): its `normalize` pipeline child is frozen with SIGSTOP, so
batches pile up on `LOGS_RAW` as they would behind a pipeline that cannot keep up.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.distributed.cluster import CuttableProxy
from tests.e2e.harness import MintlogProcess, free_port
from tests.services import S3Service

SERVICE = "backlog-e2e"
MAX_BACKLOG_MESSAGES = 5


def pipeline_child(parent_pid: int, stage: str) -> int:
    """The pid of the pipeline child of `mintlog run` that runs `stage`."""
    children = Path(f"/proc/{parent_pid}/task/{parent_pid}/children").read_text().split()
    for child in children:
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"MINTLOG_PIPELINE__STAGES={stage}".encode() in environ:
            return int(child)
    raise AssertionError(f"no pipeline child runs {stage!r} under {parent_pid}")


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition `text` (0 when it is absent)."""
    wanted = ",".join(f'{label}="{value}"' for label, value in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def batch(marks: list[str]) -> dict[str, Any]:
    return {"events": [{"message": f"backlog {mark}", "service": SERVICE, "fields": {"mark": mark}} for mark in marks]}


def test_ingest_refuses_while_the_pipeline_is_behind_and_loses_nothing(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    tcp_port, udp_port = free_port(), free_port()
    mintlog = mintlog_factory(
        MINTLOG_INGEST__MAX_BACKLOG_MESSAGES=str(MAX_BACKLOG_MESSAGES),
        MINTLOG_INGEST__MAX_BACKLOG_SECONDS="0",
        MINTLOG_INGEST__BACKLOG_CHECK_INTERVAL_MS="200",
        MINTLOG_SYSLOG__TCP_PORT=str(tcp_port),
        MINTLOG_SYSLOG__UDP_PORT=str(udp_port),
    )
    mintlog.start()
    key = mintlog.bootstrap("backlog")
    assert mintlog.process is not None
    accepted: list[str] = []

    def send(count: int) -> httpx.Response:
        marks = [uuid.uuid4().hex for _ in range(count)]
        response = mintlog.ingest(key, batch(marks))
        if response.status_code == 202:
            accepted.extend(marks)
        return response

    assert send(10).status_code == 202
    assert mintlog.wait_for_total(key, {"service": SERVICE, "size": 1}, 10)["total"] == 10

    normalize = pipeline_child(mintlog.process.pid, "normalize")
    os.kill(normalize, signal.SIGSTOP)
    tcp_text = f"syslog over tcp while ingest refuses {uuid.uuid4().hex}"
    try:
        # Batches pile up on LOGS_RAW until the gate (read every 200 ms) sees more than 5 of them.
        deadline = time.monotonic() + 30
        while (refused := send(10)).status_code == 202:
            assert time.monotonic() < deadline, "ingest never refused"
            time.sleep(0.05)
        assert len(accepted) >= 10 + MAX_BACKLOG_MESSAGES * 10

        # The native body: 503 problem+json with Retry-After.
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        retry_after = int(refused.headers["retry-after"])
        assert retry_after > 0
        problem = refused.json()
        assert problem["code"] == "backlog_exceeded"
        assert problem["retry_after_seconds"] == retry_after
        assert "batches waiting (limit 5)" in problem["detail"]

        # _bulk: what an Elasticsearch node says when it cannot take more, which the clients' bulk helpers retry.
        ndjson = '{"index": {"_index": "logs"}}\n{"message": "refused bulk", "service": "backlog-e2e"}\n'
        bulk = httpx.post(
            f"{mintlog.ingest_url}/_bulk",
            content=ndjson,
            headers={"X-API-Key": key, "Content-Type": "application/x-ndjson"},
            timeout=30,
        )
        assert bulk.status_code == 429, bulk.text
        assert bulk.json()["error"]["type"] == "es_rejected_execution_exception"
        assert bulk.json()["status"] == 429
        assert int(bulk.headers["retry-after"]) > 0

        # OTLP/HTTP: 503 (retryable) with Retry-After and a google.rpc.Status UNAVAILABLE.
        otlp_body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "refused otlp"}}]}]}]}
        otlp = httpx.post(f"{mintlog.ingest_url}/v1/logs", json=otlp_body, headers={"X-API-Key": key}, timeout=30)
        assert otlp.status_code == 503, otlp.text
        assert otlp.json()["code"] == 14
        assert int(otlp.headers["retry-after"]) > 0

        # Loki push: 429 with Retry-After, in text.
        loki_body = {"streams": [{"stream": {"job": SERVICE}, "values": [[str(time.time_ns()), "refused loki"]]}]}
        loki = httpx.post(
            f"{mintlog.ingest_url}/loki/api/v1/push", json=loki_body, headers={"X-API-Key": key}, timeout=30
        )
        assert loki.status_code == 429, loki.text
        assert loki.headers["content-type"].startswith("text/plain")
        assert int(loki.headers["retry-after"]) > 0

        # Syslog: a UDP message is dropped and counted; a TCP one is held (reading pauses) and stored later.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
            datagram.sendto(
                f"<14>Dec  5 10:00:00 h {SERVICE}: {key} refused over udp".encode(), ("127.0.0.1", udp_port)
            )
        deadline = time.monotonic() + 15
        while True:
            metrics = httpx.get(f"{mintlog.ingest_url}/metrics", timeout=30).text
            if metric(metrics, "mintlog_syslog_dropped_total", transport="udp", reason="backlog") >= 1:
                break
            assert time.monotonic() < deadline, "the UDP message was not counted as dropped"
            time.sleep(0.2)
        message = f'<14>1 - h {SERVICE} - - [mintlog@32473 key="{key}"] {tcp_text}'.encode()
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as connection:
            connection.sendall(str(len(message)).encode() + b" " + message)
        assert metric(metrics, "mintlog_ingest_requests_rejected_total", reason="backlog_exceeded") >= 4
        assert metric(metrics, "mintlog_ingest_backlog_refusing") == 1
        assert metric(metrics, "mintlog_ingest_backlog_messages", stream="LOGS_RAW") > MAX_BACKLOG_MESSAGES
        assert mintlog.search(key, {"service": SERVICE, "size": 1}).json()["total"] == 10, (
            "nothing new is searchable while the pipeline is frozen"
        )
    finally:
        os.kill(normalize, signal.SIGCONT)

    # The pipeline drains the backlog; below 80 % of the limit ingest accepts again. (Batches the normalizer is
    # working on count only once it passed them on, so with a limit of 5 the gate may close once more right after.)
    deadline = time.monotonic() + 60
    while send(10).status_code != 202:
        assert time.monotonic() < deadline, "ingest never accepted again"
        time.sleep(0.2)
    while metric(httpx.get(f"{mintlog.ingest_url}/metrics", timeout=30).text, "mintlog_ingest_backlog_refusing"):
        assert time.monotonic() < deadline, "ingest kept refusing once the pipeline caught up"
        time.sleep(0.2)

    # Zero loss, no duplicate: every 202'd event once, plus the syslog TCP message held during the refusal.
    total = len(accepted) + 1
    answer = mintlog.wait_for_total(key, {"service": SERVICE, "size": 1000}, total, timeout_seconds=60)
    assert answer["total"] == total, f"{answer['total']} of {total} searchable"
    found = [event["fields"].get("mark") for event in answer["events"]]
    assert sorted(mark for mark in found if mark is not None) == sorted(accepted)
    assert [event["message"] for event in answer["events"] if event["fields"].get("mark") is None] == [tcp_text]
    time.sleep(1.0)  # anything redelivered late would show up as a duplicate now
    assert mintlog.search(key, {"service": SERVICE, "size": 1}).json()["total"] == total
    assert "refused" not in json.dumps([event["message"] for event in answer["events"]]).replace(tcp_text, "")
    assert mintlog.stop() == 0


def test_an_archive_that_cannot_write_does_not_stop_intake(
    mintlog_factory: Callable[..., MintlogProcess], s3_service: S3Service, s3_bucket: str
) -> None:
    """With the blob store down, raw batches wait on the bus for their archive object, but they are normalized and
    indexed all the same: search is not behind, so ingest keeps accepting (the gate used to close after its limit
    and keep intake refused for as long as the blob store was down)."""
    proxy = CuttableProxy(urlsplit(s3_service.endpoint).netloc)
    proxy.start()
    try:
        mintlog = mintlog_factory(
            **{
                **s3_service.env(s3_bucket),
                "MINTLOG_BLOB__S3__ENDPOINT": f"http://127.0.0.1:{proxy.port}",
                "MINTLOG_BLOB__S3__MAX_RETRIES": "0",
                "MINTLOG_BLOB__S3__TIMEOUT_SECONDS": "1",
                "MINTLOG_INGEST__MAX_BACKLOG_SECONDS": "3",
                "MINTLOG_INGEST__BACKLOG_CHECK_INTERVAL_MS": "200",
                "MINTLOG_ARCHIVE__MAX_AGE_SECONDS": "0.5",
            }
        )
        mintlog.start()
        key = mintlog.bootstrap("archive-down")
        proxy.cut()  # the blob store is gone from here on
        accepted: list[str] = []
        deadline = time.monotonic() + 10  # more than three times the limit
        while time.monotonic() < deadline:
            marks = [uuid.uuid4().hex for _ in range(10)]
            response = mintlog.ingest(key, batch(marks))
            assert response.status_code == 202, response.text
            accepted.extend(marks)
            time.sleep(0.2)
        answer = mintlog.wait_for_total(key, {"service": SERVICE, "size": 1000}, len(accepted), timeout_seconds=30)
        assert sorted(event["fields"]["mark"] for event in answer["events"]) == sorted(accepted)
        metrics = httpx.get(f"{mintlog.ingest_url}/metrics", timeout=30).text
        assert metric(metrics, "mintlog_ingest_backlog_refusing") == 0
        assert metric(metrics, "mintlog_ingest_requests_rejected_total", reason="backlog_exceeded") == 0
        assert metric(metrics, "mintlog_archive_failures_total") >= 1, "the blob store was expected to be down"
        assert metric(metrics, "mintlog_archive_objects_total") == 0
    finally:
        proxy.cut()

"""A Granian worker of the ingest role reads the pipeline's backlog too (it serves the role's app without starting
the role): with a real nats-server, batches waiting on `LOGS_RAW` make the worker's gate close."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from mintlog.adapters.bus.embedded_nats import EmbeddedNatsServer
from mintlog.adapters.bus.nats import NatsEventBus
from mintlog.launch.workers import WorkerApp
from mintlog.settings import load_settings


async def _get(app: WorkerApp, path: str) -> str:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8080),
    }
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(body).decode()


async def test_an_ingest_worker_closes_its_gate_when_batches_pile_up(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "nats", max_payload_bytes=1024 * 1024)
    url = await server.start()
    producer = NatsEventBus(
        [url],
        connect_timeout_seconds=5,
        publish_timeout_seconds=5,
        stream_max_bytes=64 * 1024 * 1024,
        stream_max_age_seconds=3600,
        duplicate_window_seconds=60,
        replicas=1,
    )
    settings = load_settings(
        {
            "MINTLOG_ROLES": "ingest",
            "MINTLOG_HTTP__WORKERS": "2",
            "MINTLOG_DATA_DIR": str(tmp_path / "data"),
            "MINTLOG_NATS__URL": url,
            "MINTLOG_NATS__STREAM_MAX_BYTES": str(64 * 1024 * 1024),
            "MINTLOG_INGEST__MAX_BACKLOG_MESSAGES": "2",
            "MINTLOG_INGEST__BACKLOG_CHECK_INTERVAL_MS": "100",
        },
        env_file=None,
    )
    app = WorkerApp("ingest", settings)
    try:
        await app.startup()
        await producer.start()
        for _ in range(3):
            await producer.publish("logs.raw.t1", b"waiting for a pipeline")
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            metrics = await _get(app, "/metrics")
            if re.search(r"^mintlog_ingest_backlog_refusing 1\.0$", metrics, re.MULTILINE):
                break
            assert asyncio.get_running_loop().time() < deadline, "the worker never read the backlog"
            await asyncio.sleep(0.1)
        assert 'mintlog_ingest_backlog_messages{stream="LOGS_RAW"} 3.0' in metrics
    finally:
        await app.shutdown()
        await producer.close()
        await server.stop()

"""A webhook receiver on 127.0.0.1 for end-to-end tests and the alert-latency benchmark.

It records every request (arrival time, headers, body) and answers each with the next scripted status
(200 once the script is exhausted), so a test can make the first attempts fail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ReceivedWebhook", "WebhookReceiver"]


@dataclass(frozen=True)
class ReceivedWebhook:
    """One request as it arrived: `arrived` is `time.monotonic()` on arrival."""

    arrived: float
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class WebhookReceiver:
    """`with WebhookReceiver() as receiver:` serves on `receiver.url` until the block ends."""

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.received: list[ReceivedWebhook] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver._next_status()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver._record(
                    ReceivedWebhook(
                        arrived=time.monotonic(),
                        path=self.path,
                        headers={name.lower(): value for name, value in self.headers.items()},
                        body=body,
                        answered=status,
                    )
                )

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def _next_status(self) -> int:
        with self._lock:
            return self._statuses.pop(0) if self._statuses else 200

    def _record(self, webhook: ReceivedWebhook) -> None:
        with self._arrived:
            self.received.append(webhook)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout_seconds: float) -> list[ReceivedWebhook]:
        """The requests received once there are at least `count`, or all of them after the timeout."""
        deadline = time.monotonic() + timeout_seconds
        with self._arrived:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
            return list(self.received)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

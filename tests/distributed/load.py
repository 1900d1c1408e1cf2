"""Continuous ingest for the failure tests: a thread posting small batches, recording the fate of each event.

Every event carries a unique `fields.mark`. A 202 puts the batch's marks in `accepted`; a refused connection
(the request never left) in `not_sent`; any other transport error (sent, no answer: it may or may not have
been stored) in `unknown`; an HTTP error status is counted by status, its marks kept in `refused` (a 503 says
"not stored, retry": one found later would be a duplicate after the client's retry), the answers in `refusals`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

__all__ = ["Loader", "Outcome"]


@dataclass
class Outcome:
    """What one scenario did to the events it sent."""

    scenario: str
    accepted: int
    found: int
    lost: int
    duplicated: int
    unknown: int
    unknown_found: int
    refused: int
    refused_found: int
    not_sent: int
    statuses: dict[int, int]


@dataclass
class Loader:
    """`start()` posts batches of `batch_size` events with `service` to `url()` until `stop()`."""

    url: Callable[[], str]
    key: str
    service: str
    batch_size: int = 10
    pause_seconds: float = 0.03
    accepted: list[str] = field(default_factory=lambda: [])
    unknown: list[str] = field(default_factory=lambda: [])
    refused: list[str] = field(default_factory=lambda: [])
    not_sent: int = 0
    statuses: Counter[int] = field(default_factory=lambda: Counter[int]())
    refusals: list[httpx.Response] = field(default_factory=lambda: [])
    in_flight: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sequence: int = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"loader-{self.service}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the loader did not stop"

    def wait_in_flight(self) -> None:
        """Return once a request was written whole and is not answered yet: the moment to kill or stop the server."""
        self.in_flight.clear()
        deadline = time.monotonic() + 10
        while not self.in_flight.wait(0.001):
            assert time.monotonic() < deadline, "the loader sent nothing"

    def wait_accepted(self, more_than: int, timeout_seconds: float) -> None:
        """Wait until more than `more_than` events were accepted."""
        deadline = time.monotonic() + timeout_seconds
        while len(self.accepted) <= more_than:
            if time.monotonic() > deadline:
                raise AssertionError(f"ingest accepted nothing new within {timeout_seconds}s: {dict(self.statuses)}")
            time.sleep(0.05)

    def _trace(self, event_name: str, _info: dict[str, object]) -> None:
        # In flight once the whole request is on the wire: set before sending, a loader thread held up by a busy
        # machine let a stop close the idle keep-alive connection before its request was written.
        if event_name == "http11.send_request_body.complete":
            self.in_flight.set()

    def _run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0)) as client:
            while not self._stop.is_set():
                marks = [f"{self.service}-{self._sequence + i}" for i in range(self.batch_size)]
                self._sequence += self.batch_size
                events = [
                    {"service": self.service, "message": f"event {mark}", "fields": {"mark": mark}} for mark in marks
                ]
                try:
                    response = client.post(
                        f"{self.url()}/v1/ingest/logs",
                        json={"events": events},
                        headers={"X-API-Key": self.key},
                        extensions={"trace": self._trace},
                    )
                except httpx.ConnectError:
                    self.not_sent += len(marks)
                    time.sleep(0.1)
                    continue
                except httpx.TransportError:
                    self.unknown.extend(marks)
                    continue
                finally:
                    self.in_flight.clear()
                self.statuses[response.status_code] += 1
                if response.status_code == 202:
                    assert response.json()["accepted"] == len(marks)
                    self.accepted.extend(marks)
                else:
                    self.refusals.append(response)
                    self.refused.extend(marks)
                    time.sleep(0.1)
                time.sleep(self.pause_seconds)

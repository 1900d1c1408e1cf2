"""`POST /v1/logs/tail` end to end: `mintlog run` (embedded NATS, Tantivy, Granian) and real HTTP streams; and
tails ended when their key is revoked, rotated, expires or its tenant is suspended, also across two instances
sharing Redis and PostgreSQL."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess
from tests.e2e.test_admin_process import call, created

pytestmark = pytest.mark.e2e

MAX_TAILS = 3
BUFFER_EVENTS = 20
SETTINGS = {
    "MINTLOG_TAIL__HEARTBEAT_SECONDS": "0.5",
    "MINTLOG_TAIL__MAX_PER_TENANT": str(MAX_TAILS),
    "MINTLOG_TAIL__BUFFER_EVENTS": str(BUFFER_EVENTS),
}


@dataclass
class Frame:
    """One Server-Sent Events frame: `event`/`id`/`data` fields, or only comments (a keepalive)."""

    event: str | None = None
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=lambda: [])

    def json(self) -> Any:
        return json.loads(self.data)


class TailStream:
    """Reads the frames of an open tail response, failing when nothing complete arrives in time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def next_frame(self, timeout_seconds: float = 10.0) -> Frame:
        deadline = time.monotonic() + timeout_seconds
        frame = Frame()
        data: list[str] = []
        started = False
        for line in self._lines:  # keepalives arrive every 0.5 s, so the deadline is checked regularly
            if line == "":
                if started:
                    frame.data = "\n".join(data)
                    return frame
                continue
            started = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                frame.comments.append(value)
            elif name == "data":
                data.append(value)
            elif name == "event":
                frame.event = value
            elif name == "id":
                frame.id = value
            if time.monotonic() > deadline:
                break
        raise AssertionError("the tail sent no complete frame in time (or ended)")

    def remaining_lines(self) -> list[str]:
        """Every line until the server ends the stream."""
        return list(self._lines)

    def next_events(self, count: int, timeout_seconds: float = 15.0) -> list[Frame]:
        """The next `count` non-keepalive frames."""
        deadline = time.monotonic() + timeout_seconds
        frames: list[Frame] = []
        while len(frames) < count:
            assert time.monotonic() < deadline, f"only {len(frames)} of {count} frames arrived: {frames}"
            frame = self.next_frame()
            if frame.event is not None:
                frames.append(frame)
        return frames

    def log_messages_until(self, last_message: str, timeout_seconds: float = 15.0) -> list[str]:
        """Messages of `log` frames up to and including `last_message`; any other event fails."""
        deadline = time.monotonic() + timeout_seconds
        messages: list[str] = []
        while not messages or messages[-1] != last_message:
            assert time.monotonic() < deadline, f"{last_message!r} did not arrive; got {messages}"
            frame = self.next_frame()
            if frame.event is None:
                continue
            assert frame.event == "log", frame
            messages.append(frame.json()["message"])
        return messages


@contextmanager
def tail(
    mintlog: MintlogProcess,
    key: str,
    body: dict[str, Any],
    client: httpx.Client | None = None,
    params: httpx.QueryParams | None = None,
) -> Iterator[TailStream]:
    """An open tail (a GET with `params` when given, else a POST of `body`); it is open (subscribed) once the
    first keepalive has been read, which this waits for."""
    client = client or httpx.Client(timeout=httpx.Timeout(10.0, read=5.0))
    url, headers = f"{mintlog.api_url}/v1/logs/tail", {"X-API-Key": key}
    request = (
        client.stream("GET", url, params=params, headers=headers)
        if params is not None
        else client.stream("POST", url, json=body, headers=headers)
    )
    with client, request as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = TailStream(response)
        assert stream.next_frame().comments == ["keepalive"]
        yield stream


def open_tail(mintlog: MintlogProcess, key: str, body: dict[str, Any]) -> httpx.Response:
    """A tail request that is expected to be refused: the answer, read whole."""
    return httpx.post(f"{mintlog.api_url}/v1/logs/tail", json=body, headers={"X-API-Key": key}, timeout=10)


def metric(mintlog: MintlogProcess, name: str) -> float:
    for line in httpx.get(f"{mintlog.api_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not found")


def wait_until(condition: Callable[[], bool], timeout_seconds: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def event(service: str, message: str, *, level: str = "error", minutes_ago: float = 0, **extra: Any) -> dict[str, Any]:
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {
        "service": service,
        "level": level,
        "message": message,
        "host": "web-1",
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        **extra,
    }


def ingest(mintlog: MintlogProcess, key: str, *events: dict[str, Any]) -> None:
    response = mintlog.ingest(key, {"events": list(events)})
    assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MintlogProcess, str, str]]:
    """One Mintlog with short heartbeats, a small tail buffer and cap; keys of tenants `demo` and `other`."""
    process = MintlogProcess(data_dir=tmp_path_factory.mktemp("mintlog") / "data", extra_env=SETTINGS)
    try:
        process.start()
        yield process, process.bootstrap("demo"), process.bootstrap("other")
    finally:
        process.cleanup()


def test_matching_events_arrive_live_and_nothing_else(running: tuple[MintlogProcess, str, str]) -> None:
    mintlog, key, other_key = running
    with tail(mintlog, key, {"query": "level:error", "service": "live"}) as stream:
        ingest(
            mintlog,
            key,
            event("live", "first match", fields={"order": 1}),
            event("live", "not an error", level="info"),
            event("elsewhere", "another service"),
        )
        ingest(mintlog, other_key, event("live", "other tenant's error"))
        ingest(mintlog, key, event("live", "second match"))

        frames = stream.next_events(2)

    assert [frame.event for frame in frames] == ["log", "log"]
    first, second = (frame.json() for frame in frames)
    assert [first["message"], second["message"]] == ["first match", "second match"]
    assert frames[0].id == first["id"]
    assert first["tenant_id"] == "demo"
    assert first["fields"] == {"order": 1}
    assert first["service"] == "live"


def test_since_replays_stored_events_then_continues_live_without_duplicates(
    running: tuple[MintlogProcess, str, str],
) -> None:
    mintlog, key, _ = running
    ingest(
        mintlog,
        key,
        event("replay", "stored 2", minutes_ago=2),
        event("replay", "stored 1", minutes_ago=3),
        event("replay", "too old", minutes_ago=90),
        event("replay", "stored 3", minutes_ago=1),
    )
    assert mintlog.wait_for_total(key, {"service": "replay"}, 4)["total"] == 4

    with tail(mintlog, key, {"service": "replay", "since": "now-1h"}) as stream:
        # Ingested while the tail waits for in-flight events and replays: it must come exactly once.
        ingest(mintlog, key, event("replay", "during replay"))
        replayed = stream.log_messages_until("stored 3")
        ingest(mintlog, key, event("replay", "live 1"))
        later = stream.log_messages_until("live 1")

    assert replayed == ["stored 1", "stored 2", "stored 3"]  # oldest first, and nothing before `since`
    received = replayed + later
    assert sorted(received) == sorted(["stored 1", "stored 2", "stored 3", "during replay", "live 1"])
    assert len(received) == len(set(received))


def test_a_quiet_tail_sends_keepalive_comments(running: tuple[MintlogProcess, str, str]) -> None:
    mintlog, key, _ = running
    with tail(mintlog, key, {"service": "nothing-ever"}) as stream:
        started = time.monotonic()
        assert stream.next_frame().comments == ["keepalive"]
        assert stream.next_frame().comments == ["keepalive"]
        assert time.monotonic() - started < 5


def test_a_client_that_does_not_read_gets_a_dropped_event_with_the_count(
    running: tuple[MintlogProcess, str, str],
) -> None:
    mintlog, key, _ = running
    dropped_before = metric(mintlog, "mintlog_tail_events_dropped_total")
    # A modest receive window, so the server's writes block soon after the client stops reading.
    small_window = httpx.Client(
        timeout=httpx.Timeout(10.0, read=5.0),
        transport=httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)]),
    )
    padding = "x" * 30_000
    per_batch = BUFFER_EVENTS // 2  # one batch always fits: only the client's not reading makes room run out
    with tail(mintlog, key, {"service": "flood"}, client=small_window) as stream:
        batches = 0
        while metric(mintlog, "mintlog_tail_events_dropped_total") == dropped_before:
            assert batches < 200, "the server never ran out of room for the client that does not read"
            ingest(mintlog, key, *(event("flood", f"flood {batches}-{n} {padding}") for n in range(per_batch)))
            batches += 1

        # The client reads again: what was buffered, then how many were skipped, until all are accounted for.
        received, dropped = 0, 0
        while received + dropped < batches * per_batch:
            frame = stream.next_events(1)[0]
            if frame.event == "dropped":
                dropped += frame.json()["count"]
            else:
                assert frame.event == "log"
                received += 1
        # Caught up: new events flow again.
        ingest(mintlog, key, event("flood", "after the flood"))
        assert stream.log_messages_until("after the flood") == ["after the flood"]

    assert dropped > 0
    assert received + dropped == batches * per_batch  # every event was sent or counted as skipped
    assert metric(mintlog, "mintlog_tail_events_dropped_total") - dropped_before == dropped


def test_the_tenant_cap_gives_429_and_a_closed_tail_frees_its_slot(running: tuple[MintlogProcess, str, str]) -> None:
    mintlog, key, other_key = running
    wait_until(lambda: metric(mintlog, "mintlog_tails_open") == 0)
    with tail(mintlog, key, {}), tail(mintlog, key, {}):
        with tail(mintlog, key, {}):
            refused = open_tail(mintlog, key, {})
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "too_many_tails"
            assert refused.json()["limit"] == MAX_TAILS
            assert int(refused.headers["retry-after"]) > 0
            with tail(mintlog, other_key, {}):  # another tenant's tails are counted apart
                assert metric(mintlog, "mintlog_tails_open") == MAX_TAILS + 1
        # The client hung up: the server notices and frees the slot.
        wait_until(lambda: metric(mintlog, "mintlog_tails_open") == MAX_TAILS - 1)
        with tail(mintlog, key, {}) as again:
            assert again.next_frame().comments == ["keepalive"]
    wait_until(lambda: metric(mintlog, "mintlog_tails_open") == 0)


def test_tail_requests_are_checked_like_search(running: tuple[MintlogProcess, str, str]) -> None:
    mintlog, key, _ = running
    assert open_tail(mintlog, "ml_nonsense", {}).status_code == 401
    created = httpx.post(
        f"{mintlog.api_url}/v1/keys",
        json={"name": "ingest only", "scopes": ["ingest:logs"]},
        headers={"X-API-Key": key},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    forbidden = open_tail(mintlog, created.json()["key"], {})
    assert forbidden.status_code == 403
    for body, code in (
        ({"since": "yesterday"}, "invalid_time"),
        ({"query": "level:(error"}, "invalid_query"),
        ({"size": 10}, "invalid_tail"),
    ):
        answer = open_tail(mintlog, key, body)
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code


def test_a_get_with_query_parameters_streams_like_the_post(running: tuple[MintlogProcess, str, str]) -> None:
    mintlog, key, _ = running
    ingest(mintlog, key, event("by-get", "stored before", minutes_ago=2, fields={"team": "core"}))
    assert mintlog.wait_for_total(key, {"service": "by-get"}, 1)["total"] == 1
    params = (
        ("query", "level:error OR level:warn"),
        ("service", "by-get"),
        ("service", "by-get-too"),
        ("fields", '{"team": "core"}'),
        ("since", "now-1h"),
    )
    with tail(mintlog, key, {}, params=httpx.QueryParams(params)) as stream:
        replayed = stream.log_messages_until("stored before")
        ingest(
            mintlog,
            key,
            event("by-get", "an info", level="info", fields={"team": "core"}),
            event("by-get", "other team", fields={"team": "edge"}),
            event("by-get-too", "a warning", level="warn", fields={"team": "core"}),
        )
        live = stream.log_messages_until("a warning")
    assert (replayed, live) == (["stored before"], ["a warning"])


def test_a_get_tail_is_refused_like_a_post(running: tuple[MintlogProcess, str, str]) -> None:
    mintlog, key, _ = running
    url = f"{mintlog.api_url}/v1/logs/tail"
    for params, code in (
        ({"query": "level:(error"}, "invalid_query"),
        ({"query": "level:eror"}, "invalid_query"),
        ({"since": "yesterday"}, "invalid_time"),
        ({"size": "10"}, "unknown_parameter"),
        ({"query": ["a", "b"]}, "invalid_tail"),
        ({"fields": "[1]"}, "invalid_tail"),
    ):
        answer = httpx.get(url, params=params, headers={"X-API-Key": key}, timeout=10)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code
    assert httpx.get(url, params={"query": "level:eror"}, headers={"X-API-Key": key}).json()["suggestion"] == (
        "level:error"
    )
    # An EventSource cannot send the key in a header, but the URL is no place for it either.
    in_url = httpx.get(url, params={"api_key": key}, timeout=10)
    assert in_url.status_code == 400
    assert "X-API-Key" in in_url.json()["detail"]


def test_a_likely_wrong_query_opens_the_tail_with_a_warning_frame(running: tuple[MintlogProcess, str, str]) -> None:
    mintlog, key, _ = running
    with tail(mintlog, key, {}, params=httpx.QueryParams((("query", "timeout or reset"),))) as stream:
        (frame,) = stream.next_events(1)
    assert frame.event == "warning"
    assert (frame.json()["code"], frame.json()["suggestion"]) == ("lowercase_operator", "timeout OR reset")


def test_shutdown_ends_open_tails_with_a_last_error_frame_and_the_process_exits(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    # A long grace: a tail that held the shutdown would end only when it runs out, 60 s after SIGTERM; one the
    # shutdown ends gets its frame at once (seconds, even on a loaded machine, where stopping every role and
    # the pipeline children took 29 s in one run).
    mintlog = mintlog_factory(**SETTINGS, MINTLOG_HTTP__SHUTDOWN_GRACE_SECONDS="60")
    mintlog.start()
    key = mintlog.bootstrap("demo")
    with tail(mintlog, key, {}) as stream:
        assert mintlog.process is not None
        started = time.monotonic()
        mintlog.process.send_signal(signal.SIGTERM)
        (frame,) = stream.next_events(1, timeout_seconds=45)
        assert time.monotonic() - started < 30, "the tail was held until the shutdown grace ran out"
        assert frame.event == "error"
        assert frame.json()["code"] == "server_shutting_down"
        assert stream.remaining_lines() == []  # then the stream ended cleanly: no error reading it
        assert mintlog.process.wait(timeout=90) == 0


# A key that stops authenticating ends its open tails, on every instance.

ENDS_WITHIN_SECONDS = 8.0  # MINTLOG_TAIL__KEY_RECHECK_SECONDS (2, the default) plus room for a loaded machine
GUARDED_SETTINGS = {"MINTLOG_TAIL__HEARTBEAT_SECONDS": "0.5", "MINTLOG_TAIL__MAX_PER_TENANT": "1"}


class Operator:
    """The `admin` key of one Mintlog: makes tenants and keys for a test, and changes them."""

    def __init__(self, mintlog: MintlogProcess, key: str) -> None:
        self.mintlog = mintlog
        self.key = key
        self._tenants = 0

    def tenant(self) -> str:
        self._tenants += 1
        return created(call(self.mintlog, "POST", "/v1/admin/tenants", self.key, {"name": f"t{self._tenants}"}))["id"]

    def new_key(self, tenant_id: str, **body: Any) -> dict[str, Any]:
        """A key with every scope but `admin`; the answer holds its secret in `key`."""
        return created(
            call(self.mintlog, "POST", f"/v1/admin/tenants/{tenant_id}/keys", self.key, {"name": "k", **body})
        )

    def change(self, method: str, path: str, body: Any = None) -> float:
        """Make the change; the moment its answer came."""
        answer = call(self.mintlog, method, path, self.key, body)
        assert answer.is_success, answer.text
        return time.monotonic()


def ended_by(stream: TailStream, since: float) -> dict[str, Any]:
    """The `error` frame that must end the stream (after any keepalives) within `ENDS_WITHIN_SECONDS` of
    `since`; the stream must then be over."""
    frame = stream.next_events(1, timeout_seconds=ENDS_WITHIN_SECONDS + 5)[0]
    elapsed = time.monotonic() - since
    assert frame.event == "error", frame
    assert elapsed < ENDS_WITHIN_SECONDS, f"the tail ended {elapsed:.1f}s after the change"
    assert stream.remaining_lines() == []  # the server closed the stream (a read timeout would raise)
    return frame.json()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """One Mintlog allowing a single tail per tenant, and its operator."""
    process = MintlogProcess(data_dir=tmp_path_factory.mktemp("mintlog") / "data", extra_env=GUARDED_SETTINGS)
    try:
        process.start()
        yield Operator(process, process.bootstrap("ops"))
    finally:
        process.cleanup()


def test_revoking_a_key_ends_its_open_tail_and_frees_the_slot(guarded: Operator) -> None:
    mintlog, tenant = guarded.mintlog, guarded.tenant()
    key, other = guarded.new_key(tenant), guarded.new_key(tenant)
    with tail(mintlog, key["key"], {}) as stream:
        ingest(mintlog, key["key"], event("live", "before the revocation"))
        assert stream.log_messages_until("before the revocation") == ["before the revocation"]
        assert open_tail(mintlog, other["key"], {}).status_code == 429  # the tenant's one slot is taken

        revoked_at = guarded.change("DELETE", f"/v1/admin/tenants/{tenant}/keys/{key['id']}")
        error = ended_by(stream, revoked_at)

    assert error["code"] == "key_revoked"
    assert "revoked" in error["detail"]
    with tail(mintlog, other["key"], {}) as again:  # the slot is free: the cap is 1
        ingest(mintlog, other["key"], event("live", "after the revocation"))
        assert again.log_messages_until("after the revocation") == ["after the revocation"]


def test_rotating_a_key_without_grace_ends_its_tail_and_the_new_key_gets_the_slot(guarded: Operator) -> None:
    mintlog, tenant = guarded.mintlog, guarded.tenant()
    key = guarded.new_key(tenant)
    with tail(mintlog, key["key"], {}) as stream:
        # Self-service: the key rotates itself.
        answer = call(mintlog, "POST", f"/v1/keys/{key['id']}/rotate", key["key"], {"grace_seconds": 0})
        rotated_at = time.monotonic()
        replacement = created(answer)
        assert ended_by(stream, rotated_at)["code"] == "key_revoked"
    with tail(mintlog, replacement["key"], {}) as again:
        assert again.next_frame().comments == ["keepalive"]


def test_a_rotated_key_keeps_its_tail_through_the_grace_then_it_ends(guarded: Operator) -> None:
    mintlog, tenant = guarded.mintlog, guarded.tenant()
    key = guarded.new_key(tenant)
    grace = 6
    with tail(mintlog, key["key"], {}) as stream:
        rotated_at = guarded.change(
            "POST", f"/v1/admin/tenants/{tenant}/keys/{key['id']}/rotate", {"grace_seconds": grace}
        )
        time.sleep(2.5)  # longer than a re-check: the key is checked and still valid
        ingest(mintlog, key["key"], event("live", "during the grace"))
        assert stream.log_messages_until("during the grace") == ["during the grace"]
        error = ended_by(stream, rotated_at + grace)
        assert time.monotonic() - rotated_at >= grace
    assert error["code"] == "key_expired"


def test_a_key_that_expires_while_its_tail_is_open_ends_it(guarded: Operator) -> None:
    mintlog, tenant = guarded.mintlog, guarded.tenant()
    lifetime = 4
    expires_at = datetime.now(UTC) + timedelta(seconds=lifetime)
    key = guarded.new_key(tenant, expires_at=expires_at.isoformat())
    with tail(mintlog, key["key"], {}) as stream:
        error = ended_by(stream, time.monotonic() + (expires_at - datetime.now(UTC)).total_seconds())
    assert error["code"] == "key_expired"
    assert datetime.now(UTC) >= expires_at


def test_suspending_or_deleting_a_tenant_ends_its_tails(guarded: Operator) -> None:
    mintlog, tenant = guarded.mintlog, guarded.tenant()
    key = guarded.new_key(tenant)
    with tail(mintlog, key["key"], {}) as stream:
        suspended_at = guarded.change("PATCH", f"/v1/admin/tenants/{tenant}", {"suspended": True})
        assert ended_by(stream, suspended_at)["code"] == "tenant_suspended"
    guarded.change("PATCH", f"/v1/admin/tenants/{tenant}", {"suspended": False})
    with tail(mintlog, key["key"], {}) as stream:  # reinstated: the same key tails again, in the freed slot
        deleted_at = guarded.change("DELETE", f"/v1/admin/tenants/{tenant}")
        assert ended_by(stream, deleted_at)["code"] == "tenant_deleted"
    wait_until(lambda: metric(mintlog, "mintlog_tails_open") == 0)


@pytest.mark.integration
def test_a_revocation_on_one_instance_ends_the_tail_open_on_another(
    tmp_path: Path, mintlog_factory: Callable[..., MintlogProcess], redis_url: str, postgres_database_url: str
) -> None:
    shared = {
        **GUARDED_SETTINGS,
        "MINTLOG_CACHE__URL": redis_url,
        "MINTLOG_DATABASE__URL": postgres_database_url,
    }
    first = mintlog_factory(tmp_path / "first", **shared)
    second = mintlog_factory(tmp_path / "second", **shared)
    operator = Operator(first, first.bootstrap("ops"))  # migrates the database, so both may start at once
    with ThreadPoolExecutor(max_workers=2) as starting:
        for started in [starting.submit(first.start), starting.submit(second.start)]:
            started.result()
    tenant = operator.tenant()
    key, other = operator.new_key(tenant), operator.new_key(tenant)

    with tail(second, key["key"], {}) as stream:
        revoked_at = operator.change("DELETE", f"/v1/admin/tenants/{tenant}/keys/{key['id']}")
        assert ended_by(stream, revoked_at)["code"] == "key_revoked"
    with tail(second, other["key"], {}) as stream:
        suspended_at = operator.change("PATCH", f"/v1/admin/tenants/{tenant}", {"suspended": True})
        assert ended_by(stream, suspended_at)["code"] == "tenant_suspended"
    wait_until(lambda: metric(second, "mintlog_tails_open") == 0)
